"""Digest settings: at most one digest per channel, at a local time of the workspace, daily,
weekly (on a weekday) or monthly (on the 1st).

Each change is audited in the transaction that makes it (SPEC §8). The scheduler that sends
digests reads :func:`list_digests`; `last_sent_day` is its record of "sent once per span",
and the table `digest_channels` (:func:`mark_channel_given`) its record of "at most one
digest per channel and local day", which outlives `digest off` and a change of cadence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlite_utils import Database

from bot.budgets.types import PeriodKind
from bot.store.audit import record_change
from bot.store.db import from_text, immediate, to_text
from bot.store.outbox import OutboxStatus
from bot.store.workspaces import ensure_workspace


class Held(StrEnum):
    """Why a digest due today does not go out (`bot.jobs.digest.held_until`)."""

    SPAN_DONE = "span done"  # this span's was sent, or said nothing (nothing was spent)
    CHANNEL_GIVEN = "channel given"  # the channel got a digest today (maybe another's)


@dataclass(frozen=True, slots=True)
class ChannelDigest:
    """The last digest a channel was given: when it was queued, and its post's outbox key."""

    given_at: datetime
    dedup_key: str
    got_through: bool  # sent or on its way; False once it failed for good or expired


@dataclass(frozen=True, slots=True)
class Digest:
    id: int
    workspace_id: str
    channel_id: str
    local_time: time  # in the workspace timezone, whatever it is on the day
    when_empty: str  # "line" (a one-line digest) or "skip", when nothing was spent
    # The key of the span last sent (`DigestSpan.key`): for a daily digest the local day
    # (YYYY-MM-DD) it went out, for the others the week or month it covered.
    last_sent_day: str | None
    cadence: PeriodKind = PeriodKind.DAILY  # daily, weekly or monthly
    weekday: int | None = None  # a weekly digest's day, 0 = Monday; None for the others
    # The channel's last digest — by this digest or one it had before (turned off since, or
    # of another cadence): none goes out again on that local day, if it got through.
    channel: ChannelDigest | None = None

    @property
    def channel_given_at(self) -> datetime | None:
        """When the channel was last given a digest that got (or is getting) through."""
        channel = self.channel
        return channel.given_at if channel is not None and channel.got_through else None

    @property
    def at(self) -> str:
        return self.local_time.strftime("%H:%M")


def set_digest(
    db: Database,
    workspace_id: str,
    channel_id: str,
    at: time,
    *,
    actor: str,
    now: datetime,
    when_empty: str = "line",
    cadence: PeriodKind = PeriodKind.DAILY,
    weekday: int | None = None,
) -> tuple[Digest | None, Digest]:
    """Create or move the digest of a channel; returns (before, after).

    Moving it keeps `last_sent_day`, so that a digest already sent for this span is not sent
    a second time just because its hour changed.
    """
    if (cadence is PeriodKind.WEEKLY) != (weekday is not None) or not 0 <= (weekday or 0) <= 6:
        raise ValueError(f"a weekly digest needs a weekday 0..6, others none: {weekday!r}")
    local = at.strftime("%H:%M")
    with immediate(db):
        ensure_workspace(db, workspace_id, now=now)
        before = get_digest(db, workspace_id, channel_id)
        db.execute(
            "INSERT INTO digests (workspace_id, channel_id, local_time, when_empty, cadence,"
            " weekday) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, channel_id)"
            " DO UPDATE SET local_time = excluded.local_time, when_empty = excluded.when_empty,"
            " cadence = excluded.cadence, weekday = excluded.weekday",
            [workspace_id, channel_id, local, when_empty, cadence.value, weekday],
        )
        after = get_digest(db, workspace_id, channel_id)
        assert after is not None  # just written, in this transaction
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="digest.set",
            target=f"digest:{channel_id}",
            before=_audit(before),
            after=_audit(after),
            now=now,
        )
    return before, after


