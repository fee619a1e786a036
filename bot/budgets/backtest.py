"""How a budget would have behaved over past usage (SPEC §4: "would have alerted N times").
Pure: the same `evaluate` and `forecast` as the check cycle, stepped over a spend history.

The history is a series of buckets (start, end, CU) covering at least the first period the
window touches, from that period's start. At every step (an hour by default) the replay
does what a check at that instant does: the period the budget counts, its spend so far
from the complete buckets, the projection, and the decision from the alert state the
earlier steps left — calendar periods one state each, rolling windows a run of episodes.

A calendar period is also judged once more just before it ends, with all its buckets: the
check cycle's last check of a day sees that day's last hour, which the next hourly step
would count in the next day. A bucket a period boundary cuts (an hour across midnight in
Kolkata) is shared between the two periods in proportion to time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.budgets.evaluate import AlertState, BudgetRule, EventKind, evaluate
from bot.budgets.forecast import forecast
from bot.budgets.periods import ROLLING_LENGTHS, Period, period_at
from bot.budgets.types import PeriodKind

HORIZON = timedelta(days=30)
STEP = timedelta(hours=1)
LAST_CHECK = timedelta(milliseconds=1)  # how long before its end a period is judged whole


@dataclass(frozen=True, slots=True)
class Announced:
    """One thing the budget's alerts would have said: a level crossed, or the forecast."""

    at: datetime
    kind: EventKind  # LEVEL, FORECAST or BACK_UNDER
    level: int | None
    period_key: str  # which message it would have been part of (rolling: the episode)
    spend_cu: float


@dataclass(frozen=True, slots=True)
class Backtest:
    start: datetime
    end: datetime
    announced: tuple[Announced, ...]
    worst_cu: float  # the highest spend a step saw, and when
    worst_at: datetime | None
    reads: int = 0  # Scenario reads it took (filled in by whoever read the history)

    @property
    def alerts(self) -> tuple[Announced, ...]:
        """What would have been news: levels and forecasts (not "back under")."""
        return tuple(a for a in self.announced if a.kind is not EventKind.BACK_UNDER)

    @property
    def messages(self) -> int:
        """Alert messages: one per period (rolling: per episode)."""
        return len({a.period_key for a in self.alerts})


def history_start(kind: PeriodKind, start: datetime, tz: str) -> datetime:
    """Where the history must begin for the replay to know the spend of the first period
    it meets: that period's start (rolling: one window before)."""
    if kind.is_rolling:
        return start - ROLLING_LENGTHS[kind]
    return period_at(kind, start, tz).start


def replay(
    rule: BudgetRule,
    kind: PeriodKind,
    buckets: Sequence[tuple[datetime, datetime, float]],
    tz: str,
    start: datetime,
    end: datetime,
    *,
    step: timedelta = STEP,
) -> Backtest:
    """Every step in (start, end], and the last instant of every calendar period ending
    there: what a check then would have decided and announced. A step counts the buckets
    that lie wholly in its period so far."""
    if kind is PeriodKind.BILLING:
        raise ValueError("past billing periods are not known")
    series = sorted(_split_at_boundaries(kind, tz, [b for b in buckets if b[2]]))
    calendar: dict[str, AlertState] = {}
    episodes: list[AlertState] = []
    announced: list[Announced] = []
    worst, worst_at = 0.0, None
    for at, seen_until in _instants(kind, tz, start, end, step):
        period = period_at(kind, at, tz)
        seen = [(lo, cu) for lo, hi, cu in series if period.start <= lo and hi <= seen_until]
        spend = math.fsum(cu for _, cu in seen)
        if spend > worst:
            worst, worst_at = spend, at
        projection = None
        if rule.forecast:
            projection = forecast(
                spend=spend, limit=rule.limit_cu, period=period, now=at, series=seen
            )
        current = _current(period, calendar, episodes)
        decisions = evaluate(
            rule,
            spend,
            period,
            at,
            current,
            episodes=len(episodes) if kind.is_rolling else 0,
            projection=projection,
        )
        for change in decisions.changes:
            if kind.is_rolling:
                if change.opens:
                    episodes.append(change.state)
                else:
                    episodes[-1] = change.state
            else:
                calendar[change.state.period_key] = change.state
            announced += [
                Announced(at, event.kind, event.level, change.state.period_key, spend)
                for event in change.events
            ]
    return Backtest(start, end, tuple(announced), worst, worst_at)


def _instants(
    kind: PeriodKind, tz: str, start: datetime, end: datetime, step: timedelta
) -> list[tuple[datetime, datetime]]:
    """When the replay judges, and up to when the buckets it counts may reach: the steps,
    and for calendar periods each one's last instant, counting up to its end."""
    instants = []
    at = start
    while at < end:
        at = min(at + step, end)
        instants.append((at, at))
    if not kind.is_rolling:
        boundary = period_at(kind, start, tz).end
        while boundary <= end:
            instants.append((boundary - LAST_CHECK, boundary))
            boundary = period_at(kind, boundary, tz).end
    return sorted(instants)


def _split_at_boundaries(
    kind: PeriodKind, tz: str, buckets: Sequence[tuple[datetime, datetime, float]]
) -> list[tuple[datetime, datetime, float]]:
    """Buckets cut where calendar periods begin, each piece with its share of the CU."""
    if kind.is_rolling:
        return list(buckets)
    pieces = []
    for lo, hi, cu in buckets:
        if hi <= lo:
            pieces.append((lo, hi, cu))
            continue
        width = (hi - lo).total_seconds()
        at = lo
        while at < hi:
            cut = min(period_at(kind, at, tz).end, hi)
            pieces.append((at, cut, cu * (cut - at).total_seconds() / width))
            at = cut
    return pieces


def _current(
    period: Period, calendar: dict[str, AlertState], episodes: list[AlertState]
) -> AlertState | None:
    """The state a check reads: this period's alert; rolling: the window's latest episode."""
    if period.kind.is_rolling:
        return episodes[-1] if episodes else None
    return calendar.get(period.key)
