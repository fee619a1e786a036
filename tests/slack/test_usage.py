"""`/usage` ranges: presets, calendar ranges and dates in the workspace timezone, cut at now."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.commands.requests import DateRange, RangePreset, UsageRange
from bot.slack.commands.usage import span_of

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)  # a Thursday, 13:00 in Paris


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("wanted", "start", "end"),
    [
        (RangePreset.LAST_1H, NOW - timedelta(hours=1), NOW),
        (RangePreset.LAST_24H, NOW - timedelta(days=1), NOW),
        (RangePreset.LAST_31D, NOW - timedelta(days=31), NOW),
        (RangePreset.TODAY, utc("2026-11-25T23:00"), NOW),
        (RangePreset.YESTERDAY, utc("2026-11-24T23:00"), utc("2026-11-25T23:00")),
        (RangePreset.THIS_WEEK, utc("2026-11-22T23:00"), NOW),  # from Monday
        (RangePreset.THIS_MONTH, utc("2026-10-31T23:00"), NOW),
        # Both days included; the day clocks go forward is 23 hours long, back 25.
        (
            DateRange(date(2026, 3, 29), date(2026, 3, 29)),
            utc("2026-03-28T23:00"),
            utc("2026-03-29T22:00"),
        ),
        (
            DateRange(date(2026, 10, 25), date(2026, 10, 25)),
            utc("2026-10-24T22:00"),
            utc("2026-10-25T23:00"),
        ),
        # A range that goes on after now ends now.
        (DateRange(date(2026, 11, 20), date(2026, 11, 30)), utc("2026-11-19T23:00"), NOW),
    ],
)
def test_span_in_paris(wanted: UsageRange, start: datetime, end: datetime) -> None:
    assert span_of(wanted, NOW, "Europe/Paris") == (start, end)


def test_calendar_ranges_follow_the_timezone() -> None:
    assert span_of(RangePreset.TODAY, NOW, "America/New_York") == (utc("2026-11-26T05:00"), NOW)
    assert span_of(RangePreset.TODAY, NOW, "UTC") == (utc("2026-11-26T00:00"), NOW)


def test_a_range_in_the_future_is_empty() -> None:
    start, end = span_of(DateRange(date(2026, 12, 1), date(2026, 12, 3)), NOW, "UTC")
    assert end <= start


def test_120_local_days_across_a_dst_change_stay_within_the_apis_limit() -> None:
    # 1 September to 29 December in Paris spans the October fall-back: 120 days + 1 hour.
    start, end = span_of(
        DateRange(date(2026, 9, 1), date(2026, 12, 29)),
        datetime(2027, 1, 5, tzinfo=UTC),
        "Europe/Paris",
    )
    assert end == datetime(2026, 12, 29, 23, tzinfo=UTC)
    assert end - start == timedelta(days=120)
