"""Labeled evaluation of the watch detector (`bot/budgets/watch.py`, SPEC §5b, issue 11).

Teams come from the simulator's generator (`SyntheticTeam.build(seed)`: members and API
keys with their own hours, a weekday rhythm, quiet weekends, scripted spikes), 61 days each:
31 days of history, then a 30-day evaluation window. On top of the generator's variation the
bench adds what a real month has: a launch (every person at 1.8× for two days), a holiday
(a weekday as quiet as a Sunday) and a new project taking over part of a person's work.

Anomalies of known start, size and kind are injected one at a time, each into its own copy
of a team, at a random time of the evaluation window:

- **rate** — an existing API key at 3×, 5×, 20× or 50× its usual rate for that time of the
  week (the median of the same hour over the 4 weeks before; its busy-hour rate if it is
  usually idle then) for 15 min, 30 min, 1 h or 6 h, on its main model and project; half
  on the team's busiest key;
- **new key** — a key never seen before, spending 150 CU/h for 2 h;
- **new model** — an existing person starting on a model never used before, 150 CU/h, 2 h;
- **3 a.m.** — an existing key spending 2× its usual active rate for an hour at 03:00
  workspace time, when it never works.

The detector is replayed as the check cycle runs it: every 5 minutes (the default
`BUDGET_BOT_CHECK_INTERVAL`), on the data visible at that moment — hours ending at the check
— from 2 h before an anomaly to 6 h after it ends. A finding *detects* the anomaly when it
names the anomalous entity, or explains it, or is about one of the entities it lifted (its
model, project, the team); any other finding in that stretch is a false alert. Findings of
the same entity and rule less than an hour apart are one episode. False alerts per
team-month come from replaying every check of the 30 days of the anomaly-free copies.

Printed per sensitivity and per seed set (the thresholds were tuned on TUNE_SEEDS; the
REPORT_SEEDS were not looked at while tuning): recall per kind and size (and, in brackets,
of the rate anomalies whose first hour adds at least MATERIAL_CU — smaller ones add too
little to be worth an alert), precision (one episode per anomaly is a hit; any other, a
duplicate included, is false), false alerts per team-month, median / p90 delay from the
anomaly's start to its first detection, the median delay from the moment it had added
MATERIAL_CU ("once visible"), and how often the episode was attributed to the anomalous
entity itself.

    PYTHONPATH=. python bench/watch_eval.py [--seeds report|tune|all] [--quick]

Exit status 0 when `normal` meets the targets on the report seeds (recall ≥ 95 % for rate
anomalies ≥ 5× lasting ≥ 30 min and for new keys, precision ≥ 90 %, ≤ 1 false alert per
team-month, median delay ≤ one check interval), 1 otherwise.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy

from bot.budgets.types import Scope, ScopeKind
from bot.budgets.watch import (
    TEAM,
    Finding,
    HourlySpend,
    Sensitivity,
    detect,
)
from bot.sim.team import SyntheticTeam

TUNE_SEEDS = (1, 2, 3, 4)
REPORT_SEEDS = (11, 12, 13, 14, 15, 16)
TZ = "Europe/Paris"
ANCHOR = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday; the window ends here
HISTORY_DAYS, EVAL_DAYS = 31, 30
STEP = timedelta(minutes=5)  # the data's resolution and the check interval
PER_HOUR = timedelta(hours=1) // STEP
EPISODE_GAP = timedelta(hours=1)
RATE_SIZES = (3.0, 5.0, 20.0, 50.0)
RATE_DURATIONS = (
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=6),
)
NEW_RATE_CU_PER_HOUR = 150.0
RATE_REPEATS = 3  # of each size × duration, per team
# A rate anomaly "worth an alert": it adds at least this much in its first hour (the
# bench's own line, not the detector's floor).
MATERIAL_CU = 100.0


@dataclass
class Timeline:
    """CU per 5-minute step from `start`, per entity; links: a spender's models/projects."""

    start: datetime
    steps: int
    cu: dict[Scope, list[float]]
    links: dict[Scope, set[Scope]] = field(default_factory=dict)
    _sums: dict[Scope, numpy.ndarray] | None = field(default=None, repr=False)

    def copy(self) -> Timeline:
        return Timeline(
            self.start,
            self.steps,
            {e: list(v) for e, v in self.cu.items()},
            {e: set(v) for e, v in self.links.items()},
        )

    def index(self, at: datetime) -> int:
        return int((at - self.start) / STEP)

    def add(self, entities: Iterable[Scope], first: int, last: int, cu_per_step: float) -> None:
        for entity in entities:
            series = self.cu.setdefault(entity, [0.0] * self.steps)
            for i in range(max(0, first), min(self.steps, last)):
                series[i] += cu_per_step

    def scale(self, entities: Iterable[Scope], first: int, last: int, factor: float) -> None:
        for entity in entities:
            series = self.cu.get(entity)
            if series is None:
                continue
            for i in range(max(0, first), min(self.steps, last)):
                series[i] *= factor

    def spend_at(self, check: datetime) -> HourlySpend:
        """What the detector sees at `check`: the hours ending at it, oldest first."""
        if self._sums is None:  # the timeline is final once it is replayed
            self._sums = {
                e: numpy.concatenate(([0.0], numpy.cumsum(v))) for e, v in self.cu.items()
            }
        end = self.index(check)
        hours = end // PER_HOUR
        first = end - hours * PER_HOUR
        edges = numpy.arange(first, end + 1, PER_HOUR)
        values = {}
        for entity, sums in self._sums.items():
            hourly = numpy.diff(sums[edges])
            # Float sums of 5-minute steps: round off the dust so that "no spend" is 0.
            values[entity] = numpy.where(hourly < 1e-9, 0.0, hourly).tolist()
        half_start = max(0, end - PER_HOUR // 2)
        last_half = {
            e: max(0.0, float(sums[end] - sums[half_start])) for e, sums in self._sums.items()
        }
        return HourlySpend(self.start + first * STEP, values, hours, last_half)


def timeline_of(team: SyntheticTeam, start: datetime, end: datetime) -> Timeline:
    steps = int((end - start) / STEP)
    line = Timeline(start, steps, {})
    users = {u.id: u for u in team.users}
    lo = bisect.bisect_left(team.job_ms, int(start.timestamp() * 1000))
    hi = bisect.bisect_left(team.job_ms, int(end.timestamp() * 1000))
    for job in team.jobs[lo:hi]:
        if any(
            job.user_id == spike.user_id
            and job.model_id == spike.model_id
            and spike.start <= job.time < spike.end
            for spike in team.spikes
        ):
            continue  # the generator's scripted spikes are anomalies: not in clean data
        i = int((job.time - start) / STEP)
        spender = _spender(users, job.user_id)
        model = Scope(ScopeKind.MODEL, job.model_id)
        project = Scope(ScopeKind.PROJECT, job.project_id)
        for entity in (spender, model, project, TEAM):
            line.cu.setdefault(entity, [0.0] * steps)[i] += job.cu_cost
        line.links.setdefault(spender, set()).update((model, project))
    return line


def _spender(users: dict, user_id: str) -> Scope:
    user = users.get(user_id)
    kind = ScopeKind.KEY if user is not None and user.is_api_key else ScopeKind.USER
    return Scope(kind, user_id)


# ---------------------------------------------------------------------------------------------
# Normal variation and anomalies
# ---------------------------------------------------------------------------------------------


def with_normal_variation(line: Timeline, rng: random.Random) -> Timeline:
    """A launch, a holiday and a new project in the evaluation window: none is an anomaly."""
    line = line.copy()
    window = line.index(ANCHOR - timedelta(days=EVAL_DAYS))
    day = timedelta(days=1) // STEP
    people = [e for e in line.cu if e.kind is ScopeKind.USER]
    launch = window + rng.randint(2, 12) * day
    line.scale(people, launch, launch + 2 * day, 1.8)
    _rebuild_aggregates(line)
    holiday = window + rng.randint(14, 26) * day
    line.scale(list(line.cu), holiday, holiday + day, 0.15)
    if people:
        person = rng.choice(people)
        new_project = Scope(ScopeKind.PROJECT, "proj_new_launch")
        moved_from = window + rng.randint(3, 20) * day
        series = line.cu[person]
        line.cu[new_project] = [
            (series[i] * 0.5 if i >= moved_from else 0.0) for i in range(line.steps)
        ]
        line.links.setdefault(person, set()).add(new_project)
    return line


def with_heavy_pipeline(line: Timeline, seed: int) -> Timeline:
    """The other team shape: production traffic through one API key — the busiest key gets
    the traffic of seven other teams' busiest keys on top (independent jobs, so that its
    hours are as irregular as eight keys' are, not one key's repeated)."""
    line = line.copy()
    keys = [e for e in line.cu if e.kind is ScopeKind.KEY]
    if not keys:
        return line
    busiest = max(keys, key=lambda e: sum(line.cu[e]))
    extra = [0.0] * line.steps
    for k in range(1, 8):
        other = SyntheticTeam.build(seed * 100 + k, ANCHOR)
        other_line = timeline_of(other, line.start, line.start + line.steps * STEP)
        other_keys = [e for e in other_line.cu if e.kind is ScopeKind.KEY]
        if other_keys:
            series = other_line.cu[max(other_keys, key=lambda e: sum(other_line.cu[e]))]
            extra = [a + b for a, b in zip(extra, series, strict=True)]
    for entity in (busiest, *_main_links(line, busiest), TEAM):
        series = line.cu[entity]
        line.cu[entity] = [a + b for a, b in zip(series, extra, strict=True)]
    return line


def _rebuild_aggregates(line: Timeline) -> None:
    """After scaling people, the team, models and projects follow (in proportion)."""
    spenders = [e for e in line.cu if e.kind in (ScopeKind.KEY, ScopeKind.USER)]
    line.cu[TEAM] = [sum(line.cu[e][i] for e in spenders) for i in range(line.steps)]


@dataclass(frozen=True)
class Anomaly:
    kind: str  # "rate", "new key", "new model", "3 a.m."
    size: float | None
    duration: timedelta
    start: datetime
    entity: Scope
    lifted: frozenset[Scope]
    extra_cu: float = 0.0  # CU the anomaly adds in its first hour
    cu_per_hour: float = 0.0  # the rate at which it adds them

    def visible(self, floor: float) -> datetime:
        """When what it added reaches the noise floor: before that, by design, it cannot
        be told from noise."""
        if self.cu_per_hour <= 0:
            return self.start
        return min(self.end, self.start + timedelta(hours=floor / self.cu_per_hour))

    @property
    def label(self) -> str:
        if self.kind == "rate":
            return f"rate {self.size:g}× {_minutes(self.duration)}"
        return self.kind

    @property
    def end(self) -> datetime:
        return self.start + self.duration


def _minutes(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


def typical_rate(line: Timeline, entity: Scope, before: int) -> float:
    """CU per hour when the entity works: the median of its non-zero hours in the 30 days
    before `before`."""
    series = line.cu.get(entity, [])
    hours = [
        sum(series[i : i + PER_HOUR])
        for i in range(max(0, before - 30 * 24 * PER_HOUR), before - PER_HOUR + 1, PER_HOUR)
    ]
    busy = [h for h in hours if h > 0]
    return statistics.median(busy) if busy else 0.0


def usual_rate_at(line: Timeline, entity: Scope, start: datetime) -> float:
    """CU per hour the entity usually spends at this time of the week: the median of the
    hours starting at the same local time on the same weekday over the 4 weeks before (its
    busy-hour rate if it is usually idle then)."""
    series = line.cu.get(entity, [])
    week = timedelta(days=7)
    hours = []
    for weeks in range(1, 5):
        i = line.index(start - weeks * week)
        if i >= 0:
            hours.append(sum(series[i : i + PER_HOUR]))
    usual = statistics.median(hours) if hours else 0.0
    return usual if usual > 0 else typical_rate(line, entity, line.index(start))


def anomalies_for(line: Timeline, rng: random.Random) -> list[tuple[Anomaly, Timeline]]:
    """Every anomaly of the catalogue, each injected into its own copy of `line`."""
    window_first = line.index(ANCHOR - timedelta(days=EVAL_DAYS))
    recent = slice(max(0, window_first - 30 * 24 * PER_HOUR), window_first)
    # Keys that spent in the 30 days before the window: a dormant key has no "usual rate"
    # to multiply (its anomalies would add nothing).
    keys = [e for e in line.cu if e.kind is ScopeKind.KEY and any(line.cu[e][recent])]
    people = [e for e in line.cu if e.kind is ScopeKind.USER and any(line.cu[e])]
    window_start = ANCHOR - timedelta(days=EVAL_DAYS)
    out = []

    def at_random_working_time(entity: Scope) -> datetime:
        """A start when `entity` is at work (so "its usual rate" means something)."""
        series = line.cu[entity]
        first, last = line.index(window_start), line.index(ANCHOR - timedelta(hours=8))
        for _ in range(200):
            i = rng.randrange(first, last)
            if sum(series[i - PER_HOUR : i]) > 0:
                return line.start + i * STEP
        return line.start + rng.randrange(first, last) * STEP

    busiest = max(keys, key=lambda e: sum(line.cu[e]))
    for size, duration, _ in itertools.product(RATE_SIZES, RATE_DURATIONS, range(RATE_REPEATS)):
        # Half on the busiest key (a production pipeline), half on any key.
        key = busiest if rng.random() < 0.5 else rng.choice(keys)
        start = at_random_working_time(key)
        lifted = _main_links(line, key)
        rate = usual_rate_at(line, key, start)
        copy = line.copy()
        steps = duration // STEP
        copy.add(
            [key, *lifted, TEAM],
            copy.index(start),
            copy.index(start) + steps,
            (size - 1) * rate / PER_HOUR,
        )
        extra = (size - 1) * rate * min(duration, timedelta(hours=1)) / timedelta(hours=1)
        anomaly = Anomaly("rate", size, duration, start, key, lifted, extra, (size - 1) * rate)
        out.append((anomaly, copy))
    two_hours = timedelta(hours=2)
    person = rng.choice(people or keys)
    for kind, entity, spender in (
        ("new key", Scope(ScopeKind.KEY, "key_brand_new"), None),
        ("new model", Scope(ScopeKind.MODEL, "model_brand_new"), person),
    ):
        start = at_random_working_time(person)
        copy = line.copy()
        lifted = {TEAM}
        if spender is not None:
            lifted |= {
                spender,
                *(_main_links(line, spender) - {e for e in line.cu if e.kind is ScopeKind.MODEL}),
            }
        copy.add(
            [entity, *lifted],
            copy.index(start),
            copy.index(start + two_hours),
            NEW_RATE_CU_PER_HOUR / PER_HOUR,
        )
        if spender is not None:
            copy.links.setdefault(spender, set()).add(entity)
        anomaly = Anomaly(
            kind, None, two_hours, start, entity, frozenset(lifted), 0.0, NEW_RATE_CU_PER_HOUR
        )
        out.append((anomaly, copy))
    night_key = next((k for k in keys if _never_at(line, k, 3)), None)
    if night_key is not None:
        day = rng.randint(1, EVAL_DAYS - 2)
        local = (window_start + timedelta(days=day)).astimezone(ZoneInfo(TZ))
        start = local.replace(hour=3, minute=0, second=0, microsecond=0).astimezone(UTC)
        lifted = _main_links(line, night_key)
        # Twice its usual rate, and at least twice the bench's "worth an alert" amount: a
        # burst worth waking for, not a stray job.
        rate = max(2 * typical_rate(line, night_key, line.index(start)), 2 * MATERIAL_CU)
        copy = line.copy()
        copy.add(
            [night_key, *lifted, TEAM],
            copy.index(start),
            copy.index(start + timedelta(hours=1)),
            rate / PER_HOUR,
        )
        anomaly = Anomaly("3 a.m.", None, timedelta(hours=1), start, night_key, lifted, 0.0, rate)
        out.append((anomaly, copy))
    return out


def _main_links(line: Timeline, spender: Scope) -> frozenset[Scope]:
    """The spender's busiest model and project (what its extra jobs are counted in)."""
    linked = line.links.get(spender, set())
    best = set()
    for kind in (ScopeKind.MODEL, ScopeKind.PROJECT):
        candidates = [e for e in linked if e.kind is kind]
        if candidates:
            best.add(max(candidates, key=lambda e: sum(line.cu.get(e, ()))))
    return frozenset(best)


def _never_at(line: Timeline, entity: Scope, local_hour: int) -> bool:
    zone = ZoneInfo(TZ)
    series = line.cu[entity]
    for i, cu in enumerate(series):
        if cu and (line.start + i * STEP).astimezone(zone).hour == local_hour:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------


@dataclass
class Episode:
    entity: Scope
    rule: str
    first: datetime
    last: datetime
    finding: Finding


def replay(
    line: Timeline, first: datetime, last: datetime, sensitivity: Sensitivity
) -> list[Episode]:
    open_: dict[tuple[Scope, str], Episode] = {}
    done: list[Episode] = []
    check = first
    # As the bot does (`bot/jobs/watch.py`): a finding opens an episode when it is found on
    # the complete quarter hours alone, or by the next check too.
    seen_before: set[Scope] = set()
    while check <= last:
        spend = line.spend_at(check)
        links = {e: frozenset(v) for e, v in line.links.items()}
        seen_now: set[Scope] = set()
        findings = detect(spend, tz=TZ, sensitivity=sensitivity, links=links)
        quarter = check.replace(minute=check.minute - check.minute % 15)
        settled = (
            {
                f.entity
                for f in detect(line.spend_at(quarter), tz=TZ, sensitivity=sensitivity, links=links)
            }
            if findings and quarter < check
            else {f.entity for f in findings}
        )
        for finding in findings:
            seen_now.add(finding.entity)
            # One episode per entity, whatever rule fires for it (the product's promise).
            key = (finding.entity, "")
            episode = open_.get(key)
            if episode is not None and check - episode.last <= EPISODE_GAP:
                episode.last = check
            elif finding.entity in seen_before or finding.entity in settled:
                if episode is not None:
                    done.append(episode)
                open_[key] = Episode(finding.entity, finding.rule.value, check, check, finding)
        seen_before = seen_now
        check += STEP
    return done + list(open_.values())


def matches(episode: Episode, anomaly: Anomaly) -> bool:
    about = {anomaly.entity, *anomaly.lifted}
    return episode.entity in about or anomaly.entity in episode.finding.explains


@dataclass
class Tally:
    detected: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    # Rate anomalies whose first hour adds at least normal's noise floor: the ones that can
    # be alerted at all (smaller ones are below the floor by design).
    material: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    delays: list[float] = field(default_factory=list)  # minutes from the start
    visible_delays: list[float] = field(default_factory=list)  # … from reaching the floor
    true_episodes: int = 0
    false_episodes: int = 0
    attributed: int = 0
    clean_false: int = 0
    clean_months: float = 0.0
    false_kinds: Counter[str] = field(default_factory=Counter)
    clean_kinds: Counter[str] = field(default_factory=Counter)


def evaluate(seeds: Sequence[int], sensitivity: Sensitivity, *, quick: bool) -> Tally:
    tally = Tally()
    for seed in seeds:
        team = SyntheticTeam.build(seed, ANCHOR)
        base = timeline_of(team, ANCHOR - timedelta(days=HISTORY_DAYS + EVAL_DAYS), ANCHOR)
        rng = random.Random(seed * 7919)
        if seed % 2 == 0:
            base = with_heavy_pipeline(base, seed)
        clean = with_normal_variation(base, rng)
        for anomaly, line in anomalies_for(clean, rng):
            episodes = replay(
                line,
                anomaly.start - timedelta(hours=2),
                min(anomaly.end + timedelta(hours=6), ANCHOR - STEP),
                sensitivity,
            )
            hits = [e for e in episodes if matches(e, anomaly) and e.last >= anomaly.start]
            tally.detected[anomaly.label].append(bool(hits))
            if anomaly.kind == "rate" and anomaly.extra_cu >= MATERIAL_CU:
                tally.material[anomaly.label].append(bool(hits))
            if hits:
                first = min(h.first for h in hits)
                tally.delays.append(max(0.0, (first - anomaly.start).total_seconds() / 60))
                visible = anomaly.visible(MATERIAL_CU)
                tally.visible_delays.append(max(0.0, (first - visible).total_seconds() / 60))
                tally.attributed += any(h.entity == anomaly.entity for h in hits)
            # One anomaly, one episode: any other episode about it is a duplicate alert.
            tally.true_episodes += min(1, len(hits))
            false = [e for e in episodes if e not in hits[:1]]
            tally.false_episodes += len(false)
            for e in false:
                tally.false_kinds[f"{e.rule} on {e.entity.kind.value}"] += 1
        if not quick:
            window = ANCHOR - timedelta(days=EVAL_DAYS)
            episodes = replay(clean, window, ANCHOR - STEP, sensitivity)
            tally.clean_false += len(episodes)
            for e in episodes:
                tally.clean_kinds[f"{e.rule} on {e.entity.kind.value}"] += 1
            tally.clean_months += EVAL_DAYS / 30
    return tally


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def report(
    name: str, seeds: Sequence[int], *, quick: bool, sensitivities: Sequence[Sensitivity]
) -> dict[Sensitivity, Tally]:
    results = {}
    print(f"\n## {name} seeds {', '.join(map(str, seeds))}\n")
    labels = [f"rate {s:g}× {_minutes(d)}" for s in RATE_SIZES for d in RATE_DURATIONS]
    labels += ["new key", "new model", "3 a.m."]
    header = "| anomaly | " + " | ".join(s.value for s in sensitivities) + " |"
    rows = {label: [] for label in labels}
    summary = []
    for sensitivity in sensitivities:
        began = time.perf_counter()
        tally = evaluate(seeds, sensitivity, quick=quick)
        results[sensitivity] = tally
        for label in labels:
            found = tally.detected.get(label, [])
            cell = f"{sum(found)}/{len(found)}" if found else "—"
            material = tally.material.get(label, [])
            if label.startswith("rate"):
                cell += f" ({sum(material)}/{len(material)})" if material else " (—)"
            rows[label].append(cell)
        all_episodes = tally.true_episodes + tally.false_episodes
        precision = tally.true_episodes / all_episodes if all_episodes else 1.0
        hits = sum(sum(v) for v in tally.detected.values())
        false_rate = tally.clean_false / tally.clean_months if tally.clean_months else None
        summary.append(
            (
                sensitivity.value,
                f"{precision:.0%}",
                f"{false_rate:.2f}" if false_rate is not None else "—",
                _fmt(percentile(tally.delays, 0.5)),
                _fmt(percentile(tally.delays, 0.9)),
                _fmt(percentile(tally.visible_delays, 0.5)),
                f"{tally.attributed}/{hits}",
                f"{time.perf_counter() - began:.0f} s",
            )
        )
    print(
        "Recall (detected / injected; in brackets, of the rate anomalies whose first hour"
        f" adds at least {MATERIAL_CU:g} CU):\n"
    )
    print(header)
    print("|---|" + "---|" * len(sensitivities))
    for label in labels:
        print(f"| {label} | " + " | ".join(rows[label]) + " |")
    print(
        "\n| sensitivity | precision | false alerts / team-month | median delay | p90 delay"
        " | median delay once visible | attributed to the cause | time |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in summary:
        print("| " + " | ".join(row) + " |")
    print("\nFalse alerts by rule and entity (anomaly windows; clean months):")
    for sensitivity, tally in results.items():
        around = ", ".join(f"{k} {n}" for k, n in tally.false_kinds.most_common())
        clean = ", ".join(f"{k} {n}" for k, n in tally.clean_kinds.most_common())
        print(f"- {sensitivity.value}: {around or 'none'}; {clean or 'none'}")
    return results


def _fmt(minutes: float | None) -> str:
    return "—" if minutes is None else f"{minutes:.0f} min"


def _at_least_5x_30min(outcomes: dict[str, list[bool]]) -> list[bool]:
    """The outcomes of the rate anomalies the recall target is about."""
    return [
        found
        for label, values in outcomes.items()
        for found in values
        if label.startswith("rate")
        and float(label.split()[1].rstrip("×")) >= 5
        and not label.endswith("15 min")
    ]


def meets_targets(tally: Tally) -> list[str]:
    problems = []
    big, everything = _at_least_5x_30min(tally.material), _at_least_5x_30min(tally.detected)
    print(
        f"normal: recall of every ≥5× ≥30 min anomaly {sum(everything)}/{len(everything)},"
        f" of those adding ≥ {MATERIAL_CU:g} CU in their first hour {sum(big)}/{len(big)}"
    )
    if big and sum(big) / len(big) < 0.95:
        problems.append(f"recall of ≥5× ≥30 min anomalies {sum(big) / len(big):.0%} < 95 %")
    new_keys = tally.detected.get("new key", [])
    if new_keys and sum(new_keys) / len(new_keys) < 0.95:
        problems.append(f"recall of new keys {sum(new_keys) / len(new_keys):.0%} < 95 %")
    episodes = tally.true_episodes + tally.false_episodes
    if episodes and tally.true_episodes / episodes < 0.90:
        problems.append(f"precision {tally.true_episodes / episodes:.0%} < 90 %")
    if tally.clean_months and tally.clean_false / tally.clean_months > 1:
        problems.append(f"{tally.clean_false / tally.clean_months:.2f} false alerts/team-month")
    median = percentile(tally.visible_delays, 0.5)
    if median is not None and median > STEP.total_seconds() / 60:
        problems.append(f"median delay {median:.0f} min > one check interval")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", choices=["report", "tune", "all"], default="report")
    parser.add_argument("--quick", action="store_true", help="skip the clean 30-day replays")
    parser.add_argument(
        "--sensitivity",
        choices=[s.value for s in Sensitivity],
        action="append",
        help="only these sensitivities (default: all three)",
    )
    args = parser.parse_args(argv)
    sets = {"tune": [("tuning", TUNE_SEEDS)], "report": [("report", REPORT_SEEDS)]}
    sets["all"] = sets["tune"] + sets["report"]
    print(
        f"# Watch evaluation — {HISTORY_DAYS} days of history, {EVAL_DAYS} evaluated,"
        " checks every 5 min"
    )
    ok = True
    for name, seeds in sets[args.seeds]:
        chosen = [Sensitivity(v) for v in args.sensitivity or [s.value for s in Sensitivity]]
        results = report(name, seeds, quick=args.quick, sensitivities=chosen)
        if name == "report" and Sensitivity.NORMAL in results:
            problems = meets_targets(results[Sensitivity.NORMAL])
            print("\nnormal:", "meets the targets" if not problems else "; ".join(problems))
            ok = ok and not problems
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
