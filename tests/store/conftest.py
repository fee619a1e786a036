"""A fresh, migrated database for each store test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from bot.store.db import migrate, open_db


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_db(tmp_path / "store.db")
    migrate(database)
    yield database
    database.conn.close()
