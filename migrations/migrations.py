"""The only path for schema change (SPEC §8). Append-only: never edit an applied step.

Works both through `budget-bot migrate` / `serve` and through
`sqlite-utils migrate budget-bot.db migrations/migrations.py`, which executes this file
on its own — so it imports nothing from `bot`.
"""

import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("scenario-budget-bot")


def _run_script(db: Database, script: str) -> None:
    """Run statements one by one: `executescript` would COMMIT the migration's transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")


@migrations()
def m001_initial(db: Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE workspaces (
            team_id TEXT PRIMARY KEY,
            name TEXT,
            timezone TEXT,
            scenario_api_key TEXT,
            scenario_api_secret TEXT,
            scenario_team_id TEXT,
            created_at TEXT NOT NULL
        );

        -- AUTOINCREMENT: an ID is never given twice, because outbox keys and buttons carry
        -- them (a re-created budget reusing #1 would find #1's alerts "already sent").
        CREATE TABLE budgets (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            workspace_id TEXT NOT NULL REFERENCES workspaces(team_id),
            scope_kind TEXT NOT NULL,
            scope_ref TEXT,
            scope_name TEXT,
            period TEXT NOT NULL,
            limit_cu REAL NOT NULL CHECK (limit_cu > 0),
            thresholds TEXT NOT NULL,
            forecast INTEGER NOT NULL DEFAULT 0,
            channel_id TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX budgets_workspace ON budgets(workspace_id);

        -- One row per alert that fired: the UNIQUE key is what makes an alert happen once.
        CREATE TABLE alert_state (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            budget_id INTEGER NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
            period_key TEXT NOT NULL,
            kind TEXT NOT NULL,
            level INTEGER NOT NULL,
            spend_cu REAL NOT NULL,
            limit_cu REAL NOT NULL,
            fired_at TEXT NOT NULL,
            resolved_at TEXT,
            UNIQUE (budget_id, period_key, kind, level)
        );

        CREATE TABLE snoozes (
            budget_id INTEGER PRIMARY KEY REFERENCES budgets(id) ON DELETE CASCADE,
            until TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );

        CREATE TABLE acknowledgements (
            alert_id INTEGER PRIMARY KEY REFERENCES alert_state(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        );

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            dedup_key TEXT NOT NULL UNIQUE,
            workspace_id TEXT NOT NULL,
            budget_id INTEGER,
            channel_id TEXT NOT NULL,
            action TEXT NOT NULL,
            thread_key TEXT,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            ts TEXT,
            created_at TEXT NOT NULL,
            sent_at TEXT
        );
        CREATE INDEX outbox_due ON outbox(status, next_attempt_at);

        CREATE TABLE digests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            workspace_id TEXT NOT NULL REFERENCES workspaces(team_id),
            channel_id TEXT NOT NULL,
            local_time TEXT NOT NULL,
            when_empty TEXT NOT NULL DEFAULT 'line',
            last_sent_day TEXT,
            UNIQUE (workspace_id, channel_id)
        );

        CREATE TABLE scenario_health (
            workspace_id TEXT PRIMARY KEY REFERENCES workspaces(team_id),
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            streaks INTEGER NOT NULL DEFAULT 0,
            last_cause TEXT,
            last_error TEXT,
            last_ok_at TEXT,
            last_failure_at TEXT,
            admins_told INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            actor TEXT NOT NULL,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            before TEXT,
            after TEXT
        );
        CREATE INDEX audit_log_workspace ON audit_log(workspace_id, at);
        -- Append-only: the audit trail is evidence, so the database refuses to rewrite it.
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        """,
    )
