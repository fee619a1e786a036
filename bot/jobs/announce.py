"""Alert events into Slack messages: the first event of an alert posts its message, every
later one edits that message (it always shows the latest state) and adds one reply to its
thread. One transaction per call: an event is published together with its outbox rows.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from bot.budgets.evaluate import EventKind
from bot.budgets.types import PeriodKind, ScopeKind
from bot.budgets.watch_history import entity_of
from bot.messages.alerts import (
    AlertView,
    LimitChange,
    acknowledged_reply,
    alert_message,
    back_under_reply,
    edited_reply,
    forecast_reply,
    level_reply,
    snoozed_reply,
    unsnoozed_reply,
)
from bot.messages.mrkdwn import Json
from bot.messages.watch import (
    EpisodeView,
    ended_reply,
    episode_message,
    expected_reply,
    revoked_reply,
)
from bot.scenario.links import api_keys_url, model_url, team_url
from bot.store import alerts, outbox, snoozes
from bot.store import watch as watch_store
from bot.store.alerts import Alert, AlertEvent
from bot.store.budgets import Budget, find_budget
from bot.store.db import from_text, immediate, in_savepoint
from bot.store.outbox import OutboxAction, OutboxStatus
from bot.store.workspaces import get_workspace

# What a check finds; the others are people's actions on a message that already exists.
CHECK_EVENTS = frozenset(
    {EventKind.LEVEL, EventKind.FORECAST, EventKind.BACK_UNDER, EventKind.ANOMALY}
)


def announce(
    db: Database,
    *,
    app_url: str,
    default_tz: str,
    now: datetime,
    workspace_id: str | None = None,
) -> list[Json]:
    """Publish every unpublished event (of one workspace, if given); returns the new rows."""
    with immediate(db):
        return announce_pending(
            db, app_url=app_url, default_tz=default_tz, now=now, workspace_id=workspace_id
        )


def announce_pending(
    db: Database,
    *,
    app_url: str,
    default_tz: str,
    now: datetime,
    workspace_id: str | None = None,
) -> list[Json]:
    """As `announce`, inside the caller's transaction."""
    written: list[Json] = []
    posted: set[str] = set()  # messages created by this call: later events fold into them
    for event in alerts.unpublished_events(db, workspace_id=workspace_id):
        alert = alerts.alert_by_id(db, event.alert_id)
        budget = find_budget(db, alert.budget_id) if alert else None
        if alert is not None and budget is not None:
            publish = partial(
                _publish, db, budget, alert, event, app_url, default_tz, now, posted, written
            )
            if alert.finding is None:
                publish()
            else:
                # A bug in a watch message must not hold back the budgets' alerts published
                # in the same transaction: its own savepoint, and left unpublished (tried
                # again by the next call) when it fails.
                kept, seen = len(written), set(posted)
                if not in_savepoint(db, "episode", publish, what=f"watch episode {alert.id}"):
                    del written[kept:]
                    posted.intersection_update(seen)
                    continue
        alerts.mark_published(db, event.id)
    return written


def _publish(
    db: Database,
    budget: Budget,
    alert: Alert,
    event: AlertEvent,
    app_url: str,
    default_tz: str,
    now: datetime,
    posted: set[str],
    written: list[Json],
) -> None:
    """One event: the message's first post, or an edit of it and one reply in its thread.
    Events that come together with the first post (a level and the forecast in one check)
    are folded into that post rather than replied to a message nobody has seen yet."""
    root_key, channel = alert.root_key, alert.channel_id
    root = outbox.get_item(db, root_key)
    if event.kind in CHECK_EVENTS and alert.is_current(now):
        if channel != budget.channel_id:
            # The budget alerts elsewhere now: its story goes on in a new message there.
            channel = budget.channel_id
            root_key = alerts.new_message(db, alert.id, channel, f"alert:{alert.id}:in:{channel}")
            root = outbox.get_item(db, root_key)
        elif root is not None and root.status in (OutboxStatus.FAILED, OutboxStatus.DROPPED):
            # Its first message never reached Slack: a reply to it would not either. The
            # story goes on in a new message with everything so far (the old one is dropped,
            # so that it can never be sent late).
            if root.status is OutboxStatus.FAILED:
                outbox.mark_dropped(db, root.id, reason="replaced by a later message", now=now)
            root_key = alerts.new_message(db, alert.id, channel, f"alert:{alert.id}:e{event.id}")
            root = None
    workspace = get_workspace(db, budget.workspace_id)
    tz = workspace.timezone_or(default_tz) if workspace else default_tz
    if alert.finding is not None:
        message = episode_message(episode_view(db, budget, alert, tz, app_url, now))
    else:
        message = alert_message(view_of(db, budget, alert, tz, app_url, now))
    common = {
        "workspace_id": budget.workspace_id,
        "channel_id": channel,
        "budget_id": budget.id,
        "now": now,
        "expires_at": event.expires_at,
    }

    def wrote(key: str, action: OutboxAction, payload: Json) -> None:
        written.append({"key": key, "channel": channel, "action": action.value, **payload})

    if root is None:
        outbox.enqueue(db, dedup_key=root_key, action=OutboxAction.POST, payload=message, **common)
        posted.add(root_key)
        wrote(root_key, OutboxAction.POST, message)
        return
    if root_key in posted:
        outbox.rewrite_unsent(db, root_key, message)
        for row in written:
            if row["key"] == root_key:
                row.update(message)
        return
    if not outbox.rewrite_unsent(db, root_key, message):
        outbox.revise(
            db, dedup_key=f"{root_key}:edit", payload=message, thread_key=root_key, **common
        )
        wrote(f"{root_key}:edit", OutboxAction.UPDATE, message)
    answer = episode_reply(event, alert, tz) if alert.finding else reply_for(event, alert, tz)
    key = f"alert-event:{event.id}"
    outbox.enqueue(
        db, dedup_key=key, action=OutboxAction.POST, payload=answer, thread_key=root_key, **common
    )
    wrote(key, OutboxAction.POST, answer)


