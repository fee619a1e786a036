"""Snoozes: a budget that alerts again only after a given time. Setting or ending one is
audited and told on the budget's current alert message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from bot.budgets.evaluate import EventKind
from bot.store.alerts import ACTION_TTL, add_event, tell_open_alert
from bot.store.audit import record_change
from bot.store.db import from_text, immediate, to_text


@dataclass(frozen=True, slots=True)
class Snooze:
    budget_id: int
    until: datetime
    created_by: str
    created_at: datetime


def get_snooze(db: Database, budget_id: int) -> Snooze | None:
    """The budget's snooze with who set it (it may have ended: compare `until` with now)."""
    rows = list(db.query("SELECT * FROM snoozes WHERE budget_id = ?", [budget_id]))
    if not rows:
        return None
    row = rows[0]
    return Snooze(
        row["budget_id"], from_text(row["until"]), row["created_by"], from_text(row["created_at"])
    )


def snoozed_until(db: Database, budget_id: int) -> datetime | None:
    snooze_row = get_snooze(db, budget_id)
    return snooze_row.until if snooze_row else None


def snooze(
    db: Database,
    workspace_id: str,
    budget_id: int,
    until: datetime,
    *,
    actor: str,
    now: datetime,
    told_on: int | None = None,
) -> None:
    """`told_on`: the watch episode whose message is told (a watch has one per episode, and
    is audited as the watch); else the budget's current alert."""
    with immediate(db):
        before = snoozed_until(db, budget_id)
        db.execute(
            "INSERT INTO snoozes (budget_id, until, created_by, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (budget_id) DO UPDATE SET until = excluded.until,"
            " created_by = excluded.created_by, created_at = excluded.created_at",
            [budget_id, to_text(until), actor, to_text(now)],
        )
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="budget.snooze" if told_on is None else "watch.snooze",
            target=f"budget:{budget_id}" if told_on is None else "watch",
            before={"snoozed_until": before},
            after={"snoozed_until": until},
            now=now,
        )
        detail = {"until": to_text(until)}
        if told_on is None:
            tell_open_alert(db, budget_id, EventKind.SNOOZED, actor, now, detail)
        else:
            add_event(
                db,
                told_on,
                EventKind.SNOOZED,
                now=now,
                expires_at=now + ACTION_TTL,
                actor=actor,
                detail=detail,
            )


def unsnooze(db: Database, workspace_id: str, budget_id: int, *, actor: str, now: datetime) -> bool:
    """False (and nothing changes) when no snooze is in effect."""
    with immediate(db):
        before = snoozed_until(db, budget_id)
        if before is None or before <= now:
            return False
        db.execute("DELETE FROM snoozes WHERE budget_id = ?", [budget_id])
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="budget.unsnooze",
            target=f"budget:{budget_id}",
            before={"snoozed_until": before},
            after={"snoozed_until": None},
            now=now,
        )
        tell_open_alert(db, budget_id, EventKind.UNSNOOZED, actor, now)
    return True
