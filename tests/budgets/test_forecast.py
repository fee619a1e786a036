from datetime import UTC, datetime, timedelta

import pytest

from bot.budgets.forecast import forecast
from bot.budgets.periods import period_at
from bot.budgets.types import PeriodKind

MONTH_START = datetime(2026, 11, 1, tzinfo=UTC)


def _month(now: datetime):
    return period_at(PeriodKind.MONTHLY, now, "UTC")


def test_steady_pace_projects_linearly() -> None:
    now = MONTH_START + timedelta(days=10)
    hourly = [(MONTH_START + timedelta(hours=h), 1.0) for h in range(240)]
    result = forecast(spend=240, limit=1000, period=_month(now), now=now, series=hourly)
    assert result is not None
    assert result.rate_cu_per_hour == pytest.approx(1.0)
    assert result.projected_cu == pytest.approx(720)
    assert result.exhaustion_at is None


def test_a_runaway_today_pulls_the_projection_up_and_gives_an_exhaustion_date() -> None:
    now = MONTH_START + timedelta(days=10)
    hourly = [(MONTH_START + timedelta(hours=h), 1.0) for h in range(216)]
    hourly += [(MONTH_START + timedelta(hours=h), 9.0) for h in range(216, 240)]
    spend = sum(cu for _, cu in hourly)
    result = forecast(spend=spend, limit=1000, period=_month(now), now=now, series=hourly)
    assert result is not None
    # Average 1.8 CU/h, recent 9 CU/h: the blend is 5.4 CU/h over the 480 h left.
    assert result.rate_cu_per_hour == pytest.approx(5.4)
    assert result.projected_cu == pytest.approx(432 + 5.4 * 480)
    assert result.exhaustion_at == now + timedelta(hours=(1000 - 432) / 5.4)


def test_without_a_series_the_period_average_is_used() -> None:
    now = MONTH_START + timedelta(days=15)
    result = forecast(spend=360, limit=500, period=_month(now), now=now)
    assert result is not None
    assert result.rate_cu_per_hour == pytest.approx(1.0)
    assert result.projected_cu == pytest.approx(720)
    assert result.exhaustion_at == now + timedelta(hours=140)


@pytest.mark.parametrize(
    ("kind", "elapsed"),
    [
        (PeriodKind.MONTHLY, timedelta(days=5)),  # under 20 % of the month
        (PeriodKind.DAILY, timedelta(hours=5)),  # 20 % of the day but under 6 h of data
        (PeriodKind.ROLLING_24H, timedelta(days=3)),  # no end to project to
    ],
)
def test_too_early_or_no_end_gives_no_forecast(kind: PeriodKind, elapsed: timedelta) -> None:
    now = MONTH_START + elapsed
    period = period_at(kind, now, "UTC")
    assert forecast(spend=900, limit=1000, period=period, now=now) is None
