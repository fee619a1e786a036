"""The outbox: every Slack post is a row first, with a unique key, then delivered.

Writing the row in the same transaction as the alert state means a crash can never leave
an alert recorded but unannounced, and the unique key means it is never announced twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlite_utils import Database

from bot.store.db import from_text, to_text


class OutboxAction(StrEnum):
    POST = "post"  # chat.postMessage, top level or (with thread_key) in a thread
    UPDATE = "update"  # chat.update of the message posted for thread_key
    UPLOAD = "upload"  # files_upload_v2 of a PNG into the thread of thread_key


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # a permanent error: retrying cannot help, an admin must act
    DROPPED = "dropped"  # no longer matters (expired, its budget removed): never sent late


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    dedup_key: str
    workspace_id: str
    budget_id: int | None
    channel_id: str
    action: OutboxAction
    thread_key: str | None
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    ts: str | None
    created_at: datetime
    expires_at: datetime | None
    revision: int


def enqueue(
    db: Database,
    *,
    dedup_key: str,
    workspace_id: str,
    channel_id: str,
    action: OutboxAction,
    payload: dict[str, Any],
    now: datetime,
    expires_at: datetime | None = None,
    budget_id: int | None = None,
    thread_key: str | None = None,
) -> bool:
    """Add a delivery; False (and nothing changes) when the key is already there."""
    cursor = db.execute(
        "INSERT INTO outbox (dedup_key, workspace_id, budget_id, channel_id, action, thread_key,"
        " payload, next_attempt_at, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (dedup_key) DO NOTHING",
        [
            dedup_key,
            workspace_id,
            budget_id,
            channel_id,
            action.value,
            thread_key,
            json.dumps(payload),
            to_text(now),
            to_text(now),
            to_text(expires_at) if expires_at else None,
        ],
    )
    return cursor.rowcount == 1


def revise(
    db: Database,
    *,
    dedup_key: str,
    workspace_id: str,
    channel_id: str,
    payload: dict[str, Any],
    now: datetime,
    expires_at: datetime,
    budget_id: int | None = None,
    thread_key: str | None = None,
) -> None:
    """The latest content of an edit (chat.update) row: a new row, or the existing one made
    pending again with this payload. Its revision changes, so an attempt already under way
    with the old content is not taken as the delivery of the new one."""
    db.execute(
        "INSERT INTO outbox (dedup_key, workspace_id, budget_id, channel_id, action, thread_key,"
        " payload, next_attempt_at, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (dedup_key) DO UPDATE SET payload = excluded.payload,"
        " status = 'pending', next_attempt_at = excluded.next_attempt_at,"
        " expires_at = MAX(COALESCE(outbox.expires_at, ''), excluded.expires_at),"
        " revision = outbox.revision + 1, last_error = NULL",
        [
            dedup_key,
            workspace_id,
            budget_id,
            channel_id,
            OutboxAction.UPDATE.value,
            thread_key,
            json.dumps(payload),
            to_text(now),
            to_text(now),
            to_text(expires_at),
        ],
    )


def rewrite_unsent(db: Database, dedup_key: str, payload: dict[str, Any]) -> bool:
    """Replace the content of a post nobody has tried to send yet; False if it was tried."""
    cursor = db.execute(
        "UPDATE outbox SET payload = ?, revision = revision + 1"
        " WHERE dedup_key = ? AND status = ? AND attempts = 0",
        [json.dumps(payload), dedup_key, OutboxStatus.PENDING.value],
    )
    return cursor.rowcount == 1


def due_items(
    db: Database, now: datetime, *, limit: int = 100, workspace_id: str | None = None
) -> list[OutboxItem]:
    """Pending deliveries whose time has come, oldest first (threads after their parent)."""
    where, params = "", []
    if workspace_id is not None:
        where, params = " AND workspace_id = ?", [workspace_id]
    rows = db.query(
        f"SELECT * FROM outbox WHERE status = ? AND next_attempt_at <= ?{where}"
        " ORDER BY id LIMIT ?",
        [OutboxStatus.PENDING.value, to_text(now), *params, limit],
    )
    return [_item(row) for row in rows]


def drop_expired(db: Database, now: datetime) -> int:
    """Rows not sent by their expiry are dropped, never sent late; returns how many."""
    cursor = db.execute(
        "UPDATE outbox SET status = ?, last_error = COALESCE(last_error, 'expired'),"
        " done_at = ? WHERE status IN (?, ?) AND expires_at IS NOT NULL AND expires_at <= ?",
        [
            OutboxStatus.DROPPED.value,
            to_text(now),
            OutboxStatus.PENDING.value,
            OutboxStatus.FAILED.value,
            to_text(now),
        ],
    )
    return cursor.rowcount


def drop_for_budget(db: Database, budget_id: int, *, now: datetime) -> int:
    """A removed budget's messages not yet sent are dropped (kept, as dropped, for the log)."""
    return _drop_unsent(db, "budget_id", budget_id, reason="budget removed", now=now)


