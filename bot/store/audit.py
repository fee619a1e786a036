"""The append-only audit trail: who changed what, when, before → after (SPEC §8)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.store.db import from_text, to_text


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    workspace_id: str
    actor: str
    at: datetime
    action: str
    target: str | None
    before: Any
    after: Any


def record_change(
    db: Database,
    *,
    workspace_id: str,
    actor: str,
    action: str,
    target: str | None,
    before: Any,
    after: Any,
    now: datetime,
) -> None:
    """Append one entry; callers do it inside the transaction that makes the change."""
    db.execute(
        "INSERT INTO audit_log (workspace_id, actor, at, action, target, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            workspace_id,
            actor,
            to_text(now),
            action,
            target,
            None if before is None else json.dumps(before, sort_keys=True, default=str),
            None if after is None else json.dumps(after, sort_keys=True, default=str),
        ],
    )


def history(
    db: Database, workspace_id: str, *, target: str | None = None, limit: int = 20
) -> list[AuditEntry]:
    """Newest first."""
    where, params = "workspace_id = ?", [workspace_id]
    if target is not None:
        where += " AND target = ?"
        params.append(target)
    rows = db.query(
        f"SELECT * FROM audit_log WHERE {where} ORDER BY at DESC, id DESC LIMIT ?",
        [*params, limit],
    )
    return [
        AuditEntry(
            id=row["id"],
            workspace_id=row["workspace_id"],
            actor=row["actor"],
            at=from_text(row["at"]),
            action=row["action"],
            target=row["target"],
            before=_loads(row["before"]),
            after=_loads(row["after"]),
        )
        for row in rows
    ]


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
