"""Draining the outbox into Slack, exactly once as people see it.

Every delivery is counted (`outbox.claim`) before Slack is called. A delivery that was
attempted before may have been posted by a process that died before recording it, so
before posting again we look for the message by its key, which every post carries in its
metadata. Hence no duplicate after a crash, and no loss: rows stay pending until Slack
takes them, whatever happens in between. The Slack client used here must not retry
server errors by itself — a 500 can come after Slack posted the message.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError, SlackTokenRotationError
from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.crypto import UnsealError
from bot.store import outbox
from bot.store.installations import NotInstalled
from bot.store.outbox import OutboxAction, OutboxItem, OutboxStatus

log = logging.getLogger(__name__)

METADATA_EVENT = "scenario_budget_bot"
# Errors that retrying cannot fix: an admin has to invite the bot, unarchive, reinstall…
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "not_authed",
        "invalid_blocks",
        "msg_too_long",
        "thread_not_found",
        "restricted_action",
        "team_access_not_granted",
        "msg_blocks_too_long",
        # chat.update of a message someone deleted: there is nothing left to edit.
        "message_not_found",
        "cant_update_message",
    }
)
# Permanent errors about the message itself: sending it again can never work.
CONTENT_ERRORS = frozenset({"invalid_blocks", "msg_too_long", "msg_blocks_too_long"})
MAX_BACKOFF = timedelta(minutes=5)
LOOKUP_SLACK = timedelta(minutes=2)
LOOKUP_PAGES = 10
# How long a row stays hidden from other drains while one attempt runs (lookup + post,
# each bounded by the client's timeout); after a crash it is retried when this ends.
LEASE = timedelta(minutes=2)


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0
    requeued: int = 0
    dropped: int = 0


ClientFor = Callable[[str], Awaitable[AsyncWebClient]]


def metadata_for(dedup_key: str) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT, "event_payload": {"dedup_key": dedup_key}}


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=5 * 2 ** max(0, attempts - 1)), MAX_BACKOFF)


async def drain(
    db: Database,
    client_for: ClientFor,
    clock: Callable[[], datetime],
    *,
    limit: int = 200,
    workspace_id: str | None = None,
) -> DrainReport:
    """Deliver every due outbox row once (of one workspace, if given); what fails now is
    rescheduled until it lands or stops mattering (its expiry), then dropped, not sent late."""
    report = DrainReport()
    now = clock()
    report.dropped += outbox.drop_expired(db, now)
    outbox.prune(db, now)
    for item in outbox.due_items(db, now, limit=limit, workspace_id=workspace_id):
        if item.expires_at is not None and item.expires_at <= clock():
            report.dropped += outbox.drop_expired(db, clock())
            continue
        await _deliver(db, item, client_for, clock, report)
    return report


async def _deliver(
    db: Database,
    item: OutboxItem,
    client_for: ClientFor,
    clock: Callable[[], datetime],
    report: DrainReport,
) -> None:
    parent = outbox.get_item(db, item.thread_key) if item.thread_key else None
    if item.thread_key:
        if parent is not None and parent.status is OutboxStatus.DROPPED:
            outbox.mark_dropped(db, item.id, reason="its first message was dropped", now=clock())
            report.dropped += 1
            return
        if parent is None or parent.status is OutboxStatus.FAILED:
            # The parent's error is the cause an admin can act on (invite the bot, …).
            cause = parent.last_error if parent and parent.last_error else None
            outbox.mark_failed(db, item.id, error=cause or "its first message was never delivered")
            report.failed += 1
            return
        if parent.ts is None:
            report.waiting += 1  # the parent is ahead in the queue or retrying
            return
    thread_ts = parent.ts if parent else None
    if not outbox.claim(db, item, lease_until=clock() + LEASE):
        return  # another drain took this row since we read it
    try:
        client = await client_for(item.workspace_id)
        if item.action is OutboxAction.UPDATE:
            await client.chat_update(channel=item.channel_id, ts=thread_ts, **_content(item))
            ts = thread_ts
        elif item.action is OutboxAction.UPLOAD:
            ts = await _already_uploaded(client, item, thread_ts) if item.attempts else None
            if ts is None:
                ts = await _upload(client, item, thread_ts)
        else:
            ts = await _already_posted(client, item, thread_ts) if item.attempts else None
            if ts is None:
                response = await client.chat_postMessage(
                    channel=item.channel_id,
                    thread_ts=thread_ts,
                    metadata=metadata_for(item.dedup_key),
                    unfurl_links=False,
                    unfurl_media=False,
                    **_content(item),
                )
                ts = response["ts"]
    except NotInstalled:
        # Uninstalled since this was queued: it will never be delivered, and must not be
        # posted late if the app is installed again.
        outbox.mark_dropped(db, item.id, reason="the app is not installed", now=clock())
        report.dropped += 1
        return
    except SlackTokenRotationError:
        _retry_later(db, item, "token refresh failed", clock() + backoff(item.attempts + 1))
        report.retried += 1
        return
    except SlackApiError as exc:
        _on_slack_error(db, item, exc, clock, report)
        return
    except (TimeoutError, aiohttp.ClientError, OSError, SlackRequestError) as exc:
        # SlackRequestError: files_upload_v2's upload step failed; like a network error.
        _retry_later(
            db, item, f"network: {type(exc).__name__}", clock() + backoff(item.attempts + 1)
        )
        report.retried += 1
        return
    except UnsealError:
        # The workspace's stored token no configured key opens: waiting cannot mend it. Like
        # a refused token, it is failed (and sent after all once this workspace's token
        # works again, after a reinstall), and the other workspaces' messages go on.
        log.warning(
            "workspace %s: its stored token opens with no BUDGET_BOT_SECRET_KEY configured;"
            " its messages wait until the key is set back or the app is installed again",
            item.workspace_id,
        )
        outbox.mark_failed(db, item.id, error="token_unreadable")
        report.failed += 1
        return
    except Exception as exc:
        # An unexpected failure: this message waits (and says why), the others go on.
        log.exception("delivery of %s failed", item.dedup_key)
        _retry_later(db, item, f"error: {type(exc).__name__}", clock() + backoff(item.attempts + 1))
        report.retried += 1
        return
    if outbox.mark_sent(db, item, ts=ts, now=clock()):
        report.sent += 1
    # Whatever stopped earlier messages here is fixed now (the bot was invited, the token
    # replaced): send them after all — nothing is lost.
    report.requeued += outbox.requeue_failed(
        db,
        workspace_id=item.workspace_id,
        channel_id=item.channel_id,
        keep_failed=CONTENT_ERRORS,
        now=clock(),
    )


async def _upload(client: AsyncWebClient, item: OutboxItem, thread_ts: str | None) -> str:
    """The three-step upload (files_upload_v2); returns the file's ID."""
    payload = item.payload
    response = await client.files_upload_v2(
        channel=item.channel_id,
        thread_ts=thread_ts,
        content=base64.b64decode(payload["png_base64"]),
        filename=payload["filename"],
        title=payload["title"],
        alt_txt=payload.get("alt_text"),
    )
    return str((response.get("file") or {}).get("id") or "")


