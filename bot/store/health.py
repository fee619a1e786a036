"""Scenario health per workspace: consecutive failed cycles, and whether admins were told."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from bot.store.db import to_text

TELL_ADMINS_AFTER = 3
# Good cycles in a row before "it works again" is said; until then a new failure streak is
# the same outage, not news (one "down" and one "up" per real outage, however it flaps).
RECOVERED_AFTER = 3


@dataclass(frozen=True, slots=True)
class HealthChange:
    """What the admins should hear after this cycle, if anything."""

    tell: str | None  # "down" or "up"
    failures: int
    streak: int  # numbers the failure streaks of the workspace, for the outbox key


def record_failure(
    db: Database, workspace_id: str, *, cause: str, detail: str, now: datetime
) -> HealthChange:
    db.execute(
        "INSERT INTO scenario_health (workspace_id) VALUES (?) ON CONFLICT DO NOTHING",
        [workspace_id],
    )
    db.execute(
        "UPDATE scenario_health SET consecutive_failures = consecutive_failures + 1,"
        " streaks = streaks + (consecutive_failures = 0 AND admins_told = 0),"
        " consecutive_successes = 0,"
        " last_cause = ?, last_error = ?, last_failure_at = ? WHERE workspace_id = ?",
        [cause, detail, to_text(now), workspace_id],
    )
    row = _row(db, workspace_id)
    tell = None
    if row["consecutive_failures"] >= TELL_ADMINS_AFTER and not row["admins_told"]:
        db.execute(
            "UPDATE scenario_health SET admins_told = 1 WHERE workspace_id = ?", [workspace_id]
        )
        tell = "down"
    return HealthChange(tell, row["consecutive_failures"], row["streaks"])


def record_success(db: Database, workspace_id: str, *, now: datetime) -> HealthChange:
    db.execute(
        "INSERT INTO scenario_health (workspace_id) VALUES (?) ON CONFLICT DO NOTHING",
        [workspace_id],
    )
    db.execute(
        "UPDATE scenario_health SET consecutive_failures = 0, last_ok_at = ?,"
        " consecutive_successes = consecutive_successes + 1 WHERE workspace_id = ?",
        [to_text(now), workspace_id],
    )
    row = _row(db, workspace_id)
    tell = None
    if row["admins_told"] and row["consecutive_successes"] >= RECOVERED_AFTER:
        db.execute(
            "UPDATE scenario_health SET admins_told = 0 WHERE workspace_id = ?", [workspace_id]
        )
        tell = "up"
    return HealthChange(tell, 0, row["streaks"])


def health_of(db: Database, workspace_id: str) -> dict | None:
    rows = list(db.query("SELECT * FROM scenario_health WHERE workspace_id = ?", [workspace_id]))
    return rows[0] if rows else None


def _row(db: Database, workspace_id: str) -> dict:
    return next(db.query("SELECT * FROM scenario_health WHERE workspace_id = ?", [workspace_id]))
