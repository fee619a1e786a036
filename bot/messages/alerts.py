"""Budget alerts as Slack messages: the one message per budget and period, the thread
replies that tell its story, and the notice that Scenario can't be read. Pure.

Every message carries a top-level `text` (notifications, screen readers) and stays within
Slack's limits whatever the data: lists are cut to a few lines and every text is clipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.budgets.culprits import Attribution
from bot.budgets.forecast import Forecast
from bot.messages.culprits import culprit_sections
from bot.messages.mrkdwn import (
    Json,
    button,
    clip,
    context,
    cu,
    duration,
    escape,
    header,
    local_time,
    percent,
    progress_bar,
    reply,
    section,
    slack_date,
    who,
)

ACTION_SNOOZE = "budget_snooze_24h"
ACTION_ACKNOWLEDGE = "alert_acknowledge"
ACTION_OPEN = "open_in_scenario"
ACTION_RAISE = "alert_raise_budget"
STATUS_SNOOZE = "alert_status_snooze"
STATUS_ACK = "alert_status_ack"
STATUS_LIMIT = "alert_status_limit"


@dataclass(frozen=True, slots=True)
class AlertView:
    """Everything an alert message shows: the alert's latest state, already decided."""

    alert_id: int
    budget_id: int
    budget_label: str  # may hold a Scenario name: escaped here, where it meets mrkdwn
    period_label: str
    tz: str
    top_level: int | None
    forecast_announced: bool
    spend_cu: float
    limit_cu: float
    time_left: timedelta | None
    forecast: Forecast | None
    period_end: datetime | None
    attribution: Attribution
    open_url: str
    acknowledged: tuple[str, datetime] | None = None  # who, when
    snoozed: tuple[str, datetime] | None = None  # who, until
    limit_changed: LimitChange | None = None  # the latest, while this message is current


@dataclass(frozen=True, slots=True)
class LimitChange:
    actor: str
    before_cu: float
    after_cu: float
    at: datetime


def alert_title(view: AlertView) -> tuple[str, str]:
    """The icon and the plain title (a header is plain text: nothing in it is parsed)."""
    if view.top_level is not None:
        icon = "🔴" if view.top_level >= 100 else "🟠" if view.top_level >= 80 else "🟡"
        return icon, f"{view.budget_label}: {view.top_level} % of budget reached"
    if view.forecast_announced:
        return "🔮", f"{view.budget_label}: on track to exceed its limit"
    used = percent(view.spend_cu, view.limit_cu)
    return "✅", f"{view.budget_label}: back under its thresholds ({used})"


def forecast_range(projection: Forecast) -> str:
    """`9,800–11,200 CU`: the cautious end (which alerts) to the end at today's pace."""
    low, high = cu(projection.projected_cu), cu(projection.high_cu)
    return low if low == high else f"{low.removesuffix(' CU')}–{high}"


def forecast_line(projection: Forecast, tz: str, end: datetime | None) -> str:
    # The last day of the period, not its end instant (midnight, the next day).
    by = (
        f" by {(end - timedelta(seconds=1)).astimezone(ZoneInfo(tz)).strftime('%d %b')}"
        if end
        else ""
    )
    line = f"📈 Forecast: likely {forecast_range(projection)}{by}"
    if projection.exhaustion_at is not None:
        line += f"; the limit is reached around {local_time(projection.exhaustion_at, tz)}"
    return line


def alert_message(view: AlertView) -> Json:
    used = percent(view.spend_cu, view.limit_cu)
    icon, title = alert_title(view)
    text = f"{icon} {escape(title)} — {cu(view.spend_cu)} of {cu(view.limit_cu)} ({used})"

    lines = [f"*{cu(view.spend_cu)}* of {cu(view.limit_cu)} · *{used}* used"]
    lines.append(progress_bar(view.spend_cu, view.limit_cu))
    if view.time_left is not None:
        lines.append(f"⏳ {duration(view.time_left)} left in {view.period_label}")
    else:
        lines.append(f"⏳ {view.period_label}")
    if view.forecast is not None:
        lines.append(forecast_line(view.forecast, view.tz, view.period_end))

    blocks: list[Json] = [header(f"{icon} {title}"), section("\n".join(lines))]
    blocks += culprit_sections(view.attribution, view.spend_cu)
    if view.attribution.partial:
        blocks.append(context("Job list based on the most recent activity only."))
    if view.snoozed is not None:
        snoozer, until = view.snoozed
        line = context(f"💤 Snoozed by {who(snoozer)} until {slack_date(until, view.tz)}")
        blocks.append(line | {"block_id": STATUS_SNOOZE})
    if view.acknowledged is not None:
        acknowledger, at = view.acknowledged
        line = context(f"✅ Acknowledged by {who(acknowledger)} · {slack_date(at, view.tz)}")
        blocks.append(line | {"block_id": STATUS_ACK})
    if (change := view.limit_changed) is not None:
        verb = "raised" if change.after_cu > change.before_cu else "lowered"
        line = context(
            f"✏️ Limit {verb} to {cu(change.after_cu)} (from {cu(change.before_cu)}) by "
            f"{who(change.actor)} · {slack_date(change.at, view.tz)}"
        )
        blocks.append(line | {"block_id": STATUS_LIMIT})
    buttons = [
        button("Snooze 24 h", ACTION_SNOOZE, value=str(view.budget_id)),
        button("Acknowledge", ACTION_ACKNOWLEDGE, value=str(view.alert_id)),
    ]
    if view.top_level is not None or view.forecast_announced:  # over a level, or heading there
        buttons.append(button("Raise budget", ACTION_RAISE, value=str(view.alert_id)))
    buttons.append(button("Open in Scenario", ACTION_OPEN, url=view.open_url))
    blocks.append({"type": "actions", "block_id": f"alert:{view.alert_id}", "elements": buttons})
    return {"text": text, "blocks": blocks}


