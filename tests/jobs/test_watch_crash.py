"""A restart at any write while a watch episode opens, goes on and is told: every watch
message reaches Slack exactly once (SPEC §5b: episodes have the alerts' guarantees).

The crash rig of `test_crash.py`: the N-th write statement is refused, the connection is
dropped as a killed process drops it, and a fresh one carries on a few minutes later.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.asgi_server import serve_app
from bot.budgets.watch import Sensitivity
from bot.jobs.check import run_check
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator
from bot.store import watch as watch_store
from bot.store.db import migrate, open_db
from bot.store.outbox import OutboxStatus
from tests.jobs.test_crash import SETTINGS, TEAM, Rig, connect, posted_keys

SPIKE = TEAM.spike
# Seen, confirmed (the message), then the end of the episode once the key is quiet again.
STEPS = (
    SPIKE.start + timedelta(minutes=5),
    SPIKE.start + timedelta(minutes=10),
    SPIKE.end + timedelta(hours=1, minutes=40),
)


@pytest.fixture
def template(tmp_path: Path) -> Iterator[Path]:
    """A watch on, its history back-filled by a check before the spike."""
    path = tmp_path / "template.db"
    db = open_db(path)
    migrate(db)
    before = SPIKE.start - timedelta(minutes=20)
    watch_store.set_watch(db, "T1", "C9", Sensitivity.NORMAL, actor="U1", now=before)
    db.close()
    yield path


async def test_a_crash_at_any_write_of_an_episode_neither_loses_nor_repeats_a_message(
    template: Path, tmp_path: Path
) -> None:
    slack = slack_api.FakeSlack()
    clock = ManualClock(STEPS[0])
    async with serve_app(slack_api.create_app(slack)) as origin:
        slack.origin = origin
        web = AsyncWebClient(token="xoxb-test", base_url=f"{origin}/api/", retry_handlers=[])
        rig = Rig(template, slack, web, Simulator(TEAM, clock=clock), clock)
        # The back-fill happens once, in the template: crashes are aimed at the episode.
        primed = tmp_path / "primed.db"
        shutil.copy(template, primed)
        db = connect(primed, None)
        start = SPIKE.start - timedelta(minutes=20)
        clock.set(start)
        await run_check(db, rig.scenario_for, SETTINGS, start)
        db.conn.close()

        clean = tmp_path / "clean.db"
        shutil.copy(primed, clean)
        writes = (await rig.run(clean, None, STEPS)).seen
        expected = posted_keys(slack)
        # The episode's message, then its end reply in the thread (with the edit).
        assert len(expected) == 2, expected
        assert sum(m.edits for m in slack.all_messages()) == 1
        assert writes > 10

        for crash_at in range(1, writes + 1):
            rig.reset_slack()
            path = tmp_path / f"crash-{crash_at}.db"
            shutil.copy(primed, path)
            saboteur = await rig.run(path, crash_at, STEPS)
            assert saboteur.fired, crash_at
            assert posted_keys(slack) == expected, f"crash at write {crash_at}"
            db = connect(path, None)
            statuses = {row["status"] for row in db.query("SELECT status FROM outbox")}
            db.conn.close()
            assert statuses == {OutboxStatus.SENT.value}, crash_at
