"""The watch detector (SPEC §5b): each rule and its floor on hand-made histories, and
properties over random ones."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.budgets.types import Scope, ScopeKind
from bot.budgets.watch import (
    TEAM,
    THRESHOLDS,
    Finding,
    HourlySpend,
    Rule,
    Sensitivity,
    Thresholds,
    detect,
    team_daily_usual,
)

PARIS = "Europe/Paris"
# The hour judged: Tuesday 1 December 2026, 10:00–11:00 in Paris (09:00 UTC).
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
DAYS = 35
KEY = Scope(ScopeKind.KEY, "key_ci")
OTHER_KEY = Scope(ScopeKind.KEY, "key_app")
USER = Scope(ScopeKind.USER, "user_ana")
MODEL = Scope(ScopeKind.MODEL, "model_flux")
OTHER_MODEL = Scope(ScopeKind.MODEL, "model_new")
PROJECT = Scope(ScopeKind.PROJECT, "proj_art")

Rate = Callable[[datetime], float]


def office_hours(cu: float, night: float = 0.0) -> Rate:
    """`cu` per hour 09:00–18:00 Paris time on weekdays, `night` otherwise."""

    def rate(hour: datetime) -> float:
        local = hour.astimezone(ZoneInfo(PARIS))
        return cu if local.weekday() < 5 and 9 <= local.hour < 18 else night

    return rate


def history(
    rates: dict[Scope, Rate],
    *,
    now_cu: dict[Scope, float] | None = None,
    days: int = DAYS,
    extra: dict[Scope, dict[datetime, float]] | None = None,
) -> HourlySpend:
    """`days` of hourly spend ending with the hour starting at NOW; the team is the sum of
    the keys and users given (models and projects follow the key they are told to)."""
    hours = days * 24
    start = NOW - (hours - 1) * timedelta(hours=1)
    values: dict[Scope, list[float]] = {}
    for entity, rate in rates.items():
        values[entity] = [rate(start + i * timedelta(hours=1)) for i in range(hours)]
    for entity, points in (extra or {}).items():
        series = values.setdefault(entity, [0.0] * hours)
        for at, cu in points.items():
            series[int((at - start) / timedelta(hours=1))] = cu
    for entity, cu in (now_cu or {}).items():
        values.setdefault(entity, [0.0] * hours)[-1] = cu
    spenders = [e for e in values if e.kind in (ScopeKind.KEY, ScopeKind.USER)]
    values[TEAM] = [sum(values[e][i] for e in spenders) for i in range(hours)]
    return HourlySpend(start=start, values=values, hours=hours)


def follow(spend: HourlySpend, source: Scope, *targets: Scope) -> HourlySpend:
    """The targets (a model, a project) spend exactly what `source` spends."""
    values = dict(spend.values)
    for target in targets:
        values[target] = list(spend.values[source])
    return HourlySpend(spend.start, values, spend.hours)


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


# -- velocity -----------------------------------------------------------------------------------


def test_a_key_far_above_its_usual_hour_is_one_velocity_finding() -> None:
    spend = history({KEY: office_hours(40), USER: office_hours(60)}, now_cu={KEY: 800})
    finding = only(detect(spend, tz=PARIS))
    assert (finding.entity, finding.rule) == (KEY, Rule.VELOCITY)
    assert finding.usual_cu == 40 and finding.ratio == 20
    assert finding.since == NOW  # and the team, which rose with it, is no second alert


def test_since_is_the_first_hour_of_the_run() -> None:
    burst = {NOW - timedelta(hours=2): 600.0, NOW - timedelta(hours=1): 700.0}
    spend = history({KEY: office_hours(40)}, now_cu={KEY: 800}, extra={KEY: burst})
    assert only(detect(spend, tz=PARIS)).since == NOW - timedelta(hours=2)


@pytest.mark.parametrize(
    ("times", "fires"),
    [
        (2.5, {Sensitivity.HIGH}),
        (5.0, {Sensitivity.HIGH, Sensitivity.NORMAL}),
        (10.0, {Sensitivity.HIGH, Sensitivity.NORMAL, Sensitivity.LOW}),
    ],
)
def test_sensitivity_moves_the_ratio(times: float, fires: set[Sensitivity]) -> None:
    spend = history({KEY: office_hours(100), USER: office_hours(400)}, now_cu={KEY: 100 * times})
    found = {s for s in Sensitivity if detect(spend, tz=PARIS, sensitivity=s)}
    assert found == fires


def test_one_past_spike_does_not_raise_the_bar() -> None:
    past = {NOW - timedelta(days=7): 5000.0, NOW - timedelta(days=14): 5000.0}
    spend = history({KEY: office_hours(40)}, now_cu={KEY: 800}, extra={KEY: past})
    assert only(detect(spend, tz=PARIS)).usual_cu == 40


def test_a_weekend_hour_is_compared_with_weekend_hours() -> None:
    """100 CU at 10:00 is usual on a Tuesday (40 × 2.5) but not on a Saturday, when the key
    never spends: the local day decides which hours are alike."""
    spend = history({KEY: office_hours(40), USER: office_hours(60)}, now_cu={KEY: 100})
    assert detect(spend, tz=PARIS) == []
    saturday = datetime(2026, 11, 28, 9, tzinfo=UTC)  # 10:00 in Paris
    weekend = _truncate(spend, saturday, {KEY: 100.0})
    finding = only(detect(weekend, tz=PARIS))
    assert (finding.entity, finding.usual_cu) == (KEY, 0)


def test_small_amounts_are_never_alerted() -> None:
    # 50× its usual, but 50 CU is under normal's 50 CU floor over usual.
    spend = history({KEY: office_hours(1), USER: office_hours(1)}, now_cu={KEY: 50})
    assert detect(spend, tz=PARIS) == []
    assert only(detect(spend, tz=PARIS, sensitivity=Sensitivity.HIGH)).entity == KEY


def test_the_floor_grows_with_the_team() -> None:
    """A team that spends ~36k CU a day: normal's floor is 5 % of that (1,800 CU)."""
    spend = history({KEY: office_hours(10), USER: office_hours(4000)}, now_cu={KEY: 1000})
    assert 30_000 < team_daily_usual(spend) < 40_000
    assert detect(spend, tz=PARIS) == []
    assert only(detect(spend, tz=PARIS, sensitivity=Sensitivity.HIGH)).entity == KEY


