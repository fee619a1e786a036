"""ScenarioClient against httpx.MockTransport: wire format, retries, errors, paging; then
against the simulator over a real loopback socket."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from bot.config import ConfigError, Settings
from bot.scenario.client import ScenarioClient, format_iso
from bot.scenario.errors import (
    BadCredentials,
    BadRequest,
    Forbidden,
    NotFound,
    RangeTooLong,
    RateLimited,
    ScenarioError,
    Unavailable,
)
from bot.scenario.models import TimeRange, UsageType
from bot.sim.scenario import (
    UNKNOWN_ACTION,
    UNKNOWN_JOB_TYPE,
    Faults,
    ManualClock,
    Simulator,
    serve_simulator,
)
from bot.sim.team import SyntheticTeam

BASE = "http://scenario.test/v1"
KEY = "test-key"
SECRET = "test-secret-0123"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

# A handler may be async: MockTransport awaits whatever is not yet a Response.
Reply = (
    httpx.Response
    | Exception
    | Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
)


class Recorder:
    """A scripted server: answers requests in order (the last answer repeats)."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies) or [httpx.Response(200, json={})]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response | Awaitable[httpx.Response]:
        self.requests.append(request)
        index = min(len(self.requests) - 1, len(self.replies) - 1)
        reply = self.replies[index]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            return reply(request)
        return reply

    def query(self, n: int = -1) -> dict[str, str]:
        return dict(parse_qsl(self.requests[n].url.query.decode(), keep_blank_values=True))


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_client(server: Recorder, sleeps: Sleeps | None = None, **kwargs: Any) -> ScenarioClient:
    options: dict[str, Any] = {
        "base_url": BASE,
        "api_key": KEY,
        "api_secret": SECRET,
        "transport": httpx.MockTransport(server),
        "sleep": sleeps or Sleeps(),
        "random": lambda: 0.0,
        "clock": lambda: NOW,
    }
    options.update(kwargs)
    return ScenarioClient(**options)


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return httpx.Response(status, json=body, headers=headers)


# ---------------------------------------------------------------------------------------
# Wire format of GET /usages


async def test_usages_without_arguments_sends_no_query_and_basic_auth() -> None:
    server = Recorder()
    async with make_client(server) as client:
        await client.usages()
    request = server.requests[0]
    assert request.method == "GET"
    assert request.url.path == "/v1/usages"
    assert request.url.query == b""
    expected = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


async def test_usages_sends_every_parameter_in_camel_case() -> None:
    server = Recorder()
    async with make_client(server, team_id="team_default") as client:
        await client.usages(
            time_range=TimeRange.LAST_SEVEN_DAYS,
            start=datetime(2024, 3, 1, tzinfo=UTC),
            end=datetime(2024, 3, 8, 6, 30, 15, 123456, tzinfo=UTC),
            project_ids=["proj_a", "proj_b"],
            user_ids=("user_1", "user_2", "user_3"),
            user_id="user_9",
            types=[UsageType.CONSUMPTION, "model-usages", UsageType.ACTIVITY],
            activity_offset=200,
            drop_zero_points=True,
        )
    assert server.query() == {
        "timeRange": "last-seven-days",
        "startDate": "2024-03-01T00:00:00.000Z",
        "endDate": "2024-03-08T06:30:15.123Z",
        "projectIds": "proj_a,proj_b",
        "userIds": "user_1,user_2,user_3",
        "userId": "user_9",
        "teamId": "team_default",
        "type": "consumption,model-usages,activity",
        "activityOffset": "200",
        "dropZeroPoints": "true",
    }


async def test_type_list_is_one_comma_joined_value() -> None:
    server = Recorder()
    async with make_client(server) as client:
        await client.usages(types=["usages", "activity"])
    assert server.requests[0].url.query == b"type=usages%2Cactivity"


