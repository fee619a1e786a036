"""The pure replay at the edges of calendar periods: a period's last hour counts in that
period, and an hour a boundary cuts (midnight in Kolkata is 18:30 UTC) is shared between
the two days. Figures from a flat 10 CU an hour, so every expectation is arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.budgets.backtest import LAST_CHECK, replay
from bot.budgets.evaluate import BudgetRule, EventKind
from bot.budgets.periods import period_at
from bot.budgets.types import PeriodKind

HOUR = timedelta(hours=1)
START = datetime(2026, 11, 9, tzinfo=UTC)  # a Monday, a week after New York's DST end
END = START + timedelta(days=3)


def flat(rate: float, start: datetime, end: datetime) -> list[tuple[datetime, datetime, float]]:
    """UTC hour buckets, `rate` CU each: what Scenario's hourly series gives."""
    hours = int((end - start) / HOUR)
    return [(start + i * HOUR, start + (i + 1) * HOUR, rate) for i in range(hours)]


def local_midnights(tz: str, start: datetime, end: datetime) -> list[datetime]:
    zone = ZoneInfo(tz)
    day = start.astimezone(zone).date()
    found = []
    while True:
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        if midnight > end:
            return found
        if midnight > start:
            found.append(midnight)
        day += timedelta(days=1)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York"])
def test_a_day_that_spends_just_over_its_limit_alerts_before_it_ends(tz: str) -> None:
    # 240 CU a day against 239: only the day's last quarter hour (Kathmandu) crosses it.
    buckets = flat(10, START - timedelta(days=2), END)
    found = replay(BudgetRule(239, (100,)), PeriodKind.DAILY, buckets, tz, START, END)
    midnights = local_midnights(tz, START, END)
    assert [a.at for a in found.alerts] == [m - LAST_CHECK for m in midnights]
    for alert in found.alerts:
        assert alert.level == 100 and alert.spend_cu == pytest.approx(240)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "Asia/Kathmandu"])
def test_a_day_just_under_its_limit_never_alerts_and_its_worst_is_the_whole_day(
    tz: str,
) -> None:
    buckets = flat(10, START - timedelta(days=2), END)
    found = replay(BudgetRule(241, (100,)), PeriodKind.DAILY, buckets, tz, START, END)
    assert found.alerts == ()
    assert found.worst_cu == pytest.approx(240)


def test_the_hour_kolkata_midnight_cuts_is_shared_between_the_two_days() -> None:
    # All of one day's spend in the hour 18:00–19:00 UTC (23:30–00:30 IST): 60 before
    # midnight, 60 after, so a limit of 100 is crossed by neither day.
    burst = datetime(2026, 11, 10, 18, tzinfo=UTC)
    buckets = [(burst, burst + HOUR, 120.0)]
    quiet = replay(
        BudgetRule(100, (50, 100)), PeriodKind.DAILY, buckets, "Asia/Kolkata", START, END
    )
    assert [(a.level, round(a.spend_cu)) for a in quiet.alerts] == [(50, 60), (50, 60)]
    at = [a.at for a in quiet.alerts]
    midnight = datetime(2026, 11, 10, 18, 30, tzinfo=UTC)
    assert at == [midnight - LAST_CHECK, midnight + timedelta(minutes=30)]


def test_the_last_hour_of_a_month_counts_in_that_month() -> None:
    # 1,000 CU spent in the last hour of November (UTC); the 1 December step is December.
    last = datetime(2026, 11, 30, 23, tzinfo=UTC)
    buckets = [(last, last + HOUR, 1000.0)]
    start, end = datetime(2026, 11, 28, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    found = replay(BudgetRule(900, (100,)), PeriodKind.MONTHLY, buckets, "UTC", start, end)
    [alert] = found.alerts
    assert "2026-11@" in alert.period_key and alert.at == last + HOUR - LAST_CHECK


def test_rolling_windows_are_stepped_on_the_hour_only() -> None:
    buckets = flat(10, START - timedelta(days=2), END)
    found = replay(
        BudgetRule(235, (100,)), PeriodKind.ROLLING_24H, buckets, "Asia/Kolkata", START, END
    )
    assert all(a.at.minute == 0 and a.at.microsecond == 0 for a in found.announced)
    assert found.worst_cu == pytest.approx(240)


@settings(max_examples=60, deadline=None)
@given(
    tz=st.sampled_from(["UTC", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"]),
    kind=st.sampled_from([PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY]),
    rates=st.lists(st.integers(0, 50), min_size=24, max_size=24),
    offset_days=st.integers(0, 400),
)
def test_no_spend_is_lost_or_counted_twice_at_a_boundary(
    tz: str, kind: PeriodKind, rates: list[int], offset_days: int
) -> None:
    # A limit nobody reaches: the worst a period saw is then the largest period total,
    # which sums, over every boundary cut, to at most what was spent and — for the
    # period that holds the most — exactly its share of time.
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=offset_days)
    end = start + timedelta(days=3)
    lead = start - timedelta(days=40)
    hours = int((end - lead) / HOUR)
    buckets = [(lead + i * HOUR, lead + (i + 1) * HOUR, float(rates[i % 24])) for i in range(hours)]
    found = replay(BudgetRule(1e12, (100,)), kind, buckets, tz, start, end)
    periods = {period_at(kind, start + i * HOUR, tz) for i in range(1, 73)}
    periods |= {period_at(kind, end - LAST_CHECK, tz)}

    def share(period_start: datetime, period_end: datetime, until: datetime) -> float:
        total = 0.0
        for lo, hi, cu in buckets:
            overlap = (min(hi, period_end, until) - max(lo, period_start)).total_seconds()
            if overlap > 0:
                total += cu * overlap / (hi - lo).total_seconds()
        return total

    # A period ending in the window was seen whole; the last one up to `end`'s hour.
    seen = [share(p.start, p.end, min(p.end, end)) for p in periods]
    assert found.worst_cu == pytest.approx(max(seen), rel=1e-9, abs=1e-6)
    assert found.alerts == ()
    assert all(a.kind is not EventKind.LEVEL for a in found.announced)
