"""Tolerant models of Scenario responses, the pure helpers on them, and the web links."""

from __future__ import annotations

import copy
import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from bot.scenario.links import api_keys_url, asset_url, model_url, team_url
from bot.scenario.models import (
    Consumption,
    MalformedPayload,
    TimeRange,
    UsagesResponse,
    UsageType,
    activity_cu_per_job,
    activity_cu_per_model,
    activity_cu_per_user,
    cu_per_model,
    cu_series,
    parse_job,
    parse_model,
    parse_projects_page,
    parse_team,
    parse_team_limits,
    parse_usages,
    spend_of,
    total_cu,
    totals_per_user,
)

T0 = datetime(2024, 6, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# A /usages answer shaped like Scenario's, with a few values the SDK does not know yet.
USAGES: dict[str, Any] = {
    "consumption": [
        {"userId": "user_ann", "value": 120.5, "discount": 10, "total": 130.5},
        {
            "userId": "apiu_key1",
            "value": 80,
            "discount": 0,
            "total": 80,
            "costDetails": {"quality-gate": 12},
        },
        {"userId": "user_ann", "value": 0.5, "discount": 0.5, "total": 1},
    ],
    "usages": [
        {
            "usageName": "creative-unit-cost",
            "granularity": "1h",
            "points": [
                {"time": iso(T0 + timedelta(hours=1)), "value": "100.5", "apiKey": "80"},
                {"time": iso(T0), "value": "100", "apiKey": "0", "cost": 100, "discount": 10},
            ],
        },
        {
            "usageName": "images-generation",
            "granularity": "1h",
            "points": [{"time": iso(T0), "value": "42", "apiKey": "7"}],
        },
    ],
    "modelUsages": [
        {
            "modelId": "model_flux",
            "points": [
                {
                    "time": iso(T0),
                    "jobs": 3,
                    "cost": 60,
                    "discount": 0,
                    "apiKeyCost": 20,
                    "apiKeyDiscount": 0,
                },
                {
                    "time": iso(T0 + timedelta(hours=1)),
                    "jobs": 1,
                    "cost": 20.5,
                    "discount": 0,
                    "apiKeyCost": 0,
                    "apiKeyDiscount": 0,
                },
            ],
        },
        {"modelId": "model_sdxl", "points": [{"time": iso(T0), "jobs": 2, "cost": 120}]},
    ],
    "assetUsages": [{"kind": "image", "points": [{"time": iso(T0), "count": 5, "countApiKey": 2}]}],
    "nsfwUsages": [
        {"label": "suggestive", "points": [{"time": iso(T0), "count": 1, "countApiKey": 0}]}
    ],
    "qualityGateUsages": [
        {"verdict": "pass", "points": [{"time": iso(T0), "count": 4, "countApiKey": 1}]}
    ],
    "activity": [
        {
            "action": "txt2img",
            "data": {
                "jobId": "job_1",
                "modelId": "model_flux",
                "assetId": "asset_1",
                "isApiKey": True,
            },
            "projectId": "proj_1",
            "time": iso(T0 + timedelta(minutes=5)),
            "userId": "apiu_key1",
            "creativeUnitsCost": 20,
        },
        {
            "action": "txt2img",
            "data": {"jobId": "job_1", "modelId": "model_flux", "assetId": "asset_2"},
            "projectId": "proj_1",
            "time": iso(T0 + timedelta(minutes=5)),
            "userId": "apiu_key1",
            "creativeUnitsCost": 20,
        },
        {
            "action": "models-training",
            "data": {"jobId": "job_2", "modelId": "model_sdxl"},
            "projectId": "proj_2",
            "time": iso(T0),
            "userId": "user_ann",
            "creativeUnitsCost": "120",
        },
        {
            "action": "delete-asset",
            "data": {"assetId": "asset_9"},
            "projectId": "proj_2",
            "time": iso(T0),
            "userId": "user_ann",
        },
    ],
    "entities": {
        "models": [{"id": "model_flux", "name": "Flux Dev", "shortDescription": "fast"}],
        "users": [
            {"id": "user_ann", "isApiKey": False, "email": "ann@example.com", "fullName": "Ann"},
            {"id": "apiu_key1", "isApiKey": True, "apiKeyId": "api_1", "apiKeyStatus": "active"},
        ],
        "jobs": [
            {
                "id": "job_1",
                "jobType": "inference",
                "status": "success",
                "metadata": {"assetIds": ["asset_1", "asset_2"]},
            }
        ],
        "assets": [
            {
                "id": "asset_1",
                "kind": "image",
                "source": "txt2img",
                "metadata": {"type": "inference-txt2img"},
                "properties": {"size": 1},
            }
        ],
        "collections": [{"id": "coll_1", "name": "Best"}],
    },
}


def parsed() -> UsagesResponse:
    return parse_usages(copy.deepcopy(USAGES))


# ---------------------------------------------------------------------------------------
# Parsing


def test_a_full_response_parses_with_snake_case_attributes() -> None:
    response = parsed()
    assert [(c.user_id, c.value, c.discount, c.total) for c in response.consumption][:2] == [
        ("user_ann", 120.5, 10.0, 130.5),
        ("apiu_key1", 80.0, 0.0, 80.0),
    ]
    assert response.consumption[1].cost_details == {"quality-gate": 12.0}
    series = response.usages[0]
    assert (series.usage_name, series.granularity) == ("creative-unit-cost", "1h")
    assert series.points[0].value == 100.5
    assert series.points[0].api_key == 80.0
    assert series.points[1].cost == 100.0
    assert series.points[0].cost is None
    assert response.model_usages[0].model_id == "model_flux"
    assert response.model_usages[0].points[0].api_key_cost == 20.0
    assert response.asset_usages[0].points[0].count_api_key == 2.0
    assert response.nsfw_usages[0].label == "suggestive"
    assert response.quality_gate_usages[0].verdict == "pass"
    first = response.activity[0]
    assert (first.action, first.user_id, first.project_id) == ("txt2img", "apiu_key1", "proj_1")
    assert (first.data.job_id, first.data.model_id, first.data.asset_id) == (
        "job_1",
        "model_flux",
        "asset_1",
    )
    assert first.data.is_api_key is True
    assert response.activity[2].creative_units_cost == 120.0
    assert response.activity[3].creative_units_cost is None
    entities = response.entities
    assert entities.model("model_flux") is not None
    assert entities.model("model_flux").name == "Flux Dev"  # type: ignore[union-attr]
    assert entities.user("apiu_key1").api_key_id == "api_1"  # type: ignore[union-attr]
    assert entities.job("job_1").metadata.asset_ids == ["asset_1", "asset_2"]  # type: ignore[union-attr]
    assert entities.asset("asset_1").kind == "image"  # type: ignore[union-attr]
    assert entities.collections[0].name == "Best"
    assert entities.model("nope") is None


def test_snake_case_names_are_accepted_too() -> None:
    response = parse_usages({"consumption": [{"user_id": "u", "value": 1}]})
    assert response.consumption[0].user_id == "u"


def test_times_are_tz_aware_utc() -> None:
    response = parse_usages(
        {
            "usages": [
                {
                    "usageName": "creative-unit-cost",
                    "points": [
                        {"time": "2024-06-01T02:00:00+02:00", "value": "1"},
                        {"time": "2024-06-01T00:00:00.123Z", "value": "1"},
                        {"time": "2024-06-01T00:00:00", "value": "1"},
                    ],
                }
            ]
        }
    )
    times = [point.time for point in response.usages[0].points]
    assert times == [T0, T0 + timedelta(milliseconds=123), T0]
    assert all(t.utcoffset() == timedelta(0) for t in times)


def test_missing_sections_and_extra_keys() -> None:
    response = parse_usages({"somethingNew": {"x": 1}, "consumption": [{"value": "3"}]})
    assert response.usages == []
    assert response.activity == []
    assert response.entities.models == []
    assert response.consumption[0].user_id == ""
    assert response.consumption[0].value == 3.0
    assert parse_usages({}) == UsagesResponse()


def test_numbers_as_strings_are_parsed_everywhere() -> None:
    response = parse_usages(
        {
            "consumption": [{"userId": "u", "value": "1.5", "discount": "0.5", "total": "2"}],
            "modelUsages": [{"modelId": 7, "points": [{"time": iso(T0), "cost": " 4 "}]}],
        }
    )
    assert (response.consumption[0].value, response.consumption[0].total) == (1.5, 2.0)
    assert response.model_usages[0].points[0].cost == 4.0
    assert response.model_usages[0].model_id == "7"


# Every enum-like field keeps a value nobody has heard of.
UNKNOWN = "value-from-the-future"
ENUM_FIELDS = [
    ("usages", lambda r: r.usages[0].usage_name, ("usages", 0, "usageName")),
    ("granularity", lambda r: r.usages[0].granularity, ("usages", 0, "granularity")),
    ("action", lambda r: r.activity[0].action, ("activity", 0, "action")),
    ("asset kind", lambda r: r.asset_usages[0].kind, ("assetUsages", 0, "kind")),
    ("nsfw label", lambda r: r.nsfw_usages[0].label, ("nsfwUsages", 0, "label")),
    ("verdict", lambda r: r.quality_gate_usages[0].verdict, ("qualityGateUsages", 0, "verdict")),
    ("job type", lambda r: r.entities.jobs[0].job_type, ("entities", "jobs", 0, "jobType")),
    ("job status", lambda r: r.entities.jobs[0].status, ("entities", "jobs", 0, "status")),
    ("entity kind", lambda r: r.entities.assets[0].kind, ("entities", "assets", 0, "kind")),
    ("asset source", lambda r: r.entities.assets[0].source, ("entities", "assets", 0, "source")),
    (
        "asset type",
        lambda r: r.entities.assets[0].metadata.type,
        ("entities", "assets", 0, "metadata", "type"),
    ),
    (
        "key status",
        lambda r: r.entities.users[1].api_key_status,
        ("entities", "users", 1, "apiKeyStatus"),
    ),
]


@pytest.mark.parametrize(("name", "read", "path"), ENUM_FIELDS, ids=[f[0] for f in ENUM_FIELDS])
def test_unknown_enum_values_are_kept(name: str, read: Any, path: tuple[Any, ...]) -> None:
    data = copy.deepcopy(USAGES)
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = UNKNOWN
    response = parse_usages(data)
    assert read(response) == UNKNOWN
    # And nothing else was lost on the way.
    assert total_cu(response) == total_cu(parsed())


def test_unknown_values_in_other_endpoints_are_kept() -> None:
    team = parse_team(
        {
            "team": {
                "id": "team_1",
                "plan": UNKNOWN,
                "keys": [{"id": "apiu_1", "scope": UNKNOWN, "apiKeyStatus": UNKNOWN}],
                "users": [{"id": "u", "role": UNKNOWN, "consumption": "5"}],
            }
        }
    )
    assert team.plan == UNKNOWN
    assert (team.keys[0].scope, team.keys[0].api_key_status) == (UNKNOWN, UNKNOWN)
    assert team.users[0].role == UNKNOWN
    assert team.users[0].consumption == 5.0
    assert parse_team_limits({"plan": UNKNOWN}).plan == UNKNOWN
    job = parse_job({"job": {"jobId": "j", "jobType": UNKNOWN, "status": UNKNOWN}})
    assert (job.job_type, job.status) == (UNKNOWN, UNKNOWN)


def test_a_point_with_a_non_numeric_value_is_skipped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = {
        "usages": [
            {
                "usageName": "creative-unit-cost",
                "points": [
                    {"time": iso(T0), "value": "abc", "apiKey": "0"},
                    {"time": iso(T0 + timedelta(hours=1)), "value": "2", "apiKey": "x"},
                    {"time": "not a time", "value": "3"},
                    {"time": iso(T0 + timedelta(hours=2)), "value": "NaN"},
                ],
            }
        ],
        "consumption": [{"userId": "u", "value": "lots"}, {"userId": "v", "value": 1}],
    }
    with caplog.at_level(logging.WARNING, logger="bot.scenario.models"):
        response = parse_usages(data)
    assert cu_series(response) == [(T0 + timedelta(hours=1), 2.0)]
    # The bad apiKey of a kept point falls back to 0.
    assert response.usages[0].points[0].api_key == 0.0
    assert [c.user_id for c in response.consumption] == ["v"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "5 unreadable" in warnings[0].getMessage()


def test_a_clean_response_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="bot.scenario.models"):
        parsed()
    assert caplog.records == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "inf", "1e400", 10**400, True, []])
