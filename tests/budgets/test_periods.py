"""Budget periods: table tests for known dates, property tests for tiling and keys."""

from __future__ import annotations

import struct
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import timezones
from bot.budgets.periods import (
    Period,
    local_day_range,
    next_period,
    period_at,
    previous_period,
    this_month,
    this_week,
)
from bot.budgets.types import PeriodKind
from bot.commands.budget import parse_budget
from bot.timezones import validate_timezone

DAILY, WEEKLY, MONTHLY = PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY
CALENDAR = (DAILY, WEEKLY, MONTHLY)
H = timedelta(hours=1)
US = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- calendar periods: known answers -------------------------------------------------

CALENDAR_CASES = [
    # id, kind, now, tz, key, start, end
    (
        "paris-day",
        DAILY,
        utc(2026, 11, 26, 12),
        "Europe/Paris",
        "daily:2026-11-26@Europe/Paris",
        utc(2026, 11, 25, 23),
        utc(2026, 11, 26, 23),
    ),
    (
        "paris-week",
        WEEKLY,
        utc(2026, 11, 26, 12),
        "Europe/Paris",
        "weekly:2026-W48@Europe/Paris",
        utc(2026, 11, 22, 23),
        utc(2026, 11, 29, 23),
    ),
    (
        "paris-month",
        MONTHLY,
        utc(2026, 11, 26, 12),
        "Europe/Paris",
        "monthly:2026-11@Europe/Paris",
        utc(2026, 10, 31, 23),
        utc(2026, 11, 30, 23),
    ),
    (
        "paris-spring-forward-23h",
        DAILY,
        utc(2026, 3, 29, 12),
        "Europe/Paris",
        "daily:2026-03-29@Europe/Paris",
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 22),
    ),
    (
        "paris-fall-back-25h",
        DAILY,
        utc(2026, 10, 25, 12),
        "Europe/Paris",
        "daily:2026-10-25@Europe/Paris",
        utc(2026, 10, 24, 22),
        utc(2026, 10, 25, 23),
    ),
    (
        "paris-week-with-spring-forward",
        WEEKLY,
        utc(2026, 3, 29, 12),
        "Europe/Paris",
        "weekly:2026-W13@Europe/Paris",
        utc(2026, 3, 22, 23),
        utc(2026, 3, 29, 22),
    ),
    (
        "paris-month-with-spring-forward",
        MONTHLY,
        utc(2026, 3, 10),
        "Europe/Paris",
        "monthly:2026-03@Europe/Paris",
        utc(2026, 2, 28, 23),
        utc(2026, 3, 31, 22),
    ),
    (
        # 22:00 local on the 26th, already the 27th in UTC.
        "new-york-evening",
        DAILY,
        utc(2026, 11, 27, 3),
        "America/New_York",
        "daily:2026-11-26@America/New_York",
        utc(2026, 11, 26, 5),
        utc(2026, 11, 27, 5),
    ),
    (
        "new-york-spring-forward-23h",
        DAILY,
        utc(2026, 3, 8, 12),
        "America/New_York",
        "daily:2026-03-08@America/New_York",
        utc(2026, 3, 8, 5),
        utc(2026, 3, 9, 4),
    ),
    (
        "new-york-fall-back-25h",
        DAILY,
        utc(2026, 11, 1, 12),
        "America/New_York",
        "daily:2026-11-01@America/New_York",
        utc(2026, 11, 1, 4),
        utc(2026, 11, 2, 5),
    ),
    (
        # 00:30 local (+05:30) on the 26th, still the 25th in UTC.
        "kolkata-half-hour-offset",
        DAILY,
        utc(2026, 11, 25, 19),
        "Asia/Kolkata",
        "daily:2026-11-26@Asia/Kolkata",
        utc(2026, 11, 25, 18, 30),
        utc(2026, 11, 26, 18, 30),
    ),
    (
        "kolkata-month",
        MONTHLY,
        utc(2026, 11, 30, 18, 29),
        "Asia/Kolkata",
        "monthly:2026-11@Asia/Kolkata",
        utc(2026, 10, 31, 18, 30),
        utc(2026, 11, 30, 18, 30),
    ),
    (
        # +13:45 in the southern summer.
        "chatham-summer",
        DAILY,
        utc(2026, 11, 25, 11),
        "Pacific/Chatham",
        "daily:2026-11-26@Pacific/Chatham",
        utc(2026, 11, 25, 10, 15),
        utc(2026, 11, 26, 10, 15),
    ),
    (
        # 02:45 +12:45 becomes 03:45 +13:45.
        "chatham-spring-forward-23h",
        DAILY,
        utc(2026, 9, 27, 0),
        "Pacific/Chatham",
        "daily:2026-09-27@Pacific/Chatham",
        utc(2026, 9, 26, 11, 15),
        utc(2026, 9, 27, 10, 15),
    ),
    (
        # Midnight does not exist: 00:00 -04 is 01:00 -03; the day starts then.
        "santiago-midnight-gap",
        DAILY,
        utc(2026, 9, 6, 12),
        "America/Santiago",
        "daily:2026-09-06@America/Santiago",
        utc(2026, 9, 6, 4),
        utc(2026, 9, 7, 3),
    ),
    (
        "santiago-day-before-gap",
        DAILY,
        utc(2026, 9, 6, 3, 59),
        "America/Santiago",
        "daily:2026-09-05@America/Santiago",
        utc(2026, 9, 5, 4),
        utc(2026, 9, 6, 4),
    ),
    (
        # Sat 24:00 -03 becomes Sat 23:00 -04: Saturday lasts 25 hours, and 23:30 in the
        # repeated hour is still Saturday.
        "santiago-fall-back-repeated-hour",
        DAILY,
        utc(2026, 4, 5, 3, 30),
        "America/Santiago",
        "daily:2026-04-04@America/Santiago",
        utc(2026, 4, 4, 3),
        utc(2026, 4, 5, 4),
    ),
    (
        # 01:00 -04 falls back to 00:00 -05: midnight happens twice; the day starts at
        # the first one and 00:30 -05 is inside it.
        "havana-ambiguous-midnight",
        DAILY,
        utc(2026, 11, 1, 5, 30),
        "America/Havana",
        "daily:2026-11-01@America/Havana",
        utc(2026, 11, 1, 4),
        utc(2026, 11, 2, 5),
    ),
    (
        "havana-midnight-gap",
        DAILY,
        utc(2026, 3, 8, 12),
        "America/Havana",
        "daily:2026-03-08@America/Havana",
        utc(2026, 3, 8, 5),
        utc(2026, 3, 9, 4),
    ),
    (
        "beirut-midnight-gap",
        DAILY,
        utc(2026, 3, 29, 12),
        "Asia/Beirut",
        "daily:2026-03-29@Asia/Beirut",
        utc(2026, 3, 28, 22),
        utc(2026, 3, 29, 21),
    ),
    (
        "beirut-month-starting-after-gap",
        MONTHLY,
        utc(2026, 3, 31, 20),
        "Asia/Beirut",
        "monthly:2026-03@Asia/Beirut",
        utc(2026, 2, 28, 22),
        utc(2026, 3, 31, 21),
    ),
    (
        "new-year-day",
        DAILY,
        utc(2026, 12, 31, 23, 30),
        "Europe/Paris",
        "daily:2027-01-01@Europe/Paris",
        utc(2026, 12, 31, 23),
        utc(2027, 1, 1, 23),
    ),
    (
        "new-year-month",
        MONTHLY,
        utc(2026, 12, 31, 23, 30),
        "Europe/Paris",
        "monthly:2027-01@Europe/Paris",
        utc(2026, 12, 31, 23),
        utc(2027, 1, 31, 23),
    ),
    (
        "old-year-month-in-utc",
        MONTHLY,
        utc(2026, 12, 31, 23, 59, 59),
        "UTC",
        "monthly:2026-12@UTC",
        utc(2026, 12, 1),
        utc(2027, 1, 1),
    ),
    (
        # 2026 starts on a Thursday, so it has an ISO week 53, which runs into 2027.
        "iso-week-53",
        WEEKLY,
        utc(2027, 1, 1, 12),
        "Europe/Paris",
        "weekly:2026-W53@Europe/Paris",
        utc(2026, 12, 27, 23),
        utc(2027, 1, 3, 23),
    ),
    (
        # Monday 2025-12-29 already belongs to ISO year 2026.
        "iso-week-1-in-december",
        WEEKLY,
        utc(2025, 12, 29, 12),
        "UTC",
        "weekly:2026-W01@UTC",
        utc(2025, 12, 29),
        utc(2026, 1, 5),
    ),
    (
        "leap-day",
        DAILY,
        utc(2028, 2, 29, 12),
        "UTC",
        "daily:2028-02-29@UTC",
        utc(2028, 2, 29),
        utc(2028, 3, 1),
    ),
    (
        "leap-february",
        MONTHLY,
        utc(2028, 2, 29, 12),
        "UTC",
        "monthly:2028-02@UTC",
        utc(2028, 2, 1),
        utc(2028, 3, 1),
    ),
    (
        # Samoa skipped 2011-12-30: the 31st starts where the 29th ends.
        "apia-after-skipped-day",
        DAILY,
        utc(2011, 12, 30, 12),
        "Pacific/Apia",
        "daily:2011-12-31@Pacific/Apia",
        utc(2011, 12, 30, 10),
        utc(2011, 12, 31, 10),
    ),
]