async def test_dates_are_sent_in_utc_with_z() -> None:
    paris = datetime(2024, 3, 1, 1, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    server = Recorder()
    async with make_client(server) as client:
        await client.usages(start=paris, end=paris + timedelta(hours=1))
    assert server.query()["startDate"] == "2024-03-01T01:00:00.000Z"
    assert server.query()["endDate"] == "2024-03-01T02:00:00.000Z"


@pytest.mark.parametrize(
    ("kwargs", "absent"),
    [
        ({"drop_zero_points": False}, "dropZeroPoints"),
        ({"types": []}, "type"),
        ({"types": None}, "type"),
        ({"project_ids": []}, "projectIds"),
        ({"user_ids": []}, "userIds"),
        ({"activity_offset": None}, "activityOffset"),
        ({}, "teamId"),
    ],
)
async def test_unset_parameters_are_left_out(kwargs: dict[str, Any], absent: str) -> None:
    server = Recorder()
    async with make_client(server) as client:
        await client.usages(time_range="last-day", **kwargs)
    query = server.query()
    assert absent not in query
    assert query["timeRange"] == "last-day"


async def test_team_id_defaults_to_the_clients_and_can_be_overridden() -> None:
    server = Recorder()
    async with make_client(server, team_id="team_1") as client:
        await client.usages()
        await client.usages(team_id="team_2")
    assert server.query(0) == {"teamId": "team_1"}
    assert server.query(1) == {"teamId": "team_2"}


async def test_activity_offset_is_an_integer_on_the_wire() -> None:
    server = Recorder()
    async with make_client(server) as client:
        await client.usages(activity_offset=100)
    assert server.requests[0].url.query == b"activityOffset=100"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": datetime(2024, 1, 1, tzinfo=UTC)},
        {"end": datetime(2024, 1, 1, tzinfo=UTC)},
        {"start": datetime(2024, 1, 1), "end": datetime(2024, 1, 2)},
        {"start": datetime(2024, 1, 2, tzinfo=UTC), "end": datetime(2024, 1, 1, tzinfo=UTC)},
        {"activity_offset": -100},
        {"activity_offset": 100.0},
        {"activity_offset": True},
        {"time_range": "last-year"},
    ],
)
async def test_bad_arguments_are_refused_before_any_request(kwargs: dict[str, Any]) -> None:
    server = Recorder()
    async with make_client(server) as client:
        with pytest.raises(ValueError):
            await client.usages(**kwargs)
    assert server.requests == []


async def test_ranges_over_120_days_are_refused_locally() -> None:
    server = Recorder()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    async with make_client(server) as client:
        with pytest.raises(RangeTooLong) as caught:
            await client.usages(start=start, end=start + timedelta(days=120, seconds=1))
        assert server.requests == []
        await client.usages(start=start, end=start + timedelta(days=120))
    assert len(server.requests) == 1
    assert caught.value.cause == "range too long"
    assert "120" in str(caught.value)


def test_format_iso_refuses_naive_datetimes() -> None:
    assert format_iso(datetime(2024, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)) == (
        "2024-01-02T03:04:05.678Z"
    )
    with pytest.raises(ValueError):
        format_iso(datetime(2024, 1, 2))


# ---------------------------------------------------------------------------------------
# Retries and backoff


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried_then_succeed(status: int) -> None:
    server = Recorder(
        json_reply({}, status), json_reply({}, status), json_reply({"consumption": []})
    )
    sleeps = Sleeps()
    async with make_client(server, sleeps) as client:
        result = await client.usages()
    assert result.consumption == []
    assert len(server.requests) == 3
    assert sleeps.delays == [0.5, 1.0]


async def test_backoff_doubles_up_to_eight_seconds() -> None:
    server = Recorder(json_reply({}, 503))
    sleeps = Sleeps()
    async with make_client(server, sleeps, max_retries=6) as client:
        with pytest.raises(Unavailable) as caught:
            await client.usages()
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(server.requests) == 7
    assert caught.value.status == 503
    assert caught.value.cause == "outage"


async def test_jitter_shortens_the_delay_by_up_to_a_quarter() -> None:
    server = Recorder(json_reply({}, 500))
    sleeps = Sleeps()
    draws = iter([1.0, 0.5])
    async with make_client(server, sleeps, random=lambda: next(draws)) as client:
        with pytest.raises(Unavailable):
            await client.usages()
    assert sleeps.delays == [0.375, 0.875]


