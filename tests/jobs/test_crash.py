"""Crash safety: the process dies at every write of a check-and-deliver sequence, restarts,
and carries on — and every message reaches Slack exactly once.

A "crash" is a write the database refuses (its authorizer denies the N-th write statement,
BEGIN and COMMIT included), after which the connection is dropped without cleanup, as a
killed process would drop it, and a fresh one takes over a few minutes later. Writes
include `mark_sent` right after Slack accepted a post: the window between post and mark.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.asgi_server import serve_app
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import CheckSettings, run_check
from bot.jobs.delivery import LEASE, drain
from bot.scenario.client import ScenarioClient
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator, create_app
from bot.sim.team import SyntheticTeam
from bot.store.budgets import NewBudget, create_budget
from bot.store.db import migrate, open_db
from bot.store.outbox import OutboxStatus
from bot.store.workspaces import Workspace

ANCHOR = datetime(2026, 11, 26, 12, tzinfo=UTC)
TEAM = SyntheticTeam.build(7, ANCHOR)
STEPS = (ANCHOR - timedelta(hours=24), ANCHOR)  # the spike lies between the two checks
SETTINGS = CheckSettings(default_tz="UTC", app_url="https://app.example")
WRITES = (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)
TRANSACTION = 22  # SQLITE_TRANSACTION: BEGIN, COMMIT, ROLLBACK


class Crash(Exception):
    pass


@dataclass
class Saboteur:
    """Denies the `at`-th write statement; counts writes either way."""

    at: int | None = None
    seen: int = 0
    fired: bool = False

    def __call__(self, action: int, arg1: str | None, *_: object) -> int:
        is_write = action in WRITES or (action == TRANSACTION and arg1 != "ROLLBACK")
        if not is_write or self.fired:
            return sqlite3.SQLITE_OK
        self.seen += 1
        if self.seen == self.at:
            self.fired = True
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def connect(path: Path, saboteur: Saboteur | None) -> Database:
    # The same pragmas as the bot's, without the statement cache: the authorizer is asked
    # when a statement is prepared, so every execution must prepare.
    conn = sqlite3.connect(str(path), isolation_level=None, cached_statements=0)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    if saboteur is not None:
        conn.set_authorizer(saboteur)
    return Database(conn)


@dataclass
class Rig:
    template: Path
    slack: slack_api.FakeSlack
    web: AsyncWebClient
    simulator: Simulator
    clock: ManualClock
    runs: list[str] = field(default_factory=list)

    async def scenario_for(self, workspace: Workspace) -> ScenarioClient:
        async def no_wait(seconds: float) -> None:
            return None

        return ScenarioClient(
            base_url="http://simulator/v1",
            api_key="test-key",
            api_secret="test-secret",
            transport=httpx.ASGITransport(create_app(self.simulator)),
            sleep=no_wait,
            activity_page_cap=2,
        )

    async def client_for(self, workspace_id: str) -> AsyncWebClient:
        return self.web

    def reset_slack(self) -> None:
        self.slack.calls.clear()
        self.slack.messages.clear()

    async def run(
        self, path: Path, crash_at: int | None, steps: tuple[datetime, ...] = STEPS
    ) -> Saboteur:
        """The whole sequence (a check and a delivery at each of `steps`), restarting after
        the crash as a supervisor would."""
        saboteur = Saboteur(crash_at)
        delay = timedelta(0)
        step = 0
        while step < len(steps):
            now = steps[step] + delay
            self.clock.set(now)
            db = connect(path, None if saboteur.fired else saboteur)
            before = saboteur.fired
            try:
                await run_check(db, self.scenario_for, SETTINGS, now)
                await drain(db, self.client_for, lambda now=now: now)
            except sqlite3.DatabaseError:  # the refused write, wherever it surfaced
                pass
            finally:
                db.conn.close()  # no commit, no rollback: the process is gone
            if saboteur.fired and not before:
                delay += LEASE + timedelta(minutes=1)  # restarted a bit later
                continue
            step += 1
        # A last pass after everything: nothing may be left pending, nothing posted twice.
        db = connect(path, None)
        later = steps[-1] + delay + LEASE + timedelta(minutes=1)
        self.clock.set(later)
        await run_check(db, self.scenario_for, SETTINGS, later)
        await drain(db, self.client_for, lambda: later)
        db.conn.close()
        return saboteur


def posted_keys(slack: slack_api.FakeSlack) -> list[str]:
    return sorted(
        m.metadata["event_payload"]["dedup_key"] for m in slack.all_messages() if m.metadata
    )


@pytest.fixture
def template(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "template.db"
    db = open_db(path)
    migrate(db)
    month_start = datetime(2026, 11, 1, tzinfo=UTC)
    before, after = (TEAM.cu_between(month_start, t) for t in STEPS)
    limit = after / 0.85  # 50 % crossed at the first check, 80 % at the second
    assert 50 <= before / limit * 100 < 80
    created = STEPS[0] - timedelta(hours=1)
    create_budget(db, NewBudget("T1", PeriodKind.MONTHLY, limit, "C1", "U1"), now=created)
    key = Scope(ScopeKind.KEY, TEAM.spike.user_id)
    create_budget(db, NewBudget("T1", PeriodKind.ROLLING_24H, 1000, "C2", "U1", key), now=created)
    db.close()
    yield path


async def test_a_crash_at_any_write_neither_loses_nor_duplicates_a_message(
    template: Path, tmp_path: Path
) -> None:
    slack = slack_api.FakeSlack()
    clock = ManualClock(STEPS[0])
    async with serve_app(slack_api.create_app(slack)) as origin:
        slack.origin = origin
        web = AsyncWebClient(token="xoxb-test", base_url=f"{origin}/api/", retry_handlers=[])
        rig = Rig(template, slack, web, Simulator(TEAM, clock=clock), clock)

        clean = tmp_path / "clean.db"
        shutil.copy(template, clean)
        writes = (await rig.run(clean, None)).seen
        expected = posted_keys(slack)
        # The sequence does what it claims: a first alert, its update and thread reply
        # at a higher level, and a second budget's alert.
        assert len(expected) == 3
        assert sum(m.edits for m in slack.all_messages()) == 1
        assert writes > 20

        for crash_at in range(1, writes + 1):
            rig.reset_slack()
            path = tmp_path / f"crash-{crash_at}.db"
            shutil.copy(template, path)
            saboteur = await rig.run(path, crash_at)
            assert saboteur.fired, crash_at
            assert posted_keys(slack) == expected, f"crash at write {crash_at}"
            assert sum(m.edits for m in slack.all_messages()) >= 1, crash_at
            db = connect(path, None)
            statuses = {row["status"] for row in db.query("SELECT status FROM outbox")}
            db.conn.close()
            assert statuses == {OutboxStatus.SENT.value}, crash_at