def test_non_finite_or_non_numeric_costs_fall_back_to_defaults(bad: Any) -> None:
    response = parse_usages(
        {
            "activity": [{"action": "x", "time": iso(T0), "creativeUnitsCost": bad}],
            "modelUsages": [{"modelId": "m", "points": [{"time": iso(T0), "cost": bad}]}],
        }
    )
    assert response.activity[0].creative_units_cost is None
    assert response.model_usages[0].points[0].cost == 0.0


def test_sections_of_the_wrong_shape_become_empty() -> None:
    response = parse_usages(
        {"consumption": "none", "activity": {"a": 1}, "entities": [], "usages": 5}
    )
    assert response == UsagesResponse()


@pytest.mark.parametrize("body", [[], "text", 3, None, True])
def test_a_body_that_is_not_an_object_is_malformed(body: Any) -> None:
    with pytest.raises(MalformedPayload):
        parse_usages(body)


# ---------------------------------------------------------------------------------------
# Other endpoints


def test_projects_page() -> None:
    page = parse_projects_page(
        {
            "projects": [
                {
                    "id": "proj_1",
                    "name": "Marketing",
                    "teamId": "team_1",
                    "consumption": 12,
                    "keys": [],
                    "users": [],
                },
                {"name": "no id"},
            ],
            "nextPaginationToken": "abc",
        }
    )
    assert [(p.id, p.name, p.consumption) for p in page.projects] == [("proj_1", "Marketing", 12.0)]
    assert page.next_pagination_token == "abc"
    assert parse_projects_page({}).next_pagination_token is None


