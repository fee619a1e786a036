"""Opening the SQLite store: pragmas, migrations, transactions."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from bot.budgets.periods import calendar_period_of_key
from migrations.migrations import migrations

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5_000


class StoreError(Exception):
    """The database cannot be opened or migrated; the message fits one line."""


def open_db(path: Path | str) -> Database:
    """Open (creating if needed) the database with the pragmas every connection needs.

    WAL lets the Slack handlers read while the check cycle writes; the busy timeout makes a
    second writer wait instead of failing; foreign keys are off by default in SQLite.
    """
    try:
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {str(path)!r}: {exc}") from None
    return Database(conn)


def migrate(db: Database) -> list[str]:
    """Apply pending migrations; return the names of those that ran."""
    pending = [m.name for m in migrations.pending(db)]
    try:
        migrations.apply(db)
        _bound_carried_over_alerts(db)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot migrate database: {exc}") from None
    return pending


def _bound_carried_over_alerts(db: Database) -> None:
    """Alerts carried over from before m002 learn their calendar period's bounds from its
    key, so that an edit or a snooze right after the upgrade finds the current one (the
    migration itself cannot import the period rules; `sqlite-utils migrate` leaves this to
    the next start or check)."""
    rows = list(db.query("SELECT id, period_key FROM alerts WHERE period_end IS NULL"))
    for row in rows:
        period = calendar_period_of_key(row["period_key"])
        if period is not None:
            db.execute(
                "UPDATE alerts SET period_start = ?, period_end = ? WHERE id = ?",
                [to_text(period.start), to_text(period.end), row["id"]],
            )


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """One write transaction that takes the write lock up front.

    A deferred transaction that reads then writes can fail with SQLITE_BUSY when two
    cycles race; taking the lock at BEGIN makes the second one wait for the first and
    then see its rows, which is what makes "alert once" hold across processes.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.conn.execute("COMMIT")
    except BaseException:
        # Also when COMMIT itself fails (disk full, I/O error): never leave it open.
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise


def in_savepoint(db: Database, name: str, work: Callable[[], object], *, what: str) -> bool:
    """`work` inside the caller's transaction, in a savepoint of its own: when it fails its
    writes alone are undone (and the failure logged), the rest of the transaction goes on,
    and False is returned — unless SQLite ended the transaction itself, which is raised."""
    db.execute(f"SAVEPOINT {name}")
    try:
        work()
    except Exception:
        if not db.conn.in_transaction:
            raise
        log.exception("%s failed", what)
        db.execute(f"ROLLBACK TO {name}")
        db.execute(f"RELEASE {name}")
        return False
    db.execute(f"RELEASE {name}")
    return True


def to_text(instant: datetime) -> str:
    """Fixed-width UTC text, so that SQL string comparison orders instants correctly."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: the store keeps UTC instants only")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_text(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
