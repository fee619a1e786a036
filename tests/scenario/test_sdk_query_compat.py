"""Our client and the official SDK (scenario-sdk 2.4.0) send the same requests.

For each combination of arguments both clients talk to an httpx.MockTransport; the
captured path, query string (byte for byte) and Authorization header must be equal. The
SDK takes dates as ISO strings and id lists as comma-separated strings, so each case
spells the SDK's arguments out literally: that is also the check that our date format is
``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC and that ``activityOffset`` is an integer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from scenario_sdk import Scenario

from bot.scenario.client import ScenarioClient
from bot.scenario.models import TimeRange, UsageType, parse_usages

BASE = "http://scenario.test/v1"
KEY = "test-key"
SECRET = "test-secret"
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
