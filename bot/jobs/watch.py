"""The watch's part of a check (SPEC §5b): fill the spend history, detect, and turn findings
into episodes — alerts of the watch's budget row, announced like any alert.

Reads per check: two /usages calls (consumption and model usages of the previous clock
quarter hour, read again so that late data replaces what was stored, and of the current
one). A history that is missing — the watch was just turned on, or the bot was down — is
back-filled first, with a bounded number of reads; until it has been, nothing is judged
(a key that only looks new because its history was not read yet is no leak).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlite_utils import Database

from bot.budgets.culprits import Attribution, Names, attribute
from bot.budgets.types import Scope, ScopeKind
from bot.budgets.watch import HISTORY, NEW_FOR_HOURS, Finding, Rule, Sensitivity, detect
from bot.budgets.watch_history import (
    QUARTER,
    entity_of,
    entity_totals,
    hourly_spend,
    merge,
    quarter_start,
)
from bot.reports.reads import HOURLY_SPAN, split_range
from bot.scenario.client import ScenarioClient
from bot.scenario.models import (
    CU_SERIES_NAME,
    Activity,
    Entities,
    UsagesResponse,
    UsageType,
    granularity_of,
    totals_per_user,
)
from bot.scenario.names import Directory
from bot.store import snoozes
from bot.store import watch as store
from bot.store.alerts import EpisodeFinding, open_alerts
from bot.store.budgets import Budget

log = logging.getLogger(__name__)

CHECK_TYPES = (UsageType.CONSUMPTION, UsageType.MODEL_USAGES)
# Chunks the server answers at hourly points (it picks the granularity from the length).
# Reads one back-fill may make: the team and its models, then keys and people by spend.
BACKFILL_READS = 240
BACKFILL_CONCURRENCY = 4
# The activity behind a new episode: since it started, at most this far back.
ACTIVITY_WITHIN = timedelta(hours=6)

NEW_FOR = timedelta(hours=NEW_FOR_HOURS)
# Two checks closer than this read the same data: one cannot confirm the other.
MIN_APART = timedelta(minutes=1)
# A gap of up to this many quarter hours is read the way checks read: one read a quarter.
SHORT_GAP_QUARTERS = 8

Buckets = dict[datetime, dict[str, float]]


@dataclass(frozen=True, slots=True)
class Recent:
    """The check's reads for the watch: each quarter hour read, with what it held."""

    buckets: Buckets
    filled_until: datetime  # the end of the previous quarter: complete from here back
    reads: int


async def read_recent(
    client: ScenarioClient, now: datetime, keys: frozenset[str] = frozenset()
) -> Recent:
    """`keys`: the members the history already knows as API keys."""
    current = quarter_start(now)
    windows = [(current - QUARTER, current)]
    if now > current:
        windows.append((current, now))
    return Recent(await _read_quarters(client, windows, keys), current, len(windows))


async def _read_quarters(
    client: ScenarioClient, windows: list[tuple[datetime, datetime]], keys: frozenset[str]
) -> Buckets:
    """One read per window (a quarter hour, or the current one so far), as a bucket each."""
    answers = await asyncio.gather(
        *(client.usages(start=lo, end=hi, types=CHECK_TYPES) for lo, hi in windows)
    )
    return {
        lo: entity_totals(answer, keys) for (lo, _), answer in zip(windows, answers, strict=True)
    }


def history_gap(db: Database, workspace_id: str, now: datetime) -> tuple[datetime, datetime] | None:
    """What must be back-filled before this check can judge: all of the history the first
    time, else what was missed since the latest check (the bot was down, Scenario could not
    be read, checks are further apart than a quarter hour) — from the quarter that check
    read only in part, and never more than the history kept."""
    progress = store.progress(db, workspace_id)
    start_of_previous = quarter_start(now) - QUARTER
    oldest = quarter_start(now - HISTORY - timedelta(days=1))
    if progress.backfilled_at is None or progress.filled_until is None:
        return oldest, start_of_previous
    if progress.filled_until < start_of_previous:
        return max(progress.filled_until, oldest), start_of_previous
    return None


async def fill(
    client: ScenarioClient, start: datetime, end: datetime, keys: frozenset[str]
) -> tuple[Buckets, int]:
    """Buckets of [start, end) and the reads made: a short gap quarter by quarter, the way
    every check reads (no more reads than quarters), a longer one by `backfill`."""
    quarters = int((end - start) / QUARTER)
    if quarters > SHORT_GAP_QUARTERS:
        return await backfill(client, start, end)
    windows = [(start + i * QUARTER, start + (i + 1) * QUARTER) for i in range(quarters)]
    return await _read_quarters(client, windows, keys), len(windows)


