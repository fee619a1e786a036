"""What happens to a budget's alert now: a pure function of spend, period and alert state.

An *alert* is one budget's story in one period — for a rolling window, in one episode —
and owns exactly one Slack message (SPEC §5). Its state is the set of threshold levels
passed and whether the forecast was announced. A check turns (rule, spend, period, state)
into events on that alert; the first event posts the message, every later one edits it and
adds one reply to its thread.

- Calendar and billing periods: a level is passed once per period; the next period (a new
  key) starts a new alert with nothing passed.
- Rolling windows: a passed level re-arms only once spend falls under `REARM_SHARE` of it
  (hysteresis: spend hovering at a threshold does not flap), which is announced as "back
  under"; when every level has re-armed the episode is closed and the next crossing opens
  a new alert (`rolling:24h#2`).
- While snoozed the alert is frozen: nothing is announced, and a crossing made during the
  snooze is announced after it if spend is still above.
- Editing the limit or thresholds re-arms the levels above the spend seen at the edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from bot.budgets.forecast import Forecast
from bot.budgets.periods import Period

REARM_SHARE = 0.9


class AlertKind(StrEnum):
    """What a line of the alert history (`alert_state`) records."""

    THRESHOLD = "threshold"
    FORECAST = "forecast"


FORECAST_LEVEL = 0


class EventKind(StrEnum):
    LEVEL = "level"
    FORECAST = "forecast"
    BACK_UNDER = "back_under"
    EDITED = "edited"
    SNOOZED = "snoozed"
    UNSNOOZED = "unsnoozed"
    ACKNOWLEDGED = "acknowledged"
    # The watch's episodes (SPEC §5b): found, back to usual, marked as expected.
    ANOMALY = "anomaly"
    ANOMALY_ENDED = "anomaly_ended"
    EXPECTED = "expected"
    KEY_REVOKED = "key_revoked"


@dataclass(frozen=True, slots=True)
class BudgetRule:
    limit_cu: float
    thresholds: tuple[int, ...]
    forecast: bool = False


@dataclass(frozen=True, slots=True)
class AlertState:
    """The part of an alert that decides what comes next."""

    period_key: str
    passed: frozenset[int] = frozenset()
    forecast: bool = False
    closed: bool = False

    @property
    def top_level(self) -> int | None:
        return max(self.passed, default=None)


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    level: int | None = None  # LEVEL: the highest level passed; BACK_UNDER: the lowest left
    # LEVEL: every level passed by this event (a jump passes several at once).
    levels: tuple[int, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class AlertChange:
    """New state for the alert keyed `state.period_key` and what to announce on it.

    `opens`: the alert is new (its first event posts the message)."""

    state: AlertState
    events: tuple[Event, ...]
    opens: bool


@dataclass(frozen=True, slots=True)
class Decisions:
    changes: tuple[AlertChange, ...] = field(default=())
    projection: Forecast | None = None

    def __bool__(self) -> bool:
        return any(change.events for change in self.changes)


def percent_used(spend: float, limit: float) -> float:
    return spend / limit * 100


def episode_key(period: Period, number: int) -> str:
    return f"{period.key}#{number}"


def evaluate(
    rule: BudgetRule,
    spend: float,
    period: Period,
    now: datetime,
    current: AlertState | None,
    *,
    episodes: int = 0,
    snoozed_until: datetime | None = None,
    projection: Forecast | None = None,
) -> Decisions:
    """`current`: this period's alert (rolling: the latest episode of the window, if it is
    not closed); `episodes`: how many this window had (numbers the next one)."""
    if snoozed_until is not None and now < snoozed_until:
        return Decisions(projection=projection)
    used = percent_used(spend, rule.limit_cu)
    changes: list[AlertChange] = []
    state = current if current is not None and not current.closed else None

    if state is not None and period.kind.is_rolling:
        rearmed = {level for level in state.passed if used < level * REARM_SHARE}
        if rearmed:
            left = state.passed - rearmed
            state = replace(state, passed=left, closed=not left)
            changes.append(AlertChange(state, (Event(EventKind.BACK_UNDER, min(rearmed)),), False))
            if state.closed:
                state = None

    events: list[Event] = []
    passed = state.passed if state is not None else frozenset()
    newly = {level for level in rule.thresholds if used >= level and level not in passed}
    if newly:
        events.append(Event(EventKind.LEVEL, max(newly), tuple(sorted(newly))))
    announced = state.forecast if state is not None else False
    if (
        rule.forecast
        and not announced
        and projection is not None
        and projection.projected_cu > rule.limit_cu
        and spend < rule.limit_cu
    ):
        events.append(Event(EventKind.FORECAST))
    if events:
        opens = state is None
        if state is None:
            key = episode_key(period, episodes + 1) if period.kind.is_rolling else period.key
            state = AlertState(key)
        state = replace(
            state,
            passed=state.passed | newly,
            forecast=state.forecast or any(e.kind is EventKind.FORECAST for e in events),
        )
        if changes and changes[-1].state.period_key == state.period_key:
            merged = changes.pop()
            changes.append(AlertChange(state, (*merged.events, *events), merged.opens))
        else:
            changes.append(AlertChange(state, tuple(events), opens))
    return Decisions(changes=tuple(changes), projection=projection)


def rearm(
    state: AlertState, *, seen_spend: float, rule: BudgetRule, old_limit: float, rolling: bool
) -> AlertState:
    """The state after a budget edit: the levels of the new rule at or under the spend seen
    then count as passed (they are not announced again); those above it are armed. The
    forecast re-arms with a new limit."""
    used = percent_used(seen_spend, rule.limit_cu)
    passed = frozenset(level for level in rule.thresholds if used >= level)
    forecast = state.forecast and rule.limit_cu == old_limit
    return replace(state, passed=passed, forecast=forecast, closed=rolling and not passed)