def test_an_entity_with_little_history_is_measured_against_the_team_pattern() -> None:
    young = {NOW - timedelta(days=d, hours=h): 40.0 for d in range(1, 4) for h in range(1, 8)}
    spend = history({USER: office_hours(100)}, now_cu={KEY: 2000}, extra={KEY: young})
    finding = only(detect(spend, tz=PARIS))
    assert (finding.entity, finding.rule) == (KEY, Rule.VELOCITY)
    assert 0 < finding.usual_cu < 100


# -- new entity ---------------------------------------------------------------------------------


def test_a_key_with_no_spend_in_30_days_that_starts_spending_is_new() -> None:
    spend = history({USER: office_hours(100)}, now_cu={KEY: 300})
    finding = only(detect(spend, tz=PARIS))
    assert (finding.entity, finding.rule, finding.ratio) == (KEY, Rule.NEW_ENTITY, None)


def test_a_key_seen_31_days_ago_is_new_again_but_one_seen_29_days_ago_is_not() -> None:
    for days_ago, new in ((31, True), (29, False)):
        seen = {NOW - timedelta(days=days_ago): 5.0}
        spend = history({USER: office_hours(100)}, now_cu={KEY: 300}, extra={KEY: seen})
        rules = {f.rule for f in detect(spend, tz=PARIS) if f.entity == KEY}
        assert (Rule.NEW_ENTITY in rules) is new, days_ago


