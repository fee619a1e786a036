"""Which alerts a budget owes now: a pure function of spend, period and what already fired.

The state machine, per budget and threshold level (Alertmanager-like):
- calendar and billing periods: a level fires at most once per period key; the next period
  starts clean because its key differs;
- rolling windows: a level fires, stays open while spend is at or above it, and is resolved
  when spend falls back under it; a later crossing is a new episode with a new key
  (`rolling:24h#2`), so the unique (budget, period key, kind, level) row still means
  "alerted once";
- while snoozed nothing fires; a crossing made during the snooze fires when the snooze ends
  if spend is still above, because nothing was recorded for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.budgets.forecast import Forecast
from bot.budgets.periods import Period


class AlertKind(StrEnum):
    THRESHOLD = "threshold"
    FORECAST = "forecast"


FORECAST_LEVEL = 0


@dataclass(frozen=True, slots=True)
class BudgetRule:
    limit_cu: float
    thresholds: tuple[int, ...]
    forecast: bool = False


@dataclass(frozen=True, slots=True)
class FiredAlert:
    """An alert already recorded for this budget (one alert-state row)."""

    period_key: str
    kind: AlertKind
    level: int
    resolved: bool = False


@dataclass(frozen=True, slots=True)
class Crossing:
    """Post one alert at `level`; record every level in `passed` (ascending, ends with level)."""

    passed: tuple[tuple[int, str], ...]  # (level, period key) for each newly crossed level
    spend_cu: float
    limit_cu: float

    @property
    def level(self) -> int:
        return self.passed[-1][0]

    @property
    def period_key(self) -> str:
        return self.passed[-1][1]

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(level for level, _ in self.passed)


@dataclass(frozen=True, slots=True)
class ForecastAlert:
    period_key: str
    forecast: Forecast
    spend_cu: float
    limit_cu: float


@dataclass(frozen=True, slots=True)
class Resolution:
    """A rolling window's spend fell back under a level that had fired."""

    period_key: str
    level: int
    spend_cu: float
    limit_cu: float


@dataclass(frozen=True, slots=True)
class Decisions:
    crossing: Crossing | None = None
    forecast: ForecastAlert | None = None
    resolutions: tuple[Resolution, ...] = field(default=())

    def __bool__(self) -> bool:
        return self.crossing is not None or self.forecast is not None or bool(self.resolutions)


def percent_used(spend: float, limit: float) -> float:
    return spend / limit * 100


def evaluate(
    rule: BudgetRule,
    spend: float,
    period: Period,
    now: datetime,
    fired: Sequence[FiredAlert],
    *,
    snoozed_until: datetime | None = None,
    projection: Forecast | None = None,
) -> Decisions:
    used = percent_used(spend, rule.limit_cu)
    snoozed = snoozed_until is not None and now < snoozed_until
    thresholds = [f for f in fired if f.kind is AlertKind.THRESHOLD]

    if period.kind.is_rolling:
        open_alerts = [f for f in thresholds if _in_window(f, period) and not f.resolved]
        resolutions = tuple(
            Resolution(f.period_key, f.level, spend, rule.limit_cu)
            for f in sorted(open_alerts, key=lambda f: f.level)
            if used < f.level
        )
        still_open = {f.level for f in open_alerts} - {r.level for r in resolutions}
        episodes = {
            level: 1 + sum(1 for f in thresholds if _in_window(f, period) and f.level == level)
            for level in rule.thresholds
        }
        newly = [
            (level, f"{period.key}#{episodes[level]}")
            for level in sorted(rule.thresholds)
            if used >= level and level not in still_open
        ]
    else:
        resolutions = ()
        already = {f.level for f in thresholds if f.period_key == period.key}
        newly = [
            (level, period.key)
            for level in sorted(rule.thresholds)
            if used >= level and level not in already
        ]

    crossing = None
    if newly and not snoozed:
        crossing = Crossing(passed=tuple(newly), spend_cu=spend, limit_cu=rule.limit_cu)

    forecast_alert = None
    forecast_fired = any(f.kind is AlertKind.FORECAST and f.period_key == period.key for f in fired)
    if (
        rule.forecast
        and projection is not None
        and projection.projected_cu > rule.limit_cu
        and spend < rule.limit_cu
        and not forecast_fired
        and not snoozed
    ):
        forecast_alert = ForecastAlert(period.key, projection, spend, rule.limit_cu)

    return Decisions(crossing=crossing, forecast=forecast_alert, resolutions=resolutions)


def _in_window(alert: FiredAlert, period: Period) -> bool:
    return alert.period_key.startswith(period.key + "#")
