"""The alert state machine, step by step: one alert per budget and period, with events."""

from datetime import UTC, datetime, timedelta

from bot.budgets.evaluate import (
    AlertState,
    BudgetRule,
    Event,
    EventKind,
    evaluate,
    rearm,
)
from bot.budgets.forecast import Forecast
from bot.budgets.periods import period_at
from bot.budgets.types import PeriodKind

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
MONTH = period_at(PeriodKind.MONTHLY, NOW, "Europe/Paris")
ROLLING = period_at(PeriodKind.ROLLING_24H, NOW, "UTC")
RULE = BudgetRule(limit_cu=1000, thresholds=(50, 80, 100))


class Story:
    """Feeds spend to `evaluate` and keeps the states, as the store does."""

    def __init__(self, rule: BudgetRule = RULE, period=MONTH) -> None:  # type: ignore[no-untyped-def]
        self.rule, self.period = rule, period
        self.states: dict[str, AlertState] = {}
        self.order: list[str] = []

    @property
    def current(self) -> AlertState | None:
        return self.states[self.order[-1]] if self.order else None

    def see(self, spend: float, **kw) -> list[tuple[str, tuple[Event, ...], bool]]:  # type: ignore[no-untyped-def]
        decisions = evaluate(
            self.rule, spend, self.period, NOW, self.current, episodes=len(self.order), **kw
        )
        out = []
        for change in decisions.changes:
            if change.opens:
                self.order.append(change.state.period_key)
            self.states[change.state.period_key] = change.state
            out.append((change.state.period_key, change.events, change.opens))
        return out


def test_nothing_below_the_first_threshold() -> None:
    assert not evaluate(RULE, 499.9, MONTH, NOW, None)


def test_exactly_at_a_threshold_opens_the_alert() -> None:
    [(key, events, opens)] = Story().see(500)
    assert key == "monthly:2026-11@Europe/Paris"
    assert events == (Event(EventKind.LEVEL, 50),)
    assert opens


def test_a_jump_past_two_levels_then_the_next_level_stays_on_the_same_alert() -> None:
    """Finding 1: 10 % → 85 % → 105 % is one alert, then one more event on it."""
    story = Story()
    assert story.see(100) == []
    [(key, events, opens)] = story.see(850)
    assert (events, opens) == ((Event(EventKind.LEVEL, 80),), True)
    assert story.current is not None and story.current.passed == {50, 80}
    [(again, events, opens)] = story.see(1050)
    assert again == key
    assert (events, opens) == ((Event(EventKind.LEVEL, 100),), False)


def test_the_same_level_never_fires_twice_in_a_period() -> None:
    story = Story()
    story.see(850)
    assert story.see(860) == []
    assert story.see(850) == []


def test_threshold_and_forecast_in_one_cycle_are_two_events_on_one_alert() -> None:
    """Finding 3: never two top-level messages."""
    projection = Forecast(projected_cu=1500, high_cu=1600, rate_cu_per_hour=2, exhaustion_at=None)
    rule = BudgetRule(1000, (50, 80, 100), forecast=True)
    [(_, events, opens)] = Story(rule).see(600, projection=projection)
    assert opens
    assert events == (Event(EventKind.LEVEL, 50), Event(EventKind.FORECAST))


def test_a_forecast_is_announced_once_and_not_once_over_the_limit() -> None:
    projection = Forecast(projected_cu=1500, high_cu=1600, rate_cu_per_hour=2, exhaustion_at=None)
    rule = BudgetRule(1000, (100,), forecast=True)
    story = Story(rule)
    assert story.see(400, projection=projection)[0][1] == (Event(EventKind.FORECAST),)
    assert story.see(450, projection=projection) == []
    assert Story(rule).see(1000, projection=projection)[0][1] == (Event(EventKind.LEVEL, 100),)


def test_snoozed_nothing_happens_and_the_crossing_comes_after_the_snooze() -> None:
    story = Story()
    assert story.see(900, snoozed_until=NOW + timedelta(hours=1)) == []
    [(_, events, _)] = story.see(900, snoozed_until=NOW - timedelta(seconds=1))
    assert events == (Event(EventKind.LEVEL, 80),)


def test_rolling_back_under_after_a_jump_announces_each_level_fallen_under() -> None:
    """Finding 6: 850 → 600 → 400 says back under 80 %, then back under 50 %."""
    story = Story(period=ROLLING)
    [(first, _, _)] = story.see(850)
    assert first == f"{ROLLING.key}#1"
    [(key, events, _)] = story.see(600)
    assert (key, events) == (first, (Event(EventKind.BACK_UNDER, 80),))
    [(key, events, _)] = story.see(400)
    assert (key, events) == (first, (Event(EventKind.BACK_UNDER, 50),))
    assert story.current is not None and story.current.closed
    [(second, events, opens)] = story.see(510)
    assert second == f"{ROLLING.key}#2" and opens


def test_rolling_windows_do_not_flap_at_a_threshold() -> None:
    story = Story(period=ROLLING)
    story.see(810)
    for spend in (790, 805, 721, 800, 760):  # above 90 % of 80 %: still passed
        assert story.see(spend) == []
    assert story.see(719)[0][1] == (Event(EventKind.BACK_UNDER, 80),)
    assert story.see(800)[0][1] == (Event(EventKind.LEVEL, 80),)


def test_a_raised_limit_re_arms_the_levels_above_the_spend() -> None:
    """Finding 4: after 100 % of 1,000, a limit of 2,000 alerts again at 2,000."""
    story = Story()
    story.see(1000)
    raised = BudgetRule(2000, (50, 80, 100))
    state = story.current
    assert state is not None
    story.states[state.period_key] = rearm(
        state, seen_spend=1050, rule=raised, old_limit=1000, rolling=False
    )
    assert story.states[state.period_key].passed == {50}
    story.rule = raised
    assert story.see(1500) == []
    [(_, events, opens)] = story.see(1600)
    assert (events, opens) == ((Event(EventKind.LEVEL, 80),), False)
    assert story.see(2000)[0][1] == (Event(EventKind.LEVEL, 100),)


def test_an_edit_that_re_arms_everything_closes_a_rolling_episode() -> None:
    state = AlertState("rolling:24h#1", frozenset({50}))
    after = rearm(state, seen_spend=100, rule=RULE, old_limit=1000, rolling=True)
    assert after.closed and not after.passed


def test_a_new_period_starts_a_new_alert() -> None:
    story = Story()
    story.see(1000)
    december = period_at(PeriodKind.MONTHLY, datetime(2026, 12, 2, tzinfo=UTC), "Europe/Paris")
    decisions = evaluate(RULE, 500, december, NOW, None)
    [change] = decisions.changes
    assert change.opens and change.state.period_key == "monthly:2026-12@Europe/Paris"