def test_without_30_days_of_history_nothing_is_new() -> None:
    spend = history({USER: office_hours(100)}, now_cu={KEY: 300}, days=20)
    assert all(f.rule is not Rule.NEW_ENTITY for f in detect(spend, tz=PARIS))


def test_a_new_key_spending_slowly_is_reported_once_its_total_passes_the_floor() -> None:
    trickle = {NOW - timedelta(hours=h): 15.0 for h in range(1, 4)}
    spend = history({USER: office_hours(100)}, now_cu={KEY: 15}, extra={KEY: trickle})
    finding = only(detect(spend, tz=PARIS))
    assert (finding.rule, finding.spend_cu) == (Rule.NEW_ENTITY, 60)
    assert finding.since == NOW - timedelta(hours=3)
    short = history({USER: office_hours(100)}, now_cu={KEY: 15})
    assert detect(short, tz=PARIS) == []


def test_a_new_model_is_new_but_a_new_project_is_not_a_rule() -> None:
    base = history({USER: office_hours(500)}, now_cu={USER: 500})
    values = dict(base.values)
    values[OTHER_MODEL] = [0.0] * (base.hours - 1) + [400.0]
    values[Scope(ScopeKind.PROJECT, "proj_new")] = [0.0] * (base.hours - 1) + [400.0]
    findings = detect(HourlySpend(base.start, values, base.hours), tz=PARIS)
    assert [(f.entity, f.rule) for f in findings] == [(OTHER_MODEL, Rule.NEW_ENTITY)]


# -- off-hours ----------------------------------------------------------------------------------


def test_a_key_spending_at_an_hour_it_never_spends_is_off_hours() -> None:
    # Tuesday 03:00 in Paris: the key has spent only in office hours for five weeks.
    at_three = NOW - timedelta(hours=7)
    spend = _truncate(
        history({KEY: office_hours(40), USER: office_hours(100)}), at_three, {KEY: 90.0}
    )
    finding = only(detect(spend, tz=PARIS))
    assert (finding.entity, finding.rule) == (KEY, Rule.OFF_HOURS)


def test_off_hours_needs_a_habit() -> None:
    at_three = NOW - timedelta(hours=7)
    habit = {NOW - timedelta(days=d): 40.0 for d in range(1, 6)}  # five days only
    spend = _truncate(history({USER: office_hours(100)}, extra={KEY: habit}), at_three, {KEY: 90.0})
    assert all(f.rule is not Rule.OFF_HOURS for f in detect(spend, tz=PARIS))


def _truncate(spend: HourlySpend, last: datetime, now_cu: dict[Scope, float]) -> HourlySpend:
    """The same history, ending with the hour starting at `last`, where `now_cu` is spent."""
    hours = int((last - spend.start) / timedelta(hours=1)) + 1
    values = {e: list(v[:hours]) for e, v in spend.values.items()}
    for entity, cu in now_cu.items():
        values.setdefault(entity, [0.0] * hours)[-1] = cu
        values[TEAM][-1] += cu
    return HourlySpend(spend.start, values, hours)


# -- one cause, one episode ---------------------------------------------------------------------


def test_a_runaway_key_is_one_finding_naming_its_model_and_project() -> None:
    spend = history({KEY: office_hours(40), USER: office_hours(60)}, now_cu={KEY: 2000})
    spend = follow(spend, KEY, MODEL, PROJECT)
    finding = only(detect(spend, tz=PARIS, links={KEY: frozenset({MODEL, PROJECT})}))
    assert finding.entity == KEY
    assert set(finding.explains) == {MODEL, PROJECT}
    # Without the activity log's links, the key's excess is what explains them.
    assert set(only(detect(spend, tz=PARIS)).explains) == {MODEL, PROJECT}


def test_two_causes_at_once_are_two_findings() -> None:
    spend = history({KEY: office_hours(40), USER: office_hours(60)}, now_cu={KEY: 2000})
    spend = follow(spend, KEY, MODEL)
    values = dict(spend.values)
    values[OTHER_MODEL] = [0.0] * (spend.hours - 1) + [900.0]
    spend = HourlySpend(spend.start, values, spend.hours)
    findings = detect(spend, tz=PARIS, links={KEY: frozenset({MODEL})})
    assert {(f.entity, f.rule) for f in findings} == {
        (KEY, Rule.VELOCITY),
        (OTHER_MODEL, Rule.NEW_ENTITY),
    }