async def test_max_retries_zero_makes_one_attempt() -> None:
    server = Recorder(json_reply({}, 503))
    sleeps = Sleeps()
    async with make_client(server, sleeps, max_retries=0) as client:
        with pytest.raises(Unavailable):
            await client.usages()
    assert len(server.requests) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
async def test_transport_failures_are_retried_then_raise_unavailable(failure: Exception) -> None:
    server = Recorder(failure)
    sleeps = Sleeps()
    async with make_client(server, sleeps) as client:
        with pytest.raises(Unavailable) as caught:
            await client.usages()
    assert len(server.requests) == 3
    assert sleeps.delays == [0.5, 1.0]
    assert caught.value.status is None
    assert caught.value.cause == "outage"


async def test_an_attempt_that_outlives_its_deadline_is_a_retried_timeout() -> None:
    hang = asyncio.Event()

    async def never_answers(request: httpx.Request) -> httpx.Response:
        await hang.wait()
        raise AssertionError("unreachable")

    server = Recorder(never_answers)
    sleeps = Sleeps()
    # A per-attempt deadline of 10 ms stands in for the 60 s default.
    async with make_client(server, sleeps, timeout=httpx.Timeout(0.01)) as client:
        with pytest.raises(Unavailable) as caught:
            await client.usages()
    assert len(server.requests) == 3
    assert sleeps.delays == [0.5, 1.0]
    assert "in time" in str(caught.value)


async def test_a_transport_failure_then_success_returns_the_data() -> None:
    server = Recorder(httpx.ConnectError("refused"), json_reply({"consumption": [{"value": 2}]}))
    async with make_client(server) as client:
        result = await client.usages()
    assert [row.value for row in result.consumption] == [2.0]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": format_datetime(NOW + timedelta(seconds=7), usegmt=True)}, 7.0),
        # retry-after-ms wins over retry-after
        ({"retry-after-ms": "250", "retry-after": "30"}, 0.25),
        # an unreadable retry-after-ms falls through to retry-after
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),
        # out of (0, 60]: ignored, the backoff applies
        ({"retry-after": "61"}, 0.5),
        ({"retry-after": "0"}, 0.5),
        ({"retry-after": "-5"}, 0.5),
        ({"retry-after-ms": "120000"}, 0.5),
        ({"retry-after": format_datetime(NOW - timedelta(seconds=30), usegmt=True)}, 0.5),
        ({"retry-after": format_datetime(NOW + timedelta(minutes=5), usegmt=True)}, 0.5),
        ({"retry-after": "next tuesday"}, 0.5),
    ],
)
async def test_retry_after_headers(headers: dict[str, str], expected: float) -> None:
    server = Recorder(json_reply({}, 429, headers), json_reply({}))
    sleeps = Sleeps()
    async with make_client(server, sleeps) as client:
        await client.usages()
    assert sleeps.delays == [pytest.approx(expected)]


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequest),
        (401, BadCredentials),
        (403, Forbidden),
        (404, NotFound),
    ],
)
@pytest.mark.parametrize("hint", [{}, {"x-should-retry": "true"}])
async def test_client_errors_are_not_retried(
    status: int, error_type: type[ScenarioError], hint: dict[str, str]
) -> None:
    # Even a server asking for a retry does not get one for these.
    server = Recorder(json_reply({"message": "no"}, status, hint))
    sleeps = Sleeps()
    async with make_client(server, sleeps) as client:
        with pytest.raises(error_type) as caught:
            await client.usages()
    assert len(server.requests) == 1
    assert sleeps.delays == []
    assert caught.value.status == status


async def test_other_client_errors_are_not_retried_unless_the_server_asks() -> None:
    server = Recorder(json_reply({}, 422))
    async with make_client(server) as client:
        with pytest.raises(BadRequest):
            await client.usages()
    assert len(server.requests) == 1

    # The SDK obeys x-should-retry: true, so Scenario may rely on it.
    server = Recorder(json_reply({}, 422, {"x-should-retry": "true"}), json_reply({}))
    async with make_client(server) as client:
        await client.usages()
    assert len(server.requests) == 2