@pytest.mark.parametrize(
    ("kind", "now", "tz", "key", "start", "end"),
    [case[1:] for case in CALENDAR_CASES],
    ids=[case[0] for case in CALENDAR_CASES],
)
def test_calendar_period_known_answers(
    kind: PeriodKind, now: datetime, tz: str, key: str, start: datetime, end: datetime
) -> None:
    p = period_at(kind, now, tz)
    assert (p.kind, p.tz, p.key, p.start, p.end) == (kind, tz, key, start, end)
    assert p.start.tzinfo is UTC and p.end.tzinfo is UTC


@pytest.mark.parametrize(
    ("now", "tz", "hours"),
    [
        (utc(2026, 3, 29, 12), "Europe/Paris", 23),
        (utc(2026, 10, 25, 12), "Europe/Paris", 25),
        (utc(2026, 6, 1, 12), "Europe/Paris", 24),
        (utc(2026, 9, 6, 12), "America/Santiago", 23),
        (utc(2026, 4, 4, 12), "America/Santiago", 25),
        (utc(2026, 10, 24, 12), "Asia/Beirut", 25),
    ],
)
def test_day_length_follows_dst(now: datetime, tz: str, hours: int) -> None:
    assert period_at(DAILY, now, tz).duration == timedelta(hours=hours)