async def _already_uploaded(
    client: AsyncWebClient, item: OutboxItem, thread_ts: str | None
) -> str | None:
    """A file with this title already in the thread: an earlier attempt shared it."""
    if not thread_ts:
        return None
    response = await client.conversations_replies(channel=item.channel_id, ts=thread_ts, limit=200)
    for message in response.get("messages") or []:
        for shared in message.get("files") or []:
            if shared.get("title") == item.payload.get("title"):
                return str(shared.get("id") or "")
    return None


def _content(item: OutboxItem) -> dict[str, Any]:
    payload = item.payload
    return {"text": payload.get("text", ""), "blocks": payload.get("blocks")}


async def _already_posted(
    client: AsyncWebClient, item: OutboxItem, thread_ts: str | None
) -> str | None:
    """The ts of a message already carrying this key, if an earlier attempt posted it.

    Reads every page since the row was queued (a busy channel can have more than one page
    of messages since then), up to `LOOKUP_PAGES`.
    """
    cursor = None
    for _ in range(LOOKUP_PAGES):
        if thread_ts:
            response = await client.conversations_replies(
                channel=item.channel_id,
                ts=thread_ts,
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
        else:
            oldest = (item.created_at - LOOKUP_SLACK).timestamp()
            response = await client.conversations_history(
                channel=item.channel_id,
                oldest=f"{oldest:.6f}",
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
        for message in response.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("dedup_key") == item.dedup_key:
                return message.get("ts")
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


def slack_error(exc: SlackApiError) -> str | None:
    """Slack's error code (`channel_not_found`, `ratelimited` …); None when the answer was
    not Slack's JSON (a proxy's page, broken JSON), whose `response` has no codes to read."""
    data = getattr(exc.response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    return str(error) if error else None


def _on_slack_error(
    db: Database,
    item: OutboxItem,
    exc: SlackApiError,
    clock: Callable[[], datetime],
    report: DrainReport,
) -> None:
    # An error page from a proxy (text, or broken JSON) carries no Slack error code.
    error = slack_error(exc) or "unknown_error"
    status = getattr(exc.response, "status_code", None) or getattr(exc.response, "status", 0)
    if error in PERMANENT_ERRORS:
        outbox.mark_failed(db, item.id, error=error)
        log.warning("delivery %s to %s failed for good: %s", item.dedup_key, item.channel_id, error)
        report.failed += 1
        return
    if status == 429:
        retry_after = _retry_after(exc)
        _retry_later(db, item, "ratelimited", clock() + timedelta(seconds=retry_after))
    else:
        _retry_later(db, item, f"{status} {error}", clock() + backoff(item.attempts + 1))
    report.retried += 1


def _retry_after(exc: SlackApiError) -> float:
    try:
        return max(1.0, float(exc.response.headers.get("Retry-After", 1)))
    except (TypeError, ValueError):
        return 1.0


def _retry_later(db: Database, item: OutboxItem, error: str, at: datetime) -> None:
    log.info("delivery %s will be retried at %s: %s", item.dedup_key, at.isoformat(), error)
    outbox.reschedule(db, item.id, error=error, at=at)