async def test_x_should_retry_false_stops_retries() -> None:
    server = Recorder(json_reply({}, 503, {"x-should-retry": "false"}))
    async with make_client(server) as client:
        with pytest.raises(Unavailable):
            await client.usages()
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------------------
# Typed errors


async def test_rate_limited_after_the_last_retry_carries_retry_after() -> None:
    server = Recorder(json_reply({"message": "slow down"}, 429, {"retry-after": "90"}))
    async with make_client(server) as client:
        with pytest.raises(RateLimited) as caught:
            await client.usages()
    assert len(server.requests) == 3
    assert caught.value.retry_after == 90.0
    assert caught.value.cause == "rate limited"
    assert "90 s" in str(caught.value)


async def test_rate_limited_without_header_has_no_retry_after() -> None:
    server = Recorder(json_reply({}, 429))
    async with make_client(server, max_retries=0) as client:
        with pytest.raises(RateLimited) as caught:
            await client.usages()
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "startDate is invalid"}, "startDate is invalid"),
        ({"reason": "Bad range"}, "Bad range"),
        ({"error": "Bad Request", "message": ""}, "Bad Request"),
        ({"error": {"message": "nested explanation"}}, "nested explanation"),
        ({"details": ["first problem", "second problem"]}, "first problem; second problem"),
        ({"message": ["a", {"reason": "b"}]}, "a; b"),
        ({"unrelated": 1}, None),
        ([1, 2], None),
        ("plain text error", "plain text error"),
        ("<html><body>Bad gateway</body></html>", None),
    ],
)
async def test_bad_request_reads_the_server_message_defensively(
    body: Any, expected: str | None
) -> None:
    reply = (
        httpx.Response(400, text=body) if isinstance(body, str) else httpx.Response(400, json=body)
    )
    server = Recorder(reply)
    async with make_client(server) as client:
        with pytest.raises(BadRequest) as caught:
            await client.usages()
    assert caught.value.server_message == expected
    assert caught.value.cause == "bad request"
    if expected:
        assert expected in str(caught.value)


async def test_long_server_messages_are_cut() -> None:
    server = Recorder(json_reply({"message": "x" * 5000}, 400))
    async with make_client(server) as client:
        with pytest.raises(BadRequest) as caught:
            await client.usages()
    assert caught.value.server_message is not None
    assert len(caught.value.server_message) <= 300


@pytest.mark.parametrize(
    ("status", "error_type", "cause"),
    [
        (401, BadCredentials, "bad credentials"),
        (403, Forbidden, "forbidden"),
        (404, NotFound, "not found"),
        (500, Unavailable, "outage"),
        (503, Unavailable, "outage"),
    ],
)
async def test_each_status_maps_to_its_error(
    status: int, error_type: type[ScenarioError], cause: str
) -> None:
    server = Recorder(json_reply({}, status))
    async with make_client(server, max_retries=0) as client:
        with pytest.raises(error_type) as caught:
            await client.model("model_x")
    assert caught.value.cause == cause
    assert caught.value.status == status


async def test_not_found_names_the_resource() -> None:
    server = Recorder(json_reply({"message": "not found"}, 404))
    async with make_client(server) as client:
        with pytest.raises(NotFound) as caught:
            await client.job("job_missing")
    assert "job 'job_missing'" in str(caught.value)


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, text="{not json"),
        httpx.Response(200, content=b"\xff\xfe\x00garbage"),
        httpx.Response(200, json=["a", "list"]),
        httpx.Response(200, json="a string"),
    ],
)
async def test_a_body_that_is_not_the_expected_json_is_unavailable(reply: httpx.Response) -> None:
    server = Recorder(reply)
    async with make_client(server) as client:
        with pytest.raises(Unavailable):
            await client.usages()
    # Not a transient failure: the SDK does not retry a body it cannot read either.
    assert len(server.requests) == 1


