"""`/budget history`: the alerts and the changes of a workspace's budgets, newest first, from the
audit log. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.budgets.evaluate import AlertKind
from bot.messages.budgets import (
    MAX_BLOCKS,
    _packed,
    _shown,
    changes,
    period_words,
    scope_words,
    thresholds_words,
)
from bot.messages.digest import schedule_words
from bot.messages.mrkdwn import Json, clip, context, cu, escape, header, local_time, who
from bot.store.alerts import AlertRow
from bot.store.audit import AuditEntry

MAX_HISTORY_LINE = 300


LABEL_LIMIT = 80


def history_message(
    alert_rows: Sequence[AlertRow],
    entries: Sequence[AuditEntry],
    *,
    labels: Mapping[int, str],
    tz: str,
    budget_id: int | None = None,
) -> Json:
    """Recent alerts and the audit trail, newest first, times in `tz`."""
    what = f"budget #{budget_id}" if budget_id is not None else "this workspace"
    title = f"History of {what}"
    alert_lines = [_alert_line(row, labels, tz) for row in alert_rows] or ["No alerts yet."]
    change_lines = [_entry_line(entry, labels, tz) for entry in entries] or [
        "No changes recorded yet."
    ]
    blocks: list[Json] = [header(title)]
    blocks += _packed(alert_lines, title="*Recent alerts*")
    blocks += _packed(change_lines, title="*Changes*")
    blocks.append(context(f"Newest first · times in {tz}"))
    text = f"{title}: {len(alert_rows)} recent alerts, {len(entries)} changes"
    return {"text": text, "blocks": blocks[:MAX_BLOCKS]}


def _label(budget_id: int, labels: Mapping[int, str]) -> str:
    # Clipped so that what happened still fits on the line after a very long name; then
    # escaped (`labels` are the budgets' labels as stored, with their Scenario names).
    return escape(clip(labels.get(budget_id, f"#{budget_id}"), LABEL_LIMIT))


def _alert_line(row: AlertRow, labels: Mapping[int, str], tz: str) -> str:
    when = local_time(row.fired_at, tz)
    spend = f"{cu(row.spend_cu)} of {cu(row.limit_cu)}"
    if row.kind is AlertKind.FORECAST:
        what = f"🔮 forecast over the limit ({spend} so far)"
    else:
        icon = "🔴" if row.level >= 100 else "🟠" if row.level >= 80 else "🟡"
        what = f"{icon} {row.level} % ({spend})"
    line = f"• {when} — *{_label(row.budget_id, labels)}*: {what}"
    if row.resolved_at is not None:
        line += f" · back under since {local_time(row.resolved_at, tz)}"
    return clip(line, MAX_HISTORY_LINE)


def _entry_line(entry: AuditEntry, labels: Mapping[int, str], tz: str) -> str:
    line = f"• {local_time(entry.at, tz)} — {who(entry.actor)} {_entry_what(entry, labels, tz)}"
    return clip(line, MAX_HISTORY_LINE)


def _entry_what(entry: AuditEntry, labels: Mapping[int, str], tz: str) -> str:
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    target = entry.target or ""
    label = _target_label(target, before, after, labels)
    match entry.action:
        case "budget.add":
            return f"added *{label}*: {_snapshot(after)}"
        case "budget.edit":
            diff = changes(before, after)
            return f"changed *{label}*: " + ("; ".join(diff) if diff else "no visible change")
        case "budget.remove":
            return f"removed *{label}* ({_snapshot(before)})"
        case "budget.snooze":
            until = _instant(after.get("snoozed_until"))
            shown = local_time(until, tz) if until else "later"
            return f"snoozed *{label}* until {shown}"
        case "budget.unsnooze":
            return f"unsnoozed *{label}*"
        case "alert.acknowledge":
            return f"acknowledged alert {target.partition(':')[2] or target}"
        case "timezone":
            old = before.get("timezone") or "the default"
            return f"set the timezone: {old} → {after.get('timezone')}"
        case "digest.set":
            channel = after.get("channel_id") or target.partition(":")[2]
            if before:
                return (
                    f"changed the digest in <#{channel}>: {_digest_schedule(before)}"
                    f" → {_digest_schedule(after)}"
                )
            return f"set a digest in <#{channel}>: {_digest_schedule(after)}"
        case "watch.on":
            return (
                f"turned the watch on in <#{after.get('channel_id')}> ({after.get('sensitivity')})"
            )
        case "watch.edit":
            return (
                f"changed the watch: <#{after.get('channel_id')}>, {after.get('sensitivity')}"
                f" (was <#{before.get('channel_id')}>, {before.get('sensitivity')})"
            )
        case "watch.off":
            return f"turned the watch off (it alerted in <#{before.get('channel_id')}>)"
        case "watch.snooze":
            until = _instant(after.get("snoozed_until"))
            return f"snoozed the watch until {local_time(until, tz) if until else 'later'}"
        case "watch.expected":
            until = _instant(after.get("until"))
            entity = escape(str(after.get("entity", "")))
            return (
                f"marked `{entity}` ({escape(str(after.get('rule', '')))}) as expected until"
                f" {local_time(until, tz) if until else 'later'}"
            )
        case "digest.off":
            channel = before.get("channel_id") or target.partition(":")[2]
            return f"turned off the digest in <#{channel}> (was {_digest_schedule(before)})"
        case _:
            # An action this renderer does not know yet still shows who did what.
            diff = changes(before, after)
            return f"`{entry.action}` {target}" + (f": {'; '.join(diff)}" if diff else "")


def _digest_schedule(snapshot: Mapping[str, Any]) -> str:
    """An audited digest's schedule; entries from before weekly and monthly digests existed
    have no cadence: they were daily."""
    weekday = snapshot.get("weekday")
    return schedule_words(
        str(snapshot.get("cadence") or "daily"),
        weekday if isinstance(weekday, int) and 0 <= weekday <= 6 else None,
        str(snapshot.get("local_time")),
        quiet=snapshot.get("when_empty") == "skip",
    )


def _target_label(
    target: str, before: Mapping[str, Any], after: Mapping[str, Any], labels: Mapping[int, str]
) -> str:
    kind, _, ident = target.partition(":")
    if kind != "budget" or not ident.isdigit():
        return target
    snapshot = after or before
    if "period" in snapshot:
        # Named as it was then: the budget may since have been changed or removed.
        ref = str(snapshot.get("scope", "")).partition(":")[2]
        name = snapshot.get("scope_name") or ref or "Team"
        return escape(clip(f"#{ident} {name} {snapshot['period']}", LABEL_LIMIT))
    return _label(int(ident), labels)


def _snapshot(data: Mapping[str, Any]) -> str:
    """`12,000 CU monthly · project Marketing · alerts at 50, 90 % · <#C1>` from an audit row."""
    head = []
    if "limit_cu" in data:
        head.append(_shown(lambda v: cu(float(v)), data["limit_cu"]))
    if "period" in data:
        head.append(period_words(str(data["period"])))
    parts = [" ".join(head)] if head else []
    if "scope" in data:
        parts.append(scope_words(str(data["scope"]), data.get("scope_name")))
    if "thresholds" in data:
        parts.append(thresholds_words(data["thresholds"] or (), bool(data.get("forecast"))))
    if data.get("channel_id"):
        parts.append(f"<#{data['channel_id']}>")
    return " · ".join(parts)


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
