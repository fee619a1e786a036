"""The digest: what the last day (week, month) cost, against the ones before, with a chart
of the last 14 days (12 weeks, 12 months).

Gathering reads Scenario (`gather`), rendering is pure (`bot.messages.digest`), and
sending goes through the outbox with the key `digest:<id>:<span key>` (the local day it
goes out for a daily digest, the ISO week or the month it covers otherwise) — written in
the same transaction as the digest's `last_sent_day` — so a digest goes out once per span,
across restarts and racing processes.

And a channel gets at most one digest per local day, whatever its cadence: the day it last
got one (`digest_channels`, written in that same transaction) outlives `digest off` and a
change of cadence or weekday, so turning a digest off and on again, or making a daily one
weekly on the morning the daily went, sends nothing more that day; the digest goes out on
its next due day instead.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from bot.budgets.periods import DigestSpan, digest_span, sends_on
from bot.budgets.types import PeriodKind
from bot.messages.charts import UNIT, bar_label, spend_chart
from bot.messages.digest import chart_title, digest_message
from bot.reports.digest import DigestData, gather
from bot.scenario.client import ScenarioClient
from bot.store import outbox
from bot.store.db import immediate
from bot.store.digests import (
    ChannelDigest,
    Digest,
    Held,
    last_channel_digest,
    mark_channel_given,
)
from bot.store.outbox import OutboxAction

log = logging.getLogger(__name__)
# The morning's digest, posted in the evening after an outage, is news nobody needs.
DIGEST_TTL = timedelta(hours=6)

CATCH_UP = timedelta(hours=1)  # a daily digest missed by less than this is still sent
# A week's or a month's news keeps longer: one missed for a few hours is still sent.
CATCH_UP_SPAN = DIGEST_TTL


def catch_up(cadence: PeriodKind) -> timedelta:
    return CATCH_UP if cadence is PeriodKind.DAILY else CATCH_UP_SPAN


def due_at(digest: Digest, day: date, tz: str) -> datetime:
    """When it goes out that day, in UTC — so that the catch-up window is real time: on a
    spring-forward day a time the clocks skip (02:30) means the instant they jump to."""
    return datetime.combine(day, digest.local_time, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def is_due(digest: Digest, tz: str, now: datetime) -> bool:
    """Due today (every day, on its weekday, on the 1st), not sent for this span, the
    channel given no digest yet today, and not missed by more than its catch-up (a bot that
    was down all morning does not post the news at noon)."""
    today = now.astimezone(ZoneInfo(tz)).date()
    if not sends_on(digest.cadence, digest.weekday, today):
        return False
    at = due_at(digest, today, tz)
    return _held(digest, tz, today) is None and at <= now < at + catch_up(digest.cadence)


def _given_on(channel: ChannelDigest | None, tz: str, day: date) -> bool:
    """The channel got a digest through on the local `day` (read in today's zone)."""
    return (
        channel is not None
        and channel.got_through
        and channel.given_at.astimezone(ZoneInfo(tz)).date() == day
    )


def _held(digest: Digest, tz: str, today: date) -> Held | None:
    if _given_on(digest.channel, tz, today):
        return Held.CHANNEL_GIVEN
    if digest.last_sent_day == digest_span(digest.cadence, digest.weekday, today).key:
        return Held.SPAN_DONE
    return None


def held_until(digest: Digest, tz: str, now: datetime) -> tuple[date, Held] | None:
    """The local day of the next digest, and why, when by its schedule alone it would
    still go out today (its time is ahead, or within the catch-up) but will not; None
    otherwise."""
    today = now.astimezone(ZoneInfo(tz)).date()
    if not sends_on(digest.cadence, digest.weekday, today):
        return None
    held = _held(digest, tz, today)
    if held is None or now >= due_at(digest, today, tz) + catch_up(digest.cadence):
        return None
    # A weekly digest goes out within 7 days, a monthly one within 31.
    following = next(
        day
        for day in (today + timedelta(days=n) for n in range(1, 32))
        if sends_on(digest.cadence, digest.weekday, day)
    )
    return following, held


def digest_key(digest: Digest, span: DigestSpan) -> str:
    return f"digest:{digest.id}:{span.key}"


def enqueue_digest(
    db: Database, digest: Digest, data: DigestData, now: datetime
) -> list[dict[str, Any]]:
    """The message and its chart into the outbox, and the day marked sent — atomically.

    Returns what was queued (empty when this span's digest was already queued)."""
    span = data.span
    key = digest_key(digest, span)
    message = digest_message(data, when_empty=digest.when_empty)
    # Rendered before the write lock is taken: 0.2 s of matplotlib must not hold it.
    png = None
    if data.chart and not data.empty and message is not None:
        png = spend_chart(
            data.chart_days,
            data.chart,
            title=chart_title(data),
            cadence=span.cadence,
            limit=data.limit,
        )
    queued: list[dict[str, Any]] = []
    with immediate(db):
        current = db.execute(
            "SELECT last_sent_day FROM digests WHERE id = ?", [digest.id]
        ).fetchone()
        if current is None or current[0] == span.key:
            return queued  # turned off meanwhile, or another process sent it
        last = last_channel_digest(db, digest.workspace_id, digest.channel_id)
        if _given_on(last, data.tz, now.astimezone(ZoneInfo(data.tz)).date()):
            # The channel got a digest today — maybe from the one it had before an off/on
            # or a change of cadence. The span stays unsent: a weekly or monthly digest held
            # back today is a new span on its next day anyway.
            return queued
        db.execute("UPDATE digests SET last_sent_day = ? WHERE id = ?", [span.key, digest.id])
        if message is None:
            # Nothing spent, and this digest says nothing then: the channel got nothing,
            # so the day stays free (a weekly digest set after a quiet daily one may go).
            return queued
        if last is not None and not last.got_through:
            # Today's that never got through (the bot was not in the channel): this one
            # replaces it, and Slack's failures must not be retried into a second digest.
            for old in (last.dedup_key, last.dedup_key + ":chart"):
                outbox.drop_unsent(db, old, reason="replaced by a newer digest", now=now)
        mark_channel_given(db, digest.workspace_id, digest.channel_id, key, now)
        if outbox.enqueue(
            db,
            dedup_key=key,
            workspace_id=digest.workspace_id,
            channel_id=digest.channel_id,
            action=OutboxAction.POST,
            payload=message,
            now=now,
            expires_at=now + DIGEST_TTL,
        ):
            queued.append({"key": key, "channel": digest.channel_id, **message})
        if png is not None:
            upload = {
                "filename": f"cu-{data.day.isoformat()}.png",
                "title": f"CU per {UNIT[span.cadence]} to {data.day.isoformat()}",
                "alt_text": _alt_text(data),
                "png_base64": base64.b64encode(png).decode(),
            }
            if outbox.enqueue(
                db,
                dedup_key=key + ":chart",
                workspace_id=digest.workspace_id,
                channel_id=digest.channel_id,
                action=OutboxAction.UPLOAD,
                payload=upload,
                now=now,
                expires_at=now + DIGEST_TTL,
                thread_key=key,
            ):
                queued.append({"key": key + ":chart", "channel": digest.channel_id, **upload})
    return queued


def _alt_text(data: DigestData) -> str:
    cadence = data.span.cadence
    first, last = (bar_label(d, cadence) for d in (data.chart_days[0], data.chart_days[-1]))
    totals = [sum(values[i] for values in data.chart.values()) for i in range(len(data.chart_days))]
    peak = max(range(len(totals)), key=totals.__getitem__)
    return (
        f"Bar chart of Compute Units per {UNIT[cadence]} from {first} to {last}, stacked by "
        f"model ({', '.join(data.chart)}); highest {totals[peak]:,.0f} CU on "
        f"{bar_label(data.chart_days[peak], cadence)}."
    )[:1000]


async def run_digest(
    db: Database,
    client: ScenarioClient,
    digest: Digest,
    tz: str,
    now: datetime,
    app_url: str,
    *,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """Gather and queue one digest (or, dry, only render it); returns what was queued."""
    data = await gather(db, client, digest, tz, now, app_url)
    if dry_run:
        message = digest_message(data, when_empty=digest.when_empty)
        return (
            [] if message is None else [{"key": "dry-run", "channel": digest.channel_id, **message}]
        )
    return enqueue_digest(db, digest, data, now)
