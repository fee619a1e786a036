"""Our client and the official SDK (scenario-sdk 2.4.0) send the same requests and
classify failures alike.

For each combination of arguments both clients talk to an httpx.MockTransport; the
captured path, query string (byte for byte) and Authorization header must be equal. The
SDK takes dates as ISO strings and id lists as comma-separated strings, so each case
spells the SDK's arguments out literally: that is also the check that our date format is
``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC and that ``activityOffset`` is an integer. For each
failure the SDK raises its exception class and we raise the matching typed error, without
the secret that the SDK's own message can quote.

The client is not built on the SDK: a transport on ``AsyncScenario`` was measured at about
+37 % CPU per request on bench/check_cycle.py (see bot/scenario/client.py).
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import scenario_sdk
from scenario_sdk import Scenario

from bot.scenario.client import ScenarioClient
from bot.scenario.errors import (
    BadCredentials,
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    ScenarioError,
    Unavailable,
)
from bot.scenario.models import TimeRange, UsageType, parse_usages

BASE = "http://scenario.test/v1"
KEY = "test-key"
SECRET = "test-secret-0123"
TOKEN = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
START = datetime(2024, 3, 1, tzinfo=UTC)

Captured = tuple[str, bytes, str]


def capture(requests: list[httpx.Request], body: Any) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler)


def summary(request: httpx.Request) -> Captured:
    return (request.url.path, request.url.query, request.headers["authorization"])


def sdk_request(call: str, body: Any, *args: Any, **kwargs: Any) -> Captured:
    requests: list[httpx.Request] = []
    with httpx.Client(transport=capture(requests, body)) as http:
        sdk = Scenario(
            api_key=KEY, api_secret=SECRET, base_url=BASE, http_client=http, max_retries=0
        )
        target: Any = sdk
        for name in call.split("."):
            target = getattr(target, name)
        result = target(*args, **kwargs)
        if call == "projects.list":
            list(result)  # the cursor fetches lazily
    return summary(requests[0])


async def our_request(
    call: str, body: Any, *args: Any, team_id: str | None = None, **kwargs: Any
) -> Captured:
    requests: list[httpx.Request] = []
    async with ScenarioClient(
        base_url=BASE,
        api_key=KEY,
        api_secret=SECRET,
        team_id=team_id,
        transport=capture(requests, body),
        max_retries=0,
    ) as client:
        await getattr(client, call)(*args, **kwargs)
    return summary(requests[0])


# (our arguments, the SDK's arguments for the same request)
USAGES_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {}),
    ({"time_range": TimeRange.LAST_HOUR}, {"time_range": "last-hour"}),
    ({"time_range": "last-thirty-one-days"}, {"time_range": "last-thirty-one-days"}),
    (
        {"types": [UsageType.USAGES, UsageType.ACTIVITY]},
        {"type": ["usages", "activity"]},
    ),
    ({"types": [UsageType.CONSUMPTION]}, {"type": ["consumption"]}),
    (
        {"types": list(UsageType)},
        {
            "type": [
                "usages",
                "activity",
                "consumption",
                "model-usages",
                "asset-usages",
                "nsfw-usages",
                "quality-gate-usages",
            ]
        },
    ),
    (
        {"types": [UsageType.ACTIVITY], "activity_offset": 100},
        {"type": ["activity"], "activity_offset": 100},
    ),
    ({"activity_offset": 0}, {"activity_offset": 0}),
    ({"drop_zero_points": True}, {"drop_zero_points": True}),
    (
        {"start": START, "end": START + timedelta(days=30)},
        {"start_date": "2024-03-01T00:00:00.000Z", "end_date": "2024-03-31T00:00:00.000Z"},
    ),
    (
        # Another offset and sub-second precision: UTC, milliseconds, Z.
        {
            "start": datetime(2024, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))),
            "end": datetime(2024, 3, 2, 23, 59, 59, 999999, tzinfo=UTC),
        },
        {"start_date": "2024-03-01T07:30:00.000Z", "end_date": "2024-03-02T23:59:59.999Z"},
    ),
    (
        {"start": START, "end": START + timedelta(days=120), "time_range": "last-day"},
        {
            "start_date": "2024-03-01T00:00:00.000Z",
            "end_date": "2024-06-29T00:00:00.000Z",
            "time_range": "last-day",
        },
    ),
    ({"project_ids": ["proj_a"]}, {"project_ids": "proj_a"}),
    ({"project_ids": ["proj_a", "proj_b"]}, {"project_ids": "proj_a,proj_b"}),
    ({"user_ids": ["u1", "apiu_2", "u 3"]}, {"user_ids": "u1,apiu_2,u 3"}),
    ({"user_id": "user+special@example.com"}, {"user_id": "user+special@example.com"}),
    ({"team_id": "team_xyz"}, {"team_id": "team_xyz"}),
    (
        {
            "time_range": TimeRange.LAST_SEVEN_DAYS,
            "project_ids": ["proj_a", "proj_b"],
            "user_ids": ["u1", "u2"],
            "user_id": "u1",
            "team_id": "team_1",
            "types": ["model-usages", "consumption", "usages"],
            "activity_offset": 300,
            "drop_zero_points": True,
        },
        {
            "time_range": "last-seven-days",
            "project_ids": "proj_a,proj_b",
            "user_ids": "u1,u2",
            "user_id": "u1",
            "team_id": "team_1",
            "type": ["model-usages", "consumption", "usages"],
            "activity_offset": 300,
            "drop_zero_points": True,
        },
    ),
]


@pytest.mark.parametrize(("ours", "sdks"), USAGES_CASES)
async def test_usages_query_matches_the_sdk(ours: dict[str, Any], sdks: dict[str, Any]) -> None:
    expected = sdk_request("usages.list", {}, **sdks)
    assert await our_request("usages", {}, **ours) == expected


async def test_the_client_team_id_is_sent_as_the_sdk_sends_an_explicit_one() -> None:
    expected = sdk_request("usages.list", {}, time_range="last-day", team_id="team_1")
    assert await our_request("usages", {}, team_id="team_1", time_range="last-day") == expected


async def test_the_next_activity_page_matches_the_sdk() -> None:
    full_page = {
        "activity": [
            {
                "action": "txt2img",
                "time": f"2024-03-01T00:{59 - i // 2:02d}:00.000Z",
                "userId": "u",
                "projectId": "p",
                "data": {"jobId": f"job_{i}"},
            }
            for i in range(100)
        ]
    }
    requests: list[httpx.Request] = []
    async with ScenarioClient(
        base_url=BASE,
        api_key=KEY,
        api_secret=SECRET,
        transport=capture(requests, full_page),
        activity_page_cap=2,
    ) as client:
        await client.usages_with_all_activity(time_range="last-day", project_ids=["p"])
    assert len(requests) == 2
    expected = sdk_request(
        "usages.list",
        {},
        time_range="last-day",
        project_ids="p",
        type=["activity"],
        activity_offset=100,
    )
    assert summary(requests[1]) == expected


async def test_projects_first_page_matches_the_sdk() -> None:
    body = {"projects": [], "nextPaginationToken": None}
    expected = sdk_request("projects.list", body, page_size=100, team_id="team_1")
    assert await our_request("projects", body, team_id="team_1") == expected


@pytest.mark.parametrize(
    ("ours", "sdk_call", "body"),
    [
        ("team", "teams.retrieve", {"team": {"id": "team_1"}}),
        ("team_limits", "teams.retrieve_limits", {"plan": "cu-team"}),
    ],
)
async def test_team_requests_match_the_sdk(ours: str, sdk_call: str, body: Any) -> None:
    assert await our_request(ours, body, "team_1") == sdk_request(sdk_call, body, "team_1")


@pytest.mark.parametrize("model_id", ["model_abc", "with space", "a/b"])
async def test_model_request_matches_the_sdk(model_id: str) -> None:
    body = {"model": {"id": model_id}}
    assert await our_request("model", body, model_id) == sdk_request(
        "models.retrieve", body, model_id
    )


async def test_job_request_matches_the_sdk() -> None:
    body = {"job": {"jobId": "job_1"}}
    assert await our_request("job", body, "job_1") == sdk_request("jobs.retrieve", body, "job_1")


def test_the_sdk_parses_a_usages_body_our_models_parse() -> None:
    """A body both readers accept means the same thing to both."""
    body = {
        "consumption": [{"userId": "u", "value": 10.5, "discount": 1, "total": 11.5}],
        "usages": [
            {
                "usageName": "creative-unit-cost",
                "granularity": "1h",
                "points": [{"time": "2024-03-01T00:00:00.000Z", "value": "10.5", "apiKey": "2"}],
            }
        ],
        "modelUsages": [
            {
                "modelId": "m",
                "points": [
                    {
                        "time": "2024-03-01T00:00:00.000Z",
                        "jobs": 1,
                        "cost": 10.5,
                        "discount": 1,
                        "apiKeyCost": 2,
                        "apiKeyDiscount": 0,
                    }
                ],
            }
        ],
    }
    requests: list[httpx.Request] = []
    with httpx.Client(transport=capture(requests, body)) as http:
        sdk = Scenario(api_key=KEY, api_secret=SECRET, base_url=BASE, http_client=http)
        theirs = sdk.usages.list()
    ours = parse_usages(body)
    assert theirs.consumption is not None and theirs.usages is not None
    assert ours.consumption[0].value == theirs.consumption[0].value
    assert ours.usages[0].points[0].value == float(theirs.usages[0].points[0].value)
    assert theirs.api_model_usages is not None
    assert ours.model_usages[0].model_id == theirs.api_model_usages[0].api_model_id


def client_on(transport: httpx.AsyncBaseTransport, **kwargs: Any) -> ScenarioClient:
    async def no_wait(seconds: float) -> None:
        return None

    options: dict[str, Any] = {
        "base_url": BASE,
        "api_key": KEY,
        "api_secret": SECRET,
        "transport": transport,
        "sleep": no_wait,
    }
    options.update(kwargs)
    return ScenarioClient(**options)


def answering(reply: Any) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(reply, Exception):
            raise reply
        return reply

    return httpx.MockTransport(handler)


# ---------------------------------------------------------------------------------------
# The SDK's exceptions become ours


@pytest.mark.parametrize(
    ("reply", "sdk_error", "ours", "status"),
    [
        (400, scenario_sdk.BadRequestError, BadRequest, 400),
        (401, scenario_sdk.AuthenticationError, BadCredentials, 401),
        (403, scenario_sdk.PermissionDeniedError, Forbidden, 403),
        (404, scenario_sdk.NotFoundError, NotFound, 404),
        (409, scenario_sdk.ConflictError, Unavailable, 409),
        (418, scenario_sdk.APIStatusError, BadRequest, 418),
        (422, scenario_sdk.UnprocessableEntityError, BadRequest, 422),
        (429, scenario_sdk.RateLimitError, RateLimited, 429),
        (503, scenario_sdk.InternalServerError, Unavailable, 503),
        (httpx.ConnectError("refused"), scenario_sdk.APIConnectionError, Unavailable, None),
        (httpx.ReadTimeout("slow"), scenario_sdk.APITimeoutError, Unavailable, None),
    ],
)
async def test_sdk_exceptions_map_onto_our_errors(
    reply: int | Exception,
    sdk_error: type[Exception],
    ours: type[ScenarioError],
    status: int | None,
) -> None:
    def answer() -> Any:
        if isinstance(reply, Exception):
            return reply
        return httpx.Response(reply, json={"message": "no"})

    with httpx.Client(transport=answering(answer())) as http:
        sdk = Scenario(
            api_key=KEY, api_secret=SECRET, base_url=BASE, http_client=http, max_retries=0
        )
        with pytest.raises(sdk_error):
            sdk.usages.list()
    async with client_on(answering(answer()), max_retries=0) as client:
        with pytest.raises(ours) as caught:
            await client.usages()
    assert type(caught.value) is ours
    assert caught.value.status == status
    # Nothing of the SDK's exception travels with ours (its message quotes the body).
    assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_the_sdks_message_would_carry_an_echoed_secret_ours_does_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        auth = request.headers["authorization"]
        return httpx.Response(400, json={"message": f"refused {auth} ({KEY}:{SECRET})"})

    with httpx.Client(transport=httpx.MockTransport(echo)) as http:
        sdk = Scenario(
            api_key=KEY, api_secret=SECRET, base_url=BASE, http_client=http, max_retries=0
        )
        with pytest.raises(scenario_sdk.BadRequestError) as theirs:
            sdk.usages.list()
    assert SECRET in str(theirs.value)  # so the check below means something

    caplog.set_level(logging.DEBUG)
    async with client_on(httpx.MockTransport(echo)) as client:
        with pytest.raises(BadRequest) as caught:
            await client.usages()
    for text in (str(caught.value), repr(caught.value), repr(client)):
        assert SECRET not in text and TOKEN not in text
    assert caught.value.server_message == "refused Basic [redacted] ([redacted])"
    for record in caplog.records:
        assert SECRET not in record.getMessage() and TOKEN not in record.getMessage()
