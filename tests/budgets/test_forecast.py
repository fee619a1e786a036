"""The forecast range: linear from half-way, cautious before, never moved by one job."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.budgets.forecast import Forecast, forecast, raise_suggestion, recent_rate
from bot.budgets.periods import period_at
from bot.budgets.types import PeriodKind

MONTH_START = datetime(2026, 11, 1, tzinfo=UTC)  # November: 720 h


def _month(now: datetime):
    return period_at(PeriodKind.MONTHLY, now, "UTC")


def test_from_half_way_the_cautious_end_is_the_period_average_pace() -> None:
    now = MONTH_START + timedelta(days=20)  # 480 h in, 240 h left
    hourly = [(MONTH_START + timedelta(hours=h), 1.0) for h in range(480)]
    result = forecast(spend=480, limit=1000, period=_month(now), now=now, series=hourly)
    assert result is not None
    assert result.rate_cu_per_hour == pytest.approx(1.0)
    assert result.projected_cu == pytest.approx(720)
    assert result.high_cu == pytest.approx(720)
    assert result.exhaustion_at is None


def test_before_half_way_the_cautious_end_extrapolates_at_most_once_more() -> None:
    now = MONTH_START + timedelta(days=10)  # 240 h in, 480 h left
    result = forecast(spend=240, limit=1000, period=_month(now), now=now)
    assert result is not None
    assert result.projected_cu == pytest.approx(480)  # 240 + 480 × 240 / 480
    assert result.high_cu == pytest.approx(720)  # 240 + 480 × 1 CU/h


def test_a_runaway_today_raises_the_high_end_not_the_cautious_one() -> None:
    now = MONTH_START + timedelta(days=20)
    hourly = [(MONTH_START + timedelta(hours=h), 1.0) for h in range(456)]
    hourly += [(MONTH_START + timedelta(hours=h), 9.0) for h in range(456, 480)]
    spend = sum(cu for _, cu in hourly)  # 672
    result = forecast(spend=spend, limit=1000, period=_month(now), now=now, series=hourly)
    assert result is not None
    assert result.projected_cu == pytest.approx(672 + 240 * 672 / 480)
    assert result.high_cu == pytest.approx(672 + 240 * 9.0)
    assert result.exhaustion_at == now + timedelta(hours=(1000 - 672) / 1.4)


def test_a_job_just_after_midnight_in_a_daily_bucket_is_weighed_by_the_time_it_covers() -> None:
    # The review's case: daily buckets, 100 CU a day, a 40 CU job at 00:01, checked at 00:03.
    now = datetime(2026, 11, 25, 0, 3, tzinfo=UTC)
    days = [(MONTH_START + timedelta(days=d), 100.0) for d in range(24)]
    series = [*days, (datetime(2026, 11, 25, tzinfo=UTC), 40.0)]
    spend = 2440.0
    rate = recent_rate(series, now)
    assert rate == pytest.approx(140 / (24 + 3 / 60))
    result = forecast(spend=spend, limit=5000, period=_month(now), now=now, series=series)
    assert result is not None
    assert result.projected_cu < 5000  # the old blend projected ~156k CU and alerted
    assert result.high_cu < 5000


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


# -- properties, from random histories of jobs -------------------------------------------

PERIODS = [PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Pacific/Chatham", "Asia/Kolkata"]


@st.composite
def histories(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    """A period, a moment in it, jobs before that moment, and hourly or daily buckets."""
    kind = draw(st.sampled_from(PERIODS))
    tz = draw(st.sampled_from(ZONES))
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 60 * 24 * 700))
    )
    period = period_at(kind, start, tz)
    length = period.end - period.start
    now = period.start + length * draw(st.floats(0.0, 1.0, exclude_max=True))
    limit = float(draw(st.integers(10, 100_000)))
    offsets = draw(st.lists(st.floats(0.0, 1.0, exclude_max=True), max_size=40))
    costs = draw(st.lists(st.floats(0.0, limit / 20), min_size=len(offsets), max_size=40))
    jobs = [
        (period.start + (now - period.start) * o, c) for o, c in zip(offsets, costs, strict=False)
    ]
    bucket = draw(st.sampled_from([timedelta(hours=1), timedelta(days=1)]))
    return period, now, limit, jobs, bucket


def _buckets(period, jobs, bucket):  # type: ignore[no-untyped-def]
    sums: dict[datetime, float] = {}
    for at, cost in jobs:
        index = (at - period.start) // bucket
        start = period.start + bucket * index
        sums[start] = sums.get(start, 0.0) + cost
    return sorted(sums.items())


@settings(max_examples=400, deadline=None)
@given(histories(), st.floats(0.0, 1.0, exclude_max=True), st.floats(0.0, 0.01))
def test_one_more_job_of_at_most_1_percent_moves_the_projection_by_at_most_2_percent(
    history, where: float, share: float
) -> None:  # type: ignore[no-untyped-def]
    period, now, limit, jobs, bucket = history
    before = forecast(
        spend=sum(c for _, c in jobs),
        limit=limit,
        period=period,
        now=now,
        series=_buckets(period, jobs, bucket),
    )
    job = (period.start + (now - period.start) * where, limit * share)
    more = [*jobs, job]
    after = forecast(
        spend=sum(c for _, c in more),
        limit=limit,
        period=period,
        now=now,
        series=_buckets(period, more, bucket),
    )
    assert (before is None) == (after is None)
    if before is not None and after is not None:
        assert abs(after.projected_cu - before.projected_cu) <= 0.02 * limit * (1 + 1e-9)


@settings(max_examples=400, deadline=None)
@given(histories())
def test_the_alerting_end_never_exceeds_what_the_period_average_alone_projects(history) -> None:  # type: ignore[no-untyped-def]
    """So a fresh bucket (the first minutes of a day, a partial hour) cannot make a forecast
    alert unless the period's average pace already projects over the limit."""
    period, now, limit, jobs, bucket = history
    spend = sum(c for _, c in jobs)
    result = forecast(
        spend=spend, limit=limit, period=period, now=now, series=_buckets(period, jobs, bucket)
    )
    if result is None:
        return
    elapsed = (now - period.start).total_seconds()
    average_projection = spend * (period.end - period.start).total_seconds() / elapsed
    assert result.projected_cu <= average_projection * (1 + 1e-9) + 1e-9
    assert result.projected_cu <= result.high_cu


