"""The watch detector (SPEC §5b): pure, no I/O, time as a parameter.

From hourly CU per API key, user, model and project (and the team), it finds what needs no
budget to be alarming:

1. **velocity** — the last hour's spend (or the last half hour's, at its hourly rate) is
   far above the busy end (90th percentile) of that entity's similar hours: the same local
   hour and its neighbours, on days of the same kind (weekday or weekend). Quantiles move
   one rank per past spike, not for ever. An entity with too little history of its own is
   measured against the team's pattern scaled to its own average. Its "usual" (the median
   of those hours) is what the message compares with. People, models and projects (which
   add people up) are bursty: their bar is higher than keys'. The team itself is not judged
   (budgets watch it; a launch lifts it with no cause of its own).
2. **new entity** — an API key or model with no spend in the history window (30 days)
   starts spending.
3. **off-hours** — an API key or user that spends regularly, but never at this local hour,
   spends now.

Every rule has a noise floor — an absolute CU minimum and a share of the team's usual daily
spend, the larger of the two — so small amounts are never reported. The sensitivity moves
thresholds and floors together.

One cause, one episode: a runaway key also lifts its model, its project and the team. A
finding on a broader entity that a more specific finding explains (the key spent on that
model or project, or its excess covers most of the broader one's) is folded into the
specific finding, which names it, instead of being reported on its own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.budgets.types import Scope, ScopeKind

HOUR = timedelta(hours=1)
HISTORY = timedelta(days=30)
# Velocity needs this much of an entity's own history; less, and the team's pattern is used.
OWN_HISTORY = timedelta(days=7)
# Off-hours needs a habit to break: spend on at least this many distinct days.
HABIT_DAYS = 7
# Velocity compares with the busy end of similar hours: one past spike in ten is ignored.
BUSY_QUANTILE = 0.9
# People (and the models and projects that add them up) are bursty: an afternoon of video
# renders is 200 CU above a busy hour. Their bar: twice the ratio, seven times the floor.
PEOPLE_FLOOR = 7.0
PEOPLE_RATIO = 2.0
_HISTORY_HOURS = int(HISTORY / HOUR)
# A key or model stays "new" for this long after its first spend.
NEW_FOR_HOURS = 24


class Rule(StrEnum):
    VELOCITY = "velocity"
    NEW_ENTITY = "new"
    OFF_HOURS = "off-hours"


class Sensitivity(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class Thresholds:
    ratio: float  # velocity: the last hour over the busy end of similar hours, at least
    floor_cu: float  # every rule: CU at least (over usual, for velocity)
    floor_share: float  # … and at least this share of the team's usual daily spend


THRESHOLDS: Mapping[Sensitivity, Thresholds] = {
    Sensitivity.LOW: Thresholds(ratio=5.0, floor_cu=100.0, floor_share=0.10),
    Sensitivity.NORMAL: Thresholds(ratio=3.0, floor_cu=50.0, floor_share=0.03),
    Sensitivity.HIGH: Thresholds(ratio=2.0, floor_cu=20.0, floor_share=0.02),
}

# The most specific cause first: a key or a person explains a model, a model a project.
_SPECIFICITY = {
    ScopeKind.KEY: 0,
    ScopeKind.USER: 0,
    ScopeKind.MODEL: 1,
    ScopeKind.PROJECT: 2,
    ScopeKind.TEAM: 3,
}
_RULES_FOR = {
    # Not the team: it is the sum of everything, budgets watch it, and a surge of the whole
    # team with no cause of its own (a launch) is no runaway.
    Rule.VELOCITY: frozenset(_SPECIFICITY) - {ScopeKind.TEAM},
    Rule.NEW_ENTITY: frozenset({ScopeKind.KEY, ScopeKind.MODEL}),
    Rule.OFF_HOURS: frozenset({ScopeKind.KEY, ScopeKind.USER}),
}
TEAM = Scope(ScopeKind.TEAM)


@dataclass(frozen=True, slots=True)
class HourlySpend:
    """CU per hour, oldest first, from ``start``; an hour with no data is 0.

    The last entry is the hour the detector judges: the latest 60 minutes (the check cycle
    makes it the hour ending now, so that a burst is seen minutes after it starts, not at
    the next full hour).
    """

    start: datetime
    values: Mapping[Scope, Sequence[float]]  # one series per entity, all the same length
    hours: int
    # CU of the last 30 minutes (the second half of the last hour), per entity, when the
    # data is that fine: a burst of half an hour is then judged on its own rate, not
    # diluted by the quiet half hour before it.
    last_half: Mapping[Scope, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        wrong = [e for e, v in self.values.items() if len(v) != self.hours]
        if wrong:
            raise ValueError(f"every series needs {self.hours} hours; not {wrong[:3]}")
        if self.hours and TEAM not in self.values:
            raise ValueError("the team's own series is needed (it sets the floor)")

    def series(self, entity: Scope) -> Sequence[float]:
        return self.values.get(entity, ())

    def hour_at(self, index: int) -> datetime:
        return self.start + index * HOUR


@dataclass(frozen=True, slots=True)
class Finding:
    entity: Scope
    rule: Rule
    spend_cu: float  # in the hour judged
    usual_cu: float  # what that hour usually costs this entity (0 for new / off-hours)
    since: datetime  # start of the first hour of this run of unusual hours
    # Broader entities this finding explains (its model, its project, the team).
    explains: tuple[Scope, ...] = field(default=())

    @property
    def ratio(self) -> float | None:
        """How many times the usual; None when there is no usual to compare with."""
        return self.spend_cu / self.usual_cu if self.usual_cu > 0 else None


def detect(
    spend: HourlySpend,
    *,
    tz: str,
    sensitivity: Sensitivity = Sensitivity.NORMAL,
    links: Mapping[Scope, frozenset[Scope]] | None = None,
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """What is unusual in the last hour of ``spend``, one finding per cause.

    ``links`` says which models and projects a key or user spent on lately (from the
    activity log); without it, a broader finding is folded into a specific one only when
    the specific one's excess covers most of it. ``thresholds`` replaces the sensitivity's
    (the evaluation bench tunes them).
    """
    if spend.hours < 2:
        return []
    thresholds = thresholds or THRESHOLDS[sensitivity]
    cal = _LocalHours(spend, ZoneInfo(tz))
    floor = max(thresholds.floor_cu, thresholds.floor_share * team_daily_usual(spend))
    findings = []
    for entity in spend.values:
        finding = _judge(spend, entity, cal, thresholds, floor)
        if finding is not None:
            findings.append(finding)
    return _one_per_cause(findings, links or {})


def team_daily_usual(spend: HourlySpend) -> float:
    """The median of the team's complete days of spend (24-hour blocks ending with the
    latest hour), 0 without a full day."""
    series = spend.series(TEAM)
    days = [sum(series[end - 24 : end]) for end in range(len(series), 23, -24)]
    return statistics.median(days) if days else 0.0


def _judge(
    spend: HourlySpend, entity: Scope, cal: _LocalHours, thresholds: Thresholds, floor: float
) -> Finding | None:
    series = spend.series(entity)
    last = len(series) - 1
    kind = entity.kind
    if kind in _RULES_FOR[Rule.NEW_ENTITY]:
        first = _new_since(series)
        if first is not None:
            # New for a day: judged on all it spent since, not on its (absent) habits.
            total = sum(series[first:])
            if total < floor:
                return None
            return Finding(entity, Rule.NEW_ENTITY, total, 0.0, spend.hour_at(first))
    now_cu = series[last] if series else 0.0
    if now_cu <= 0 or now_cu < floor:
        return None
    # Before velocity: against a usual of 0 a ratio says nothing; "never at this hour" does.
    off_floor = floor * (PEOPLE_FLOOR if kind is ScopeKind.USER else 1.0)
    if (
        kind in _RULES_FOR[Rule.OFF_HOURS]
        and now_cu >= off_floor
        and _never_at_this_hour(series, last, cal)
    ):
        return Finding(entity, Rule.OFF_HOURS, now_cu, 0.0, spend.hour_at(last))
    if kind in _RULES_FOR[Rule.VELOCITY] and _unusual(spend, entity, last, cal, thresholds, floor):
        since = _run_start(spend, entity, cal, thresholds, floor)
        return Finding(entity, Rule.VELOCITY, now_cu, _usual(spend, entity, last, cal), since)
    return None


def _new_since(series: Sequence[float]) -> int | None:
    """The hour an entity started spending, if that was within NEW_FOR and after a whole
    HISTORY window without spend (a shorter history cannot tell new from forgotten)."""
    last = len(series) - 1
    for i in range(max(_HISTORY_HOURS, last - NEW_FOR_HOURS + 1), last + 1):
        if series[i]:
            return None if any(series[i - _HISTORY_HOURS : i]) else i
    return None


def _unusual(
    spend: HourlySpend,
    entity: Scope,
    index: int,
    cal: _LocalHours,
    thresholds: Thresholds,
    floor: float,
) -> bool:
    """Far above the entity's *busy* similar hours (their 90th percentile), not only its
    median: a person who sometimes does five times their median hour is not a runaway,
    a key that never varies is one at three times its own."""
    cu = spend.series(entity)[index]
    high = _usual(spend, entity, index, cal, quantile=BUSY_QUANTILE)
    ratio = thresholds.ratio
    if entity.kind is not ScopeKind.KEY:
        # People are bursty (an afternoon of video renders), and models and projects add
        # people up; runaways and leaks are keys': a higher bar for the rest.
        floor, ratio = floor * PEOPLE_FLOOR, ratio * PEOPLE_RATIO
    bar = ratio * max(high, _tiny(spend, entity))
    if cu - high >= floor and cu >= bar:
        return True
    half = spend.last_half.get(entity) if index == spend.hours - 1 else None
    return half is not None and half - high / 2 >= floor and 2 * half >= bar


def _usual(
    spend: HourlySpend, entity: Scope, index: int, cal: _LocalHours, *, quantile: float = 0.5
) -> float:
    """The usual CU of the hour at ``index`` for ``entity`` (its median over similar hours,
    or another quantile), or with too little history the team's, scaled to the entity's
    average."""
    own = spend.series(entity)
    first = next((i for i, v in enumerate(own[:index]) if v), None)
    if first is not None and (index - first) * HOUR >= OWN_HISTORY:
        return _similar_hours(own, index, cal, since=first, quantile=quantile)
    team = spend.series(TEAM)
    team_usual = _similar_hours(team, index, cal, since=0, quantile=quantile)
    # Both averages since the entity's first spend: the zeros from before it existed would
    # make a young key's usual look tiny, and its steady habit look like a runaway.
    since = first if first is not None else index
    hours = index - since
    team_mean = sum(team[since:index]) / hours if hours else 0.0
    own_mean = sum(own[since:index]) / hours if hours else 0.0
    return team_usual * (own_mean / team_mean) if team_mean > 0 else 0.0


def _similar_hours(
    series: Sequence[float], index: int, cal: _LocalHours, *, since: int, quantile: float
) -> float:
    """A quantile (nearest rank) of the same local hour ±1 on days of the same kind
    (weekday or weekend), before ``index`` and from ``since`` on."""
    samples = sorted(series[i] for i in cal.similar(index) if i >= since)
    if not samples:
        return 0.0
    if quantile == 0.5:
        return statistics.median(samples)
    return samples[max(0, math.ceil(quantile * len(samples)) - 1)]


class _LocalHours:
    """The local hour, day and kind of day of every hour of a history, computed once per
    detection (time-zone conversions are what a naive loop would spend its time on)."""

    def __init__(self, spend: HourlySpend, zone: ZoneInfo) -> None:
        local = [spend.hour_at(i).astimezone(zone) for i in range(spend.hours)]
        self.hour = [t.hour for t in local]
        self.day = [t.date() for t in local]
        self.weekend = [t.weekday() >= 5 for t in local]
        self._buckets: dict[tuple[bool, int], list[int]] = {}
        for i, (weekend, hour) in enumerate(zip(self.weekend, self.hour, strict=True)):
            self._buckets.setdefault((weekend, hour), []).append(i)
        self._similar: dict[int, list[int]] = {}

    def similar(self, index: int) -> list[int]:
        """Earlier hours at the same local hour ±1, on days of the same kind."""
        found = self._similar.get(index)
        if found is None:
            weekend, hour = self.weekend[index], self.hour[index]
            found = sorted(
                i
                for h in ((hour - 1) % 24, hour, (hour + 1) % 24)
                for i in self._buckets.get((weekend, h), ())
                if i < index
            )
            self._similar[index] = found
        return found


def _tiny(spend: HourlySpend, entity: Scope) -> float:
    """A lower bound for "usual" so that an entity usually at 0 this hour is compared with
    its own average hour since it first spent, not with 0 (any spend would be infinitely
    above 0)."""
    earlier = spend.series(entity)[:-1]
    first = next((i for i, v in enumerate(earlier) if v), None)
    if first is None:
        return 0.0
    return sum(earlier[first:]) / (len(earlier) - first)  # since its first spend


def _run_start(
    spend: HourlySpend, entity: Scope, cal: _LocalHours, thresholds: Thresholds, floor: float
) -> datetime:
    """The first hour of the run of unusual hours that ends with the latest one."""
    index = len(spend.series(entity)) - 1
    while index > 0 and _unusual(spend, entity, index - 1, cal, thresholds, floor):
        index -= 1
    return spend.hour_at(index)


def _never_at_this_hour(series: Sequence[float], index: int, cal: _LocalHours) -> bool:
    """A habit (spend on HABIT_DAYS distinct local days or more) that never included this
    local hour or its neighbours. An hour is part of the habit once spent at on two days:
    one incident does not make 3 a.m. usual for good, and a nightly job whose local hour
    moves by one at a daylight-saving change is still at its hour."""
    days_at: dict[int, set[object]] = {}
    days = set()
    for i in range(index):
        if series[i]:
            days_at.setdefault(cal.hour[i], set()).add(cal.day[i])
            days.add(cal.day[i])
    hour = cal.hour[index]
    near = ((hour - 1) % 24, hour, (hour + 1) % 24)
    return len(days) >= HABIT_DAYS and all(len(days_at.get(h, ())) < 2 for h in near)


def _one_per_cause(
    findings: list[Finding], links: Mapping[Scope, frozenset[Scope]]
) -> list[Finding]:
    """Fold each broader finding into the most specific one that explains it."""
    ordered = sorted(findings, key=lambda f: (_SPECIFICITY[f.entity.kind], -f.spend_cu))
    kept: list[Finding] = []
    for finding in ordered:
        cause = next((k for k in kept if _explains(k, finding, links)), None)
        if cause is None:
            kept.append(finding)
        else:
            index = kept.index(cause)
            kept[index] = _with_explained(cause, finding.entity)
    return kept


def _explains(cause: Finding, effect: Finding, links: Mapping[Scope, frozenset[Scope]]) -> bool:
    """The cause spent on the effect (the activity log says so, when it says anything about
    the cause; else the same rule fired on both) and its excess covers half the effect's."""
    if _SPECIFICITY[cause.entity.kind] >= _SPECIFICITY[effect.entity.kind]:
        return False
    if effect.entity.kind is ScopeKind.TEAM:
        return True  # the team is lifted by whatever lifts any part of it
    linked = links.get(cause.entity)
    related = effect.entity in linked if linked is not None else cause.rule is effect.rule
    excess = cause.spend_cu - cause.usual_cu
    return related and excess >= 0.5 * (effect.spend_cu - effect.usual_cu)


def _with_explained(cause: Finding, entity: Scope) -> Finding:
    return Finding(
        cause.entity,
        cause.rule,
        cause.spend_cu,
        cause.usual_cu,
        cause.since,
        (*cause.explains, entity),
    )
