"""`budget-bot check [--dry-run]` as a user runs it: real processes, loopback HTTP only."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.asgi_server import serve_app
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator, serve_simulator
from bot.store.budgets import NewBudget, create_budget
from bot.store.db import migrate, open_db
from tests.live import live_team

ROOT = Path(__file__).resolve().parents[2]
# The subprocess runs on the wall clock: the team's spend is anchored there too.
TEAM = live_team()
ANCHOR = TEAM.anchor


async def budget_bot(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


def make_db(path: Path) -> None:
    db = open_db(path)
    migrate(db)
    scope = Scope(ScopeKind.KEY, TEAM.spike.user_id)
    create_budget(
        db,
        NewBudget("T1", PeriodKind.ROLLING_24H, 1000, "C_ALERTS", "U1", scope, "CI key"),
        now=ANCHOR,
    )
    db.close()


async def test_dry_run_prints_the_alert_and_changes_nothing_then_a_real_run_posts_once(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "bot.db"
    make_db(db_path)
    slack = slack_api.FakeSlack()
    simulator = Simulator(TEAM, clock=ManualClock(ANCHOR))
    async with (
        serve_simulator(simulator) as scenario_url,
        serve_app(slack_api.create_app(slack)) as slack_origin,
    ):
        slack.origin = slack_origin
        env = {
            "BUDGET_BOT_DB": str(db_path),
            "SCENARIO_BASE_URL": scenario_url,
            "SCENARIO_SDK_API_KEY": "test-key",
            "SCENARIO_SDK_API_SECRET": "test-secret",
            "SLACK_API_URL": f"{slack_origin}/api/",
            "SLACK_BOT_TOKEN": "xoxb-test",
        }
        code, out, err = await budget_bot(tmp_path, "check", "--dry-run", **env)
        assert code == 0, err
        assert "would post to C_ALERTS" in out
        assert "CI key 24h: 100 % of budget reached" in out
        assert "[Snooze 24 h] [Acknowledge] [Raise budget] [Open in Scenario]" in out
        assert slack.calls == []

        code, out, err = await budget_bot(tmp_path, "check", **env)
        assert code == 0, err
        assert "delivered 1" in out
        code, out, err = await budget_bot(tmp_path, "check", **env)
        assert code == 0, err
        assert "queued 0 message(s)" in out

    posts = slack.calls_to("chat.postMessage")
    assert len(posts) == 1
    assert posts[0].args["channel"] == "C_ALERTS"
    assert "test-secret" not in out + err


async def test_unreadable_scenario_is_reported_and_exits_1(tmp_path: Path) -> None:
    db_path = tmp_path / "bot.db"
    make_db(db_path)
    simulator = Simulator(TEAM, clock=ManualClock(ANCHOR))
    async with serve_simulator(simulator) as scenario_url:
        code, out, err = await budget_bot(
            tmp_path,
            "check",
            "--dry-run",
            BUDGET_BOT_DB=str(db_path),
            SCENARIO_BASE_URL=scenario_url,
            SCENARIO_SDK_API_KEY="test-key",
            SCENARIO_SDK_API_SECRET="wrong-secret",
        )
    assert code == 1
    assert "bad credentials" in out
    assert "wrong-secret" not in out + err


async def test_missing_scenario_credentials_is_a_configuration_error(tmp_path: Path) -> None:
    db_path = tmp_path / "bot.db"
    make_db(db_path)
    code, _, err = await budget_bot(tmp_path, "check", BUDGET_BOT_DB=str(db_path))
    assert code == 2
    assert "SCENARIO_SDK_API_KEY" in err
    assert "Traceback" not in err