async def test_secret_never_appears_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    token = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()

    def echo(request: httpx.Request) -> httpx.Response:
        # A hostile or buggy server echoing the credentials back.
        return httpx.Response(
            400,
            json={
                "message": f"bad auth {request.headers['authorization']} {SECRET} {KEY}:{SECRET}"
            },
        )

    statuses = [
        (echo, BadRequest),
        (json_reply({"message": SECRET}, 401), BadCredentials),
        (json_reply({"message": SECRET}, 403), Forbidden),
        (json_reply({"message": SECRET}, 404), NotFound),
        (json_reply({"message": SECRET}, 429), RateLimited),
        (json_reply({"message": SECRET}, 503), Unavailable),
        (httpx.ConnectError(f"refused {SECRET}"), Unavailable),
    ]
    caplog.set_level(logging.DEBUG)
    for reply, error_type in statuses:
        server = Recorder(reply)
        async with make_client(server) as client:
            with pytest.raises(error_type) as caught:
                await client.usages()
            assert SECRET not in repr(client)
        for text in (str(caught.value), repr(caught.value), caught.value.message):
            assert SECRET not in text
            assert token not in text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert token not in record.getMessage()


async def test_secret_in_a_bad_request_is_redacted_not_dropped() -> None:
    server = Recorder(json_reply({"message": f"key {KEY}:{SECRET} rejected"}, 400))
    async with make_client(server) as client:
        with pytest.raises(BadRequest) as caught:
            await client.usages()
    assert caught.value.server_message == "key [redacted] rejected"


def test_client_accepts_a_secretstr_and_refuses_empty_credentials() -> None:
    client = make_client(Recorder(), api_secret=SecretStr(SECRET))
    assert SECRET not in repr(client)
    with pytest.raises(ValueError):
        make_client(Recorder(), api_secret="")
    with pytest.raises(ValueError):
        make_client(Recorder(), api_key="")


# ---------------------------------------------------------------------------------------
# Activity paging


def activity(index: int, *, user: str = "user_1", cost: float = 1.0) -> dict[str, Any]:
    """Entry number ``index`` of a log that runs backwards one minute per entry."""
    time = NOW - timedelta(minutes=index)
    return {
        "action": "txt2img",
        "time": time.isoformat().replace("+00:00", "Z"),
        "userId": user,
        "projectId": "proj_1",
        "data": {"jobId": f"job_{index}", "modelId": "model_1", "assetId": f"asset_{index}"},
        "creativeUnitsCost": cost,
    }


def page(indexes: Iterable[int], **extra: Any) -> dict[str, Any]:
    return {"activity": [activity(i) for i in indexes], **extra}


async def test_activity_pages_are_fetched_merged_and_deduplicated() -> None:
    # New activity arrived between the requests: entry 99 slid onto page 2.
    first = page(
        range(100),
        consumption=[{"userId": "user_1", "value": 229, "discount": 0, "total": 229}],
        entities={"jobs": [{"id": "job_0", "jobType": "inference", "status": "success"}]},
    )
    second = page(
        range(99, 199),
        entities={"jobs": [{"id": "job_150", "jobType": "inference", "status": "success"}]},
    )
    third = page(range(199, 230))
    server = Recorder(json_reply(first), json_reply(second), json_reply(third))
    async with make_client(server, team_id="team_1") as client:
        result = await client.usages_with_all_activity(
            time_range="last-day", project_ids=["proj_1"], drop_zero_points=True
        )

    assert len(server.requests) == 3
    assert server.query(0) == {
        "dropZeroPoints": "true",
        "projectIds": "proj_1",
        "teamId": "team_1",
        "timeRange": "last-day",
    }
    for n, offset in ((1, "100"), (2, "200")):
        assert server.query(n) == {
            "activityOffset": offset,
            "dropZeroPoints": "true",
            "projectIds": "proj_1",
            "teamId": "team_1",
            "timeRange": "last-day",
            "type": "activity",
        }
    jobs = [entry.data.job_id for entry in result.activity]
    assert jobs == [f"job_{i}" for i in range(230)]
    times = [entry.time for entry in result.activity]
    assert times == sorted(times, reverse=True)
    assert [row.value for row in result.consumption] == [229.0]
    assert {job.id for job in result.entities.jobs} == {"job_0", "job_150"}
    assert result.activity_truncated is False