# -- properties ---------------------------------------------------------------------------------

ENTITIES = (KEY, OTHER_KEY, USER)


def random_history(rng: random.Random, days: int = 31) -> HourlySpend:
    """A team with a stable weekly rhythm, noise of ±30 %, nothing unusual."""
    rates = {}
    for entity in ENTITIES:
        day_cu, night_cu = rng.uniform(5, 500), rng.choice([0.0, rng.uniform(0.1, 5)])
        start_hour, length = rng.randint(6, 11), rng.randint(6, 11)
        weekend = rng.random() < 0.5

        def rate(
            hour: datetime,
            d: float = day_cu,
            n: float = night_cu,
            s: int = start_hour,
            hours: int = length,
            every_day: bool = weekend,
        ) -> float:
            local = hour.astimezone(ZoneInfo(PARIS))
            working = (local.weekday() < 5 or every_day) and s <= local.hour < s + hours
            return (d if working else n) * rng.uniform(0.7, 1.3)

        rates[entity] = rate
    return history(rates, days=days)


def scaled(spend: HourlySpend, factor: float) -> HourlySpend:
    values = {e: [v * factor for v in series] for e, series in spend.values.items()}
    return HourlySpend(spend.start, values, spend.hours)


def with_spike(spend: HourlySpend, rng: random.Random) -> HourlySpend:
    values = {e: list(v) for e, v in spend.values.items()}
    entity = rng.choice(ENTITIES)
    hours = rng.randint(1, 6)
    for i in range(spend.hours - hours, spend.hours):
        extra = values[entity][i] * rng.uniform(2, 60) + rng.uniform(0, 300)
        values[entity][i] += extra
        values[TEAM][i] += extra
    return HourlySpend(spend.start, values, spend.hours)


SHARE_ONLY = {s: Thresholds(t.ratio, 0.0, t.floor_share) for s, t in THRESHOLDS.items()}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), spike=st.booleans(), power=st.sampled_from([-2, 1, 3, 10]))
def test_scaling_all_spend_changes_no_decision(seed: int, spike: bool, power: int) -> None:
    """Above the absolute floor, only proportions decide: ×2^k (exact in binary floating
    point) finds the same entities, rules and starts."""
    rng = random.Random(seed)
    spend = random_history(rng)
    if spike:
        spend = with_spike(spend, rng)
    for sensitivity, thresholds in SHARE_ONLY.items():

        def decisions(s: HourlySpend) -> set[tuple[Scope, Rule, datetime]]:
            found = detect(s, tz=PARIS, sensitivity=sensitivity, thresholds=thresholds)  # noqa: B023
            return {(f.entity, f.rule, f.since) for f in found}

        assert decisions(scaled(spend, 2.0**power)) == decisions(spend)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), hours_back=st.integers(0, 24 * 6))
def test_a_history_without_anomalies_never_fires_at_low(seed: int, hours_back: int) -> None:
    """Judged at any hour of its last week, a steady team is never reported at `low`."""
    spend = random_history(random.Random(seed), days=38)
    end = spend.hours - hours_back
    cut = HourlySpend(spend.start, {e: v[:end] for e, v in spend.values.items()}, end)
    assert detect(cut, tz=PARIS, sensitivity=Sensitivity.LOW) == []


def test_a_launch_lifting_every_person_is_no_runaway() -> None:
    """Everyone at 1.8× for the day (a launch): people and the team are busier, nothing ran
    away; velocity is not judged on the team, and people need more than that."""
    people = {Scope(ScopeKind.USER, f"user_{n}"): office_hours(30 + 10 * n) for n in range(6)}
    spend = history(people, now_cu={p: (30 + 10 * n) * 1.8 for n, p in enumerate(people)})
    assert detect(spend, tz=PARIS, sensitivity=Sensitivity.HIGH) == []