def test_the_zone_of_now_does_not_matter() -> None:
    instant = utc(2026, 11, 26, 12)
    in_tokyo = instant.astimezone(ZoneInfo("Asia/Tokyo"))
    in_offset = instant.astimezone(timezone(timedelta(hours=-3)))
    p = period_at(DAILY, instant, "Europe/Paris")
    assert period_at(DAILY, in_tokyo, "Europe/Paris") == p
    assert period_at(DAILY, in_offset, "Europe/Paris") == p


def test_kind_may_be_given_as_its_string_value() -> None:
    now = utc(2026, 11, 26, 12)
    assert period_at("weekly", now, "UTC") == period_at(WEEKLY, now, "UTC")


def test_same_day_in_two_zones_has_two_keys() -> None:
    now = utc(2026, 11, 26, 12)
    assert period_at(DAILY, now, "Europe/Paris").key != period_at(DAILY, now, "Europe/Berlin").key


def test_timezone_spelling_is_canonical_in_key() -> None:
    p = period_at(DAILY, utc(2026, 11, 26, 12), " europe/paris ")
    assert p.tz == "Europe/Paris"
    assert p.key == "daily:2026-11-26@Europe/Paris"


# --- next / previous -----------------------------------------------------------------


def test_next_and_previous_cross_the_year_end() -> None:
    p = period_at(DAILY, utc(2026, 12, 31, 12), "Europe/Paris")
    n = next_period(p)
    assert n.key == "daily:2027-01-01@Europe/Paris"
    assert n.start == p.end == utc(2026, 12, 31, 23)
    assert previous_period(n) == p