async def test_identical_entries_on_one_page_boundary_collapse_but_distinct_ones_stay() -> None:
    twin = activity(5)
    different_asset = {**activity(5), "data": {**activity(5)["data"], "assetId": "other"}}
    first = {"activity": [activity(i) for i in range(99)] + [twin]}
    second = {"activity": [twin, different_asset]}
    server = Recorder(json_reply(first), json_reply(second))
    async with make_client(server) as client:
        result = await client.usages_with_all_activity()
    assets = [entry.data.asset_id for entry in result.activity]
    assert len(result.activity) == 100
    assert "other" in assets
    assert assets.count("asset_5") == 1


async def test_activity_paging_stops_at_the_page_cap() -> None:
    counter = iter(range(10_000))

    def full_page(request: httpx.Request) -> httpx.Response:
        start = next(counter) * 100
        return httpx.Response(200, json=page(range(start, start + 100)))

    server = Recorder(full_page)
    async with make_client(server, activity_page_cap=3) as client:
        result = await client.usages_with_all_activity(time_range="last-day")
    assert len(server.requests) == 3
    assert len(result.activity) == 300
    assert result.activity_truncated is True


async def test_activity_paging_starts_from_the_given_offset() -> None:
    server = Recorder(json_reply(page(range(100))), json_reply(page(range(100, 110))))
    async with make_client(server) as client:
        result = await client.usages_with_all_activity(activity_offset=300)
    assert server.query(0) == {"activityOffset": "300"}
    assert server.query(1) == {"activityOffset": "400", "type": "activity"}
    assert len(result.activity) == 110


async def test_a_short_first_page_needs_no_second_request() -> None:
    server = Recorder(json_reply(page(range(99))))
    async with make_client(server) as client:
        result = await client.usages_with_all_activity()
    assert len(server.requests) == 1
    assert len(result.activity) == 99
    assert result.activity_truncated is False


async def test_no_paging_when_activity_was_not_asked_for() -> None:
    server = Recorder(json_reply(page(range(100))))
    async with make_client(server) as client:
        await client.usages_with_all_activity(types=[UsageType.CONSUMPTION])
    assert len(server.requests) == 1


async def test_a_failure_while_paging_raises_rather_than_undercounting() -> None:
    server = Recorder(json_reply(page(range(100))), json_reply({}, 503))
    async with make_client(server, max_retries=0) as client:
        with pytest.raises(Unavailable):
            await client.usages_with_all_activity()


# ---------------------------------------------------------------------------------------
# Projects, team, limits, model, job


async def test_projects_follow_the_pagination_token() -> None:
    server = Recorder(
        json_reply({"projects": [{"id": "p1", "name": "One"}], "nextPaginationToken": "tok 2"}),
        json_reply({"projects": [{"id": "p2", "name": "Two"}], "nextPaginationToken": ""}),
    )
    async with make_client(server, team_id="team_1") as client:
        projects = await client.projects()
    assert [(p.id, p.name) for p in projects] == [("p1", "One"), ("p2", "Two")]
    assert server.requests[0].url.path == "/v1/projects"
    assert server.query(0) == {"pageSize": "100", "teamId": "team_1"}
    assert server.query(1) == {"pageSize": "100", "paginationToken": "tok 2", "teamId": "team_1"}


async def test_projects_stop_when_the_server_repeats_a_token() -> None:
    server = Recorder(
        json_reply({"projects": [{"id": "p1", "name": "One"}], "nextPaginationToken": "same"})
    )
    async with make_client(server) as client:
        projects = await client.projects()
    assert len(server.requests) == 2
    assert [p.id for p in projects] == ["p1"]


