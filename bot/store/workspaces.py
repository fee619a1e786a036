"""Workspaces: one row per Slack team, with its timezone and Scenario connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlite_utils import Database

from bot.config import ConfigError
from bot.crypto import Sealer
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


@dataclass(frozen=True, slots=True)
class ScenarioConnection:
    """The Scenario credentials a workspace reads usage with."""

    api_key: str
    api_secret: str = field(repr=False)  # never in a log line
    team_id: str | None = None


class NotConnected(ConfigError):
    """Multi-workspace mode: this workspace has not connected a Scenario team yet."""

    def __init__(self, team_id: str) -> None:
        super().__init__(
            f"workspace {team_id} is not connected to Scenario yet (an admin runs"
            " `/budget connect`)"
        )
        self.team_id = team_id


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


def scenario_connection(db: Database, team_id: str, sealer: Sealer) -> ScenarioConnection | None:
    """The workspace's own Scenario connection (multi-workspace mode), opened; None if it
    has none. UnsealError if BUDGET_BOT_SECRET_KEY no longer opens it."""
    rows = list(
        db.query(
            "SELECT scenario_api_key, scenario_api_secret, scenario_team_id FROM workspaces"
            " WHERE team_id = ? AND scenario_api_secret IS NOT NULL",
            [team_id],
        )
    )
    if not rows:
        return None
    row = rows[0]
    return ScenarioConnection(
        api_key=sealer.open(row["scenario_api_key"]),
        api_secret=sealer.open(row["scenario_api_secret"]),
        team_id=row["scenario_team_id"],
    )


def connect_scenario(
    db: Database,
    team_id: str,
    connection: ScenarioConnection,
    sealer: Sealer,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Store the connection, key and secret sealed; the audit names the team, never them."""
    with immediate(db):
        ensure_workspace(db, team_id, now=now)
        before = connection_summary(db, team_id)
        db.execute(
            "UPDATE workspaces SET scenario_api_key = ?, scenario_api_secret = ?,"
            " scenario_team_id = ?, connected_at = ? WHERE team_id = ?",
            [
                sealer.seal(connection.api_key),
                sealer.seal(connection.api_secret),
                connection.team_id,
                to_text(now),
                team_id,
            ],
        )
        record_change(
            db,
            workspace_id=team_id,
            actor=actor,
            action="connect",
            target="workspace",
            before=before,
            after={"connected": True, "scenario_team_id": connection.team_id},
            now=now,
        )


def disconnect_scenario(db: Database, team_id: str, *, actor: str, now: datetime) -> bool:
    """Forget the connection; False if there was none (nothing is recorded then)."""
    with immediate(db):
        before = connection_summary(db, team_id)
        if not before["connected"]:
            return False
        forget_connection(db, team_id)
        record_change(
            db,
            workspace_id=team_id,
            actor=actor,
            action="disconnect",
            target="workspace",
            before=before,
            after={"connected": False},
            now=now,
        )
    return True


def forget_connection(db: Database, team_id: str) -> None:
    """Inside the caller's transaction: the credentials go, the team ID with them."""
    db.execute(
        "UPDATE workspaces SET scenario_api_key = NULL, scenario_api_secret = NULL,"
        " scenario_team_id = NULL, connected_at = NULL WHERE team_id = ?",
        [team_id],
    )


def connection_summary(db: Database, team_id: str) -> dict[str, object]:
    """Whether the workspace is connected, and to which Scenario team: no secret in it."""
    rows = list(
        db.query(
            "SELECT scenario_api_secret IS NOT NULL AS connected, scenario_team_id"
            " FROM workspaces WHERE team_id = ?",
            [team_id],
        )
    )
    if not rows:
        return {"connected": False, "scenario_team_id": None}
    return {
        "connected": bool(rows[0]["connected"]),
        "scenario_team_id": rows[0]["scenario_team_id"],
    }