# -- what the Raise budget button proposes ---------------------------------------------------

POSITIVE = st.floats(min_value=0.01, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(limit=POSITIVE, spend=st.floats(0, 1e9), high=st.none() | POSITIVE)
def test_the_raise_proposal_covers_the_need_in_two_figures(
    limit: float, spend: float, high: float | None
) -> None:
    projection = None if high is None else Forecast(high * 0.9, high, 1.0, None)
    proposed = raise_suggestion(limit, spend, projection)
    over = high is not None and high > limit
    need = max(high, spend) if over and high is not None else max(limit, spend) * 1.25
    assert proposed >= need * (1 - 1e-12)
    # No more than the next two-figure number: within 10 % above what is needed.
    # No more than the next two-figure number (or the next cent, the form's finest step).
    assert proposed <= max(need * 1.1 * (1 + 1e-12), need + 0.01)
    assert Decimal(repr(proposed)) == Decimal(repr(proposed)).quantize(Decimal("0.01"))
    if need >= 1:
        digits = f"{Decimal(repr(proposed)).normalize():e}".split("e")[0].replace(".", "")
        assert len(digits.lstrip("-")) <= 2
    assert proposed >= limit and proposed >= spend


@pytest.mark.parametrize(
    ("limit", "spend", "high", "proposed"),
    [
        (12_000, 9_600, None, 15_000),  # 25 % more than the limit
        (12_000, 13_000, None, 17_000),  # over already: 25 % more than the spend (16,250)
        (12_000, 9_600, 14_321, 15_000),  # the forecast's high end, rounded up
        (12_000, 9_600, 11_000, 15_000),  # a forecast under the limit: +25 %
        (100, 5_390, None, 6_800),
    ],
)
def test_raise_proposals_by_hand(
    limit: float, spend: float, high: float | None, proposed: float
) -> None:
    projection = None if high is None else Forecast(high, high, 1.0, None)
    assert raise_suggestion(limit, spend, projection) == proposed