def test_next_week_after_week_53_is_week_1() -> None:
    p = period_at(WEEKLY, utc(2026, 12, 30), "UTC")
    assert p.key == "weekly:2026-W53@UTC"
    assert next_period(p).key == "weekly:2027-W01@UTC"
    assert previous_period(p).key == "weekly:2026-W52@UTC"


def test_months_step_through_a_leap_february() -> None:
    jan = period_at(MONTHLY, utc(2028, 1, 15), "UTC")
    feb = next_period(jan)
    assert (feb.key, feb.duration) == ("monthly:2028-02@UTC", timedelta(days=29))
    assert next_period(feb).key == "monthly:2028-03@UTC"
    assert previous_period(jan).key == "monthly:2027-12@UTC"


def test_a_skipped_day_is_passed_over() -> None:
    dec31 = period_at(DAILY, utc(2011, 12, 30, 12), "Pacific/Apia")
    dec29 = previous_period(dec31)
    assert dec29.key == "daily:2011-12-29@Pacific/Apia"
    assert (dec29.start, dec29.end) == (utc(2011, 12, 29, 10), dec31.start)
    assert next_period(dec29) == dec31


def test_havana_days_tile_around_ambiguous_midnight() -> None:
    nov1 = period_at(DAILY, utc(2026, 11, 1, 12), "America/Havana")
    oct31 = previous_period(nov1)
    assert oct31.key == "daily:2026-10-31@America/Havana"
    assert oct31.end == nov1.start == utc(2026, 11, 1, 4)
    assert oct31.duration == timedelta(hours=24)


@pytest.mark.parametrize("kind", [PeriodKind.BILLING, PeriodKind.ROLLING_24H])
def test_next_and_previous_need_a_calendar_kind(kind: PeriodKind) -> None:
    p = Period(kind, utc(2026, 1, 1), utc(2026, 1, 2), "UTC", "x")
    with pytest.raises(ValueError, match="calendar"):
        next_period(p)
    with pytest.raises(ValueError, match="calendar"):
        previous_period(p)


# --- billing -------------------------------------------------------------------------

BILLING = (utc(2026, 11, 3, 14, 30), utc(2026, 12, 3, 14, 30))


def test_billing_period_is_the_reported_plan_period() -> None:
    p = period_at(PeriodKind.BILLING, utc(2026, 11, 26), "Europe/Paris", billing=BILLING)
    assert (p.kind, p.start, p.end, p.tz) == (PeriodKind.BILLING, *BILLING, "Europe/Paris")
    assert p.key == "billing:2026-11-03T14:30:00Z"


def test_billing_key_is_in_utc_whatever_zone_scenario_used() -> None:
    paris = ZoneInfo("Europe/Paris")
    bounds = (BILLING[0].astimezone(paris), BILLING[1].astimezone(paris))
    p = period_at(PeriodKind.BILLING, utc(2026, 11, 26), "UTC", billing=bounds)
    assert p.key == "billing:2026-11-03T14:30:00Z"
    assert p.start.tzinfo is UTC


def test_billing_period_includes_its_start() -> None:
    p = period_at(PeriodKind.BILLING, BILLING[0], "UTC", billing=BILLING)
    assert p.start == BILLING[0]


def test_billing_without_plan_period_is_refused() -> None:
    with pytest.raises(ValueError, match="plan period"):
        period_at(PeriodKind.BILLING, utc(2026, 11, 26), "UTC")


@pytest.mark.parametrize("now", [BILLING[0] - US, BILLING[1], utc(2027, 6, 1)])
def test_billing_period_must_contain_now(now: datetime) -> None:
    with pytest.raises(ValueError, match="outside the billing period"):
        period_at(PeriodKind.BILLING, now, "UTC", billing=BILLING)


