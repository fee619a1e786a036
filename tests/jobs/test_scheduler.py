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
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.asgi_server import serve_app
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.config import load_settings
from bot.jobs.runtime import Runtime
from bot.jobs.scheduler import Scheduler
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator, serve_simulator
from bot.sim.team import SyntheticTeam
from bot.store.budgets import NewBudget, create_budget
from bot.store.digests import list_digests, set_digest, turn_off
from bot.store.workspaces import set_timezone
from tests.live import live_team

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = datetime(2026, 11, 26, 12, tzinfo=UTC)
TEAM = SyntheticTeam.build(7, ANCHOR)
FAST = timedelta(milliseconds=100)


@contextlib.asynccontextmanager
async def world(
    tmp_path: Path, team: SyntheticTeam = TEAM, now: datetime = ANCHOR
) -> AsyncIterator[tuple[Runtime, Simulator, slack_api.FakeSlack, dict[str, str]]]:
    slack = slack_api.FakeSlack()
    simulator = Simulator(team, clock=ManualClock(now))
    async with (
        serve_simulator(simulator) as scenario_url,
        serve_app(slack_api.create_app(slack)) as slack_origin,
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
            "SCENARIO_TEAM_ID": team.team_id,
            "BUDGET_BOT_TIMEZONE": "Europe/Paris",
        }
        settings = load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()})
        runtime = Runtime.open(settings)
        key = Scope(ScopeKind.KEY, team.spike.user_id)
        create_budget(
            runtime.db,
            NewBudget("T1", PeriodKind.ROLLING_24H, 1000, "C_ALERTS", "U1", key),
            now=now,
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
    team = live_team()  # `serve` runs on the wall clock
    assert team.anchor is not None
    async with world(tmp_path, team, team.anchor) as (_, _, slack, env):
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


def digest_trigger(scheduler: Scheduler, job_id: str = "digest:1") -> tuple[str, str, str] | None:
    job = scheduler.scheduler.get_job(job_id)
    if job is None:
        return None
    fields = {f.name: str(f) for f in job.trigger.fields}
    return fields["hour"], fields["minute"], str(job.trigger.timezone)


async def test_digest_jobs_follow_setting_changes_without_restart(tmp_path: Path) -> None:
    async with world(tmp_path) as (runtime, _, _, _):
        scheduler = Scheduler(runtime, check_interval=timedelta(hours=1), clock=lambda: ANCHOR)
        scheduler.start()
        try:
            set_digest(runtime.db, "T1", "C_DIGEST", time(9, 0), actor="U1", now=ANCHOR)
            runtime.digests_changed()
            await wait_until(lambda: digest_trigger(scheduler) == ("9", "0", "Europe/Paris"))
            set_digest(runtime.db, "T1", "C_DIGEST", time(10, 30), actor="U1", now=ANCHOR)
            runtime.digests_changed()
            await wait_until(lambda: digest_trigger(scheduler) == ("10", "30", "Europe/Paris"))
            set_timezone(runtime.db, "T1", "Asia/Kolkata", actor="U1", now=ANCHOR)
            runtime.digests_changed()
            await wait_until(lambda: digest_trigger(scheduler) == ("10", "30", "Asia/Kolkata"))
            turn_off(runtime.db, "T1", "C_DIGEST", actor="U1", now=ANCHOR)
            runtime.digests_changed()
            await wait_until(lambda: digest_trigger(scheduler) is None)
        finally:
            await scheduler.stop()


def test_the_digest_trigger_fires_at_local_time_on_a_dst_day() -> None:
    paris = ZoneInfo("Europe/Paris")
    trigger = CronTrigger(hour=9, minute=0, timezone="Europe/Paris")
    fire = trigger.get_next_fire_time(None, datetime(2026, 3, 28, 12, tzinfo=paris))
    assert fire == datetime(2026, 3, 29, 9, tzinfo=paris)
    assert fire.astimezone(UTC) == datetime(2026, 3, 29, 7, tzinfo=UTC)


async def test_a_restart_sends_a_digest_missed_while_down_once(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    team = SyntheticTeam.build(7, now)
    # The test runs on the wall clock (APScheduler's), so pick a workspace zone where
    # "20 minutes ago" is still today, whatever the hour the suite runs at.
    zone = next(
        z
        for z in ("Europe/Paris", "Asia/Tokyo", "America/New_York", "Pacific/Honolulu")
        if 1 <= now.astimezone(ZoneInfo(z)).hour <= 22
    )
    local = now.astimezone(ZoneInfo(zone))
    missed = (local - timedelta(minutes=20)).time().replace(second=0)
    async with world(tmp_path, team, now) as (runtime, _, slack, _):
        set_timezone(runtime.db, "T1", zone, actor="U1", now=now)
        set_digest(runtime.db, "T1", "C_DIGEST", missed, actor="U1", now=now)

        def digests_posted() -> int:
            return sum(1 for m in slack.top_level("C_DIGEST") if "digest" in m.text.lower())

        for _ in range(2):  # a first start after the crash, then a second restart
            scheduler = Scheduler(runtime, check_interval=timedelta(hours=1))
            scheduler.start()
            try:
                await wait_until(lambda: digests_posted() >= 1, 20)
                synced = scheduler._digest_jobs
                await wait_until(lambda jobs=synced: bool(jobs))
            finally:
                await scheduler.stop()
        assert digests_posted() == 1
        assert len(slack.uploads) == 1


async def test_weekly_and_monthly_digests_go_out_once_per_span_across_restarts(
    tmp_path: Path,
) -> None:
    monday = datetime(2026, 11, 30, 8, 10, tzinfo=UTC)  # 09:10 in Paris
    tuesday_1st = datetime(2026, 12, 1, 8, 10, tzinfo=UTC)
    team = SyntheticTeam.build(7, tuesday_1st)
    async with world(tmp_path, team, monday) as (runtime, simulator, slack, _):
        weekly, monthly = PeriodKind.WEEKLY, PeriodKind.MONTHLY
        set_digest(
            runtime.db, "T1", "C_WEEK", time(9), actor="U1", now=monday, cadence=weekly, weekday=0
        )
        set_digest(runtime.db, "T1", "C_MONTH", time(9), actor="U1", now=monday, cadence=monthly)

        async def a_process_runs_the_digests(now: datetime) -> None:
            """A fresh process on the same database: its own runtime and scheduler."""
            simulator.clock.set(now)
            fresh = Runtime.open(runtime.settings)
            try:
                scheduler = Scheduler(fresh, check_interval=timedelta(hours=1), clock=lambda: now)
                for digest in list_digests(fresh.db):
                    await scheduler.send_digest(digest.id)
            finally:
                await fresh.aclose()

        def posted(channel: str) -> list[str]:
            return [m.text for m in slack.top_level(channel)]

        await a_process_runs_the_digests(monday)
        await a_process_runs_the_digests(monday + timedelta(minutes=20))  # restarted
        [week] = posted("C_WEEK")
        assert week.startswith("☀️ Scenario weekly digest for Mon 23 Nov – Sun 29 Nov 2026")
        assert posted("C_MONTH") == []  # not the 1st
        await a_process_runs_the_digests(tuesday_1st)
        await a_process_runs_the_digests(tuesday_1st + timedelta(minutes=5))
        [month] = posted("C_MONTH")
        assert month.startswith("☀️ Scenario monthly digest for November 2026")
        assert len(posted("C_WEEK")) == 1  # Tuesday
        assert len(slack.uploads) == 2  # one chart each
        sent = {d.channel_id: d.last_sent_day for d in list_digests(runtime.db)}
        assert sent == {"C_WEEK": "2026-W48", "C_MONTH": "2026-11"}


async def test_weekly_and_monthly_digest_jobs_fire_on_their_day(tmp_path: Path) -> None:
    async with world(tmp_path) as (runtime, _, _, _):
        scheduler = Scheduler(runtime, check_interval=timedelta(hours=1), clock=lambda: ANCHOR)
        scheduler.start()
        try:
            for channel, cadence, weekday in (
                ("C_WEEK", PeriodKind.WEEKLY, 4),
                ("C_MONTH", PeriodKind.MONTHLY, None),
            ):
                set_digest(
                    runtime.db,
                    "T1",
                    channel,
                    time(9),
                    actor="U1",
                    now=ANCHOR,
                    cadence=cadence,
                    weekday=weekday,
                )
            runtime.digests_changed()
            await wait_until(lambda: len(scheduler._digest_jobs) == 2)
            paris = ZoneInfo("Europe/Paris")
            fires = {
                job.name: job.trigger.get_next_fire_time(None, datetime(2026, 12, 26, tzinfo=paris))
                for job in scheduler.scheduler.get_jobs()
                if job.id.startswith("digest:")
            }
            assert fires == {
                "digest of C_WEEK": datetime(2027, 1, 1, 9, tzinfo=paris),  # a Friday
                "digest of C_MONTH": datetime(2027, 1, 1, 9, tzinfo=paris),
            }
            fires = {
                job.name: job.trigger.get_next_fire_time(None, datetime(2027, 1, 2, tzinfo=paris))
                for job in scheduler.scheduler.get_jobs()
                if job.id.startswith("digest:")
            }
            assert fires == {
                "digest of C_WEEK": datetime(2027, 1, 8, 9, tzinfo=paris),
                "digest of C_MONTH": datetime(2027, 2, 1, 9, tzinfo=paris),
            }
        finally:
            await scheduler.stop()
