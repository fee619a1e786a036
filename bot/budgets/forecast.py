"""Projected spend at the end of a period, as a range, from the pace so far. Pure.

The range:
- the *cautious* end extrapolates the period's spend at most once more: spend + remaining ×
  spend / max(elapsed, remaining). From half-way on this is the plain period-average pace;
  before, it assumes the rest of the period spends no more than what was spent so far.
  It decides the forecast alert, because it cannot jump: a job of j CU moves it by at most
  2 j, whenever it ran — so one job, a busy morning or the first minutes of a new day never
  make a forecast alert on their own (the old blend of a "recent rate" divided a partial
  bucket by the few minutes it covered and projected a 40 CU job at 00:01 to 156k CU);
- the *high* end is spend + remaining × the faster of the period-average and the recent
  rate, where the recent rate is measured over the latest buckets covering at least 24 h,
  each weighed by the time it covers (a partial bucket counts only the minutes it holds).
  It shows how bad things get if today's pace goes on, but never fires an alert by itself.

Honesty rule: no forecast before `MIN_ELAPSED_FRACTION` of the period and `MIN_DATA` of
data have passed. Rolling windows have no end to project to, so they get no forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from bot.budgets.periods import Period

MIN_ELAPSED_FRACTION = 0.2
MIN_DATA = timedelta(hours=6)
RECENT_WINDOW = timedelta(hours=24)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Forecast:
    projected_cu: float  # the cautious end: what the forecast alert is decided on
    high_cu: float  # the end of the range if the recent pace goes on
    rate_cu_per_hour: float  # the period's average pace
    # When spend reaches the limit at the period's average pace, if before the period ends.
    exhaustion_at: datetime | None


def forecast(
    *,
    spend: float,
    limit: float,
    period: Period,
    now: datetime,
    series: Sequence[tuple[datetime, float]] = (),
) -> Forecast | None:
    """Project `spend` to the end of `period`; None when it is too early to say honestly.

    `series` is the scope's CU per time bucket within the period (bucket start, CU); when
    empty (no per-scope series exists, e.g. for one user) the high end uses the period
    average alone.
    """
    if period.kind.is_rolling:
        return None
    elapsed = (now - period.start) / _HOUR
    if elapsed < MIN_DATA / _HOUR or period.elapsed_fraction(now) < MIN_ELAPSED_FRACTION:
        return None
    remaining = max(0.0, period.time_left(now) / _HOUR)
    average_rate = spend / elapsed
    cautious = spend + remaining * spend / max(elapsed, remaining)
    recent = recent_rate(series, now)
    high = spend + remaining * max(average_rate, recent or 0.0)
    exhaustion_at = None
    if spend < limit and average_rate > 0:
        hours_to_limit = (limit - spend) / average_rate
        # Compared in hours first: a tiny pace would overflow a timedelta.
        exhaustion_at = now + _HOUR * hours_to_limit if hours_to_limit < remaining else None
    return Forecast(
        projected_cu=cautious,
        high_cu=max(high, cautious),
        rate_cu_per_hour=average_rate,
        exhaustion_at=exhaustion_at,
    )


def recent_rate(series: Sequence[tuple[datetime, float]], now: datetime) -> float | None:
    """CU per hour over the latest buckets that together cover at least `RECENT_WINDOW`.

    The last bucket runs from its start to `now` (it may have just begun); earlier buckets
    are taken whole until the time covered reaches the window, so the rate is always a sum
    of CU over the real time that holds it. None when the series covers no time at all.
    """
    past = sorted((start, cu) for start, cu in series if start < now)
    if not past:
        return None
    total = 0.0
    since = now
    for start, cu in reversed(past):
        total += cu
        since = start
        if now - since >= RECENT_WINDOW:
            break
    hours = (now - since) / _HOUR
    return total / hours if hours > 0 else None


# Without a forecast over the limit, the Raise button proposes this much more than the
# larger of the limit and what is spent already.
RAISE_WITHOUT_FORECAST = 1.25


def raise_suggestion(limit: float, spend: float, projection: Forecast | None) -> float:
    """The limit the Raise budget button fills in: the projection's high end when it is
    over the limit, else 25 % more; rounded up to two significant figures (14,321 → 15,000),
    and never below the limit or the spend."""
    if projection is not None and projection.high_cu > limit:
        target = max(projection.high_cu, spend)
    else:
        target = max(limit, spend) * RAISE_WITHOUT_FORECAST
    # The form takes at most two decimals.
    return float(round_up(target).quantize(Decimal("0.01"), ROUND_CEILING))


def round_up(value: float) -> Decimal:
    """The smallest number of two significant figures that is ≥ ``value`` (> 0)."""
    exact = Decimal(repr(value))
    step = Decimal(1).scaleb(exact.adjusted() - 1)
    return (exact / step).to_integral_value(rounding=ROUND_CEILING) * step
