"""The official SDK (strict validation) against the simulator over real loopback HTTP."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pydantic
import pytest
import pytest_asyncio
import scenario_sdk
from scenario_sdk.types import usage_list_response as usage_types
from scenario_sdk.types.job_retrieve_response import Job as SdkJob

from bot.sim.scenario import (
    UNKNOWN_ACTION,
    UNKNOWN_ASSET_KIND,
    UNKNOWN_JOB_TYPE,
    UNKNOWN_USAGE_NAME,
    Faults,
    ManualClock,
    Simulator,
    serve_simulator,
)
from bot.sim.team import SyntheticTeam, iso_ms

ANCHOR = datetime(2025, 3, 12, 12, tzinfo=UTC)
TEAM = SyntheticTeam.build(seed=7, anchor=ANCHOR)
USAGE_TYPES = [
    "usages",
    "activity",
    "consumption",
    "model-usages",
    "asset-usages",
    "nsfw-usages",
    "quality-gate-usages",
]


@dataclass
class Served:
    simulator: Simulator
    base_url: str

    def sdk(self, *, strict: bool = True, max_retries: int = 0) -> scenario_sdk.AsyncScenario:
        return scenario_sdk.AsyncScenario(
            api_key="test-key",
            api_secret="test-secret",
            base_url=self.base_url,
            max_retries=max_retries,
            # Loopback only: never let a developer's proxy settings reroute the calls.
            http_client=httpx.AsyncClient(trust_env=False),
            _strict_response_validation=strict,
        )


# One server for the module (uvicorn takes ~0.2 s to stop); each test gets it reset.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[Served]:
    simulator = Simulator(TEAM, clock=ManualClock(ANCHOR))
    async with serve_simulator(simulator, host="127.0.0.1", port=0) as base_url:
        yield Served(simulator, base_url)


@pytest.fixture
def served(server: Served) -> Served:
    server.simulator.faults = Faults()
    server.simulator.clock = ManualClock(ANCHOR)
    server.simulator.reset_requests()
    return server


@pytest_asyncio.fixture(loop_scope="module")
async def client(served: Served) -> AsyncIterator[scenario_sdk.AsyncScenario]:
    async with served.sdk() as sdk:
        yield sdk


async def test_serves_on_the_reported_loopback_port(served: Served) -> None:
    url = httpx.URL(served.base_url)
    assert url.host == "127.0.0.1" and url.port and url.path == "/v1"
    async with httpx.AsyncClient(trust_env=False, auth=("test-key", "test-secret")) as raw:
        response = await raw.get(f"{served.base_url}/models/{TEAM.models[0].id}")
    assert response.status_code == 200


@pytest.mark.parametrize("usage_type", USAGE_TYPES)
async def test_usages_each_type(client: scenario_sdk.AsyncScenario, usage_type: Any) -> None:
    result = await client.usages.list(time_range="last-seven-days", type=[usage_type])
    present = {
        name for name in type(result).model_fields if getattr(result, name) not in (None, [])
    }
    assert present - {"entities"}, f"{usage_type} returned nothing"
    assert result.entities is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"time_range": "last-hour"},
        {"time_range": "last-day", "drop_zero_points": True},
        {"time_range": "last-three-days", "type": ["usages", "activity"]},
        {"time_range": "last-thirty-one-days", "type": ["consumption", "model-usages"]},
        {
            "start_date": iso_ms(ANCHOR - timedelta(days=120)),
            "end_date": iso_ms(ANCHOR),
            "drop_zero_points": True,
        },
        {"project_ids": ",".join(p.id for p in TEAM.projects[:2])},
        {"user_ids": ",".join(u.id for u in TEAM.api_keys), "team_id": TEAM.team_id},
        {"user_id": TEAM.humans[0].id, "time_range": "last-seven-days"},
    ],
)
async def test_usages_parse_strictly(
    client: scenario_sdk.AsyncScenario, kwargs: dict[str, Any]
) -> None:
    result = await client.usages.list(**kwargs)
    assert result.usages is not None or result.consumption is not None
    if result.usages:
        cost = next(u for u in result.usages if u.usage_name == "creative-unit-cost")
        assert cost.points and all(float(p.value) >= 0 for p in cost.points)


async def test_activity_pages_through_the_sdk(
    client: scenario_sdk.AsyncScenario, served: Served
) -> None:
    seen: list[str] = []
    for page in range(50):
        result = await client.usages.list(
            time_range="last-three-days", type=["activity"], activity_offset=100 * page
        )
        assert result.activity is not None
        seen += [a.data.job_id or "" for a in result.activity]
        if len(result.activity) < 100:
            break
    expected = TEAM.jobs_between(ANCHOR - timedelta(days=3), ANCHOR)
    assert seen == [j.id for j in reversed(expected)]
    # The SDK sends the integer as an integer ("100", not "100.0").
    assert served.simulator.count("/v1/usages", activityOffset="100") == 1


async def test_projects_auto_paginate(client: scenario_sdk.AsyncScenario) -> None:
    projects = [p async for p in client.projects.list(page_size=2)]
    assert [p.id for p in projects] == [p.id for p in TEAM.projects]
    assert all(p.team_id == TEAM.team_id for p in projects)


async def test_team_and_limits(client: scenario_sdk.AsyncScenario) -> None:
    team = (await client.teams.retrieve(TEAM.team_id)).team
    assert team.name == TEAM.name and len(team.keys) == len(TEAM.api_keys)
    limits = await client.teams.retrieve_limits(TEAM.team_id)
    assert limits.period.start == "2025-02-17T14:00:00.000Z"
    assert limits.values.creative_units == TEAM.cu_between(
        datetime.fromisoformat(limits.period.start), ANCHOR
    )


async def test_models_and_jobs(client: scenario_sdk.AsyncScenario) -> None:
    for model in TEAM.models:
        assert (await client.models.retrieve(model.id)).model.name == model.name
    # One job of every (type, status) pair, so every shape the simulator emits is validated.
    samples = {
        (j.job_type, j.status): j for j in TEAM.jobs_between(ANCHOR - timedelta(days=7), ANCHOR)
    }
    for job in samples.values():
        body = (await client.jobs.retrieve(job.id)).job
        assert body.job_id == job.id and body.billing is not None
        assert body.billing.cu_cost == job.cu_cost


async def test_sdk_errors_map_to_its_exceptions(served: Served) -> None:
    async with served.sdk() as sdk:
        with pytest.raises(scenario_sdk.NotFoundError):
            await sdk.jobs.retrieve("job_unknown")
        with pytest.raises(scenario_sdk.BadRequestError):
            await sdk.usages.list(start_date=iso_ms(ANCHOR))
    wrong = scenario_sdk.AsyncScenario(
        api_key="test-key",
        api_secret="wrong",
        base_url=served.base_url,
        max_retries=0,
        http_client=httpx.AsyncClient(trust_env=False),
    )
    async with wrong:
        with pytest.raises(scenario_sdk.AuthenticationError):
            await wrong.usages.list()


async def test_sdk_retries_after_429_honouring_retry_after(served: Served) -> None:
    served.simulator.faults.rate_limit_next = 1
    served.simulator.faults.retry_after = 0.01
    async with served.sdk(max_retries=1) as sdk:
        result = await sdk.usages.list(type=["consumption"])
    assert result.consumption
    assert [r.status for r in served.simulator.requests] == [429, 200]


def _literals(model: type[pydantic.BaseModel], field: str) -> tuple[str, ...]:
    return typing.get_args(model.model_fields[field].annotation)


async def test_unknown_enums_are_unknown_to_the_sdk(served: Served) -> None:
    """The knob really serves values outside the SDK's enums: strict parsing rejects them,
    lenient parsing (the SDK default, like the bot's tolerant reader) keeps them."""
    assert UNKNOWN_ACTION not in _literals(usage_types.Activity, "action")
    assert UNKNOWN_USAGE_NAME not in _literals(usage_types.Usage, "usage_name")
    assert UNKNOWN_ASSET_KIND not in _literals(usage_types.AssetUsage, "kind")
    assert UNKNOWN_JOB_TYPE not in _literals(usage_types.EntitiesJob, "job_type")
    assert UNKNOWN_JOB_TYPE not in _literals(SdkJob, "job_type")
    served.simulator.faults.unknown_enums = True
    served.simulator.faults.extra_keys = True
    async with served.sdk(strict=True) as strict:
        with pytest.raises(scenario_sdk.APIResponseValidationError):
            await strict.usages.list()
    async with served.sdk(strict=False) as lenient:
        result = await lenient.usages.list()
    assert result.activity and UNKNOWN_ACTION in {a.action for a in result.activity}
    assert result.usages and UNKNOWN_USAGE_NAME in {u.usage_name for u in result.usages}


async def test_extra_keys_alone_still_validate_strictly(served: Served) -> None:
    served.simulator.faults.extra_keys = True
    async with served.sdk(strict=True) as strict:
        result = await strict.usages.list(time_range="last-hour")
        team = await strict.teams.retrieve(TEAM.team_id)
    assert result.consumption is not None and team.team.id == TEAM.team_id