def test_billing_period_must_be_well_formed() -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        period_at(PeriodKind.BILLING, BILLING[0], "UTC", billing=(BILLING[1], BILLING[0]))
    with pytest.raises(ValueError, match="timezone-aware"):
        naive = (datetime(2026, 11, 3), datetime(2026, 12, 3))
        period_at(PeriodKind.BILLING, utc(2026, 11, 26), "UTC", billing=naive)


# --- rolling windows -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "length", "key"),
    [
        (PeriodKind.ROLLING_24H, timedelta(hours=24), "rolling:24h"),
        (PeriodKind.ROLLING_7D, timedelta(days=7), "rolling:7d"),
        (PeriodKind.ROLLING_30D, timedelta(days=30), "rolling:30d"),
    ],
)
def test_rolling_window_ends_at_now(kind: PeriodKind, length: timedelta, key: str) -> None:
    now = utc(2026, 3, 29, 1, 30)  # across the Paris spring-forward: length is not local
    p = period_at(kind, now, "Europe/Paris")
    assert (p.start, p.end, p.key) == (now - length, now, key)
    assert p.contains(now - length) and p.contains(now - US)
    assert not p.contains(now)


def test_rolling_key_is_constant() -> None:
    a = period_at(PeriodKind.ROLLING_7D, utc(2026, 1, 1), "UTC")
    b = period_at(PeriodKind.ROLLING_7D, utc(2026, 8, 15, 7, 3), "Asia/Kolkata")
    assert a.key == b.key == "rolling:7d"


# --- Period helpers ------------------------------------------------------------------


def test_period_helpers() -> None:
    p = period_at(DAILY, utc(2026, 10, 25, 12), "Europe/Paris")  # 25 hours
    assert p.contains(p.start) and p.contains(p.end - US)
    assert not p.contains(p.start - US) and not p.contains(p.end)
    assert p.duration == 25 * H
    assert p.elapsed_fraction(p.start) == 0.0
    assert p.elapsed_fraction(p.start + 5 * H) == pytest.approx(0.2)
    assert p.elapsed_fraction(p.start - H) == 0.0
    assert p.elapsed_fraction(p.end + H) == 1.0
    assert p.time_left(p.start + 5 * H) == 20 * H
    assert p.time_left(p.start - H) == 26 * H
    assert p.time_left(p.end + H) == timedelta(0)


def test_period_normalises_bounds_to_utc() -> None:
    paris = ZoneInfo("Europe/Paris")
    a = Period(DAILY, utc(2026, 1, 1), utc(2026, 1, 2), "UTC", "k")
    b = Period(DAILY, utc(2026, 1, 1).astimezone(paris), utc(2026, 1, 2), "UTC", "k")
    assert a == b
    assert b.start.tzinfo is UTC


def test_period_rejects_empty_and_naive_bounds() -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        Period(DAILY, utc(2026, 1, 1), utc(2026, 1, 1), "UTC", "k")
    with pytest.raises(ValueError, match="timezone-aware"):
        Period(DAILY, datetime(2026, 1, 1), utc(2026, 1, 2), "UTC", "k")
    p = Period(DAILY, utc(2026, 1, 1), utc(2026, 1, 2), "UTC", "k")
    with pytest.raises(ValueError, match="timezone-aware"):
        p.contains(datetime(2026, 1, 1, 12))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_at(DAILY, datetime(2026, 11, 26, 12), "UTC")


# --- /usage helpers ------------------------------------------------------------------


def test_today_and_yesterday() -> None:
    now = utc(2026, 3, 30, 10)
    assert local_day_range(now, "Europe/Paris") == (utc(2026, 3, 29, 22), utc(2026, 3, 30, 22))
    # Yesterday was the 23-hour spring-forward day.
    assert local_day_range(now, "Europe/Paris", days_back=1) == (
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 22),
    )
    assert local_day_range(now, "Europe/Paris", days_back=3)[0] == utc(2026, 3, 26, 23)


def test_days_back_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="days_back"):
        local_day_range(utc(2026, 3, 30), "UTC", days_back=-1)


