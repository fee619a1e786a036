"""Alert state (one row per budget × period key × kind × level), snoozes, acknowledgements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.budgets.evaluate import AlertKind, FiredAlert
from bot.budgets.periods import Period
from bot.store.audit import record_change
from bot.store.db import from_text, immediate, to_text


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    budget_id: int
    period_key: str
    kind: AlertKind
    level: int
    spend_cu: float
    limit_cu: float
    fired_at: datetime
    resolved_at: datetime | None

    def as_fired(self) -> FiredAlert:
        return FiredAlert(self.period_key, self.kind, self.level, self.resolved_at is not None)


def alerts_in_period(db: Database, budget_id: int, period: Period) -> list[AlertRow]:
    """The rows that matter to `evaluate` now: this period's, and this window's episodes."""
    rows = db.query(
        # Episodes are `key#n`: the range ['key#', 'key$') holds exactly those ('$' follows
        # '#'), where LIKE would treat '_' in a key as a wildcard.
        "SELECT * FROM alert_state WHERE budget_id = ?"
        " AND (period_key = ? OR (period_key >= ? AND period_key < ?)) ORDER BY id",
        [budget_id, period.key, period.key + "#", period.key + "$"],
    )
    return [_alert(row) for row in rows]


def record_alert(
    db: Database,
    *,
    budget_id: int,
    period_key: str,
    kind: AlertKind,
    level: int,
    spend_cu: float,
    limit_cu: float,
    now: datetime,
) -> int | None:
    """Insert the row that makes this alert happen once; None when it already exists."""
    cursor = db.execute(
        "INSERT INTO alert_state (budget_id, period_key, kind, level, spend_cu, limit_cu,"
        " fired_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (budget_id, period_key, kind, level) DO NOTHING",
        [budget_id, period_key, kind.value, level, spend_cu, limit_cu, to_text(now)],
    )
    return int(cursor.lastrowid) if cursor.rowcount == 1 and cursor.lastrowid else None


def resolve_alert(
    db: Database, *, budget_id: int, period_key: str, level: int, now: datetime
) -> bool:
    cursor = db.execute(
        "UPDATE alert_state SET resolved_at = ? WHERE budget_id = ? AND period_key = ?"
        " AND kind = ? AND level = ? AND resolved_at IS NULL",
        [to_text(now), budget_id, period_key, AlertKind.THRESHOLD.value, level],
    )
    return cursor.rowcount == 1


def recent_alerts(
    db: Database, workspace_id: str, *, budget_id: int | None = None, limit: int = 10
) -> list[AlertRow]:
    """Newest first, across the workspace or for one budget."""
    where, params = "b.workspace_id = ?", [workspace_id]
    if budget_id is not None:
        where += " AND a.budget_id = ?"
        params.append(budget_id)
    rows = db.query(
        "SELECT a.* FROM alert_state a JOIN budgets b ON b.id = a.budget_id"
        f" WHERE {where} ORDER BY a.fired_at DESC, a.id DESC LIMIT ?",
        [*params, limit],
    )
    return [_alert(row) for row in rows]


def get_alert(db: Database, workspace_id: str, alert_id: int) -> AlertRow | None:
    """The alert, only if its budget belongs to this workspace (button values are untrusted)."""
    rows = list(
        db.query(
            "SELECT a.* FROM alert_state a JOIN budgets b ON b.id = a.budget_id"
            " WHERE a.id = ? AND b.workspace_id = ?",
            [alert_id, workspace_id],
        )
    )
    return _alert(rows[0]) if rows else None


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


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    alert_id: int
    user_id: str
    created_at: datetime


def get_acknowledgement(db: Database, alert_id: int) -> Acknowledgement | None:
    """Who acknowledged the alert first, and when; None if nobody has."""
    rows = list(db.query("SELECT * FROM acknowledgements WHERE alert_id = ?", [alert_id]))
    if not rows:
        return None
    return Acknowledgement(
        rows[0]["alert_id"], rows[0]["user_id"], from_text(rows[0]["created_at"])
    )


def snoozed_until(db: Database, budget_id: int) -> datetime | None:
    rows = list(db.query("SELECT until FROM snoozes WHERE budget_id = ?", [budget_id]))
    return from_text(rows[0]["until"]) if rows else None


def snooze(
    db: Database, workspace_id: str, budget_id: int, until: datetime, *, actor: str, now: datetime
) -> None:
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
            action="budget.snooze",
            target=f"budget:{budget_id}",
            before={"snoozed_until": before},
            after={"snoozed_until": until},
            now=now,
        )


def unsnooze(db: Database, workspace_id: str, budget_id: int, *, actor: str, now: datetime) -> bool:
    with immediate(db):
        before = snoozed_until(db, budget_id)
        if before is None:
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
    return True


def acknowledge(
    db: Database, workspace_id: str, alert_id: int, *, actor: str, now: datetime
) -> bool:
    """True the first time; pressing Acknowledge again changes nothing."""
    with immediate(db):
        cursor = db.execute(
            "INSERT INTO acknowledgements (alert_id, user_id, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (alert_id) DO NOTHING",
            [alert_id, actor, to_text(now)],
        )
        if cursor.rowcount != 1:
            return False
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="alert.acknowledge",
            target=f"alert:{alert_id}",
            before=None,
            after={"acknowledged_by": actor},
            now=now,
        )
    return True


def _alert(row: dict[str, Any]) -> AlertRow:
    return AlertRow(
        id=row["id"],
        budget_id=row["budget_id"],
        period_key=row["period_key"],
        kind=AlertKind(row["kind"]),
        level=row["level"],
        spend_cu=row["spend_cu"],
        limit_cu=row["limit_cu"],
        fired_at=from_text(row["fired_at"]),
        resolved_at=from_text(row["resolved_at"]) if row["resolved_at"] else None,
    )
