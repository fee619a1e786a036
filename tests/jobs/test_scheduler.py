"""The scheduler in the serve loop: checks and deliveries run on their own, failures don't
stop it, and stopping lets the job in flight finish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.config import load_settings
from bot.jobs.scheduler import Scheduler
from bot.runtime import Runtime
from bot.scenario.simulator import ManualClock, Simulator, serve_simulator
from bot.scenario.synthetic import SyntheticTeam
from bot.serving import serve_app
from bot.slack import fake_api
from bot.store.budgets import NewBudget, create_budget

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = datetime(2026, 11, 26, 12, tzinfo=UTC)
TEAM = SyntheticTeam.build(7, ANCHOR)
FAST = timedelta(milliseconds=100)


@contextlib.asynccontextmanager
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[Runtime, Simulator, fake_api.FakeSlack, dict[str, str]]]:
    slack = fake_api.FakeSlack()
    simulator = Simulator(TEAM, clock=ManualClock(ANCHOR))
    async with (
        serve_simulator(simulator) as scenario_url,
        serve_app(fake_api.create_app(slack)) as slack_origin,
    ):
        slack.origin = slack_origin
        env = {
            "BUDGET_BOT_DB": str(tmp_path / "bot.db"),
            "SCENARIO_BASE_URL": scenario_url,
            "SCENARIO_SDK_API_KEY": "test-key",
            "SCENARIO_SDK_API_SECRET": "test-secret",
            "SLACK_API_URL": f"{slack_origin}/api/",
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": "test-signing-secret",
        }
        settings = load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()})
        runtime = Runtime.open(settings)
        key = Scope(ScopeKind.KEY, TEAM.spike.user_id)
        create_budget(
            runtime.db,
            NewBudget("T1", PeriodKind.ROLLING_24H, 1000, "C_ALERTS", "U1", key),
            now=ANCHOR,
        )
        try:
            yield runtime, simulator, slack, env
        finally:
            await runtime.aclose()


async def wait_until(check, within: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def test_checks_run_on_their_own_and_alerts_are_delivered_once(tmp_path: Path) -> None:
    async with world(tmp_path) as (runtime, simulator, slack, _):
        scheduler = Scheduler(
            runtime, check_interval=FAST, delivery_interval=FAST, clock=lambda: ANCHOR
        )
        scheduler.start()
        try:
            await wait_until(lambda: simulator.count("/v1/usages", type="consumption") >= 3)
            await wait_until(lambda: len(slack.calls_to("chat.postMessage")) >= 1)
            assert scheduler.status().startswith("running")
        finally:
            await scheduler.stop()
        assert scheduler.status() == "stopped"
        assert len(slack.calls_to("chat.postMessage")) == 1


async def test_a_failing_job_does_not_stop_the_scheduler(tmp_path: Path) -> None:
    async with world(tmp_path) as (runtime, simulator, slack, _):
        simulator.faults.outage = True
        scheduler = Scheduler(
            runtime, check_interval=FAST, delivery_interval=FAST, clock=lambda: ANCHOR
        )
        scheduler.start()
        try:
            # The outage makes each check fail; later checks still come.
            await wait_until(lambda: simulator.count("/v1/usages") >= 9)
            simulator.faults.outage = False
            await wait_until(lambda: len(slack.calls_to("chat.postMessage")) >= 1)
        finally:
            await scheduler.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_serve_answers_health_runs_checks_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as (_, _, slack, env):
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with httpx.AsyncClient() as http:

                async def healthy() -> httpx.Response:
                    deadline = asyncio.get_running_loop().time() + 20
                    while True:
                        try:
                            return await http.get(f"http://127.0.0.1:{port}/healthz")
                        except httpx.ConnectError:
                            if asyncio.get_running_loop().time() > deadline:
                                raise
                            await asyncio.sleep(0.05)

                health = await healthy()
                assert health.status_code == 200
                assert health.json()["scheduler"].startswith("running")
                # The first check comes a few seconds after start, then the alert is posted.
                await wait_until(lambda: len(slack.calls_to("chat.postMessage")) >= 1, 20)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
        assert "xoxb-test" not in out.decode() + err.decode()