def test_this_week_and_this_month() -> None:
    now = utc(2026, 11, 26, 12)
    assert this_week(now, "Europe/Paris") == (utc(2026, 11, 22, 23), utc(2026, 11, 29, 23))
    assert this_month(now, "Europe/Paris") == (utc(2026, 10, 31, 23), utc(2026, 11, 30, 23))


def test_usage_helpers_validate_the_timezone() -> None:
    with pytest.raises(ValueError, match="not a known IANA timezone"):
        this_month(utc(2026, 11, 26), "Paris")


# --- timezones -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("europe/paris", "Europe/Paris"),
        ("  America/New_York\n", "America/New_York"),
        ("UTC", "UTC"),
        ("utc", "UTC"),
        ("Asia/Kolkata", "Asia/Kolkata"),
    ],
)
def test_validate_timezone_accepts_and_canonicalises(given: str, canonical: str) -> None:
    assert validate_timezone(given) == canonical


def test_validate_timezone_suggests_close_names() -> None:
    with pytest.raises(ValueError, match="Did you mean `Europe/Paris`") as info:
        validate_timezone("Europe/Pariss")
    assert "Europe/Pariss" in str(info.value)


@pytest.mark.parametrize(
    "bad", ["", "Mars/Olympus", "../../etc/passwd", "/etc/localtime", "+02:00"]
)
def test_validate_timezone_rejects_with_the_right_form(bad: str) -> None:
    with pytest.raises(ValueError, match="such as `Europe/Paris`"):
        validate_timezone(bad)


def test_period_at_rejects_unknown_timezone() -> None:
    with pytest.raises(ValueError, match="not a known IANA timezone"):
        period_at(DAILY, utc(2026, 1, 1), "Europe/Atlantis")


# --- properties ----------------------------------------------------------------------

FIRST = utc(2000, 1, 1)
LAST = utc(2041, 1, 1)
ZONES = sorted(available_timezones())
# Zones whose clocks change at or across local midnight, or that skipped a whole day.
MIDNIGHT_ZONES = [
    "America/Santiago",
    "America/Havana",
    "Asia/Beirut",
    "America/Asuncion",
    "America/Sao_Paulo",
    "Asia/Tehran",
    "Asia/Amman",
    "Asia/Damascus",
    "Asia/Gaza",
    "Pacific/Apia",
    "Pacific/Fakaofo",
]


@cache
def transitions(tz: str) -> tuple[datetime, ...]:
    """UTC instants in 2000–2040 where ``tz`` changes offset (found by weekly steps)."""
    zone = ZoneInfo(tz)
    found: list[datetime] = []
    t = FIRST
    offset = t.astimezone(zone).utcoffset()
    while t < LAST:
        after = t + timedelta(days=7)
        new = after.astimezone(zone).utcoffset()
        if new != offset:
            low, high = t, after
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) // 2
                if mid.astimezone(zone).utcoffset() == offset:
                    low = mid
                else:
                    high = mid
            found.append(high)
        t, offset = after, new
    return tuple(found)


@st.composite
def zone_and_instant(draw: st.DrawFn, zones: list[str] = ZONES) -> tuple[str, datetime]:
    """A zone, and an instant that is often within a few days of one of its transitions."""
    tz = draw(st.sampled_from(zones))
    near = transitions(tz)
    if near and draw(st.booleans()):
        base = draw(st.sampled_from(near))
        return tz, base + timedelta(seconds=draw(st.integers(-3 * 86400, 3 * 86400)))
    naive = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31)))
    return tz, naive.replace(tzinfo=UTC)


def label_of_key(key: str) -> date:
    """The local date a calendar key names, parsed independently of the module."""
    kind, rest = key.split(":", 1)
    name = rest.split("@", 1)[0]
    if kind == "daily":
        return date.fromisoformat(name)
    if kind == "weekly":
        year, week = name.split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    year, month = name.split("-")
    return date(int(year), int(month), 1)


