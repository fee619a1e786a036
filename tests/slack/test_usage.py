"""`/usage` ranges: presets, calendar ranges and dates in the workspace timezone, cut at now;
its per-project reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from bot.commands.requests import DateRange, RangePreset, UsageRange
from bot.reports.reads import MAX_PROJECT_READS, PROJECT_READS_AT_ONCE, spend_per_project
from bot.scenario.client import ScenarioClient
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


async def test_per_project_reads_are_bounded_in_flight_and_each_reads_its_project() -> None:
    projects = [f"proj_{i}" for i in range(MAX_PROJECT_READS)]
    in_flight, most = 0, 0

    async def server(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)  # let the other reads start, if they may
        in_flight -= 1
        project = request.url.params["projectIds"]
        value = projects.index(project) + 0.5
        return httpx.Response(200, json={"consumption": [{"userId": "u", "value": value}]})

    client = ScenarioClient(
        base_url="http://scenario.test/v1",
        api_key="k",
        api_secret="s",
        transport=httpx.MockTransport(server),
    )
    async with client:
        spends = await spend_per_project(client, projects, start=NOW - timedelta(days=7), end=NOW)
    assert spends == {p: i + 0.5 for i, p in enumerate(projects)}
    assert most == PROJECT_READS_AT_ONCE < len(projects)
