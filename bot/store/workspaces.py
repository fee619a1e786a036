"""Workspaces: one row per Slack team, with its timezone and Scenario connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from bot.store.alerts import follow_timezone
from bot.store.audit import record_change
from bot.store.db import immediate, to_text


@dataclass(frozen=True, slots=True)
class Workspace:
    team_id: str
    name: str | None
    timezone: str | None  # None: BUDGET_BOT_TIMEZONE applies
    scenario_team_id: str | None

    def timezone_or(self, default: str) -> str:
        return self.timezone or default


def ensure_workspace(db: Database, team_id: str, *, now: datetime, name: str | None = None) -> None:
    """Create the workspace row if it does not exist yet; never overwrite one."""
    db.execute(
        "INSERT INTO workspaces (team_id, name, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (team_id) DO NOTHING",
        [team_id, name, to_text(now)],
    )


def get_workspace(db: Database, team_id: str) -> Workspace | None:
    rows = list(db.query("SELECT * FROM workspaces WHERE team_id = ?", [team_id]))
    return _workspace(rows[0]) if rows else None


def list_workspaces(db: Database) -> list[Workspace]:
    return [_workspace(row) for row in db.query("SELECT * FROM workspaces ORDER BY team_id")]


def set_timezone(db: Database, team_id: str, timezone: str, *, actor: str, now: datetime) -> None:
    with immediate(db):
        ensure_workspace(db, team_id, now=now)
        before = get_workspace(db, team_id)
        db.execute("UPDATE workspaces SET timezone = ? WHERE team_id = ?", [timezone, team_id])
        follow_timezone(db, team_id, timezone, now=now)
        record_change(
            db,
            workspace_id=team_id,
            actor=actor,
            action="timezone",
            target="workspace",
            before={"timezone": before.timezone if before else None},
            after={"timezone": timezone},
            now=now,
        )


def _workspace(row: dict) -> Workspace:
    return Workspace(
        team_id=row["team_id"],
        name=row["name"],
        timezone=row["timezone"],
        scenario_team_id=row["scenario_team_id"],
    )