def view_of(
    db: Database, budget: Budget, alert: Alert, tz: str, app_url: str, now: datetime
) -> AlertView:
    snooze = snoozes.get_snooze(db, budget.id)
    time_left = None
    if alert.period_end is not None and alert.period_end > now:
        time_left = alert.period_end - now
    return AlertView(
        alert_id=alert.id,
        budget_id=budget.id,
        budget_label=f"Budget {budget.label}",
        period_label=period_label(budget.period, alert.period_start, tz),
        tz=tz,
        top_level=alert.state.top_level,
        forecast_announced=alert.state.forecast,
        spend_cu=alert.spend_cu,
        limit_cu=budget.limit_cu,
        time_left=time_left,
        forecast=alert.projection if alert.state.forecast else None,
        period_end=alert.period_end,
        attribution=alert.attribution,
        open_url=team_url(app_url),
        acknowledged=(alert.acknowledged_by, alert.acknowledged_at)
        if alert.acknowledged_by and alert.acknowledged_at
        else None,
        snoozed=(snooze.created_by, snooze.until) if snooze and snooze.until > now else None,
        limit_changed=_limit_change(db, alert),
    )


def _limit_change(db: Database, alert: Alert) -> LimitChange | None:
    event = alerts.last_limit_change(db, alert.id)
    if event is None or event.limit_cu is None:
        return None
    return LimitChange(
        actor=event.actor or "?",
        before_cu=float(event.detail["from_limit_cu"]),
        after_cu=event.limit_cu,
        at=event.at,
    )


def episode_view(
    db: Database, watch: Budget, alert: Alert, tz: str, app_url: str, now: datetime
) -> EpisodeView:
    finding = alert.finding
    assert finding is not None
    snooze = snoozes.get_snooze(db, watch.id)
    expected = watch_store.expected_mark(db, alert)
    entity = entity_of(finding.entity)
    if entity.kind is ScopeKind.KEY:
        url = api_keys_url(app_url)
    elif entity.kind is ScopeKind.MODEL and entity.ref:
        url = model_url(app_url, entity.ref)
    else:
        url = team_url(app_url)
    return EpisodeView(
        alert_id=alert.id,
        opened_at=alert.opened_at,
        finding=finding,
        spend_cu=alert.spend_cu,
        tz=tz,
        attribution=alert.attribution,
        open_url=url,
        # Back to usual, unless it ended by being marked as expected.
        ended_at=alert.closed_at
        if alert.closed_at and (expected is None or alert.closed_at < expected[2])
        else None,
        expected=expected[:2] if expected else None,
        snoozed=(snooze.created_by, snooze.until) if snooze and snooze.until > now else None,
    )


def episode_reply(event: AlertEvent, alert: Alert, tz: str) -> Json:
    finding = alert.finding
    assert finding is not None
    actor = event.actor or "?"
    match event.kind:
        case EventKind.EXPECTED:
            return expected_reply(actor, finding, from_text(event.detail["until"]), tz)
        case EventKind.SNOOZED:
            return snoozed_reply(actor, from_text(event.detail["until"]), tz, subject="the watch")
        case EventKind.UNSNOOZED:
            return unsnoozed_reply(actor, subject="the watch")
        case EventKind.KEY_REVOKED:
            return revoked_reply(actor, event.detail["key"], event.detail["project"])
        case EventKind.ANOMALY_ENDED:
            return ended_reply(finding, tz)
    # Nothing else happens to an episode (its first event is its post); said as it is.
    return reply_for(event, alert, tz)


def reply_for(event: AlertEvent, alert: Alert, tz: str) -> Json:
    spend, limit = event.spend_cu or 0.0, event.limit_cu or 0.0
    actor = event.actor or "?"
    match event.kind:
        case EventKind.LEVEL:
            return level_reply(event.level or 0, spend, limit)
        case EventKind.FORECAST:
            return forecast_reply(alert.projection, tz, alert.period_end)
        case EventKind.BACK_UNDER:
            return back_under_reply(event.level or 0, spend, limit)
        case EventKind.EDITED:
            thresholds = [int(t) for t in event.detail.get("thresholds", [])]
            before = event.detail.get("from_limit_cu")
            return edited_reply(
                actor, limit, thresholds, spend, before=float(before) if before else None
            )
        case EventKind.SNOOZED:
            return snoozed_reply(actor, from_text(event.detail["until"]), tz)
        case EventKind.UNSNOOZED:
            return unsnoozed_reply(actor)
        case EventKind.ACKNOWLEDGED:
            return acknowledged_reply(actor)


def period_label(kind: PeriodKind, start: datetime | None, tz: str) -> str:
    if kind.is_rolling or start is None:
        return f"the rolling {kind.value} window" if kind.is_rolling else "this period"
    local = start.astimezone(ZoneInfo(tz))
    names = {
        PeriodKind.DAILY: local.strftime("%a %d %b"),
        PeriodKind.WEEKLY: f"the week of {local.strftime('%d %b')}",
        PeriodKind.MONTHLY: local.strftime("%B %Y"),
        PeriodKind.BILLING: "this billing period",
    }
    return f"{names[kind]} ({tz})"
