"""The watch's spend history: what a /usages answer says per entity, and stored buckets
turned into the detector's hourly series. Pure.

Entities are written as budget scopes are (`team`, `key:<member id>`, `user:<member id>`,
`model:<model id>`): an API key is a member of its own in Scenario's usage data, told apart
by the answer's entities (`isApiKey`). Projects are not kept: each would cost a /usages read
of its own every check; an episode names the projects its cause spent on instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Set
from datetime import UTC, datetime, timedelta

from bot.budgets.types import TEAM, Scope, ScopeKind
from bot.budgets.watch import HISTORY, HOUR, NEW_FOR_HOURS, HourlySpend
from bot.scenario.models import UsagesResponse, totals_per_user

QUARTER = timedelta(minutes=15)
# New-entity needs a whole history window before the day it judges.
HOURS_KEPT = int(HISTORY / HOUR) + NEW_FOR_HOURS
KEPT = HOURS_KEPT * HOUR


def quarter_start(at: datetime) -> datetime:
    """The start of the clock quarter hour (UTC) holding `at`."""
    at = at.astimezone(UTC)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def entity_of(text: str) -> Scope:
    """The scope an entity is stored as; ValueError for anything else."""
    kind, _, ref = text.partition(":")
    return Scope(ScopeKind(kind), ref or None)


def entity_totals(response: UsagesResponse, keys: Set[str] = frozenset()) -> dict[str, float]:
    """CU per entity in one answer: the team, each key and person (consumption), each model
    (model-usages). A member is a key if the answer's entities say so or `keys` (members
    known to be keys) has it: an answer may leave a member unnamed, and a key counted as a
    person for a quarter hour would split its history in two. Zero totals are left out."""
    totals: dict[str, float] = {}
    team = 0.0
    for user_id, sums in totals_per_user(response).items():
        team += sums.spend
        if not user_id:  # a row naming nobody counts for the team only
            continue
        entity = response.entities.user(user_id)
        is_key = user_id in keys or (entity is not None and entity.is_api_key)
        kind = ScopeKind.KEY if is_key else ScopeKind.USER
        if sums.spend > 0:
            totals[str(Scope(kind, user_id))] = sums.spend
    for usage in response.model_usages:
        cost = math.fsum(point.cost for point in usage.points)
        if cost > 0 and usage.model_id:
            name = str(Scope(ScopeKind.MODEL, usage.model_id))
            totals[name] = totals.get(name, 0.0) + cost
    if team > 0:
        totals[str(TEAM)] = team
    return totals


def judged_window(now: datetime) -> tuple[datetime, datetime, datetime]:
    """(start, last half hour's start, end) of the history the detector judges at `now`:
    HOURS_KEPT hours ending with the current quarter hour — so that the hour judged is the
    latest one, seen minutes after a burst starts."""
    end = quarter_start(now) + QUARTER
    return end - KEPT, end - 2 * QUARTER, end


def hourly_spend(rows: Iterable[tuple[datetime, str, float]], now: datetime) -> HourlySpend:
    """The detector's input from (bucket start, entity, CU) rows — quarter hours, or whole
    hours of the window already added up — and each entity's CU of the last half hour (from
    the quarter rows there). Rows outside the window are ignored; an hour without rows is 0."""
    start, half, end = judged_window(now)
    values: dict[Scope, list[float]] = defaultdict(lambda: [0.0] * HOURS_KEPT)
    last_half: dict[Scope, float] = defaultdict(float)
    for bucket, name, cu in rows:
        if not start <= bucket < end:
            continue
        try:
            entity = entity_of(name)
        except ValueError:  # a row no release of ours writes: left out, never fatal
            continue
        values[entity][int((bucket - start) / HOUR)] += cu
        if bucket >= half:
            last_half[entity] += cu
    values.setdefault(TEAM, [0.0] * HOURS_KEPT)
    return HourlySpend(start, dict(values), HOURS_KEPT, dict(last_half))


def series_buckets(
    points: Iterable[tuple[datetime, float]], entity: str
) -> dict[datetime, dict[str, float]]:
    """A back-filled series (time, CU) as buckets of one entity."""
    buckets: dict[datetime, dict[str, float]] = defaultdict(dict)
    for at, cu in points:
        if cu > 0:
            buckets[at][entity] = buckets[at].get(entity, 0.0) + cu
    return dict(buckets)


def merge(*parts: Mapping[datetime, Mapping[str, float]]) -> dict[datetime, dict[str, float]]:
    merged: dict[datetime, dict[str, float]] = defaultdict(dict)
    for part in parts:
        for bucket, entities in part.items():
            for entity, cu in entities.items():
                merged[bucket][entity] = merged[bucket].get(entity, 0.0) + cu
    return dict(merged)
