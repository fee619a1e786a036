"""The only path for schema change (SPEC §8). Append-only: never edit an applied step.

Works both through `budget-bot migrate` / `serve` and through
`sqlite-utils migrate budget-bot.db migrations/migrations.py`, which executes this file
on its own — so it imports nothing from `bot`.
"""

import json
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


@migrations()
def m002_one_message_per_budget_and_period(db: Database) -> None:
    """The alert becomes one row per budget and period (a rolling window: per episode) that
    owns its Slack message and records what happened to it as events; outbox rows expire.

    `alert_state` stays as the log of levels fired (history, digest, Home). Rows already
    there become alerts, so an upgrade in mid-period announces nothing twice; their message
    is the post of the group's first level, where the outbox still has it.
    """
    _run_script(
        db,
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            budget_id INTEGER NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
            period_key TEXT NOT NULL,
            period_start TEXT,
            period_end TEXT,
            passed TEXT NOT NULL DEFAULT '[]',
            forecast INTEGER NOT NULL DEFAULT 0,
            spend_cu REAL NOT NULL,
            limit_cu REAL NOT NULL,
            projection TEXT,
            attribution TEXT,
            channel_id TEXT NOT NULL,
            root_key TEXT NOT NULL,
            acknowledged_by TEXT,
            acknowledged_at TEXT,
            opened_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            closed_at TEXT,
            UNIQUE (budget_id, period_key)
        );

        CREATE TABLE alert_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            level INTEGER,
            spend_cu REAL,
            limit_cu REAL,
            actor TEXT,
            detail TEXT,
            at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            published INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX alert_events_unpublished ON alert_events(published, id);

        -- New alert IDs follow every ID alert_state ever gave: an Acknowledge button of a
        -- message posted before the upgrade can never name another budget's alert.
        INSERT INTO sqlite_sequence (name, seq)
            SELECT 'alerts', MAX(COALESCE((SELECT seq FROM sqlite_sequence
                                           WHERE name = 'alert_state'), 0),
                                 COALESCE((SELECT MAX(id) FROM alert_state), 0));
        """,
    )
    _alerts_from_history(db)
    _run_script(
        db,
        """
        -- Acknowledgements now belong to the alert (copied above).
        DROP TABLE acknowledgements;

        -- alert_state becomes a plain log of levels fired: a level may fire again in the same
        -- period (after a raised limit, or a rolling window's re-armed level), so the UNIQUE
        -- key that used to make alerts happen once goes — the alerts table does that now.
        CREATE TABLE alert_state_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            budget_id INTEGER NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
            period_key TEXT NOT NULL,
            kind TEXT NOT NULL,
            level INTEGER NOT NULL,
            spend_cu REAL NOT NULL,
            limit_cu REAL NOT NULL,
            fired_at TEXT NOT NULL,
            resolved_at TEXT
        );
        INSERT INTO alert_state_log SELECT id, budget_id, period_key, kind, level, spend_cu,
            limit_cu, fired_at, resolved_at FROM alert_state;
        DROP TABLE alert_state;
        ALTER TABLE alert_state_log RENAME TO alert_state;
        CREATE INDEX alert_state_budget ON alert_state(budget_id, period_key);

        -- Recovery is announced after a few good cycles in a row, not after the first one:
        -- a flapping API would otherwise tell every channel "down", "up", "down"…
        ALTER TABLE scenario_health ADD COLUMN consecutive_successes INTEGER NOT NULL DEFAULT 0;

        ALTER TABLE outbox ADD COLUMN expires_at TEXT;
        ALTER TABLE outbox ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
        -- When a row was settled (sent or dropped): it is pruned some time after that.
        ALTER TABLE outbox ADD COLUMN done_at TEXT;
        UPDATE outbox SET done_at = sent_at WHERE status = 'sent';
        -- Rows from before expiries existed stop mattering a day after they were queued.
        UPDATE outbox SET expires_at =
            strftime('%Y-%m-%dT%H:%M:%S', substr(created_at, 1, 19), '+1 day') || '.000000Z';
        """,
    )


def _alerts_from_history(db: Database) -> None:
    """One alert per budget and calendar period that fired before the upgrade, and one per
    rolling window that still has levels passed (its episode goes on; the old `#n` keys
    counted firings per level, not episodes, so they are not reused)."""
    rows = list(
        db.query(
            "SELECT s.*, b.channel_id FROM alert_state s JOIN budgets b ON b.id = s.budget_id"
            " ORDER BY s.id"
        )
    )
    acks = {row["alert_id"]: row for row in db.query("SELECT * FROM acknowledgements")}
    posts = {
        row["dedup_key"]
        for row in db.query(
            "SELECT dedup_key FROM outbox WHERE thread_key IS NULL AND action = 'post'"
        )
    }
    groups: dict[tuple[int, str], list[dict]] = {}
    window_rows: dict[tuple[int, str], list[dict]] = {}  # every line of a rolling window
    for row in rows:
        key = row["period_key"]
        if key.startswith("rolling:"):
            key = key.split("#")[0] + "#migrated"
            window_rows.setdefault((row["budget_id"], key), []).append(row)
            if row["kind"] != "threshold" or row["resolved_at"] is not None:
                continue
        groups.setdefault((row["budget_id"], key), []).append(row)
    for (budget_id, key), group in groups.items():
        passed = sorted(
            {r["level"] for r in group if r["kind"] == "threshold" and r["resolved_at"] is None}
        )
        # The thread may hang from a level that has re-armed since: look among all lines.
        lines = window_rows.get((budget_id, key), group)
        # The newest top-level post of a level: later levels were replies under it, and
        # after a channel change (or a new rolling episode) the newest one is where the
        # story went on. The old release posted a forecast on its own: only if nothing else.
        ordered = sorted(lines, key=lambda r: (r["kind"] == "threshold", r["id"]), reverse=True)
        keys = [f"alert:{budget_id}:{r['period_key']}:{r['kind']}:{r['level']}" for r in ordered]
        root = next((k for k in keys if k in posts), f"alert:migrated:{budget_id}:{key}")
        acked = sorted(
            (acks[r["id"]] for r in group if r["id"] in acks), key=lambda a: a["created_at"]
        )
        db.execute(
            "INSERT INTO alerts (budget_id, period_key, passed, forecast, spend_cu, limit_cu,"
            " channel_id, root_key, opened_at, updated_at, acknowledged_by, acknowledged_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                budget_id,
                key,
                json.dumps(passed),
                int(any(r["kind"] == "forecast" for r in group)),
                max(r["spend_cu"] for r in group),
                group[-1]["limit_cu"],
                group[-1]["channel_id"],
                root,
                min(r["fired_at"] for r in group),
                max(r["fired_at"] for r in group),
                acked[0]["user_id"] if acked else None,
                acked[0]["created_at"] if acked else None,
            ],
        )


@migrations()
def m003_installations(db: Database) -> None:
    _run_script(
        db,
        """
        -- Multi-workspace mode (SPEC §3): one bot installation per Slack workspace, its
        -- tokens sealed with BUDGET_BOT_SECRET_KEY (never in clear in this file).
        CREATE TABLE slack_installations (
            team_id TEXT PRIMARY KEY,
            enterprise_id TEXT,
            team_name TEXT,
            app_id TEXT,
            bot_id TEXT,
            bot_user_id TEXT,
            bot_scopes TEXT,
            bot_token TEXT NOT NULL,
            bot_refresh_token TEXT,
            bot_token_expires_at INTEGER,
            installer_user_id TEXT,
            installed_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        -- OAuth states issued and not used yet: a state is taken once, before it expires.
        CREATE TABLE oauth_states (
            nonce TEXT PRIMARY KEY,
            expires_at INTEGER NOT NULL
        );

        -- The workspace's own Scenario connection (key and secret sealed like the tokens).
        ALTER TABLE workspaces ADD COLUMN connected_at TEXT;
        """,
    )


@migrations()
def m004_watch(db: Database) -> None:
    _run_script(
        db,
        """
        -- A workspace's watch (SPEC §5b) is a budget row of its own: its episodes are alerts,
        -- with the same one-message, edit-and-reply, exactly-once guarantees and outbox.
        -- `watch` holds its sensitivity; NULL for every ordinary budget.
        ALTER TABLE budgets ADD COLUMN watch TEXT;

        -- What an episode found (entity, rule, usual, since, what it explains), as JSON.
        ALTER TABLE alerts ADD COLUMN finding TEXT;

        -- CU per entity ('team', 'key:<id>', 'user:<id>', 'model:<id>') per bucket (its UTC
        -- start): quarter hours from the check cycle, hours from the back-fill.
        CREATE TABLE watch_spend (
            workspace_id TEXT NOT NULL,
            bucket TEXT NOT NULL,
            entity TEXT NOT NULL,
            cu REAL NOT NULL,
            PRIMARY KEY (workspace_id, bucket, entity)
        ) WITHOUT ROWID;

        -- How far the history is filled: the back-fill (once, when the watch is turned on)
        -- and the check cycle's latest bucket; the findings seen at the latest check that
        -- open an episode if the next check sees them too (JSON: "entity rule" → when); and
        -- the Scenario team the history is of (another team's history is forgotten).
        CREATE TABLE watch_progress (
            workspace_id TEXT PRIMARY KEY,
            backfilled_at TEXT,
            filled_until TEXT,
            pending TEXT NOT NULL DEFAULT '{}',
            scenario_team TEXT
        );

        -- "Expected": no alert for this entity and rule until `until` (SPEC §5b).
        CREATE TABLE watch_expected (
            budget_id INTEGER NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
            entity TEXT NOT NULL,
            rule TEXT NOT NULL,
            until TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (budget_id, entity, rule)
        );
        """,
    )


@migrations()
def m005_digest_span(db: Database) -> None:
    _run_script(
        db,
        """
        -- A digest covers a day (as every digest did before), a week or a month. `weekday`
        -- is the day a weekly digest goes out (0 = Monday, as in Python and APScheduler),
        -- NULL otherwise. `last_sent_day` now holds the key of the span last sent: the day
        -- it went out for a daily digest (unchanged), `2026-W49` or `2026-11` otherwise.
        ALTER TABLE digests ADD COLUMN cadence TEXT NOT NULL DEFAULT 'daily';
        ALTER TABLE digests ADD COLUMN weekday INTEGER;
        """,
    )


@migrations()
def m006_budget_snapshot(db: Database) -> None:
    _run_script(
        db,
        """
        -- What the latest check saw of each budget, so that the Home tab opens from it
        -- without asking Scenario (SPEC §7). One row per budget, replaced by every check
        -- that reads it; the budget's removal takes it along.
        CREATE TABLE budget_snapshots (
            budget_id INTEGER PRIMARY KEY REFERENCES budgets(id) ON DELETE CASCADE,
            workspace_id TEXT NOT NULL,
            period_kind TEXT NOT NULL,
            period_key TEXT NOT NULL,
            period_start TEXT NOT NULL,
            period_end TEXT NOT NULL,
            period_tz TEXT NOT NULL,
            spend_cu REAL NOT NULL,
            limit_cu REAL NOT NULL,
            -- the forecast as alerts.projection holds it (JSON), NULL when there was none
            projection TEXT,
            -- the budget's updated_at when it was read: an edit since makes the row stale
            budget_updated_at TEXT NOT NULL,
            checked_at TEXT NOT NULL
        );
        CREATE INDEX budget_snapshots_workspace ON budget_snapshots(workspace_id);
        """,
    )


@migrations()
def m007_digest_channels(db: Database) -> None:
    _run_script(
        db,
        """
        -- The last digest a channel was given, whichever digest it had then: a channel gets
        -- at most one digest per local day. Apart from `digests` so that it outlives `digest
        -- off` (which deletes the row) and a change of cadence (which changes the span key in
        -- `last_sent_day`). The instant, not a local date, so that a change of timezone is
        -- read right; the post's outbox key, so that a post that never got through (failed
        -- for good, expired) does not count.
        CREATE TABLE digest_channels (
            workspace_id TEXT NOT NULL REFERENCES workspaces(team_id),
            channel_id TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            dedup_key TEXT NOT NULL,
            PRIMARY KEY (workspace_id, channel_id)
        );
        """,
    )
    # A digest posted before the upgrade counts: its outbox row (kept two days) says when.
    db.execute(
        "INSERT INTO digest_channels (workspace_id, channel_id, sent_at, dedup_key)"
        " SELECT d.workspace_id, d.channel_id, o.created_at, o.dedup_key FROM digests d"
        " JOIN outbox o ON o.dedup_key = 'digest:' || d.id || ':' || d.last_sent_day"
    )
