"""The Scenario simulator over raw HTTP (httpx + ASGITransport), checked against the oracle."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.sim.scenario import (
    EXTRA_KEY,
    GRANULARITY_MS,
    TIME_RANGES,
    UNKNOWN_ACTION,
    UNKNOWN_ASSET_KIND,
    UNKNOWN_JOB_TYPE,
    UNKNOWN_USAGE_NAME,
    Faults,
    ManualClock,
    Simulator,
    big_usages_body,
    create_app,
    granularity_for,
)
from bot.sim.team import Job, Model, Project, SyntheticTeam, User, iso_ms, to_ms

ANCHOR = datetime(2025, 3, 12, 12, tzinfo=UTC)  # a Wednesday
TEAM = SyntheticTeam.build(seed=7, anchor=ANCHOR)
AUTH = ("test-key", "test-secret")
SECTION_OF_TYPE = {
    "usages": "usages",
    "activity": "activity",
    "consumption": "consumption",
    "model-usages": "modelUsages",
    "asset-usages": "assetUsages",
    "nsfw-usages": "nsfwUsages",
    "quality-gate-usages": "qualityGateUsages",
}
ALL_SECTIONS = {*SECTION_OF_TYPE.values(), "entities"}


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def make_sim(now: datetime = ANCHOR, team: SyntheticTeam = TEAM, **kwargs: Any) -> Simulator:
    return Simulator(team, clock=ManualClock(now), **kwargs)


@contextlib.asynccontextmanager
async def client_for(
    sim: Simulator, auth: tuple[str, str] | None = AUTH
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(sim))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://simulator/v1", auth=auth
    ) as client:
        yield client


async def get_json(client: httpx.AsyncClient, path: str, **params: str) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def cu_series(body: dict[str, Any], name: str = "creative-unit-cost") -> list[dict[str, Any]]:
    rows = [row for row in body["usages"] if row["usageName"] == name]
    assert len(rows) == 1
    return rows[0]["points"]


def view_totals(body: dict[str, Any]) -> dict[str, float]:
    """Total CU charged and waived as each section of a /usages answer reports it."""
    return {
        "consumption": math.fsum(c["value"] for c in body["consumption"]),
        "usages": math.fsum(float(p["value"]) for p in cu_series(body)),
        "modelUsages": math.fsum(p["cost"] for m in body["modelUsages"] for p in m["points"]),
        "consumption-discount": math.fsum(c["discount"] for c in body["consumption"]),
        "usages-discount": math.fsum(
            float(p["value"]) for p in cu_series(body, "creative-unit-discount")
        ),
        "modelUsages-discount": math.fsum(
            p["discount"] for m in body["modelUsages"] for p in m["points"]
        ),
    }


def walk_dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from walk_dicts(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_dicts(v)


async def all_activity(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for page_no in range(1000):
        page = await get_json(
            client, "/usages", type="activity", activityOffset=str(100 * page_no), **params
        )
        entries += page["activity"]
        if len(page["activity"]) < 100:
            return entries
    raise AssertionError("activity paging never ended")


# ------------------------------------------------------------------ the synthetic team


def test_build_is_deterministic() -> None:
    # How fast it builds is a benchmark's figure, not a test's: a loaded machine failed it.
    again = SyntheticTeam.build(seed=7, anchor=ANCHOR)
    assert again.jobs == TEAM.jobs
    assert again.users == TEAM.users and again.projects == TEAM.projects
    assert again.spikes == TEAM.spikes
    other = SyntheticTeam.build(seed=8, anchor=ANCHOR)
    assert [j.id for j in other.jobs[:50]] != [j.id for j in TEAM.jobs[:50]]


def test_default_anchor_is_the_current_hour() -> None:
    before = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    team = SyntheticTeam.build(seed=3)
    after = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert team.anchor in (before, after)


def test_team_shape() -> None:
    assert 3 <= len(TEAM.projects) <= 6
    assert {"Marketing", "Game Art"} <= {p.name for p in TEAM.projects}
    assert 10 <= len(TEAM.humans) <= 14
    assert all(u.email and u.full_name for u in TEAM.humans)
    assert 2 <= len(TEAM.api_keys) <= 3
    assert all(k.api_key_id and k.api_key_status for k in TEAM.api_keys)
    assert 8 <= len(TEAM.models) <= 12
    used = {j.user_id for j in TEAM.jobs} | {j.model_id for j in TEAM.jobs}
    assert {u.id for u in TEAM.users} <= used and {m.id for m in TEAM.models} <= used


def test_timeline_span_and_volume() -> None:
    assert TEAM.timeline_start <= ANCHOR - timedelta(days=130)
    assert TEAM.timeline_end >= ANCHOR + timedelta(days=40)
    per_day = Counter(j.time.date() for j in TEAM.jobs)
    assert max(per_day.values()) < 600


def test_daily_and_weekly_rhythm() -> None:
    humans = {u.id for u in TEAM.humans}
    by_hour: Counter[int] = Counter()
    weekday_jobs = weekend_jobs = 0
    for job in TEAM.jobs:
        if job.user_id not in humans:
            continue
        if job.time.weekday() >= 5:
            weekend_jobs += 1
        else:
            weekday_jobs += 1
            by_hour[job.time.hour] += 1
    afternoon = sum(by_hour[h] for h in range(13, 17)) / 4
    night = sum(by_hour[h] for h in range(0, 5)) / 5
    assert afternoon > 8 * night
    # Per day: five weekdays for two weekend days.
    assert weekend_jobs / 2 < 0.4 * weekday_jobs / 5


def test_scripted_spikes() -> None:
    spike = TEAM.spike
    assert ANCHOR - timedelta(days=1) <= spike.start < spike.end <= ANCHOR
    assert timedelta(hours=2) <= spike.end - spike.start <= timedelta(hours=6)
    key = TEAM.user(spike.user_id)
    assert key is not None and key.is_api_key and key.api_key_id == spike.api_key_id
    model = TEAM.model(spike.model_id)
    assert model is not None
    assert model.cu_per_job == max(m.cu_per_job for m in TEAM.models)
    spike_cu = TEAM.cu_between(
        spike.start, spike.end, user_ids=[spike.user_id], model_ids=[spike.model_id]
    )
    assert spike_cu == spike.extra_cu > 0
    # The runaway hour stands out: it outspends every other hour of the past week.
    hourly: Counter[datetime] = Counter()
    for job in TEAM.jobs_between(ANCHOR - timedelta(days=7), ANCHOR):
        hourly[job.time.replace(minute=0, second=0, microsecond=0)] += job.cu_cost
    hottest = max(hourly, key=lambda h: hourly[h])
    assert spike.start <= hottest < spike.end
    later = TEAM.future_spike
    assert later.start > ANCHOR and later.end <= ANCHOR + timedelta(days=35)
    assert later.extra_cu == TEAM.cu_between(
        later.start, later.end, user_ids=[later.user_id], model_ids=[later.model_id]
    )


def test_oracle_filters() -> None:
    start, end = ANCHOR - timedelta(days=3), ANCHOR
    jobs = TEAM.jobs_between(start, end)
    project = TEAM.projects[0].id
    user = TEAM.humans[0].id
    model = TEAM.models[0].id
    filtered = TEAM.jobs_between(start, end, project_ids=[project], model_ids=[model])
    assert filtered == [j for j in jobs if j.project_id == project and j.model_id == model]
    assert TEAM.cu_between(start, end, user_ids=[user]) == math.fsum(
        j.cu_cost for j in jobs if j.user_id == user
    )
    assert TEAM.jobs_between(start, end, user_ids=[]) == []
    assert all(start <= j.time < end for j in jobs)


@pytest.mark.parametrize(
    ("day", "at", "expected"),
    [
        (17, datetime(2025, 3, 12, tzinfo=UTC), ("2025-02-17", "2025-03-17")),
        (17, datetime(2025, 3, 17, 14, tzinfo=UTC), ("2025-03-17", "2025-04-17")),
        (17, datetime(2025, 12, 31, tzinfo=UTC), ("2025-12-17", "2026-01-17")),
        (31, datetime(2025, 3, 1, tzinfo=UTC), ("2025-02-28", "2025-03-31")),
        (31, datetime(2025, 2, 10, tzinfo=UTC), ("2025-01-31", "2025-02-28")),
    ],
)
def test_billing_period_renews_on_the_subscription_day(
    day: int, at: datetime, expected: tuple[str, str]
) -> None:
    team = SyntheticTeam(projects=[], users=[], models=[], jobs=[], billing_day=day, anchor=at)
    start, end = team.billing_period(at)
    assert (start.date().isoformat(), end.date().isoformat()) == expected
    assert start <= at < end and start.hour == end.hour == team.billing_hour


def test_jobs_reject_naive_times_and_negative_costs() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        Job("job_x", datetime(2025, 1, 1), "u", "p", "m", 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        Job("job_x", ANCHOR, "u", "p", "m", -1.0)


# ------------------------------------------------------------------ agreement across views


MAX_MINUTES = 120 * 24 * 60
UsagesRequest = tuple[datetime, dict[str, str], datetime, datetime]


@st.composite
def usages_requests(draw: st.DrawFn) -> UsagesRequest:
    """(now, query params, window start, window end) over the whole synthetic timeline."""
    # Fractions rather than wide integer ranges: hypothesis favours small integers, and
    # windows must spread over the timeline, straddle `now` and lie in the future too.
    now = ANCHOR + timedelta(
        minutes=round(draw(st.floats(-10, 40)) * 24 * 60), seconds=draw(st.integers(0, 59))
    )
    params: dict[str, str] = {}
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(TIME_RANGES)))
        params["timeRange"] = name
        start, end = now - TIME_RANGES[name], now
    else:
        length = max(1, round(MAX_MINUTES ** draw(st.floats(0, 1))))  # log-uniform
        back = round(draw(st.floats(-0.1, 1.05)) * MAX_MINUTES)  # start relative to now
        start = now - timedelta(minutes=back)
        end = start + timedelta(minutes=length)
        as_z = draw(st.booleans())
        params["startDate"] = iso_ms(start) if as_z else start.isoformat()
        params["endDate"] = iso_ms(end) if as_z else end.isoformat()
    if draw(st.booleans()):
        projects = draw(st.lists(st.sampled_from([p.id for p in TEAM.projects]), min_size=1))
        params["projectIds"] = ",".join(projects)
    if draw(st.booleans()):
        ids = [u.id for u in TEAM.users] + ["nobody"]
        params["userIds"] = ",".join(draw(st.lists(st.sampled_from(ids), min_size=1)))
    if draw(st.booleans()):
        params["dropZeroPoints"] = "true"
    return now, params, start, end


def _window(now: datetime, start: datetime, end: datetime) -> UsagesRequest:
    return now, {"startDate": iso_ms(start), "endDate": iso_ms(end)}, start, end


def _split(raw: str | None) -> list[str] | None:
    return None if raw is None else raw.split(",")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(usages_requests())
# Windows that straddle `now`, lie wholly in the future, or hold the spike.
@example(_window(ANCHOR, ANCHOR - timedelta(days=2), ANCHOR + timedelta(days=2)))
@example(_window(ANCHOR, ANCHOR + timedelta(hours=1), ANCHOR + timedelta(days=1)))
@example(_window(ANCHOR, TEAM.spike.start, TEAM.spike.end))
async def test_every_view_agrees_with_the_oracle(request: UsagesRequest) -> None:
    now, params, start, end = request
    async with client_for(make_sim(now)) as client:
        body = await get_json(client, "/usages", **params)
    visible_end = min(end, now)
    oracle_kwargs = {
        "project_ids": _split(params.get("projectIds")),
        "user_ids": _split(params.get("userIds")),
    }
    jobs = TEAM.jobs_between(start, visible_end, **oracle_kwargs) if start < visible_end else []
    expected_cu = math.fsum(j.cu_cost for j in jobs)
    expected_discount = math.fsum(j.cu_discount for j in jobs)
    totals = view_totals(body)
    # Costs are multiples of 0.25, so every sum is exact whatever the order of addition.
    assert totals == {
        "consumption": expected_cu,
        "usages": expected_cu,
        "modelUsages": expected_cu,
        "consumption-discount": expected_discount,
        "usages-discount": expected_discount,
        "modelUsages-discount": expected_discount,
    }
    assert sum(p["jobs"] for m in body["modelUsages"] for p in m["points"]) == len(jobs)
    counted = sum(
        int(p["value"])
        for row in body["usages"]
        if not row["usageName"].startswith("creative-unit-")
        for p in row["points"]
    )
    assert counted == len(jobs)
    assert sum(p["count"] for k in body["assetUsages"] for p in k["points"]) == sum(
        len(j.asset_ids) for j in jobs
    )
    values = [c["value"] for c in body["consumption"]]
    assert values == sorted(values, reverse=True)
    assert all(c["total"] == c["value"] + c["discount"] for c in body["consumption"])
    granularity = body["usages"][0]["granularity"]
    assert granularity == granularity_for(end - start)
    step = GRANULARITY_MS[granularity]
    first_bucket = to_ms(start) - to_ms(start) % step
    for row in body["usages"] + body["modelUsages"]:
        stamps = [to_ms(datetime.fromisoformat(p["time"])) for p in row["points"]]
        assert all(s % step == 0 and first_bucket <= s < to_ms(end) for s in stamps)
        if "dropZeroPoints" not in params:
            assert stamps == list(range(first_bucket, to_ms(end), step))
    expected_activity = min(100, len(jobs))
    assert [a["data"]["jobId"] for a in body["activity"]] == [
        j.id for j in reversed(jobs[len(jobs) - expected_activity :])
    ]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start_minutes=st.integers(0, 10 * 24 * 60),
    length_minutes=st.integers(1, 4 * 24 * 60),
    filtered=st.booleans(),
)
async def test_activity_paging_covers_every_job_exactly_once(
    start_minutes: int, length_minutes: int, filtered: bool
) -> None:
    start = ANCHOR - timedelta(days=10) + timedelta(minutes=start_minutes)
    end = start + timedelta(minutes=length_minutes)
    params = {"startDate": iso_ms(start), "endDate": iso_ms(end)}
    users = None
    if filtered:
        users = [k.id for k in TEAM.api_keys]
        params["userIds"] = ",".join(users)
    sim = make_sim(ANCHOR)
    async with client_for(sim) as client:
        entries = await all_activity(client, **params)
        consumption = await get_json(client, "/usages", type="consumption", **params)
    expected = TEAM.jobs_between(start, min(end, ANCHOR), user_ids=users)
    ids = [e["data"]["jobId"] for e in entries]
    assert len(ids) == len(set(ids))
    assert ids == [j.id for j in reversed(expected)]
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True)
    paid = math.fsum(e["creativeUnitsCost"] for e in entries)
    assert paid == math.fsum(c["value"] for c in consumption["consumption"])
    assert paid == TEAM.cu_between(start, min(end, ANCHOR), user_ids=users)
    assert sim.count("/v1/usages", type="activity") == len(expected) // 100 + 1


async def test_activity_entries_and_entities_are_complete() -> None:
    async with client_for(make_sim()) as client:
        body = await get_json(client, "/usages", timeRange="last-day")
    entities = body["entities"]
    users = {u["id"]: u for u in entities["users"]}
    models = {m["id"] for m in entities["models"]}
    jobs = {j["id"]: j for j in entities["jobs"]}
    assets = {a["id"] for a in entities["assets"]}
    assert len(body["activity"]) == 100
    for entry in body["activity"]:
        job = TEAM.job(entry["data"]["jobId"])
        assert job is not None
        assert entry["action"] == job.action and entry["userId"] == job.user_id
        assert entry["projectId"] == job.project_id and entry["creativeUnitsCost"] == job.cu_cost
        assert entry["data"]["modelId"] == job.model_id
        assert entry["data"]["isApiKey"] == users[job.user_id]["isApiKey"]
        assert entry["data"].get("assetId") == (job.asset_ids[0] if job.asset_ids else None)
        assert job.model_id in models
        assert jobs[job.id]["metadata"]["assetIds"] == list(job.asset_ids)
        assert set(job.asset_ids) <= assets
    assert {c["userId"] for c in body["consumption"]} <= set(users)
    assert {m["modelId"] for m in body["modelUsages"]} <= models
    for user in entities["users"]:
        if user["isApiKey"]:
            assert user["apiKeyId"].startswith("api_") and "email" not in user
        else:
            assert "@" in user["email"] and user["fullName"]
    assert len(entities["jobs"]) == 100 and len(entities["assets"]) <= 400


@pytest.mark.parametrize("name", sorted(TIME_RANGES))
async def test_time_ranges_end_now_with_aligned_buckets(name: str) -> None:
    now = ANCHOR + timedelta(minutes=7, seconds=13)
    async with client_for(make_sim(now)) as client:
        body = await get_json(client, "/usages", timeRange=name, type="usages,consumption")
    start = now - TIME_RANGES[name]
    points = cu_series(body)
    assert math.fsum(float(p["value"]) for p in points) == TEAM.cu_between(start, now)
    assert math.fsum(c["value"] for c in body["consumption"]) == TEAM.cu_between(start, now)
    granularity = body["usages"][0]["granularity"]
    assert granularity == granularity_for(TIME_RANGES[name])
    step = GRANULARITY_MS[granularity]
    stamps = [int(datetime.fromisoformat(p["time"]).timestamp() * 1000) for p in points]
    assert all(s % step == 0 for s in stamps)
    assert all(b - a == step for a, b in itertools.pairwise(stamps))
    assert stamps[0] <= start.timestamp() * 1000 < stamps[0] + step
    assert stamps[-1] <= now.timestamp() * 1000 < stamps[-1] + step


async def test_default_window_is_the_last_day() -> None:
    async with client_for(make_sim()) as client:
        default = await client.get("/usages")
        last_day = await client.get("/usages", params={"timeRange": "last-day"})
    assert default.content == last_day.content
    assert view_totals(default.json())["usages"] == TEAM.cu_between(
        ANCHOR - timedelta(days=1), ANCHOR
    )


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (timedelta(minutes=30), "1m"),
        (timedelta(hours=1), "1m"),
        (timedelta(hours=5), "15m"),
        (timedelta(days=1), "15m"),
        (timedelta(days=2), "1h"),
        (timedelta(days=3), "1h"),
        (timedelta(days=10), "1d"),
        (timedelta(days=120), "1d"),
    ],
)
def test_granularity_table(length: timedelta, expected: str) -> None:
    assert granularity_for(length) == expected


async def test_spike_shows_in_every_view() -> None:
    spike = TEAM.spike
    async with client_for(make_sim()) as client:
        body = await get_json(client, "/usages", timeRange="last-day", userIds=spike.user_id)
    assert [c["userId"] for c in body["consumption"]] == [spike.user_id]
    by_model = {
        m["modelId"]: math.fsum(p["cost"] for p in m["points"]) for m in body["modelUsages"]
    }
    assert by_model[spike.model_id] == spike.extra_cu
    assert max(by_model, key=lambda m: by_model[m]) == spike.model_id


async def test_user_id_and_user_ids_intersect() -> None:
    a, b = TEAM.humans[0].id, TEAM.humans[1].id
    window = {"timeRange": "last-seven-days", "type": "consumption"}
    async with client_for(make_sim()) as client:
        single = await get_json(client, "/usages", userId=a, **window)
        both = await get_json(client, "/usages", userId=a, userIds=f"{a},{b}", **window)
        disjoint = await get_json(client, "/usages", userId=a, userIds=b, **window)
    assert [c["userId"] for c in single["consumption"]] == [a]
    assert both["consumption"] == single["consumption"]
    assert disjoint["consumption"] == []


async def test_drop_zero_points_keeps_rows_and_totals() -> None:
    window = {"startDate": iso_ms(ANCHOR - timedelta(days=2)), "endDate": iso_ms(ANCHOR)}
    async with client_for(make_sim()) as client:
        full = await get_json(client, "/usages", **window)
        dropped = await get_json(client, "/usages", dropZeroPoints="true", **window)
        bare = await client.get(f"/usages?dropZeroPoints&{httpx.QueryParams(window)}")
        falsy = await get_json(client, "/usages", dropZeroPoints="off", **window)
    assert falsy == full
    assert bare.json() == dropped
    assert view_totals(dropped) == view_totals(full)
    for key in ("usages", "modelUsages", "assetUsages", "nsfwUsages", "qualityGateUsages"):
        assert len(dropped[key]) == len(full[key])
        dropped_points = [p for row in dropped[key] for p in row["points"]]
        assert len(dropped_points) < len([p for row in full[key] for p in row["points"]])
        for point in dropped_points:
            numbers = [float(v) for k, v in point.items() if k != "time"]
            assert any(numbers), point


@pytest.mark.parametrize(
    ("type_param", "expected"),
    [
        *[(t, {section, "entities"}) for t, section in SECTION_OF_TYPE.items()],
        ("usages,activity", {"usages", "activity", "entities"}),
        (" consumption , model-usages ", {"consumption", "modelUsages", "entities"}),
        ("", ALL_SECTIONS),
        ("nope", ALL_SECTIONS),
        ("usages,nope", ALL_SECTIONS),
    ],
)
async def test_type_selects_sections(type_param: str, expected: set[str]) -> None:
    async with client_for(make_sim()) as client:
        body = await get_json(client, "/usages", type=type_param)
    assert set(body) == expected


async def test_repeated_type_parameters_are_joined() -> None:
    async with client_for(make_sim()) as client:
        response = await client.get("/usages?type=usages&type=consumption")
    assert set(response.json()) == {"usages", "consumption", "entities"}


@pytest.mark.parametrize("bad", ["abc", "-100", "100.0", "", "1e2"])
async def test_bad_activity_offset_means_zero(bad: str) -> None:
    async with client_for(make_sim()) as client:
        first = await get_json(client, "/usages", type="activity")
        bad_page = await get_json(client, "/usages", type="activity", activityOffset=bad)
        second = await get_json(client, "/usages", type="activity", activityOffset="100")
    assert bad_page == first
    assert second["activity"][0]["time"] <= first["activity"][-1]["time"]
    assert not {a["data"]["jobId"] for a in first["activity"]} & {
        a["data"]["jobId"] for a in second["activity"]
    }


async def test_custom_timeline_is_served_exactly() -> None:
    project = Project("proj_a", "Alpha")
    human = User("u_human", email="h@example.com", full_name="Hu Man")
    key = User("apiu_key", is_api_key=True, api_key_id="api_key", api_key_status="active")
    model = Model("model_m", "Model M")
    jobs = [
        Job("job_1", ANCHOR - timedelta(hours=3), human.id, project.id, model.id, 10.0, 2.5),
        Job("job_2", ANCHOR - timedelta(hours=2), key.id, project.id, model.id, 100.0),
        Job("job_3", ANCHOR + timedelta(hours=2), key.id, project.id, model.id, 1000.0),
    ]
    team = SyntheticTeam(projects=[project], users=[human, key], models=[model], jobs=jobs)
    assert team.anchor == ANCHOR + timedelta(hours=2)  # the hour of the last job
    clock = ManualClock(ANCHOR)
    sim = Simulator(team, clock=clock)
    async with client_for(sim) as client:
        before = await get_json(client, "/usages")
        clock.advance(timedelta(hours=3))
        after = await get_json(client, "/usages")
    assert before["consumption"] == [
        {"discount": 0, "total": 100, "userId": "apiu_key", "value": 100},
        {"discount": 2.5, "total": 12.5, "userId": "u_human", "value": 10},
    ]
    assert (
        view_totals(after)["usages"] == 1110 == team.cu_between(ANCHOR - timedelta(days=1), clock())
    )
    api_share = math.fsum(float(p["apiKey"]) for p in cu_series(after))
    assert api_share == 1100


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"startDate": "2025-03-01T00:00:00Z"}, "endDate"),
        ({"endDate": "2025-03-01T00:00:00Z"}, "startDate"),
        ({"startDate": "2024-11-01T00:00:00Z", "endDate": "2025-03-01T00:00:01Z"}, "120 days"),
        ({"startDate": "2025-03-02T00:00:00Z", "endDate": "2025-03-01T00:00:00Z"}, "after"),
        ({"startDate": "2025-03-01T00:00:00Z", "endDate": "2025-03-01T00:00:00Z"}, "after"),
        ({"startDate": "yesterday", "endDate": "2025-03-01T00:00:00Z"}, "ISO 8601"),
        ({"timeRange": "last-year"}, "timeRange"),
    ],
)
async def test_bad_usage_dates_are_400(params: dict[str, str], message: str) -> None:
    async with client_for(make_sim()) as client:
        response = await client.get("/usages", params=params)
    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_exactly_120_days_and_date_only_forms_are_accepted() -> None:
    async with client_for(make_sim()) as client:
        wide = await client.get(
            "/usages", params={"startDate": "2024-11-01", "endDate": "2025-03-01", "type": "x"}
        )
        naive = await client.get(
            "/usages",
            params={"startDate": "2025-03-01T00:00:00", "endDate": "2025-03-02T00:00:00"},
        )
    assert wide.status_code == 200 and naive.status_code == 200
    expected = TEAM.cu_between(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
    assert view_totals(naive.json())["usages"] == expected


@pytest.mark.parametrize(
    "auth_header",
    [
        None,
        basic("test-key:wrong"),
        basic("other-key:test-secret"),
        basic("test-keytest-secret"),  # no colon
        basic("test-key:test-secret").replace("Basic", "Bearer"),
        "Basic not-base64!!",
    ],
)
@pytest.mark.parametrize("path", ["/usages", "/projects", "/models/x", "/jobs/x"])
async def test_bad_credentials_are_401(auth_header: str | None, path: str) -> None:
    headers = {} if auth_header is None else {"Authorization": auth_header}
    sim = make_sim()
    async with client_for(sim, auth=None) as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert "Unauthorized" in response.json()["message"]
    assert sim.requests[-1].status == 401


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/job_unknown",
        "/models/model_unknown",
        "/teams/team_other",
        "/teams/team_other/limits",
        "/usages?teamId=team_other",
        "/projects?teamId=team_other",
        "/no/such/endpoint",
    ],
)
async def test_unknown_things_are_404_with_a_json_message(path: str) -> None:
    async with client_for(make_sim()) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["message"]


# ------------------------------------------------------------------ fault knobs


async def test_rate_limit_for_the_next_n_requests() -> None:
    sim = make_sim(faults=Faults(rate_limit_next=2, retry_after=3))
    async with client_for(sim) as client:
        responses = [await client.get("/models/" + TEAM.models[0].id) for _ in range(3)]
        sim.faults.rate_limit_next = 1
        sim.faults.retry_after = 0.25
        fractional = await client.get("/usages")
    assert [r.status_code for r in responses] == [429, 429, 200]
    assert responses[0].headers["retry-after"] == "3"
    assert "Too many requests" in responses[0].json()["message"]
    assert fractional.status_code == 429 and fractional.headers["retry-after"] == "0.25"


async def test_forced_server_errors_and_outage() -> None:
    sim = make_sim(faults=Faults(server_error_next=1))
    async with client_for(sim) as client:
        first = await client.get("/usages")
        second = await client.get("/usages")
        sim.faults.outage, sim.faults.outage_status = True, 503
        down = [await client.get(p) for p in ("/usages", "/projects", f"/teams/{TEAM.team_id}")]
        sim.faults.outage = False
        back = await client.get("/projects")
    assert (first.status_code, second.status_code) == (500, 200)
    assert first.json()["message"]
    assert [r.status_code for r in down] == [503, 503, 503]
    assert back.status_code == 200


async def test_random_failures_are_seeded() -> None:
    async def statuses(seed: int) -> list[int]:
        sim = make_sim(faults=Faults(failure_rate=0.5), fault_seed=seed)
        async with client_for(sim) as client:
            return [(await client.get("/projects")).status_code for _ in range(40)]

    first, again, other = await statuses(1), await statuses(1), await statuses(2)
    assert first == again != other
    assert 8 <= first.count(500) <= 32 and set(first) == {200, 500}


async def test_malformed_body_for_the_next_success() -> None:
    sim = make_sim(faults=Faults(malformed_next=1))
    async with client_for(sim) as client:
        broken = await client.get("/usages")
        fine = await client.get("/usages")
    assert broken.status_code == 200
    assert broken.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert fine.content.startswith(broken.content)


async def test_unknown_enums_and_extra_keys_keep_the_numbers() -> None:
    sim = make_sim(faults=Faults(unknown_enums=True, extra_keys=True))
    job = TEAM.jobs_between(ANCHOR - timedelta(hours=1), ANCHOR)[0]
    async with client_for(sim) as client:
        body = await get_json(client, "/usages")
        job_body = await get_json(client, f"/jobs/{job.id}")
        limits = await get_json(client, f"/teams/{TEAM.team_id}/limits")
    assert UNKNOWN_ACTION in {a["action"] for a in body["activity"]}
    assert UNKNOWN_JOB_TYPE in {j["jobType"] for j in body["entities"]["jobs"]}
    assert UNKNOWN_ASSET_KIND in {a["kind"] for a in body["entities"]["assets"]}
    assert UNKNOWN_ASSET_KIND in {k["kind"] for k in body["assetUsages"]}
    assert UNKNOWN_USAGE_NAME in {u["usageName"] for u in body["usages"]}
    assert job_body["job"]["jobType"] == UNKNOWN_JOB_TYPE
    for payload in (body, job_body, limits):
        assert all(EXTRA_KEY in d for d in walk_dicts(payload))
    totals = view_totals(body)
    expected = TEAM.cu_between(ANCHOR - timedelta(days=1), ANCHOR)
    assert totals["usages"] == totals["consumption"] == totals["modelUsages"] == expected


async def test_latency_is_added() -> None:
    sim = make_sim(faults=Faults(latency=0.05))
    loop = asyncio.get_running_loop()
    async with client_for(sim) as client:
        started = loop.time()
        response = await client.get("/projects")
        elapsed = loop.time() - started
    assert response.status_code == 200 and elapsed >= 0.05


async def test_gateway_size_limit() -> None:
    sim = make_sim(max_response_bytes=50_000)
    async with client_for(sim) as client:
        big = await client.get("/usages")
        small = await client.get("/usages", params={"type": "consumption"})
    assert big.status_code == 502 and "exceeded" in big.json()["message"]
    assert small.status_code == 200


def test_big_usages_body_is_about_six_megabytes() -> None:
    body = big_usages_body()
    assert abs(len(body) - 6_000_000) <= 0.05 * 6_000_000
    parsed = json.loads(body)
    assert set(parsed) == ALL_SECTIONS
    assert parsed["usages"][0]["granularity"] == "15m"


# ------------------------------------------------------------------ bookkeeping and time


async def test_requests_are_counted_with_their_queries() -> None:
    sim = make_sim()
    async with client_for(sim) as client:
        await client.get("/usages", params={"type": "activity", "activityOffset": "100"})
        await client.get("/usages", params={"type": "activity"})
        await client.get("/projects", params={"pageSize": "2"})
        await client.get("/nowhere")
    assert sim.count() == 4
    assert sim.count("/v1/usages") == 2
    assert sim.count("/v1/usages", type="activity", activityOffset="100") == 1
    assert sim.count("/v1/projects", pageSize="2") == 1
    assert [r.status for r in sim.requests] == [200, 200, 200, 404]
    assert sim.requests[0].query == "type=activity&activityOffset=100"
    assert sim.requests[0].at == ANCHOR
    sim.reset_requests()
    assert sim.count() == 0


async def test_same_seed_same_bytes() -> None:
    twin = SyntheticTeam.build(seed=7, anchor=ANCHOR)
    other = SyntheticTeam.build(seed=11, anchor=ANCHOR)
    paths = [
        "/usages?timeRange=last-thirty-one-days",
        "/usages?timeRange=last-hour",
        "/projects",
        f"/teams/{TEAM.team_id}",
        f"/teams/{TEAM.team_id}/limits",
    ]

    async def fetch(team: SyntheticTeam) -> list[bytes]:
        async with client_for(make_sim(team=team)) as client:
            return [
                (await client.get(p.replace(TEAM.team_id, team.team_id))).content for p in paths
            ]

    assert await fetch(TEAM) == await fetch(twin)
    assert (await fetch(other))[0] != (await fetch(TEAM))[0]


async def test_the_clock_hides_future_jobs() -> None:
    upcoming = TEAM.jobs_between(ANCHOR, ANCHOR + timedelta(days=1))[0]
    clock = ManualClock(ANCHOR)
    window = {
        "startDate": iso_ms(ANCHOR - timedelta(hours=1)),
        "endDate": iso_ms(ANCHOR + timedelta(days=1)),
    }
    async with client_for(Simulator(TEAM, clock=clock)) as client:
        before = await get_json(client, "/usages", **window)
        hidden = await client.get(f"/jobs/{upcoming.id}")
        clock.set(upcoming.time + timedelta(milliseconds=1))
        after = await get_json(client, "/usages", **window)
        shown = await client.get(f"/jobs/{upcoming.id}")
    assert upcoming.id not in {a["data"]["jobId"] for a in before["activity"]}
    assert hidden.status_code == 404
    assert after["activity"][0]["data"]["jobId"] == upcoming.id
    assert shown.status_code == 200
    gained = view_totals(after)["usages"] - view_totals(before)["usages"]
    assert gained == TEAM.cu_between(ANCHOR, clock())
    assert upcoming.cu_cost <= gained


# ------------------------------------------------------------------ other endpoints


async def test_projects_paginate() -> None:
    sim = make_sim()
    seen: list[str] = []
    async with client_for(sim) as client:
        token: str | None = None
        for _ in range(10):
            params = {"pageSize": "2"} | ({"paginationToken": token} if token else {})
            page = await get_json(client, "/projects", **params)
            assert len(page["projects"]) <= 2
            seen += [p["id"] for p in page["projects"]]
            token = page.get("nextPaginationToken")
            if not token:
                break
        default = await get_json(client, "/projects")
        errors = [
            await client.get("/projects", params=p)
            for p in ({"pageSize": "0"}, {"pageSize": "101"}, {"pageSize": "x"},
                      {"paginationToken": "garbage"})
        ]  # fmt: skip
    assert seen == [p.id for p in TEAM.projects]
    assert [p["id"] for p in default["projects"]] == seen and "nextPaginationToken" not in default
    assert [r.status_code for r in errors] == [400, 400, 400, 400]
    names = {p["name"] for p in default["projects"]}
    assert names == {p.name for p in TEAM.projects}


async def test_limits_follow_the_billing_period() -> None:
    clock = ManualClock(ANCHOR)
    async with client_for(Simulator(TEAM, clock=clock)) as client:
        now_limits = await get_json(client, f"/teams/{TEAM.team_id}/limits")
        clock.set(datetime(2025, 3, 17, 15, tzinfo=UTC))
        renewed = await get_json(client, f"/teams/{TEAM.team_id}/limits")
    start = datetime.fromisoformat(now_limits["period"]["start"])
    end = datetime.fromisoformat(now_limits["period"]["end"])
    assert (start, end) == (
        datetime(2025, 2, 17, 14, tzinfo=UTC),
        datetime(2025, 3, 17, 14, tzinfo=UTC),
    )
    assert start.day != 1
    assert now_limits["values"]["creativeUnits"] == TEAM.cu_between(start, ANCHOR)
    assert now_limits["limits"]["creativeUnits"] == TEAM.plan_creative_units
    assert now_limits["oneShotCreativeUnits"][0]["remaining"] <= 5000
    assert renewed["period"]["start"] == "2025-03-17T14:00:00.000Z"
    assert renewed["values"]["creativeUnits"] == TEAM.cu_between(
        datetime(2025, 3, 17, 14, tzinfo=UTC), clock()
    )


async def test_team_lists_members_keys_and_projects_with_period_consumption() -> None:
    async with client_for(make_sim()) as client:
        body = (await get_json(client, f"/teams/{TEAM.team_id}"))["team"]
    start, _ = TEAM.billing_period(ANCHOR)
    assert body["id"] == TEAM.team_id and body["name"] == TEAM.name
    assert {p["id"] for p in body["projects"]} == {p.id for p in TEAM.projects}
    assert {u["email"] for u in body["users"]} == {u.email for u in TEAM.humans}
    assert {k["id"] for k in body["keys"]} == {k.id for k in TEAM.api_keys}
    for member in body["users"] + body["keys"]:
        assert member["consumption"] == TEAM.cu_between(start, ANCHOR, user_ids=[member["id"]])


async def test_models_and_jobs() -> None:
    failed = next(j for j in TEAM.jobs if j.status == "failure" and j.time < ANCHOR)
    paid = next(j for j in reversed(TEAM.jobs_between(ANCHOR - timedelta(days=1), ANCHOR)))
    async with client_for(make_sim()) as client:
        models = [await get_json(client, f"/models/{m.id}") for m in TEAM.models]
        failed_body = (await get_json(client, f"/jobs/{failed.id}"))["job"]
        paid_body = (await get_json(client, f"/jobs/{paid.id}"))["job"]
    assert [m["model"]["name"] for m in models] == [m.name for m in TEAM.models]
    assert failed_body["status"] == "failure" and failed_body["metadata"]["error"]
    assert failed_body["billing"] == {"cuCost": 0, "cuDiscount": 0}
    assert paid_body["jobId"] == paid.id and paid_body["jobType"] == paid.job_type
    assert paid_body["billing"]["cuCost"] == paid.cu_cost
    assert paid_body["metadata"]["assetIds"] == list(paid.asset_ids)
    assert paid_body["createdAt"] == iso_ms(paid.time)


async def test_configured_team_id_is_the_only_team() -> None:
    sim = make_sim(team_id="team_configured")
    async with client_for(sim) as client:
        team = await get_json(client, "/teams/team_configured")
        limits = await client.get("/teams/team_configured/limits")
        projects = await get_json(client, "/projects", teamId="team_configured")
        usages = await client.get("/usages", params={"teamId": "team_configured"})
        synthetic = await client.get(f"/teams/{TEAM.team_id}")
    assert team["team"]["id"] == "team_configured"
    assert {p["teamId"] for p in projects["projects"]} == {"team_configured"}
    assert limits.status_code == usages.status_code == 200
    assert synthetic.status_code == 404
