"""Digest settings against a real temporary SQLite file: set, move, turn off, list, audit."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from bot.budgets.types import PeriodKind
from bot.jobs.digest import is_due
from bot.store import audit, digests, outbox
from bot.store.db import migrate, open_db, to_text
from migrations.migrations import migrations

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
WS, OTHER_WS = "T1", "T2"


def test_set_creates_the_workspace_and_one_audited_digest(db: Database) -> None:
    before, after = digests.set_digest(db, WS, "C1", time(9, 0), actor="UADMIN", now=T0)
    assert before is None
    assert (after.workspace_id, after.channel_id, after.at) == (WS, "C1", "09:00")
    assert after.local_time == time(9, 0)
    assert after.last_sent_day is None
    assert db["workspaces"].count == 1
    [entry] = audit.history(db, WS)
    assert (entry.actor, entry.action, entry.target) == ("UADMIN", "digest.set", "digest:C1")
    assert entry.before is None
    assert entry.after == {
        "channel_id": "C1",
        "local_time": "09:00",
        "when_empty": "line",
        "cadence": "daily",
        "weekday": None,
    }


def test_setting_again_moves_it_keeping_the_day_it_was_last_sent(db: Database) -> None:
    digests.set_digest(db, WS, "C1", time(9, 0), actor="U1", now=T0)
    # The scheduler records today's digest; moving the hour must not send a second one today.
    db.execute("UPDATE digests SET last_sent_day = '2026-11-26'")
    before, after = digests.set_digest(
        db, WS, "C1", time(17, 30), actor="U2", now=T0 + timedelta(minutes=1)
    )
    assert before is not None and before.at == "09:00"
    assert after.at == "17:30"
    assert after.id == before.id
    assert after.last_sent_day == "2026-11-26"
    assert [d.at for d in digests.list_digests(db, WS)] == ["17:30"]
    newest = audit.history(db, WS)[0]
    daily = {"when_empty": "line", "cadence": "daily", "weekday": None}
    assert (newest.actor, newest.before, newest.after) == (
        "U2",
        {"channel_id": "C1", "local_time": "09:00", **daily},
        {"channel_id": "C1", "local_time": "17:30", **daily},
    )


def test_turn_off_removes_it_once_and_audits_only_a_real_change(db: Database) -> None:
    digests.set_digest(db, WS, "C1", time(9, 0), actor="U1", now=T0)
    removed = digests.turn_off(db, WS, "C1", actor="U1", now=T0)
    assert removed is not None and removed.at == "09:00"
    assert digests.get_digest(db, WS, "C1") is None
    assert [e.action for e in audit.history(db, WS)] == ["digest.off", "digest.set"]
    assert digests.turn_off(db, WS, "C1", actor="U1", now=T0) is None
    assert len(audit.history(db, WS)) == 2


def test_digests_are_per_channel_and_per_workspace(db: Database) -> None:
    digests.set_digest(db, WS, "C2", time(17, 0), actor="U1", now=T0)
    digests.set_digest(db, WS, "C1", time(9, 0), actor="U1", now=T0)
    digests.set_digest(db, OTHER_WS, "C1", time(8, 0), actor="U9", now=T0)
    assert [(d.channel_id, d.at) for d in digests.list_digests(db, WS)] == [
        ("C1", "09:00"),
        ("C2", "17:00"),
    ]
    assert [(d.workspace_id, d.at) for d in digests.list_digests(db)] == [
        (WS, "09:00"),
        (WS, "17:00"),
        (OTHER_WS, "08:00"),
    ]
    # Turning off one workspace's digest leaves the other's with the same channel ID alone.
    digests.turn_off(db, OTHER_WS, "C1", actor="U9", now=T0)
    assert digests.get_digest(db, WS, "C1") is not None
    assert audit.history(db, OTHER_WS)[0].action == "digest.off"


def test_a_failed_audit_write_leaves_no_digest(db: Database) -> None:
    # The audit entry is part of the change: when it cannot be written, nothing is saved.
    db.execute(
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log"
        " BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="audit refused"):
        digests.set_digest(db, WS, "C1", time(9, 0), actor="U1", now=T0)
    assert digests.list_digests(db) == []


def test_a_quiet_digest_says_nothing_on_days_without_spend(db: Database) -> None:
    _, digest = digests.set_digest(db, WS, "C1", time(9, 0), actor="U1", now=T0, when_empty="skip")
    assert digest.when_empty == "skip"
    _, digest = digests.set_digest(db, WS, "C1", time(9, 0), actor="U1", now=T0)
    assert digest.when_empty == "line"


def test_an_earlier_database_keeps_its_digests_as_daily_ones(tmp_path: Path) -> None:
    old = open_db(tmp_path / "old.db")
    migrations.apply(old, stop_before="m005_digest_span")
    old["workspaces"].insert({"team_id": WS, "created_at": "2026-11-01T00:00:00.000000Z"})
    old.execute(
        "INSERT INTO digests (workspace_id, channel_id, local_time, when_empty, last_sent_day)"
        " VALUES (?, 'C1', '09:00', 'skip', '2026-11-26')",
        [WS],
    )
    assert migrate(old) == ["m005_digest_span", "m006_budget_snapshot", "m007_digest_channels"]
    [digest] = digests.list_digests(old, WS)
    assert (digest.cadence, digest.weekday) == (PeriodKind.DAILY, None)
    assert (digest.at, digest.when_empty, digest.last_sent_day) == ("09:00", "skip", "2026-11-26")
    # Sent today before the upgrade: not sent again after it.
    assert not is_due(digest, "UTC", datetime(2026, 11, 26, 9, 10, tzinfo=UTC))
    assert is_due(digest, "UTC", datetime(2026, 11, 27, 9, 10, tzinfo=UTC))


def test_weekly_and_monthly_digests_are_stored_and_audited(db: Database) -> None:
    _, weekly = digests.set_digest(
        db, WS, "C1", time(9, 0), actor="U1", now=T0, cadence=PeriodKind.WEEKLY, weekday=6
    )
    assert (weekly.cadence, weekly.weekday) == (PeriodKind.WEEKLY, 6)
    db.execute("UPDATE digests SET last_sent_day = '2026-W48'")
    before, monthly = digests.set_digest(
        db, WS, "C1", time(9, 0), actor="U2", now=T0, cadence=PeriodKind.MONTHLY
    )
    assert before == digests.Digest(
        weekly.id, WS, "C1", time(9), "line", "2026-W48", PeriodKind.WEEKLY, 6
    )
    assert (monthly.cadence, monthly.weekday, monthly.id) == (PeriodKind.MONTHLY, None, weekly.id)
    [change, creation] = audit.history(db, WS)[:2]
    assert creation.after == {
        "channel_id": "C1",
        "local_time": "09:00",
        "when_empty": "line",
        "cadence": "weekly",
        "weekday": 6,
    }
    assert change.before == creation.after
    assert change.after == {**creation.after, "cadence": "monthly", "weekday": None}


@pytest.mark.parametrize(
    ("cadence", "weekday"),
    [
        (PeriodKind.WEEKLY, None),
        (PeriodKind.WEEKLY, 7),
        (PeriodKind.DAILY, 0),
        (PeriodKind.MONTHLY, 1),
    ],
)
def test_a_weekday_goes_with_a_weekly_digest_only(
    db: Database, cadence: PeriodKind, weekday: int | None
) -> None:
    with pytest.raises(ValueError, match="weekday"):
        digests.set_digest(
            db, WS, "C1", time(9), actor="U1", now=T0, cadence=cadence, weekday=weekday
        )
    assert digests.list_digests(db) == [] and audit.history(db, WS) == []


def test_the_digest_a_channel_got_outlives_off_and_on(db: Database) -> None:
    """`off` deletes the digest's row, and with it `last_sent_day`; the channel's last digest
    is kept apart, so the digest set again that morning is not due again that day."""
    digests.set_digest(db, WS, "C1", time(9, 0), actor="U1", now=T0)
    given = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    post(db, "digest:1:2026-11-26", given)
    digests.mark_channel_given(db, WS, "C1", "digest:1:2026-11-26", given)
    removed = digests.turn_off(db, WS, "C1", actor="U1", now=T0)
    assert removed is not None and removed.channel_given_at == given
    _, again = digests.set_digest(db, WS, "C1", time(9, 0), actor="U1", now=T0)
    assert again.id != removed.id and again.last_sent_day is None
    assert again.channel_given_at == given
    assert not is_due(again, "UTC", datetime(2026, 11, 26, 9, 20, tzinfo=UTC))
    assert is_due(again, "UTC", datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    # Per channel and workspace: the same channel ID elsewhere is free.
    _, elsewhere = digests.set_digest(db, OTHER_WS, "C1", time(9, 0), actor="U9", now=T0)
    assert elsewhere.channel_given_at is None
    assert [d.channel_given_at for d in digests.list_digests(db)] == [given, None]
    # A post that failed for good (the bot is not in the channel) gave the channel nothing.
    item = outbox.get_item(db, "digest:1:2026-11-26")
    assert item is not None
    outbox.mark_failed(db, item.id, error="not_in_channel")
    assert digests.get_digest(db, WS, "C1").channel_given_at is None
    last = digests.last_channel_digest(db, WS, "C1")
    assert last == digests.ChannelDigest(given, "digest:1:2026-11-26", got_through=False)


def post(db: Database, key: str, at: datetime) -> None:
    outbox.enqueue(
        db,
        dedup_key=key,
        workspace_id=WS,
        channel_id="C1",
        action=outbox.OutboxAction.POST,
        payload={"text": "digest"},
        now=at,
    )


def test_an_earlier_database_learns_each_channels_last_digest_from_the_outbox(
    tmp_path: Path,
) -> None:
    old = open_db(tmp_path / "old.db")
    migrations.apply(old, stop_before="m007_digest_channels")
    old["workspaces"].insert({"team_id": WS, "created_at": "2026-11-01T00:00:00.000000Z"})
    for channel, key in [
        ("C_DAY", "2026-11-26"),
        ("C_WEEK", "2026-W48"),
        ("C_GONE", "2026-11-20"),
        ("C_NEVER", None),
    ]:
        old.execute(
            "INSERT INTO digests (workspace_id, channel_id, local_time, last_sent_day)"
            " VALUES (?, ?, '09:00', ?)",
            [WS, channel, key],
        )
    ids = {row["channel_id"]: row["id"] for row in old.query("SELECT id, channel_id FROM digests")}
    given = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    for channel, key in [("C_DAY", "2026-11-26"), ("C_WEEK", "2026-W48")]:
        old.execute(
            "INSERT INTO outbox (dedup_key, workspace_id, channel_id, action, payload, status,"
            " next_attempt_at, created_at) VALUES (?, ?, ?, 'post', '{}', 'sent', ?, ?)",
            [f"digest:{ids[channel]}:{key}", WS, channel, to_text(given), to_text(given)],
        )
    # C_GONE's post was pruned long ago: only its day mattered, and that day is past.
    assert migrate(old) == ["m007_digest_channels"]
    learnt = {d.channel_id: d.channel_given_at for d in digests.list_digests(old, WS)}
    assert learnt == {"C_DAY": given, "C_WEEK": given, "C_GONE": None, "C_NEVER": None}
