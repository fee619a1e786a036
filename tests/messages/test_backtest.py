"""The backtest in words: listed for weekly and monthly budgets, summed up for daily and
rolling ones, and the highest spend when nothing would have alerted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.budgets.backtest import Announced, Backtest
from bot.budgets.evaluate import BudgetRule, EventKind
from bot.budgets.types import TEAM, PeriodKind, Scope, ScopeKind
from bot.messages.backtest import backtest_text, form_preview_text

DAY = datetime(2026, 11, 4, 22, 30, tzinfo=UTC)  # 5 Nov in Auckland


def found(*events: Announced, worst: float = 900.0) -> Backtest:
    return Backtest(DAY - timedelta(days=30), DAY, events, worst, DAY, reads=12)


def level(at: datetime, value: int, key: str = "monthly:2026-11") -> Announced:
    return Announced(at, EventKind.LEVEL, value, key, 0.0)


def test_monthly_alerts_are_named_in_the_local_day() -> None:
    text = backtest_text(
        found(
            level(DAY, 50),
            Announced(DAY + timedelta(days=2), EventKind.FORECAST, None, "monthly:2026-11", 0),
            level(DAY + timedelta(days=8), 100),
        ),
        1000,
        PeriodKind.MONTHLY,
        "Pacific/Auckland",
    )
    assert text.endswith(
        "would have alerted 3 times: 50 % on 5 Nov, forecast over the limit on 7 Nov,"
        " 100 % on 13 Nov."
    )


def test_back_under_is_not_an_alert_and_daily_budgets_are_summed_up() -> None:
    events = [level(DAY + timedelta(days=d), 100, f"daily:{d}") for d in (0, 0.05, 3)]
    back = Announced(DAY, EventKind.BACK_UNDER, 100, "daily:0", 0.0)
    text = backtest_text(found(*events, back, worst=2400), 1000, PeriodKind.DAILY, "UTC")
    assert "would have alerted on 2 days (3 alerts in 3 messages); worst: 240 % on 4 Nov." in text


def test_nothing_would_have_alerted() -> None:
    text = backtest_text(found(worst=420), 1000, PeriodKind.WEEKLY, "UTC")
    assert text.endswith("would not have alerted (at most 42 % on 4 Nov).")


def test_past_six_alerts_the_rest_are_counted() -> None:
    events = [level(DAY + timedelta(hours=h), 10 * h, f"m{h}") for h in range(1, 10)]
    text = backtest_text(found(*events), 1000, PeriodKind.MONTHLY, "UTC")
    assert text.count(" on ") == 6 and text.endswith("and 3 more.")


def test_the_forms_preview_leads_with_the_limit_period_and_scope_it_replayed() -> None:
    rule = BudgetRule(12_000, (50, 100), forecast=True)
    text = form_preview_text(found(level(DAY, 50)), rule, PeriodKind.MONTHLY, TEAM, None, "UTC")
    assert text.startswith(
        "📊 *12,000 CU monthly, the whole team* (alerts at 50, 100 % + forecast) — over the last"
        " 30 days it would have alerted once: 50 % on 4 Nov."
    )
    assert text.endswith("from 12 Scenario reads._")
    member = Scope(ScopeKind.USER, "u_1")
    rule = BudgetRule(500, (80,))
    text = form_preview_text(found(), rule, PeriodKind.ROLLING_7D, member, "a<b>@x.io", "UTC")
    assert text.startswith(
        "📊 *500 CU per rolling 7 days, user a&lt;b&gt;@x.io* (alerts at 80 %) — "
    )
    assert "would not have alerted (at most 180 % on 4 Nov)." in text