def test_alert_message(view: AlertView, thresholds: tuple[int, ...]) -> Json:
    """`/budget test`: the budget's alert as it would look now, with the real figures, marked
    as a test. Only the link button: the others would act on a real alert, and there is none."""
    message = alert_message(view)
    icon, title = alert_title(view)
    if view.top_level is None and not view.forecast_announced:
        icon, title = "🧪", f"{view.budget_label}: {percent(view.spend_cu, view.limit_cu)} used"
    levels = ", ".join(f"{t} %" for t in thresholds)
    blocks = [header(f"🧪 Test · {icon} {title}"), *message["blocks"][1:-1]]
    blocks.append(
        context(
            f"🧪 *This is a test*, with today's real figures. Real alerts come at {levels}"
            " (one message per period, updated in place) with *Snooze 24 h*, *Acknowledge* and"
            " *Raise budget*. Nothing was changed."
        )
    )
    blocks.append(
        {
            "type": "actions",
            "block_id": f"alert-test:{view.budget_id}",
            "elements": [button("Open in Scenario", ACTION_OPEN, url=view.open_url)],
        }
    )
    used = percent(view.spend_cu, view.limit_cu)
    text = f"🧪 Test · {icon} {escape(title)} — {cu(view.spend_cu)} of {cu(view.limit_cu)} ({used})"
    return {"text": text, "blocks": blocks}


def level_reply(level: int, spend: float, limit: float) -> Json:
    return reply(
        f"⬆️ Now at {percent(spend, limit)}: crossed {level} % ({cu(spend)} of {cu(limit)})."
    )


def forecast_reply(projection: Forecast | None, tz: str, end: datetime | None) -> Json:
    line = forecast_line(projection, tz, end) if projection else "📈 Forecast over the limit."
    return reply(f"🔮 On track to exceed the limit. {line.removeprefix('📈 ')}")


def back_under_reply(level: int, spend: float, limit: float) -> Json:
    return reply(f"✅ Back under {level} %: {cu(spend)} of {cu(limit)} in the window.")


def edited_reply(
    actor: str, limit: float, thresholds: list[int], spend: float, *, before: float | None = None
) -> Json:
    levels = ", ".join(f"{level} %" for level in thresholds)
    if before is not None and before != limit:
        verb = "raised" if limit > before else "lowered"
        what = f"{verb} the limit to {cu(limit)} (from {cu(before)}), alerts at {levels}"
    else:
        what = f"changed the budget: limit {cu(limit)}, alerts at {levels}"
    return reply(
        f"✏️ {who(actor)} {what}. Levels above the {cu(spend)} spent so far will alert again."
    )


def snoozed_reply(actor: str, until: datetime, tz: str, *, subject: str = "this budget") -> Json:
    return reply(f"💤 {who(actor)} snoozed {subject} until {slack_date(until, tz)}.")


def unsnoozed_reply(actor: str, *, subject: str = "this budget") -> Json:
    return reply(f"🔔 {who(actor)} ended the snooze: {subject} alerts again.")


def acknowledged_reply(actor: str) -> Json:
    return reply(f"👀 <@{actor}> acknowledged this alert.")


def scenario_health_message(
    *, failing: bool, cause: str, detail: str, checks: int, admins: tuple[str, ...] = ()
) -> Json:
    if failing:
        text = (
            f"⚠️ Budget checks are paused: Scenario could not be read {checks} times in a row "
            f"({cause}). No alert can fire until this is fixed. Last error: {escape(detail)}"
        )
    else:
        text = "✅ Scenario can be read again; budget checks have resumed."
    if admins:
        text = " ".join(f"<@{admin}>" for admin in admins) + " " + text
    return {"text": clip(text, 2000), "blocks": [section(text)]}