async def test_team_and_limits_use_the_default_team() -> None:
    server = Recorder(
        json_reply({"team": {"id": "team_1", "name": "Acme", "plan": "cu-team-v3"}}),
        json_reply(
            {
                "plan": "cu-team",
                "period": {"start": "2024-05-15T00:00:00.000Z", "end": "2024-06-15T00:00:00Z"},
                "limits": {"creativeUnits": 50000},
                "values": {"creativeUnits": "1234.5"},
                "oneShotCreativeUnits": [],
            }
        ),
    )
    async with make_client(server, team_id="team_1") as client:
        team = await client.team()
        limits = await client.team_limits()
    assert [r.url.path for r in server.requests] == ["/v1/teams/team_1", "/v1/teams/team_1/limits"]
    assert (team.name, team.plan) == ("Acme", "cu-team-v3")
    assert limits.period.start == datetime(2024, 5, 15, tzinfo=UTC)
    assert limits.limits.creative_units == 50000.0
    assert limits.values.creative_units == 1234.5


async def test_team_without_any_team_id_is_refused_locally() -> None:
    server = Recorder()
    async with make_client(server) as client:
        with pytest.raises(ValueError):
            await client.team()
    assert server.requests == []


async def test_model_and_job_quote_their_ids() -> None:
    server = Recorder(
        json_reply({"model": {"id": "a/b c", "name": "Weird"}}),
        json_reply(
            {
                "job": {
                    "jobId": "job_1",
                    "jobType": "brand-new-type",
                    "status": "success",
                    "metadata": {"assetIds": ["asset_1"]},
                    "billing": {"cuCost": 10, "cuDiscount": 2},
                }
            }
        ),
    )
    async with make_client(server) as client:
        model = await client.model("a/b c")
        job = await client.job("job_1")
    assert server.requests[0].url.raw_path == b"/v1/models/a%2Fb%20c"
    assert server.requests[1].url.path == "/v1/jobs/job_1"
    assert model.name == "Weird"
    assert job.job_type == "brand-new-type"
    assert job.billing is not None and job.billing.cu_cost == 10.0


@pytest.mark.parametrize("bad_id", ["", ".", "..", " padded "])
async def test_ids_that_could_escape_the_path_are_refused(bad_id: str) -> None:
    server = Recorder()
    async with make_client(server) as client:
        with pytest.raises(ValueError):
            await client.model(bad_id)
    assert server.requests == []


async def test_a_response_without_the_wrapper_object_is_unavailable() -> None:
    server = Recorder(json_reply({"id": "model_1"}))
    async with make_client(server) as client:
        with pytest.raises(Unavailable):
            await client.model("model_1")


# ---------------------------------------------------------------------------------------
# Construction from settings


def test_from_settings_uses_the_scenario_settings() -> None:
    settings = Settings(
        _env_file=None,
        scenario_sdk_api_key=KEY,
        scenario_sdk_api_secret=SECRET,
        scenario_base_url="http://127.0.0.1:9999/v1/",
        scenario_team_id="team_9",
    )
    client = ScenarioClient.from_settings(settings, max_retries=5)
    assert client.base_url == "http://127.0.0.1:9999/v1"
    assert client.team_id == "team_9"
    assert client.max_retries == 5


async def test_from_settings_client_sends_the_configured_credentials() -> None:
    settings = Settings(_env_file=None, scenario_sdk_api_key=KEY, scenario_sdk_api_secret=SECRET)
    server = Recorder()
    async with ScenarioClient.from_settings(
        settings, transport=httpx.MockTransport(server)
    ) as client:
        await client.usages()
    assert str(server.requests[0].url).startswith("https://api.cloud.scenario.com/v1/usages")
    expected = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert server.requests[0].headers["authorization"] == f"Basic {expected}"


def test_from_settings_without_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        ScenarioClient.from_settings(Settings(_env_file=None))


# ---------------------------------------------------------------------------------------
# Over a real loopback socket: the simulator

LOOP_ANCHOR = datetime(2025, 3, 12, 12, tzinfo=UTC)
LOOP_TEAM = SyntheticTeam.build(seed=7, anchor=LOOP_ANCHOR)


