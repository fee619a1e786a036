"""A backtest in words (SPEC §4): "would have alerted 3 times: 50 % on 4 Nov, …". Pure."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.budgets.backtest import HORIZON, Announced, Backtest
from bot.budgets.evaluate import EventKind
from bot.budgets.types import PeriodKind
from bot.messages.mrkdwn import Json, context, section

LISTED = 6  # events named one by one; past that, counted
# Budgets whose periods are short enough to alert most days are summed up, not listed.
SUMMED = frozenset({PeriodKind.DAILY, *(k for k in PeriodKind if k.is_rolling)})


def _day(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%-d %b")


def _what(event: Announced, tz: str) -> str:
    said = "forecast over the limit" if event.kind is EventKind.FORECAST else f"{event.level} %"
    return f"{said} on {_day(event.at, tz)}"


def backtest_text(found: Backtest, limit: float, kind: PeriodKind, tz: str) -> str:
    days = round(HORIZON.total_seconds() / 86400)
    lead = f"📊 *Over the last {days} days* this budget"
    worst = ""
    if found.worst_at is not None and limit > 0:
        worst = f"{found.worst_cu / limit * 100:.0f} % on {_day(found.worst_at, tz)}"
    alerts = found.alerts
    if not alerts:
        return f"{lead} would not have alerted" + (f" (at most {worst})." if worst else ".")
    if kind in SUMMED:
        alert_days = len({_day(a.at, tz) for a in alerts})
        plural = "s" if alert_days != 1 else ""
        return (
            f"{lead} would have alerted on {alert_days} day{plural} ({len(alerts)} alerts in"
            f" {found.messages} message{'s' if found.messages != 1 else ''}); worst: {worst}."
        )
    listed = ", ".join(_what(a, tz) for a in alerts[:LISTED])
    more = f" and {len(alerts) - LISTED} more" if len(alerts) > LISTED else ""
    times = "once" if len(alerts) == 1 else f"{len(alerts)} times"
    return f"{lead} would have alerted {times}: {listed}{more}."


def backtest_blocks(found: Backtest, limit: float, kind: PeriodKind, tz: str) -> list[Json]:
    return [
        section(backtest_text(found, limit, kind, tz)),
        context(
            f"Replayed hour by hour with the checks' own rules, from {found.reads} Scenario"
            " reads. Change the limit or thresholds with `/budget edit` to see it again."
        ),
    ]


def no_backtest(reason: str) -> list[Json]:
    return [context(f"📊 {reason}")]
