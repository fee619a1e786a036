from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.budgets.evaluate import (
    AlertKind,
    BudgetRule,
    Decisions,
    FiredAlert,
    evaluate,
)
from bot.budgets.forecast import Forecast
from bot.budgets.periods import period_at
from bot.budgets.types import PeriodKind

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
MONTH = period_at(PeriodKind.MONTHLY, NOW, "Europe/Paris")
ROLLING = period_at(PeriodKind.ROLLING_24H, NOW, "UTC")
RULE = BudgetRule(limit_cu=1000, thresholds=(50, 80, 100))


def record(decisions: Decisions) -> list[FiredAlert]:
    """What the store writes for a set of decisions (the shell's job, done plainly here)."""
    rows = []
    if decisions.crossing:
        passed = decisions.crossing.passed
        rows += [FiredAlert(key, AlertKind.THRESHOLD, lvl) for lvl, key in passed]
    if decisions.forecast:
        rows.append(FiredAlert(decisions.forecast.period_key, AlertKind.FORECAST, 0))
    return rows


def apply(fired: list[FiredAlert], decisions: Decisions) -> list[FiredAlert]:
    resolved = {(r.period_key, r.level) for r in decisions.resolutions}
    kept = [
        FiredAlert(f.period_key, f.kind, f.level, f.resolved or (f.period_key, f.level) in resolved)
        for f in fired
    ]
    return kept + record(decisions)


def test_nothing_below_the_first_threshold() -> None:
    assert not evaluate(RULE, 499.9, MONTH, NOW, [])


def test_exactly_at_a_threshold_crosses_it() -> None:
    crossing = evaluate(RULE, 500, MONTH, NOW, []).crossing
    assert crossing is not None
    assert crossing.levels == (50,)
    assert crossing.period_key == "monthly:2026-11@Europe/Paris"


def test_a_jump_past_two_levels_is_one_alert_at_the_highest_naming_both() -> None:
    crossing = evaluate(RULE, 850, MONTH, NOW, []).crossing
    assert crossing is not None
    assert crossing.level == 80
    assert crossing.levels == (50, 80)


def test_an_alerted_level_is_not_alerted_again_in_the_same_period() -> None:
    fired = [FiredAlert(MONTH.key, AlertKind.THRESHOLD, 50)]
    assert evaluate(RULE, 700, MONTH, NOW, fired).crossing is None
    crossing = evaluate(RULE, 810, MONTH, NOW, fired).crossing
    assert crossing is not None and crossing.levels == (80,)


def test_the_next_period_starts_clean() -> None:
    fired = [FiredAlert("monthly:2026-10@Europe/Paris", AlertKind.THRESHOLD, 50)]
    crossing = evaluate(RULE, 600, MONTH, NOW, fired).crossing
    assert crossing is not None and crossing.levels == (50,)


def test_snooze_mutes_and_a_crossing_during_it_fires_after_if_still_above() -> None:
    until = NOW + timedelta(hours=2)
    assert not evaluate(RULE, 900, MONTH, NOW, [], snoozed_until=until)
    later = NOW + timedelta(hours=3)
    crossing = evaluate(RULE, 900, MONTH, later, [], snoozed_until=until).crossing
    assert crossing is not None and crossing.levels == (50, 80)


def test_rolling_window_resolves_then_a_new_crossing_is_a_new_episode() -> None:
    first = evaluate(RULE, 600, ROLLING, NOW, [])
    assert first.crossing is not None and first.crossing.period_key == "rolling:24h#1"
    fired = apply([], first)
    assert not evaluate(RULE, 650, ROLLING, NOW, fired)
    down = evaluate(RULE, 300, ROLLING, NOW, fired)
    assert [(r.period_key, r.level) for r in down.resolutions] == [("rolling:24h#1", 50)]
    assert down.crossing is None
    fired = apply(fired, down)
    again = evaluate(RULE, 550, ROLLING, NOW, fired).crossing
    assert again is not None and again.passed == ((50, "rolling:24h#2"),)


def test_rolling_resolves_only_the_levels_spend_fell_under() -> None:
    fired = apply([], evaluate(RULE, 900, ROLLING, NOW, []))
    down = evaluate(RULE, 700, ROLLING, NOW, fired)
    assert [r.level for r in down.resolutions] == [80]
    fired = apply(fired, down)
    up = evaluate(RULE, 820, ROLLING, NOW, fired).crossing
    assert up is not None and up.passed == ((80, "rolling:24h#2"),)


def _projection(projected: float) -> Forecast:
    return Forecast(projected_cu=projected, rate_cu_per_hour=2.0, exhaustion_at=None)


def test_forecast_alerts_once_per_period_and_only_when_asked() -> None:
    rule = BudgetRule(1000, (50, 80, 100), forecast=True)
    decisions = evaluate(rule, 300, MONTH, NOW, [], projection=_projection(1200))
    assert decisions.forecast is not None
    assert decisions.forecast.period_key == MONTH.key
    fired = record(decisions)
    assert evaluate(rule, 310, MONTH, NOW, fired, projection=_projection(1300)).forecast is None
    assert evaluate(RULE, 300, MONTH, NOW, [], projection=_projection(1200)).forecast is None
    assert evaluate(rule, 300, MONTH, NOW, [], projection=_projection(900)).forecast is None


def test_no_forecast_alert_once_the_limit_is_already_spent() -> None:
    rule = BudgetRule(1000, (50, 80, 100), forecast=True)
    assert evaluate(rule, 1001, MONTH, NOW, [], projection=_projection(2000)).forecast is None


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), max_size=40),
    thresholds=st.sets(st.integers(1, 1000), min_size=1, max_size=6),
)
def test_rising_spend_alerts_each_level_exactly_once(
    steps: list[float], thresholds: set[int]
) -> None:
    rule = BudgetRule(limit_cu=1000, thresholds=tuple(sorted(thresholds)))
    fired: list[FiredAlert] = []
    spend = 0.0
    posts = 0
    for step in steps:
        spend += step
        decisions = evaluate(rule, spend, MONTH, NOW, fired)
        posts += decisions.crossing is not None
        fired = apply(fired, decisions)
    levels = [f.level for f in fired]
    assert sorted(levels) == sorted(t for t in thresholds if spend / 10 >= t)
    assert len(levels) == len(set(levels))
    assert posts <= len(levels)


@settings(max_examples=150, deadline=None)
@given(spends=st.lists(st.floats(min_value=0, max_value=2000, allow_nan=False), max_size=40))
def test_rolling_alerts_once_per_upward_crossing(spends: list[float]) -> None:
    rule = BudgetRule(limit_cu=1000, thresholds=(50, 80, 100))
    fired: list[FiredAlert] = []
    previous = 0.0
    for spend in spends:
        decisions = evaluate(rule, spend, ROLLING, NOW, fired)
        got = decisions.crossing.levels if decisions.crossing else ()
        # A level fires exactly when spend goes from under it to at or over it.
        expected = tuple(t for t in (50, 80, 100) if previous / 10 < t <= spend / 10)
        assert got == expected
        fired = apply(fired, decisions)
        previous = spend
    keys = [(f.period_key, f.level) for f in fired]
    assert len(keys) == len(set(keys))