def test_a_young_key_keeping_its_habit_is_not_a_runaway() -> None:
    """Three days old, a steady 60 CU every hour: its usual is its own average since it
    started, not diluted by the month before it existed."""
    young = {NOW - timedelta(hours=h): 60.0 for h in range(1, 72)}
    spend = history({USER: office_hours(200)}, now_cu={KEY: 60}, extra={KEY: young})
    assert [f for f in detect(spend, tz=PARIS) if f.entity == KEY] == []


def test_the_same_jump_alerts_for_a_key_but_not_for_a_person() -> None:
    """3.5× the busy end of its hours: over a key's bar (3×), under a person's (4×)."""
    for entity, fires in ((KEY, True), (USER, False)):
        others = {OTHER_KEY: office_hours(400)}
        spend = history({entity: office_hours(100), **others}, now_cu={entity: 350})
        assert bool([f for f in detect(spend, tz=PARIS) if f.entity == entity]) is fires


def test_a_half_hour_burst_is_judged_at_its_own_rate() -> None:
    """150 CU in the last half hour of a key usually at 40 CU/h: the hour (190 CU, 4.75×)
    is under normal's bar once the busy end is counted, its second half (300 CU/h) is not."""
    spend = history({KEY: office_hours(40), USER: office_hours(60)}, now_cu={KEY: 190})
    halved = HourlySpend(spend.start, spend.values, spend.hours, last_half={KEY: 150.0})
    thresholds = Thresholds(ratio=5.0, floor_cu=50.0, floor_share=0.0)
    assert detect(spend, tz=PARIS, thresholds=thresholds) == []
    assert only(detect(halved, tz=PARIS, thresholds=thresholds)).entity == KEY


def test_without_links_a_runaway_key_does_not_swallow_an_unrelated_new_model() -> None:
    spend = history({KEY: office_hours(40), USER: office_hours(60)}, now_cu={KEY: 2000})
    values = dict(spend.values)
    values[OTHER_MODEL] = [0.0] * (spend.hours - 1) + [900.0]
    findings = detect(HourlySpend(spend.start, values, spend.hours), tz=PARIS)
    assert {(f.entity, f.rule) for f in findings} == {
        (KEY, Rule.VELOCITY),
        (OTHER_MODEL, Rule.NEW_ENTITY),
    }


def test_one_incident_does_not_make_an_hour_habitual() -> None:
    at_three = NOW - timedelta(hours=7)
    incident = {at_three - timedelta(days=9): 90.0}
    base = history({KEY: office_hours(40), USER: office_hours(100)}, extra={KEY: incident})
    assert only(detect(_truncate(base, at_three, {KEY: 90.0}), tz=PARIS)).rule is Rule.OFF_HOURS
    twice = {at_three - timedelta(days=d): 90.0 for d in (9, 16)}
    base = history({KEY: office_hours(40), USER: office_hours(100)}, extra={KEY: twice})
    found = detect(_truncate(base, at_three, {KEY: 90.0}), tz=PARIS)
    assert all(f.rule is not Rule.OFF_HOURS for f in found)  # an hour it has worked


def test_a_nightly_job_is_not_off_hours_when_daylight_saving_ends() -> None:
    """A key that runs at 05:00 UTC every day: 07:00 in Paris all of October, 06:00 after
    the clocks went back on 25 October 2026 — its hour, give or take the change."""
    nightly = {
        hour: 120.0
        for hour in (datetime(2026, 10, 1, 5, tzinfo=UTC) + timedelta(days=d) for d in range(31))
    }
    end = datetime(2026, 10, 27, 5, tzinfo=UTC)
    spend = history({USER: office_hours(100)}, days=60, extra={KEY: nightly})
    cut = _truncate(spend, end, {KEY: 120.0})
    assert [f for f in detect(cut, tz=PARIS) if f.entity == KEY] == []