def local_naive(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def exists_locally(naive: datetime, zone: ZoneInfo) -> bool:
    # Through UTC: astimezone() to a datetime's own tzinfo returns it unchanged, which
    # would make a skipped wall time look real.
    return any(
        local_naive(naive.replace(tzinfo=zone, fold=fold).astimezone(UTC), zone) == naive
        for fold in (0, 1)
    )


def check_calendar_period(p: Period, kind: PeriodKind, tz: str, now: datetime) -> None:
    zone = ZoneInfo(tz)
    assert p.contains(now)
    assert p.kind is kind and p.tz == tz
    assert p.key.startswith(f"{kind.value}:") and p.key.endswith(f"@{tz}")

    # Tiling: neighbours touch without gap or overlap, and step back to p.
    nxt, prev = next_period(p), previous_period(p)
    assert nxt.start == p.end and prev.end == p.start
    assert previous_period(nxt) == p and next_period(prev) == p
    assert len({prev.key, p.key, nxt.key}) == 3

    # Key stability: any instant of p gives p; the first instant after it gives next.
    assert period_at(kind, p.start, tz) == p
    assert period_at(kind, p.end - US, tz) == p
    assert period_at(kind, p.end, tz) == nxt

    # The start is local midnight of the labelled date, or the first instant after it
    # when that midnight was skipped; just before the start the clock read earlier.
    label = label_of_key(p.key)
    midnight = datetime.combine(label, time())
    assert local_naive(p.start - US, zone) < midnight <= local_naive(p.start, zone)
    if exists_locally(midnight, zone):
        assert local_naive(p.start, zone) == midnight
    if kind is WEEKLY:
        assert label.weekday() == 0
    if kind is MONTHLY:
        assert label.day == 1
    if kind is DAILY:
        assert 19 * H <= p.duration <= 29 * H


PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(zone_and_instant(), st.sampled_from(CALENDAR))
def test_calendar_periods_tile_in_any_zone(
    zone_instant: tuple[str, datetime], kind: PeriodKind
) -> None:
    tz, now = zone_instant
    check_calendar_period(period_at(kind, now, tz), kind, tz, now)


@PROPERTY_SETTINGS
@given(zone_and_instant(MIDNIGHT_ZONES), st.sampled_from(CALENDAR))
def test_calendar_periods_tile_where_midnight_moves(
    zone_instant: tuple[str, datetime], kind: PeriodKind
) -> None:
    tz, now = zone_instant
    check_calendar_period(period_at(kind, now, tz), kind, tz, now)


@settings(max_examples=60, deadline=None)
@given(zone_and_instant(), st.sampled_from(CALENDAR), st.floats(0, 1, exclude_max=True))
def test_key_is_the_same_anywhere_in_the_period(
    zone_instant: tuple[str, datetime], kind: PeriodKind, fraction: float
) -> None:
    tz, now = zone_instant
    p = period_at(kind, now, tz)
    # Whole microseconds, so that rounding cannot land on p.end itself.
    inside = p.start + min(p.duration * fraction, p.duration - US) // US * US
    assert period_at(kind, inside, tz).key == p.key
    assert p.elapsed_fraction(inside) == pytest.approx(fraction, abs=1e-6)


@pytest.mark.parametrize("tz", MIDNIGHT_ZONES)
def test_days_tile_across_every_transition(tz: str) -> None:
    # Deterministic sweep: each offset change in 2000-2040, from two days before to two
    # days after, walked day by day.
    found = transitions(tz)
    assert found, f"{tz} should change offset at least once in 2000-2040"
    for instant in found:
        p = period_at(DAILY, instant - timedelta(days=2), tz)
        while p.start < instant + timedelta(days=2):
            nxt = next_period(p)
            assert nxt.start == p.end
            assert label_of_key(nxt.key) > label_of_key(p.key)
            assert period_at(DAILY, p.end - US, tz) == p
            assert period_at(DAILY, p.end, tz) == nxt
            p = nxt


# --- synthetic zones: transitions no real zone makes in 2000-2040 ----------------------
#
# Real midnight transitions start exactly at 00:00. These two zones straddle midnight,
# which is what the "first valid instant at or after midnight" rule and the walk in
# period_at exist for.

GAP_ZONE = "Test/GapAcrossMidnight"  # 2030-01-01 23:30 +00 jumps to 2030-01-02 00:30 +01
REPEAT_ZONE = "Test/RepeatAcrossMidnight"  # 2030-06-02 00:30 +01 falls to 2030-06-01 23:30


def tzif(initial_offset: int, transition_utc: datetime, new_offset: int) -> bytes:
    """A minimal version-1 TZif file: one offset, then another from ``transition_utc``."""
    abbreviations = b"XX\0"
    counts = struct.pack(">6l", 0, 0, 0, 1, 2, len(abbreviations))
    body = (
        struct.pack(">l", int(transition_utc.timestamp()))
        + bytes([1])
        + struct.pack(">lBB", initial_offset, 0, 0)
        + struct.pack(">lBB", new_offset, 0, 0)
        + abbreviations
    )
    return b"TZif" + b"\0" * 16 + counts + body


@pytest.fixture
def synthetic_zones(tmp_path: Path) -> Iterator[None]:
    (tmp_path / "Test").mkdir()
    (tmp_path / GAP_ZONE).write_bytes(tzif(0, utc(2030, 1, 1, 23, 30), 3600))
    (tmp_path / REPEAT_ZONE).write_bytes(tzif(3600, utc(2030, 6, 1, 23, 30), 0))
    old_path = zoneinfo.TZPATH
    zoneinfo.reset_tzpath([str(tmp_path), *old_path])
    timezones._zone_names.cache_clear()
    timezones._zones_by_casefold.cache_clear()
    try:
        yield
    finally:
        zoneinfo.reset_tzpath(old_path)
        ZoneInfo.clear_cache(only_keys=[GAP_ZONE, REPEAT_ZONE])
        timezones._zone_names.cache_clear()
        timezones._zones_by_casefold.cache_clear()


@pytest.mark.usefixtures("synthetic_zones")
def test_day_starts_at_the_jump_when_a_gap_straddles_midnight() -> None:
    # 00:00 local never happens; the first instant reading 00:00 or later is 00:30 +01.
    p = period_at(DAILY, utc(2030, 1, 1, 23, 45), GAP_ZONE)
    assert p.key == f"daily:2030-01-02@{GAP_ZONE}"
    assert (p.start, p.end) == (utc(2030, 1, 1, 23, 30), utc(2030, 1, 2, 23))
    assert previous_period(p).end == p.start
    assert period_at(DAILY, utc(2030, 1, 1, 23, 29), GAP_ZONE).key == f"daily:2030-01-01@{GAP_ZONE}"


@pytest.mark.usefixtures("synthetic_zones")
def test_repeated_hour_across_midnight_belongs_to_the_new_day() -> None:
    # 23:45 +00 reads as June 1st but comes after June 2nd's first midnight.
    p = period_at(DAILY, utc(2030, 6, 1, 23, 45), REPEAT_ZONE)
    assert p.key == f"daily:2030-06-02@{REPEAT_ZONE}"
    assert (p.start, p.end) == (utc(2030, 6, 1, 23), utc(2030, 6, 3))
    assert previous_period(p).key == f"daily:2030-06-01@{REPEAT_ZONE}"


@pytest.mark.usefixtures("synthetic_zones")
@pytest.mark.parametrize("tz", [GAP_ZONE, REPEAT_ZONE])
@pytest.mark.parametrize("kind", CALENDAR)
def test_synthetic_zones_tile(tz: str, kind: PeriodKind) -> None:
    base = utc(2030, 1, 1, 23, 30) if tz == GAP_ZONE else utc(2030, 6, 1, 23, 30)
    for minutes in range(-90, 91, 15):
        now = base + timedelta(minutes=minutes)
        check_calendar_period(period_at(kind, now, tz), kind, tz, now)


def test_a_misspelt_zone_in_any_case_gets_the_canonical_suggestion() -> None:
    with pytest.raises(ValueError) as raised:
        validate_timezone("EUROPE/BERLN")
    assert "`Europe/Berlin`" in str(raised.value)
    parsed = parse_budget("timezone EUROPE/BERLN")
    assert "Did you mean `Europe/Berlin`?" in parsed.message
