"""Which days a digest covers and when it is due, in several zones, across DST changes and
year ends: worked examples, and properties checked against a reference written without the
code's arithmetic (it walks day by day, reads ISO weeks from `isocalendar` and finds the
due instant by trying the zone's offsets)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from bot.budgets.periods import digest_span
from bot.budgets.types import PeriodKind
from bot.jobs.digest import catch_up, is_due
from bot.reports.digest import CHART_SPANS
from bot.scenario.errors import MAX_RANGE_DAYS
from bot.store.digests import Digest

DAILY, WEEKLY, MONTHLY = PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY
ZONES = [
    "Pacific/Auckland",
    "America/New_York",
    "Europe/Paris",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "America/Santiago",
    "UTC",
]
SECOND = timedelta(seconds=1)
# Many examples, each quick; no deadline, so that a busy machine does not fail them.
PROPERTY = settings(max_examples=300, deadline=None)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Worked examples
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "weekday", "today", "tz", "first", "last", "key", "start", "end"),
    [
        # ISO week 53 of 2026, across 31 Dec / 1 Jan, in a zone 13 hours ahead of UTC.
        (
            WEEKLY,
            0,
            date(2027, 1, 4),
            "Pacific/Auckland",
            date(2026, 12, 28),
            date(2027, 1, 3),
            "2026-W53",
            utc(2026, 12, 27, 11),
            utc(2027, 1, 3, 11),
        ),
        # A monthly digest on 1 January covers December.
        (
            MONTHLY,
            None,
            date(2027, 1, 1),
            "America/New_York",
            date(2026, 12, 1),
            date(2026, 12, 31),
            "2026-12",
            utc(2026, 12, 1, 5),
            utc(2027, 1, 1, 5),
        ),
        # Paris falls back on Sunday 25 October 2026: that week lasts 7 days and an hour.
        (
            WEEKLY,
            0,
            date(2026, 10, 26),
            "Europe/Paris",
            date(2026, 10, 19),
            date(2026, 10, 25),
            "2026-W43",
            utc(2026, 10, 18, 22),
            utc(2026, 10, 25, 23),
        ),
        # New York springs forward on 8 March 2026: March is an hour short.
        (
            MONTHLY,
            None,
            date(2026, 4, 1),
            "America/New_York",
            date(2026, 3, 1),
            date(2026, 3, 31),
            "2026-03",
            utc(2026, 3, 1, 5),
            utc(2026, 4, 1, 4),
        ),
        # Auckland springs forward on 27 September 2026: September starts at +12, ends at +13.
        (
            MONTHLY,
            None,
            date(2026, 10, 1),
            "Pacific/Auckland",
            date(2026, 9, 1),
            date(2026, 9, 30),
            "2026-09",
            utc(2026, 8, 31, 12),
            utc(2026, 9, 30, 11),
        ),
        # A Friday digest covers Friday to Thursday; its key names the week and the day.
        (
            WEEKLY,
            4,
            date(2026, 12, 4),
            "Asia/Kolkata",
            date(2026, 11, 27),
            date(2026, 12, 3),
            "2026-W48-5",
            utc(2026, 11, 26, 18, 30),
            utc(2026, 12, 3, 18, 30),
        ),
        # Run by hand on a Wednesday, a Monday digest is the one of the week just ended.
        (
            WEEKLY,
            0,
            date(2026, 12, 2),
            "UTC",
            date(2026, 11, 23),
            date(2026, 11, 29),
            "2026-W48",
            utc(2026, 11, 23),
            utc(2026, 11, 30),
        ),
        # And the daily digest is what it always was: yesterday, keyed by the day it goes out.
        (
            DAILY,
            None,
            date(2027, 1, 1),
            "Europe/Paris",
            date(2026, 12, 31),
            date(2026, 12, 31),
            "2027-01-01",
            utc(2026, 12, 30, 23),
            utc(2026, 12, 31, 23),
        ),
    ],
)
def test_the_span_a_digest_covers(
    cadence: PeriodKind,
    weekday: int | None,
    today: date,
    tz: str,
    first: date,
    last: date,
    key: str,
    start: datetime,
    end: datetime,
) -> None:
    span = digest_span(cadence, weekday, today)
    assert (span.first, span.last, span.key) == (first, last, key)
    assert span.bounds(tz) == (start, end)


def digest(
    cadence: PeriodKind, weekday: int | None = None, at: time = time(9), sent: str | None = None
) -> Digest:
    return Digest(1, "T1", "C1", at, "line", sent, cadence, weekday)


@pytest.mark.parametrize(
    ("made", "now", "due"),
    [
        (digest(WEEKLY, 0), utc(2026, 12, 7, 8), True),  # Monday 09:00 in Paris
        (digest(WEEKLY, 0), utc(2026, 12, 7, 7, 59), False),
        (digest(WEEKLY, 0), utc(2026, 12, 7, 13, 59), True),  # a week's news keeps 6 hours
        (digest(WEEKLY, 0), utc(2026, 12, 7, 14), False),  # then it is too late
        (digest(DAILY), utc(2026, 12, 7, 9), False),  # a day's, an hour
        (digest(WEEKLY, 0), utc(2026, 12, 8, 8), False),  # Tuesday
        (digest(WEEKLY, 0, sent="2026-W49"), utc(2026, 12, 7, 8, 30), False),  # sent
        (digest(WEEKLY, 0, sent="2026-W48"), utc(2026, 12, 7, 8, 30), True),  # last week's
        (digest(WEEKLY, 6), utc(2026, 12, 6, 8), True),  # Sunday
        (digest(MONTHLY), utc(2026, 12, 1, 8), True),
        (digest(MONTHLY), utc(2026, 12, 2, 8), False),
        (digest(MONTHLY, sent="2026-11"), utc(2026, 12, 1, 8), False),
        # 1 January 00:30 in Paris is still 31 December in UTC.
        (digest(MONTHLY, at=time(0, 30)), utc(2026, 12, 31, 23, 30), True),
        # Sunday 29 March 2026, spring forward in Paris: 09:00 local is 07:00 UTC.
        (digest(WEEKLY, 6), utc(2026, 3, 29, 7), True),
        (digest(WEEKLY, 6), utc(2026, 3, 29, 6, 59), False),
        # A daily digest after a weekly one: another span, sent.
        (digest(DAILY, sent="2026-W49"), utc(2026, 12, 7, 8), True),
    ],
)
def test_when_a_digest_is_due(made: Digest, now: datetime, due: bool) -> None:
    assert is_due(made, "Europe/Paris", now) is due


# ---------------------------------------------------------------------------------------------
# Properties against a reference
# ---------------------------------------------------------------------------------------------


def reference_send_day(cadence: PeriodKind, weekday: int | None, today: date) -> date:
    """Walk back from today to the latest day the digest goes out."""
    day = today
    while True:
        if cadence is DAILY or (cadence is WEEKLY and day.isoweekday() == (weekday or 0) + 1):
            return day
        if cadence is MONTHLY and day.day == 1:
            return day
        day -= timedelta(days=1)


def reference_span(cadence: PeriodKind, weekday: int | None, today: date) -> tuple[list[date], str]:
    """The days covered, in order, and the key naming them."""
    sent = reference_send_day(cadence, weekday, today)
    yesterday = sent - timedelta(days=1)
    if cadence is DAILY:
        return [yesterday], sent.isoformat()
    if cadence is MONTHLY:
        days = [yesterday]
        while (days[0] - timedelta(days=1)).month == yesterday.month:
            days.insert(0, days[0] - timedelta(days=1))
        return days, f"{yesterday.year:04d}-{yesterday.month:02d}"
    days = [sent - timedelta(days=n) for n in range(7, 0, -1)]
    year, week, _ = days[0].isocalendar()
    if weekday == 0:  # Monday to Sunday: exactly one ISO week, the one of yesterday
        assert {d.isocalendar()[:2] for d in days} == {yesterday.isocalendar()[:2]}
        return days, f"{year}-W{week:02d}"
    return days, f"{year}-W{week:02d}-{days[0].isoweekday()}"


def only_reading(naive: datetime, zone: ZoneInfo, near: datetime) -> datetime | None:
    """The one UTC instant at which the local clock reads `naive`; None when the clock
    skips that reading or shows it twice."""
    offsets = {zone.utcoffset(near + timedelta(hours=h)) for h in range(-48, 49, 6)}
    found = {
        (naive - offset).replace(tzinfo=UTC)
        for offset in offsets
        if offset is not None
        and (naive - offset).replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None) == naive
    }
    return found.pop() if len(found) == 1 else None


cadences = st.sampled_from([DAILY, WEEKLY, MONTHLY])
weekdays = st.integers(0, 6)
zones = st.sampled_from(ZONES)
# Whole years around ISO week 53 (2026, 2032) and a leap day (2028).
local_days = st.dates(date(2025, 12, 1), date(2033, 1, 31))
instants = st.datetimes(datetime(2025, 12, 1), datetime(2033, 1, 31), timezones=st.just(UTC)).map(
    lambda d: d.astimezone(UTC)
)


@PROPERTY
@given(cadences, weekdays, zones, instants)
@example(WEEKLY, 0, "Pacific/Auckland", utc(2027, 1, 3, 20))  # Monday 4 Jan 09:00 NZDT
@example(MONTHLY, 0, "America/New_York", utc(2027, 1, 1, 14))
@example(WEEKLY, 3, "Asia/Kolkata", utc(2032, 12, 30, 3))
def test_the_span_covers_the_days_the_reference_says(
    cadence: PeriodKind, weekday: int, tz: str, now: datetime
) -> None:
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    weekly_day = weekday if cadence is WEEKLY else None
    span = digest_span(cadence, weekly_day, today)
    days, key = reference_span(cadence, weekly_day, today)
    assert (span.first, span.last, span.key) == (days[0], days[-1], key)
    start, end = span.bounds(tz)
    # The bounds are where the local date turns to the first day and past the last one.
    assert start.astimezone(zone).date() == days[0]
    assert (start - SECOND).astimezone(zone).date() < days[0]
    assert end.astimezone(zone).date() == days[-1] + timedelta(days=1)
    assert (end - SECOND).astimezone(zone).date() == days[-1]
    assert days[-1] < today  # only finished days


@PROPERTY
@given(cadences, weekdays, zones, local_days, st.integers(0, 23), st.integers(0, 59))
def test_the_chart_has_contiguous_bars_each_one_read_long(
    cadence: PeriodKind, weekday: int, tz: str, today: date, hour: int, minute: int
) -> None:
    span = digest_span(cadence, weekday if cadence is WEEKLY else None, today)
    bars = [*span.previous(CHART_SPANS[cadence] - 1), span]
    assert len(bars) == (14 if cadence is DAILY else 12)
    for earlier, later in pairwise(bars):
        assert earlier.end == later.first
        assert earlier.bounds(tz)[1] == later.bounds(tz)[0]
    for bar in bars:
        start, end = bar.bounds(tz)
        assert timedelta(0) < end - start <= timedelta(days=MAX_RANGE_DAYS)
        if cadence is MONTHLY:
            assert bar.first.day == 1 and bar.end.day == 1
            assert (bar.end - bar.first).days in (28, 29, 30, 31)
        else:
            assert (bar.end - bar.first).days == (7 if cadence is WEEKLY else 1)


@PROPERTY
@given(
    cadences,
    weekdays,
    zones,
    local_days,
    st.integers(0, 23),
    st.sampled_from([0, 1, 15, 30, 45, 59]),
    st.integers(-90, 420),
    st.sampled_from(["none", "this", "other"]),
)
@example(WEEKLY, 0, "Pacific/Auckland", date(2027, 1, 4), 9, 0, 0, "none")
@example(WEEKLY, 0, "Pacific/Auckland", date(2027, 1, 4), 9, 0, 59, "none")
@example(WEEKLY, 0, "Pacific/Auckland", date(2027, 1, 4), 9, 0, 60, "none")
@example(MONTHLY, 0, "Europe/Paris", date(2027, 1, 1), 0, 30, 10, "other")
@example(WEEKLY, 6, "Europe/Paris", date(2026, 3, 29), 9, 0, 0, "none")  # spring forward
@example(WEEKLY, 6, "America/New_York", date(2026, 11, 1), 9, 0, 30, "none")  # fall back
def test_due_exactly_when_the_reference_says(
    cadence: PeriodKind,
    weekday: int,
    tz: str,
    day: date,
    hour: int,
    minute: int,
    late_minutes: int,
    sent: str,
) -> None:
    zone = ZoneInfo(tz)
    at = time(hour, minute)
    weekly_day = weekday if cadence is WEEKLY else None
    # An instant near the digest's local time on `day` (only to aim at the window).
    now = (datetime.combine(day, at) + timedelta(minutes=late_minutes)).replace(tzinfo=zone)
    now = now.astimezone(UTC)
    today = now.astimezone(zone).date()
    _, key = reference_span(cadence, weekly_day, today)
    last_sent = {"none": None, "this": key, "other": "2000-01-01"}[sent]
    made = Digest(1, "T1", "C1", at, "line", last_sent, cadence, weekly_day)

    goes_out = reference_send_day(cadence, weekly_day, today) == today
    moment = only_reading(datetime.combine(today, at), zone, now)
    assume(moment is not None)  # skipped or repeated readings: see the DST examples above
    assert moment is not None
    expected = goes_out and last_sent != key and moment <= now < moment + catch_up(cadence)
    assert is_due(made, tz, now) is expected


@pytest.mark.parametrize(
    ("cadence", "weekday", "tz", "day", "at", "jump"),
    [
        (WEEKLY, 6, "Europe/Paris", date(2026, 3, 29), time(2, 30), datetime(2026, 3, 29, 1, 30)),
        (WEEKLY, 6, "America/New_York", date(2026, 3, 8), time(2, 30), datetime(2026, 3, 8, 7, 30)),
        (
            DAILY,
            None,
            "America/Santiago",
            date(2026, 9, 6),
            time(0, 30),
            datetime(2026, 9, 6, 4, 30),
        ),
    ],
)
def test_a_time_the_clocks_skip_goes_out_when_they_jump(
    cadence: PeriodKind, weekday: int | None, tz: str, day: date, at: time, jump: datetime
) -> None:
    """02:30 on a spring-forward night does not exist: the digest goes out at the instant
    the clocks jump to (given in UTC), and stays due for its whole catch-up."""
    made = Digest(1, "T1", "C1", at, "line", None, cadence, weekday)
    jump = jump.replace(tzinfo=UTC)
    assert not is_due(made, tz, jump - timedelta(minutes=1))
    assert is_due(made, tz, jump)
    assert is_due(made, tz, jump + catch_up(cadence) - timedelta(minutes=1))
    assert not is_due(made, tz, jump + catch_up(cadence))