def test_team() -> None:
    team = parse_team(
        {
            "team": {
                "id": "team_1",
                "name": "Acme",
                "plan": "cu-team",
                "projects": [{"id": "proj_1", "name": "Marketing"}],
                "users": [{"id": "user_ann", "email": "ann@example.com", "maxConsumption": 500}],
                "keys": [
                    {
                        "id": "apiu_1",
                        "apiKeyId": "api_1",
                        "name": "ci",
                        "scope": "team",
                        "apiKeyStatus": "active",
                        "consumption": 33.5,
                    }
                ],
            }
        }
    )
    assert team.projects[0].name == "Marketing"
    assert team.users[0].max_consumption == 500.0
    assert (team.keys[0].name, team.keys[0].consumption) == ("ci", 33.5)


def test_team_limits_give_the_billing_period() -> None:
    limits = parse_team_limits(
        {
            "plan": "cu-pro",
            "period": {"start": "2024-05-15T10:00:00.000Z", "end": "2024-06-15T10:00:00.000Z"},
            "limits": {"creativeUnits": 10000, "seats": 5, "OTPSessions": 1},
            "values": {"creativeUnits": 2500.25},
            "oneShotCreativeUnits": [
                {"amount": 1000, "remaining": "400", "expiration": "2025-01-01T00:00:00Z"}
            ],
        }
    )
    assert limits.period.start == datetime(2024, 5, 15, 10, tzinfo=UTC)
    assert limits.period.end == datetime(2024, 6, 15, 10, tzinfo=UTC)
    assert (limits.limits.creative_units, limits.values.creative_units) == (10000.0, 2500.25)
    assert limits.one_shot_creative_units[0].remaining == 400.0
    empty = parse_team_limits({"period": "soon"})
    assert (empty.period.start, empty.limits.creative_units) == (None, None)