def drop_for_workspace(db: Database, workspace_id: str, *, reason: str, now: datetime) -> int:
    """An uninstalled workspace's messages not yet sent are dropped: a reinstall must not
    post them late, out of context."""
    return _drop_unsent(db, "workspace_id", workspace_id, reason=reason, now=now)


def drop_unsent(db: Database, dedup_key: str, *, reason: str, now: datetime) -> int:
    """This message, if not sent: it is superseded, and must never go out after all."""
    return _drop_unsent(db, "dedup_key", dedup_key, reason=reason, now=now)


def _drop_unsent(db: Database, column: str, value: object, *, reason: str, now: datetime) -> int:
    cursor = db.execute(
        f"UPDATE outbox SET status = ?, last_error = ?, done_at = ?"
        f" WHERE {column} = ? AND status IN (?, ?)",
        [
            OutboxStatus.DROPPED.value,
            reason,
            to_text(now),
            value,
            OutboxStatus.PENDING.value,
            OutboxStatus.FAILED.value,
        ],
    )
    return cursor.rowcount


# Sent and dropped rows are kept this long after they were settled: long enough to thread
# late replies and to show what was dropped, short enough that the outbox (digest PNGs in
# it) does not grow forever. The top-level posts of alerts stay while their alert does:
# an Acknowledge press on an old message still threads its reply there.
KEEP_AFTER_EXPIRY = timedelta(days=2)


def prune(db: Database, now: datetime) -> int:
    cursor = db.execute(
        "DELETE FROM outbox WHERE status IN (?, ?) AND done_at < ?"
        " AND dedup_key NOT IN (SELECT root_key FROM alerts)",
        [OutboxStatus.SENT.value, OutboxStatus.DROPPED.value, to_text(now - KEEP_AFTER_EXPIRY)],
    )
    return cursor.rowcount


def get_item(db: Database, dedup_key: str) -> OutboxItem | None:
    rows = list(db.query("SELECT * FROM outbox WHERE dedup_key = ?", [dedup_key]))
    return _item(rows[0]) if rows else None


def claim(db: Database, item: OutboxItem, *, lease_until: datetime) -> bool:
    """Take `item` for one attempt: count it, and hide it from other drains until `lease_until`.

    False (and nothing changes) when another drain changed the row since `item` was read.
    Two drains racing — two processes, or two jobs in one loop — thus never both call Slack
    for the same row; if the one holding it dies, the row is due again when the lease ends
    and, having an attempt counted, is looked up in Slack before being posted again.
    """
    cursor = db.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?"
        " WHERE id = ? AND status = ? AND attempts = ? AND revision = ?",
        [to_text(lease_until), item.id, OutboxStatus.PENDING.value, item.attempts, item.revision],
    )
    return cursor.rowcount == 1


def mark_sent(db: Database, item: OutboxItem, *, ts: str | None, now: datetime) -> bool:
    """Record the delivery of `item` as it was read; False when its content was revised
    since (the row stays pending, and the new content is delivered next)."""
    cursor = db.execute(
        "UPDATE outbox SET status = ?, ts = ?, sent_at = ?, done_at = ?, last_error = NULL"
        " WHERE id = ? AND revision = ?",
        [OutboxStatus.SENT.value, ts, to_text(now), to_text(now), item.id, item.revision],
    )
    if cursor.rowcount == 0:
        # Keep the ts: a revised post was still posted, and its thread hangs from it.
        db.execute("UPDATE outbox SET ts = COALESCE(ts, ?) WHERE id = ?", [ts, item.id])
    return cursor.rowcount == 1