@dataclass
class Served:
    simulator: Simulator
    base_url: str

    def client(self, **kwargs: Any) -> ScenarioClient:
        options: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": "test-key",
            "api_secret": "test-secret",
            "team_id": LOOP_TEAM.team_id,
            "sleep": Sleeps(),
            # Loopback only: never let a developer's proxy settings reroute the calls.
            "transport": httpx.AsyncHTTPTransport(),
        }
        options.update(kwargs)
        return ScenarioClient(**options)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[Served]:
    simulator = Simulator(LOOP_TEAM, clock=ManualClock(LOOP_ANCHOR))
    async with serve_simulator(simulator, host="127.0.0.1", port=0) as base_url:
        yield Served(simulator, base_url)


@pytest.fixture
def served(server: Served) -> Served:
    server.simulator.faults = Faults()
    server.simulator.clock = ManualClock(LOOP_ANCHOR)
    server.simulator.reset_requests()
    return server


@pytest.mark.asyncio(loop_scope="module")
async def test_loopback_unknown_enums_are_kept_and_activity_is_paged(served: Served) -> None:
    served.simulator.faults.unknown_enums = True
    served.simulator.faults.extra_keys = True
    async with served.client() as client:
        result = await client.usages_with_all_activity(time_range="last-three-days")
    expected = LOOP_TEAM.jobs_between(LOOP_ANCHOR - timedelta(days=3), LOOP_ANCHOR)
    assert len(result.activity) == len(expected) > 100
    assert UNKNOWN_ACTION in {entry.action for entry in result.activity}
    assert UNKNOWN_JOB_TYPE in {job.job_type for job in result.entities.jobs}
    assert served.simulator.count("/v1/usages", activityOffset="100", type="activity") == 1


@pytest.mark.asyncio(loop_scope="module")
async def test_loopback_429_is_retried_after_the_servers_retry_after(served: Served) -> None:
    served.simulator.faults.rate_limit_next = 1
    served.simulator.faults.retry_after = 2.0
    sleeps = Sleeps()
    async with served.client(sleep=sleeps) as client:
        result = await client.usages(types=[UsageType.CONSUMPTION])
    assert result.consumption
    assert [r.status for r in served.simulator.requests] == [429, 200]
    assert sleeps.delays == [2.0]


@pytest.mark.asyncio(loop_scope="module")
async def test_loopback_refused_credentials_are_not_retried(served: Served) -> None:
    async with served.client(api_secret="wrong") as client:
        with pytest.raises(BadCredentials):
            await client.team_limits()
    assert [r.status for r in served.simulator.requests] == [401]


@pytest.mark.asyncio(loop_scope="module")
async def test_loopback_attempts_that_outlive_the_timeout_are_retried(served: Served) -> None:
    served.simulator.faults.latency = 0.5
    sleeps = Sleeps()
    async with served.client(sleep=sleeps, timeout=httpx.Timeout(0.05)) as client:
        with pytest.raises(Unavailable) as caught:
            await client.team()
    assert "in time" in str(caught.value)
    assert len(sleeps.delays) == 2
    # Last in the module: the simulator still finishes those answers after the test.


# ---------------------------------------------------------------------------------------
# Revoking an API key (the SDK's projects.api_keys.delete)


async def test_delete_api_key_is_the_sdks_delete_and_takes_an_empty_answer() -> None:
    server = Recorder(httpx.Response(204))
    async with make_client(server) as client:
        await client.delete_api_key("proj_1", "api_k/1")
    [request] = server.requests
    assert request.method == "DELETE"
    assert request.url.raw_path == b"/v1/projects/proj_1/api-keys/api_k%2F1"


async def test_a_retried_delete_that_finds_the_key_gone_succeeded_and_a_first_404_did_not() -> None:
    gone = json_reply({"message": "API key not found"}, status=404)
    server = Recorder(json_reply({"message": "timeout"}, status=503), gone)
    async with make_client(server) as client:
        await client.delete_api_key("proj_1", "api_k1")  # the first attempt did delete it
    assert [r.method for r in server.requests] == ["DELETE", "DELETE"]
    async with make_client(Recorder(gone)) as client:
        with pytest.raises(NotFound):
            await client.delete_api_key("proj_1", "api_k1")