def test_model_and_job() -> None:
    model = parse_model({"model": {"id": "model_1", "name": "Flux", "type": "flux.1-lora"}})
    assert (model.id, model.name, model.type) == ("model_1", "Flux", "flux.1-lora")
    job = parse_job(
        {
            "job": {
                "jobId": "job_1",
                "jobType": "inference",
                "status": "success",
                "createdAt": "2024-06-01T00:00:00.000Z",
                "metadata": {"assetIds": ["asset_1"], "error": None},
                "billing": {
                    "cuCost": "10",
                    "cuDiscount": 2,
                    "cuCostDetails": {"quality-gate": 1.5, "ip-detection": None},
                },
            }
        }
    )
    assert job.created_at == T0
    assert job.metadata.asset_ids == ["asset_1"]
    assert job.billing is not None
    assert (job.billing.cu_cost, job.billing.cu_discount) == (10.0, 2.0)
    assert job.billing.total_cu == 11.5
    assert parse_job({"job": {"jobId": "j", "billing": "n/a"}}).billing is None


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        (parse_team, {"id": "team_1"}),
        (parse_team, {"team": "team_1"}),
        (parse_model, {}),
        (parse_job, {"job": None}),
        (parse_team_limits, ["plan"]),
    ],
)
def test_missing_wrapper_objects_are_malformed(parse: Any, body: Any) -> None:
    with pytest.raises(MalformedPayload):
        parse(body)