def mark_dropped(db: Database, item_id: int, *, reason: str, now: datetime) -> None:
    db.execute(
        "UPDATE outbox SET status = ?, last_error = ?, done_at = ? WHERE id = ?",
        [OutboxStatus.DROPPED.value, reason, to_text(now), item_id],
    )


def reschedule(db: Database, item_id: int, *, error: str, at: datetime) -> None:
    db.execute(
        "UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?",
        [to_text(at), error, item_id],
    )


def mark_failed(db: Database, item_id: int, *, error: str) -> None:
    """Only a row still pending: one dropped meanwhile (its workspace uninstalled while it
    was being sent) stays dropped, and is never re-queued by a later success."""
    db.execute(
        "UPDATE outbox SET status = ?, last_error = ? WHERE id = ? AND status = ?",
        [OutboxStatus.FAILED.value, error, item_id, OutboxStatus.PENDING.value],
    )


def requeue_failed(
    db: Database,
    *,
    workspace_id: str,
    channel_id: str,
    keep_failed: frozenset[str],
    now: datetime,
) -> int:
    """Make failed deliveries to this channel (and those that failed on the workspace's
    credentials, anywhere) pending again; returns how many. Failures whose error is in
    `keep_failed` stay failed."""
    excluded = sorted(keep_failed)
    marks = ", ".join("?" for _ in excluded) or "''"
    cursor = db.execute(
        "UPDATE outbox SET status = ?, next_attempt_at = ? WHERE workspace_id = ?"
        f" AND status = ? AND (channel_id = ? OR last_error IN ({_AUTH_MARKS}))"
        f" AND COALESCE(last_error, '') NOT IN ({marks})",
        [
            OutboxStatus.PENDING.value,
            to_text(now),
            workspace_id,
            OutboxStatus.FAILED.value,
            channel_id,
            *AUTH_ERRORS,
            *excluded,
        ],
    )
    return cursor.rowcount


# Errors of the workspace's token: once any message gets through, they are fixed everywhere.
AUTH_ERRORS = (
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_authed",
    "team_access_not_granted",
    "token_unreadable",  # a stored token no configured key opens (multi-workspace)
)
_AUTH_MARKS = ", ".join("?" for _ in AUTH_ERRORS)


def delivery_problems(db: Database, workspace_id: str) -> dict[int | None, str]:
    """The latest permanent delivery error per budget (None: not tied to a budget).

    A failure stops counting once a later message to the same channel for the same budget
    got through: whatever was wrong (the bot not invited, an archived channel) is fixed.
    """
    rows = db.query(
        "SELECT budget_id, last_error FROM outbox AS failed"
        " WHERE workspace_id = ? AND status = ? AND NOT EXISTS ("
        "   SELECT 1 FROM outbox AS later WHERE later.id > failed.id AND later.status = ?"
        "   AND later.channel_id = failed.channel_id AND later.budget_id IS failed.budget_id"
        " ) ORDER BY id",
        [workspace_id, OutboxStatus.FAILED.value, OutboxStatus.SENT.value],
    )
    return {row["budget_id"]: row["last_error"] for row in rows}


def _item(row: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        dedup_key=row["dedup_key"],
        workspace_id=row["workspace_id"],
        budget_id=row["budget_id"],
        channel_id=row["channel_id"],
        action=OutboxAction(row["action"]),
        thread_key=row["thread_key"],
        payload=json.loads(row["payload"]),
        status=OutboxStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=from_text(row["next_attempt_at"]),
        last_error=row["last_error"],
        ts=row["ts"],
        created_at=from_text(row["created_at"]),
        expires_at=from_text(row["expires_at"]) if row["expires_at"] else None,
        revision=row["revision"],
    )
