"""Schema changes only through migrations, and every step upgrades without loss."""

from pathlib import Path

import pytest
from sqlite_utils import Database

from bot.store.db import StoreError, migrate, open_db
from migrations.migrations import migrations

# Tables a migration folds into another, with how to count their rows there.
FOLDED = {"acknowledgements": "SELECT COUNT(*) FROM alerts WHERE acknowledged_by IS NOT NULL"}


def _names() -> list[str]:
    return [m.name for m in migrations._migrations]


def _fill_every_table(db: Database, marker: str) -> dict[str, int]:
    """Insert one row into each user table, whatever its columns, and count rows."""
    counts = {}
    for table in db.tables:
        if table.name.startswith(("_", "sqlite_")):
            continue
        row: dict[str, object] = {}
        for column in table.columns:
            # Only a lone INTEGER key is the rowid (filled in by SQLite); a composite
            # key's columns (watch_expected's budget_id) need a value like any other.
            if column.is_pk and column.type.upper() == "INTEGER" and len(table.pks) == 1:
                continue
            row[column.name] = 1 if column.type.upper() in ("INTEGER", "REAL") else marker
        db.execute("PRAGMA foreign_keys = OFF")
        table.insert(row)
        db.execute("PRAGMA foreign_keys = ON")
        counts[table.name] = table.count
    return counts


@pytest.mark.parametrize("stop_before", _names())
def test_a_database_at_every_step_upgrades_without_losing_rows(
    tmp_path: Path, stop_before: str
) -> None:
    db = open_db(tmp_path / "old.db")
    migrations.apply(db, stop_before=stop_before)
    before = _fill_every_table(db, "kept")
    applied = migrate(db)
    assert applied[0] == stop_before
    for table, count in before.items():
        if table in FOLDED and not db[table].exists():
            # m002: each acknowledgement lives on as its alert's acknowledged_by.
            assert db.execute(FOLDED[table]).fetchone()[0] == count, table
            continue
        assert db[table].count == count, table
    assert migrations.pending(db) == []


def test_migrate_is_idempotent_and_reports_what_ran(tmp_path: Path) -> None:
    db = open_db(tmp_path / "fresh.db")
    assert migrate(db) == _names()
    assert migrate(db) == []


def test_pragmas_are_set(tmp_path: Path) -> None:
    db = open_db(tmp_path / "p.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_audit_log_is_append_only(tmp_path: Path) -> None:
    db = open_db(tmp_path / "a.db")
    migrate(db)
    db["audit_log"].insert(
        {"workspace_id": "T1", "actor": "U1", "at": "2026-11-26T00:00:00Z", "action": "x"}
    )
    with pytest.raises(Exception, match="append-only"):
        db.execute("UPDATE audit_log SET actor = 'U2'")
    with pytest.raises(Exception, match="append-only"):
        db.execute("DELETE FROM audit_log")
    assert db["audit_log"].count == 1


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        migrate(open_db(path))