# ---------------------------------------------------------------------------------------
# Helpers


def test_spend_is_value_not_total() -> None:
    row = Consumption(user_id="u", value=90, discount=10, total=100)
    assert spend_of(row) == 90.0


def test_total_cu_sums_consumption_values() -> None:
    assert total_cu(parsed()) == 201.0
    assert total_cu(UsagesResponse()) == 0.0


def test_totals_per_user_adds_up_rows_of_the_same_user() -> None:
    totals = totals_per_user(parsed())
    assert set(totals) == {"user_ann", "apiu_key1"}
    ann = totals["user_ann"]
    assert (ann.value, ann.discount, ann.total, ann.spend) == (121.0, 10.5, 131.5, 121.0)
    assert totals["apiu_key1"].total == 80.0


def test_cu_per_model_sums_point_costs() -> None:
    assert cu_per_model(parsed()) == {"model_flux": 80.5, "model_sdxl": 120.0}


def test_cu_series_is_the_creative_unit_cost_series_in_time_order() -> None:
    assert cu_series(parsed()) == [(T0, 100.0), (T0 + timedelta(hours=1), 100.5)]
    assert cu_series(parsed(), "images-generation") == [(T0, 42.0)]
    assert cu_series(parsed(), "nothing-like-it") == []


def test_activity_totals_per_job_user_and_model() -> None:
    response = parsed()
    assert activity_cu_per_job(response) == {"job_1": 40.0, "job_2": 120.0}
    assert activity_cu_per_user(response) == {"apiu_key1": 40.0, "user_ann": 120.0}
    assert activity_cu_per_model(response) == {"model_flux": 40.0, "model_sdxl": 120.0}


def test_time_range_and_usage_type_values() -> None:
    assert [t.value for t in TimeRange] == [
        "last-hour",
        "last-day",
        "last-three-days",
        "last-seven-days",
        "last-thirty-one-days",
    ]
    assert TimeRange("last-three-days").duration == timedelta(days=3)
    assert TimeRange.LAST_THIRTY_ONE_DAYS.duration == timedelta(days=31)
    assert [u.value for u in UsageType] == [
        "usages",
        "activity",
        "consumption",
        "model-usages",
        "asset-usages",
        "nsfw-usages",
        "quality-gate-usages",
    ]
    assert f"{UsageType.MODEL_USAGES}" == "model-usages"


# ---------------------------------------------------------------------------------------
# Links


def test_links_into_the_web_app() -> None:
    base = "https://app.scenario.com/"
    assert model_url(base, "model_abc") == "https://app.scenario.com/models/model_abc"
    assert asset_url(base, "asset_1") == "https://app.scenario.com/assets?openAssetId=asset_1"
    assert api_keys_url(base) == "https://app.scenario.com/settings/api"
    assert team_url("https://app.scenario.com") == "https://app.scenario.com/team"


def test_link_ids_are_url_quoted() -> None:
    base = "https://app.scenario.com"
    assert model_url(base, "a/b c") == "https://app.scenario.com/models/a%2Fb%20c"
    assert asset_url(base, "x&y=z#") == "https://app.scenario.com/assets?openAssetId=x%26y%3Dz%23"