def turn_off(
    db: Database, workspace_id: str, channel_id: str, *, actor: str, now: datetime
) -> Digest | None:
    """Remove the channel's digest; returns what was removed, None (and no audit) if none."""
    with immediate(db):
        before = get_digest(db, workspace_id, channel_id)
        if before is None:
            return None
        db.execute("DELETE FROM digests WHERE id = ?", [before.id])
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="digest.off",
            target=f"digest:{channel_id}",
            before=_audit(before),
            after=None,
            now=now,
        )
    return before


def mark_channel_given(
    db: Database, workspace_id: str, channel_id: str, dedup_key: str, now: datetime
) -> None:
    """Record that the channel is given the digest queued under `dedup_key` (inside the
    caller's transaction: the one that queues it)."""
    db.execute(
        "INSERT INTO digest_channels (workspace_id, channel_id, sent_at, dedup_key)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, channel_id)"
        " DO UPDATE SET sent_at = excluded.sent_at, dedup_key = excluded.dedup_key",
        [workspace_id, channel_id, to_text(now), dedup_key],
    )


def last_channel_digest(db: Database, workspace_id: str, channel_id: str) -> ChannelDigest | None:
    row = db.execute(
        "SELECT c.sent_at, c.dedup_key, o.status FROM digest_channels c"
        " LEFT JOIN outbox o ON o.dedup_key = c.dedup_key"
        " WHERE c.workspace_id = ? AND c.channel_id = ?",
        [workspace_id, channel_id],
    ).fetchone()
    return None if row is None else _channel(*row)


def _channel(
    sent_at: str | None, dedup_key: str | None, status: str | None
) -> ChannelDigest | None:
    if sent_at is None or dedup_key is None:
        return None
    # No status: its row was pruned, days after it was settled — only its day matters then.
    got_through = status not in (OutboxStatus.FAILED.value, OutboxStatus.DROPPED.value)
    return ChannelDigest(from_text(sent_at), dedup_key, got_through)


# A digest with its channel's last one (a digest and its channel are one to one: UNIQUE).
_SELECT = (
    "SELECT d.*, c.sent_at AS channel_sent_at, c.dedup_key AS channel_key,"
    " o.status AS channel_status FROM digests d LEFT JOIN digest_channels c"
    " ON c.workspace_id = d.workspace_id AND c.channel_id = d.channel_id"
    " LEFT JOIN outbox o ON o.dedup_key = c.dedup_key"
)


def get_digest(db: Database, workspace_id: str, channel_id: str) -> Digest | None:
    rows = list(
        db.query(
            f"{_SELECT} WHERE d.workspace_id = ? AND d.channel_id = ?",
            [workspace_id, channel_id],
        )
    )
    return _digest(rows[0]) if rows else None


def list_digests(db: Database, workspace_id: str | None = None) -> list[Digest]:
    """One workspace's digests, or (None) every workspace's — what a scheduler needs."""
    if workspace_id is None:
        rows = db.query(f"{_SELECT} ORDER BY d.workspace_id, d.local_time, d.channel_id")
    else:
        rows = db.query(
            f"{_SELECT} WHERE d.workspace_id = ? ORDER BY d.local_time, d.channel_id",
            [workspace_id],
        )
    return [_digest(row) for row in rows]


def _audit(digest: Digest | None) -> dict[str, Any] | None:
    if digest is None:
        return None
    return {
        "channel_id": digest.channel_id,
        "local_time": digest.at,
        "when_empty": digest.when_empty,
        "cadence": digest.cadence.value,
        "weekday": digest.weekday,
    }


def _digest(row: dict[str, Any]) -> Digest:
    return Digest(
        id=row["id"],
        workspace_id=row["workspace_id"],
        channel_id=row["channel_id"],
        local_time=time.fromisoformat(row["local_time"]),
        when_empty=row["when_empty"],
        last_sent_day=row["last_sent_day"],
        cadence=PeriodKind(row["cadence"]),
        weekday=row["weekday"],
        channel=_channel(row["channel_sent_at"], row["channel_key"], row["channel_status"]),
    )