async def backfill(
    client: ScenarioClient, start: datetime, end: datetime, *, max_reads: int = BACKFILL_READS
) -> tuple[Buckets, int]:
    """Quarter-hour buckets of [start, end) per entity: the team and its models from the CU
    and per-model series; keys and people from their own series, biggest spenders first,
    within `max_reads`. Anyone left over gets their total shared out like the team's spend
    (so that a key is not taken for new when it spends again, and a person's usual follows
    the team's rhythm — what the detector assumes of anyone without a history of their own
    — rather than a flat line any afternoon's work would tower over)."""
    chunks = split_range(start, end, HOURLY_SPAN)
    limit = asyncio.Semaphore(BACKFILL_CONCURRENCY)

    async def read(
        lo: datetime, hi: datetime, types: tuple[UsageType, ...], user_ids: tuple[str, ...] = ()
    ) -> UsagesResponse:
        async with limit:
            return await client.usages(start=lo, end=hi, types=types, user_ids=user_ids)

    everyone = read(start, end, (UsageType.CONSUMPTION,))
    team_reads = [read(lo, hi, (UsageType.USAGES, UsageType.MODEL_USAGES)) for lo, hi in chunks]
    answers = await asyncio.gather(everyone, *team_reads)
    reads = len(answers)
    totals = answers[0]
    team = merge(*(_series_buckets(answer, "team") for answer in answers[1:]))
    parts: list[Buckets] = [team]
    for answer in answers[1:]:
        for usage in answer.model_usages:
            if not usage.model_id:
                continue
            points = [(p.time, p.cost) for p in usage.points]
            parts.append(
                _spread(points, granularity_of(answer), f"{ScopeKind.MODEL.value}:{usage.model_id}")
            )
    members = _members_by_priority(totals)
    per_member = max(1, len(chunks))
    affordable = max(0, (max_reads - reads) // per_member)
    hourly, rest = members[:affordable], members[affordable:]

    async def member(entity: str) -> list[Buckets]:
        ref = entity_of(entity).ref or ""
        found = await asyncio.gather(
            *(read(lo, hi, (UsageType.USAGES,), (ref,)) for lo, hi in chunks)
        )
        return [_series_buckets(answer, entity) for answer in found]

    for found in await asyncio.gather(*(member(e) for e, _ in hourly)):
        parts += found
    reads += len(hourly) * per_member
    for entity, cu in rest:
        parts.append(_like_team(entity, cu, team))
    return merge(*parts), reads


def _members_by_priority(totals: UsagesResponse) -> list[tuple[str, float]]:
    """Keys first (runaways and leaks are theirs), each group by spend."""
    members = []
    for user_id, sums in totals_per_user(totals).items():
        if not user_id:
            continue
        entity = totals.entities.user(user_id)
        kind = ScopeKind.KEY if entity is not None and entity.is_api_key else ScopeKind.USER
        if sums.spend > 0:
            members.append((str(Scope(kind, user_id)), sums.spend))
    return sorted(members, key=lambda m: (not m[0].startswith("key:"), -m[1]))


def _series_buckets(answer: UsagesResponse, entity: str) -> Buckets:
    points = [
        (p.time, p.value)
        for usage in answer.usages
        if usage.usage_name == CU_SERIES_NAME
        for p in usage.points
    ]
    return _spread(points, granularity_of(answer), entity)


def _spread(points: Iterable[tuple[datetime, float]], step: timedelta, entity: str) -> Buckets:
    """Points of any granularity as quarter-hour buckets: finer ones added up, coarser ones
    shared evenly between the quarters they cover."""
    buckets: Buckets = defaultdict(dict)
    for at, cu in points:
        if cu <= 0:
            continue
        quarters = max(1, int(step / QUARTER))
        first = quarter_start(at)
        for i in range(quarters):
            bucket = buckets[first + i * QUARTER]
            bucket[entity] = bucket.get(entity, 0.0) + cu / quarters
    return dict(buckets)


def _like_team(entity: str, cu: float, team: Buckets) -> Buckets:
    total = sum(entities.get("team", 0.0) for entities in team.values())
    if total <= 0:
        return {}
    return {
        bucket: {entity: cu * entities["team"] / total}
        for bucket, entities in team.items()
        if entities.get("team", 0.0) > 0
    }


# -- judging --------------------------------------------------------------------------------


def findings_now(
    db: Database,
    watch: Budget,
    tz: str,
    now: datetime,
    *,
    recent: Recent | None = None,
    links: dict[Scope, frozenset[Scope]] | None = None,
) -> list[Finding]:
    """What the detector finds on the stored history — with `recent` in place of the
    buckets it read again, before they are stored."""
    replaced = recent.buckets if recent is not None else {}
    rows = store.history_rows(db, watch.workspace_id, now, without=replaced)
    rows += [
        (bucket, entity, cu)
        for bucket, entities in replaced.items()
        for entity, cu in entities.items()
    ]
    spend = hourly_spend(rows, now)
    sensitivity = Sensitivity(watch.watch or Sensitivity.NORMAL.value)
    found = detect(spend, tz=tz, sensitivity=sensitivity, links=links)
    return [replace(f, since=_started(rows, f)) for f in found]


def _started(rows: list[tuple[datetime, str, float]], finding: Finding) -> datetime:
    """When the unusual spend began, to the quarter hour — the detector judges whole hours,
    which may begin well before or after the burst did: the start of the run of quarter
    hours, up to the latest, that each spent three usual quarters and a quarter of the
    judged hour's average quarter at least (the key's own trickle before a burst is not
    its start), as far back as quarters are kept; else the hour's."""
    entity = str(finding.entity)
    usual_quarter = max(3 * finding.usual_cu, finding.spend_cu / 4) / 4
    spent = {bucket: cu for bucket, name, cu in rows if name == entity}
    quarters = sorted(b for b in spent if b.minute % 15 == 0 and b >= _detail_start(rows))
    started = None
    for bucket in reversed(quarters):
        if spent[bucket] <= usual_quarter or (started and started - bucket > QUARTER):
            break
        started = bucket
    return started if started is not None else finding.since


def _detail_start(rows: list[tuple[datetime, str, float]]) -> datetime:
    latest = max((bucket for bucket, _, _ in rows), default=None)
    return (latest or datetime.max.replace(tzinfo=UTC)) - store.DETAILED


def judging(db: Database, watch: Budget) -> bool:
    """Only once the history has been back-filled: before, everything looks new."""
    return store.progress(db, watch.workspace_id).backfilled_at is not None


def to_open(
    db: Database,
    watch: Budget,
    findings: list[Finding],
    tz: str,
    now: datetime,
    *,
    recent: Recent | None = None,
    interval: timedelta,
) -> list[Finding]:
    """The findings that open a new episode now: not expected, not snoozed, no episode of
    that entity open, and settled — found on the complete quarter hours alone, or by the
    previous check too (the one about `interval` before, not one racing this one nor one
    from before hours of downtime). The current quarter hour is where late data lands: a spend that
    only looks unusual there waits one check, so that a bucket revised once its late data
    arrived opens nothing."""
    found = candidates(db, watch, findings, now)
    return settled(db, watch, found, tz, now, recent=recent, interval=interval)


def settled(
    db: Database,
    watch: Budget,
    found: list[Finding],
    tz: str,
    now: datetime,
    *,
    recent: Recent | None = None,
    interval: timedelta,
) -> list[Finding]:
    """Of the `candidates`, those settled now (see `to_open`)."""
    if not found:
        return []
    seen = store.pending(db, watch.workspace_id)
    complete = findings_now(db, watch, tz, quarter_start(now) - _INSTANT, recent=recent)
    settled = {_key(f) for f in complete}
    return [
        f
        for f in found
        if _key(f) in settled
        or (_key(f) in seen and MIN_APART <= now - seen[_key(f)] <= 2 * interval + MIN_APART)
    ]


_INSTANT = timedelta(microseconds=1)


def _key(finding: Finding) -> str:
    return f"{finding.entity} {finding.rule.value}"


def candidates(
    db: Database, watch: Budget, findings: list[Finding], now: datetime
) -> list[Finding]:
    """The findings that may open an episode (not expected, not snoozed, no episode of that
    entity open; and a key or model is new once: "new" holds for a day after its first
    spend, its episode is told once in that day)."""
    until = snoozes.snoozed_until(db, watch.id)
    if until is not None and until > now:
        return []
    quiet = store.expected(db, watch.id, now)
    quiet |= store.episodes_since(db, watch.id, Rule.NEW_ENTITY.value, now - NEW_FOR)
    # An entity an open episode explains (its model…) is part of that episode.
    open_entities = {
        entity
        for a in open_alerts(db, watch.id)
        if a.finding
        for entity in (a.finding.entity, *a.finding.covers)
    }
    return [
        f
        for f in findings
        if (str(f.entity), f.rule.value) not in quiet and str(f.entity) not in open_entities
    ]


async def read_causes(
    client: ScenarioClient, findings: list[Finding], now: datetime
) -> UsagesResponse | None:
    """The activity behind new episodes (their jobs, models and projects), or None."""
    if not findings:
        return None
    since = max(min(f.since for f in findings), now - ACTIVITY_WITHIN)
    return await client.usages_with_all_activity(
        start=since, end=now, types=(UsageType.ACTIVITY, UsageType.MODEL_USAGES)
    )


def links_of(activity: UsagesResponse | None) -> dict[Scope, frozenset[Scope]] | None:
    """Which models each key and person spent on, from the activity log."""
    if activity is None:
        return None
    found: dict[str, set[Scope]] = defaultdict(set)
    for entry in activity.activity:
        if entry.user_id and entry.data.model_id and entry.creative_units_cost:
            found[entry.user_id].add(Scope(ScopeKind.MODEL, entry.data.model_id))
    links: dict[Scope, frozenset[Scope]] = {}
    for user_id, models in found.items():
        for kind in (ScopeKind.KEY, ScopeKind.USER):
            links[Scope(kind, user_id)] = frozenset(models)
    return links


def record(
    db: Database,
    watch: Budget,
    recent: Recent,
    tz: str,
    now: datetime,
    *,
    activity: UsagesResponse | None,
    names: Directory,
    app_url: str,
    interval: timedelta = timedelta(minutes=5),
) -> None:
    """Inside the check's transaction: store what was read, judge, and open, go on with or
    end episodes. Until the history has been back-filled, nothing is judged."""
    store.replace_buckets(db, watch.workspace_id, recent.buckets, filled_until=recent.filled_until)
    store.prune(db, watch.workspace_id, now)
    if not judging(db, watch):
        return
    findings = findings_now(db, watch, tz, now, links=links_of(activity))
    by_entity = {str(f.entity): f for f in findings}
    # Folded into another finding this time (the activity that links them is read only
    # when an episode opens): still going on, as part of that one.
    explained = {str(e) for f in findings for e in f.explains}
    for episode in open_alerts(db, watch.id):
        finding = episode.finding
        if finding is None:
            continue
        if finding.entity not in by_entity and finding.entity in explained:
            store.saw_again(db, episode, episode.spend_cu, now=now)
            continue
        seen = by_entity.get(finding.entity)
        if seen is not None and seen.rule is Rule.NEW_ENTITY and finding.rule == Rule.NEW_ENTITY:
            # "New" holds for a day after the first spend: going on means spending more.
            seen = seen if seen.spend_cu > finding.peak_cu else None
        if seen is not None:
            covers = [str(e) for e in seen.explains]
            store.saw_again(db, episode, seen.spend_cu, now=now, covers=covers)
            store.tell_again_if_unseen(db, episode, watch, now=now)
        elif now - finding.last_seen >= store.ENDS_AFTER:
            store.end_episode(db, episode, now=now)
    named = Names(app_url, activity.entities if activity else Entities(), names)
    found = candidates(db, watch, findings, now)
    opening = settled(db, watch, found, tz, now, interval=interval)
    store.set_pending(db, watch.workspace_id, {_key(f): now for f in found if f not in opening})
    for finding in opening:
        store.open_episode(
            db,
            watch,
            EpisodeFinding(
                entity=str(finding.entity),
                rule=finding.rule.value,
                usual_cu=finding.usual_cu,
                peak_cu=finding.spend_cu,
                since=finding.since,
                last_seen=now,
                name=name_of(named, finding.entity),
                explains=tuple(name_of(named, e) for e in finding.explains if e.ref),
                covers=tuple(str(e) for e in finding.explains),
                projects=tuple(
                    named.project(p).name for p in _projects_of(activity, finding.entity)
                ),
            ),
            spend_cu=finding.spend_cu,
            attribution=_attribution(finding, activity, names, app_url),
            now=now,
        )


def name_of(names: Names, entity: Scope) -> str:
    """`🔑 CI pipeline`, `Maya Chen`, `model Flux`: the entity as a message names it."""
    ref = entity.ref or ""
    match entity.kind:
        case ScopeKind.KEY | ScopeKind.USER:
            person = names.user(ref)
            key = person.is_api_key or entity.kind is ScopeKind.KEY
            return f"🔑 {person.name}" if key else person.name
        case ScopeKind.MODEL:
            return f"model {names.model(ref).name}"
        case ScopeKind.PROJECT:
            return f"project {names.project(ref).name}"
    return "the team"


def _projects_of(activity: UsagesResponse | None, entity: Scope) -> tuple[str, ...]:
    """The projects the cause spent on, most first (projects have no history of their own:
    the episode names them)."""
    if activity is None:
        return ()
    spent: Counter[str] = Counter()
    for entry in activity.activity:
        if entry.project_id and entry.creative_units_cost and _by(entity, entry):
            spent[entry.project_id] += entry.creative_units_cost
    return tuple(project for project, _ in spent.most_common(3))


def _by(entity: Scope, entry: Activity) -> bool:
    if entity.kind in (ScopeKind.KEY, ScopeKind.USER):
        return entry.user_id == entity.ref
    if entity.kind is ScopeKind.MODEL:
        return entry.data.model_id == entity.ref
    return True


def _attribution(
    finding: Finding, activity: UsagesResponse | None, names: Directory, app_url: str
) -> Attribution | None:
    if activity is None:
        return None
    return attribute(finding.entity, activity, activity, app_url, directory=names)