# ---------------------------------------------------------------------------------------
# Random-ish bodies never break the parser

_junk_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["1.5", "abc", "", "NaN", "1e400", "-3", "2024-13-01T00:00:00Z"]),
)
_junk = st.recursive(
    _junk_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(iso) | st.datetimes().map(datetime.isoformat)
_numbers = st.floats(allow_nan=False, allow_infinity=False, width=32) | st.floats(
    min_value=-1e6, max_value=1e6
).map(str)
_ids = st.text(min_size=1, max_size=8)
_words = st.sampled_from(["txt2img", "image", "1h", "success", "brand-new", "creative-unit-cost"])


def _object(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Any subset of the keys, each with a plausible value or junk, plus unknown keys."""
    known = st.fixed_dictionaries({}, optional={k: v | _junk for k, v in fields.items()})
    extra = st.dictionaries(st.text(max_size=5), _junk, max_size=2)
    shaped = st.tuples(extra, known).map(lambda pair: {**pair[0], **pair[1]})
    return shaped | _junk


def _list_of(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(item, max_size=4)


_point = _object(
    {
        "time": _times,
        "value": _numbers,
        "apiKey": _numbers,
        "cost": _numbers,
        "jobs": _numbers,
        "count": _numbers,
        "countApiKey": _numbers,
        "discount": _numbers,
    }
)
_usages_body = _object(
    {
        "consumption": _list_of(
            _object(
                {
                    "userId": _ids,
                    "value": _numbers,
                    "discount": _numbers,
                    "total": _numbers,
                    "costDetails": st.dictionaries(st.text(max_size=4), _numbers, max_size=2),
                }
            )
        ),
        "usages": _list_of(
            _object({"usageName": _words, "granularity": _words, "points": _list_of(_point)})
        ),
        "modelUsages": _list_of(_object({"modelId": _ids, "points": _list_of(_point)})),
        "assetUsages": _list_of(_object({"kind": _words, "points": _list_of(_point)})),
        "nsfwUsages": _list_of(_object({"label": _words, "points": _list_of(_point)})),
        "qualityGateUsages": _list_of(_object({"verdict": _words, "points": _list_of(_point)})),
        "activity": _list_of(
            _object(
                {
                    "action": _words,
                    "time": _times,
                    "userId": _ids,
                    "projectId": _ids,
                    "creativeUnitsCost": _numbers,
                    "data": _object(
                        {"jobId": _ids, "modelId": _ids, "assetId": _ids, "isApiKey": st.booleans()}
                    ),
                }
            )
        ),
        "entities": _object(
            {
                "models": _list_of(_object({"id": _ids, "name": _ids})),
                "users": _list_of(_object({"id": _ids, "isApiKey": st.booleans()})),
                "jobs": _list_of(
                    _object(
                        {
                            "id": _ids,
                            "jobType": _words,
                            "status": _words,
                            "metadata": _object({"assetIds": _list_of(_ids)}),
                        }
                    )
                ),
                "assets": _list_of(_object({"id": _ids, "kind": _words})),
            }
        ),
    }
)


def _walk(value: Any) -> list[Any]:
    """Every leaf value of a parsed model."""
    if isinstance(value, BaseModel):
        return [leaf for name in type(value).model_fields for leaf in _walk(getattr(value, name))]
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _walk(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _walk(item)]
    return [value]


@settings(max_examples=150, deadline=None)
@given(_usages_body)
def test_random_bodies_parse_or_raise_only_malformed_payload(body: Any) -> None:
    if not isinstance(body, dict):
        with pytest.raises(MalformedPayload):
            parse_usages(body)
        return
    response = parse_usages(body)
    for leaf in _walk(response):
        if isinstance(leaf, float):
            assert math.isfinite(leaf)
        if isinstance(leaf, datetime):
            assert leaf.utcoffset() == timedelta(0)
    # The helpers accept whatever the parser produced.
    total_cu(response)
    totals_per_user(response)
    cu_per_model(response)
    cu_series(response)
    activity_cu_per_job(response)
    activity_cu_per_user(response)
    activity_cu_per_model(response)
