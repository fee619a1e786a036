"""Projected spend at the end of a period, from the pace so far. Pure.

How: the spending rate is the mean of two rates — the average over the whole period so far
and the rate over the most recent 24 h (or less, early on). The period average alone reacts
too slowly to a runaway job started this morning; the recent rate alone over-reacts to one
busy afternoon. Blending them halves both errors, and needs only what the usage API already
returns (the CU time series of the period).

Honesty rule: no forecast before `MIN_ELAPSED_FRACTION` of the period and `MIN_DATA` of
data have passed — a projection from the first hours of a month is noise, and a false
"you will overspend" alert is exactly what teams learn to ignore. Rolling windows have no
end to project to, so they get no forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.budgets.periods import Period

MIN_ELAPSED_FRACTION = 0.2
MIN_DATA = timedelta(hours=6)
RECENT_WINDOW = timedelta(hours=24)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Forecast:
    projected_cu: float
    rate_cu_per_hour: float
    # When spend reaches the limit at this pace, if that happens before the period ends.
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
    empty (no per-scope series exists, e.g. for one user) the period average is used alone.
    """
    if period.kind.is_rolling:
        return None
    elapsed = now - period.start
    if elapsed < MIN_DATA or period.elapsed_fraction(now) < MIN_ELAPSED_FRACTION:
        return None
    average_rate = spend / (elapsed / _HOUR)
    rate = average_rate
    recent = _recent_rate(series, now)
    if recent is not None:
        rate = (average_rate + recent) / 2
    remaining = period.time_left(now)
    projected = spend + rate * (remaining / _HOUR)
    exhaustion_at = None
    if spend < limit and rate > 0:
        at = now + _HOUR * ((limit - spend) / rate)
        exhaustion_at = at if at < period.end else None
    return Forecast(projected_cu=projected, rate_cu_per_hour=rate, exhaustion_at=exhaustion_at)


def _recent_rate(series: Sequence[tuple[datetime, float]], now: datetime) -> float | None:
    """CU per hour over the buckets that start within the recent window."""
    since = now - RECENT_WINDOW
    recent = [(start, cu) for start, cu in series if since <= start < now]
    if not recent:
        return None
    first = min(start for start, _ in recent)
    hours = (now - first) / _HOUR
    if hours <= 0:
        return None
    return sum(cu for _, cu in recent) / hours
