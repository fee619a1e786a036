"""A backtest in words (SPEC §4): "would have alerted 3 times: 50 % on 4 Nov, …". Pure."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.budgets.backtest import HORIZON, Announced, Backtest
from bot.budgets.evaluate import BudgetRule, EventKind
from bot.budgets.types import PeriodKind, Scope
from bot.messages.budgets import period_words, scope_words, thresholds_words
from bot.messages.mrkdwn import Json, context, cu, section

LISTED = 6  # events named one by one; past that, counted
# Budgets whose periods are short enough to alert most days are summed up, not listed.
SUMMED = frozenset({PeriodKind.DAILY, *(k for k in PeriodKind if k.is_rolling)})


def _day(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%-d %b")


def _what(event: Announced, tz: str) -> str:
    said = "forecast over the limit" if event.kind is EventKind.FORECAST else f"{event.level} %"
    return f"{said} on {_day(event.at, tz)}"


def _days() -> int:
    return round(HORIZON.total_seconds() / 86400)


def backtest_text(found: Backtest, limit: float, kind: PeriodKind, tz: str) -> str:
    return f"📊 *Over the last {_days()} days* this budget {_verdict(found, limit, kind, tz)}"


def form_preview_text(
    found: Backtest, rule: BudgetRule, kind: PeriodKind, scope: Scope, name: str | None, tz: str
) -> str:
    """The backtest under the budget form, led by what it replayed — limit, period, scope and
    levels: the form may have been typed on since, and this says whether it still shows that.
    mrkdwn; the scope's name (Scenario's) is escaped."""
    limit = rule.limit_cu
    what = f"{cu(limit)} {period_words(kind.value)}, {scope_words(str(scope), name)}"
    levels = thresholds_words(rule.thresholds, rule.forecast)
    return (
        f"📊 *{what}* ({levels}) — over the last {_days()} days it"
        f" {_verdict(found, limit, kind, tz)}\n"
        f"_Replayed with the checks' own rules from {found.reads} Scenario reads._"
    )


def _verdict(found: Backtest, limit: float, kind: PeriodKind, tz: str) -> str:
    """`would have alerted 3 times: 50 % on 4 Nov, …` — what follows the subject."""
    worst = ""
    if found.worst_at is not None and limit > 0:
        worst = f"{found.worst_cu / limit * 100:.0f} % on {_day(found.worst_at, tz)}"
    alerts = found.alerts
    if not alerts:
        return "would not have alerted" + (f" (at most {worst})." if worst else ".")
    if kind in SUMMED:
        alert_days = len({_day(a.at, tz) for a in alerts})
        plural = "s" if alert_days != 1 else ""
        return (
            f"would have alerted on {alert_days} day{plural} ({len(alerts)} alerts in"
            f" {found.messages} message{'s' if found.messages != 1 else ''}); worst: {worst}."
        )
    listed = ", ".join(_what(a, tz) for a in alerts[:LISTED])
    more = f" and {len(alerts) - LISTED} more" if len(alerts) > LISTED else ""
    times = "once" if len(alerts) == 1 else f"{len(alerts)} times"
    return f"would have alerted {times}: {listed}{more}."


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
