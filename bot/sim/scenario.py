"""A local fake of the Scenario API (same wire format), backed by a synthetic team.

Used by ``budget-bot demo``, ``budget-bot simulate`` and every test that needs Scenario.
All answers are computed from :class:`~bot.sim.team.SyntheticTeam`'s job list,
so the views of ``GET /v1/usages`` agree with each other and with the team's oracle.

Behaviour worth knowing (the real API documents none of it precisely):

* Only jobs with ``time < now`` exist, where ``now`` is the simulator's injected clock.
* Windows are half-open ``[start, end)``. ``timeRange`` windows end at ``now``;
  ``startDate``/``endDate`` windows end at ``endDate`` (points are zero past ``now``).
* Granularity from the window length ``L``: ``L <= 1 h`` → ``1m``; ``L <= 1 d`` → ``15m``;
  ``L <= 3 d`` → ``1h``; longer → ``1d``. Points start at the bucket holding ``start``,
  aligned to UTC multiples of the granularity, and run to the bucket holding ``end``.
* Money: ``cost``/``value``/``creativeUnitsCost`` are CU charged, ``discount`` is CU waived
  (non-negative), ``total = value + discount`` is the list price.
* ``type``: a comma-separated list; if it is empty or holds any unknown name, all types.
* ``activityOffset``: decimal digits only; anything else (``-1``, ``100.0``, ``x``) is 0, as
  the API documents ("if bad offset or empty, 0"). Pages hold 100 entries, newest first.
* ``dropZeroPoints``: present and not one of ``false 0 no off`` → enabled.
* ``teamId`` (usages, projects) other than the simulator's team → 404.
* Error bodies are ``{"message": "..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import math
import random
import sys
import weakref
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.asgi_server import listen, origin, serve_app
from bot.sim.team import (
    ASSET_SOURCES,
    Job,
    SyntheticTeam,
    from_ms,
    iso_ms,
    to_ms,
)

if TYPE_CHECKING:
    from bot.config import Settings


Json = dict[str, Any]
Clock = Callable[[], datetime]

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
GRANULARITY_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "1d": DAY_MS,
    "7d": 7 * DAY_MS,
}
TIME_RANGES: dict[str, timedelta] = {
    "last-hour": timedelta(hours=1),
    "last-day": timedelta(days=1),
    "last-three-days": timedelta(days=3),
    "last-seven-days": timedelta(days=7),
    "last-thirty-one-days": timedelta(days=31),
}
DEFAULT_TIME_RANGE = "last-day"
USAGE_TYPES: tuple[str, ...] = (
    "usages",
    "activity",
    "consumption",
    "model-usages",
    "asset-usages",
    "nsfw-usages",
    "quality-gate-usages",
)
MAX_CUSTOM_RANGE = timedelta(days=120)
ACTIVITY_PAGE_SIZE = 100
# AWS Lambda's synchronous response cap, which Scenario's API gateway inherits ("6 MB").
GATEWAY_LIMIT_BYTES = 6_291_556
DEFAULT_PORT = 8790
CREATIVE_UNIT_COST = "creative-unit-cost"
CREATIVE_UNIT_DISCOUNT = "creative-unit-discount"
NSFW_LABELS = ("explicit", "suggestive")
QUALITY_GATE_VERDICTS = ("passed", "rejected")
_FALSY = frozenset({"false", "0", "no", "off"})

# Values no SDK release knows, served when `Faults.unknown_enums` is on.
UNKNOWN_ACTION = "text-to-world"
UNKNOWN_JOB_TYPE = "world-model"
UNKNOWN_USAGE_NAME = "world-generation"
UNKNOWN_ASSET_KIND = "hologram"
# Key added to every JSON object when `Faults.extra_keys` is on.
EXTRA_KEY = "futureField"


def granularity_for(length: timedelta) -> str:
    """The point granularity the simulator uses for a window of this length."""
    if length <= timedelta(hours=1):
        return "1m"
    if length <= timedelta(days=1):
        return "15m"
    if length <= timedelta(days=3):
        return "1h"
    return "1d"


class ApiError(Exception):
    """An error answer: HTTP status and the human-readable ``message`` of the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def system_clock() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand: ``clock()`` returns the current simulated time."""

    def __init__(self, now: datetime) -> None:
        self._now = _aware(now)

    def __call__(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = _aware(now)

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the simulator's clock needs tz-aware datetimes")
    return moment.astimezone(UTC)


# --------------------------------------------------------------------------- /usages


@dataclass(frozen=True, slots=True)
class UsagesQuery:
    """A validated ``GET /usages`` request."""

    start_ms: int
    end_ms: int
    granularity: str
    types: frozenset[str] = frozenset(USAGE_TYPES)
    project_ids: frozenset[str] | None = None
    user_ids: frozenset[str] | None = None
    activity_offset: int = 0
    drop_zero_points: bool = False


def _parse_date(name: str, raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date, got {raw!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _id_set(raw: str | None) -> frozenset[str] | None:
    if raw is None:
        return None
    ids = frozenset(part.strip() for part in raw.split(",") if part.strip())
    return ids or None


def parse_usages_query(
    params: Mapping[str, str],
    now: datetime,
    *,
    types_raw: Iterable[str] = (),
    granularity_override: str | None = None,
) -> UsagesQuery:
    """Validate the query of ``GET /usages`` the way the API documents it.

    ``types_raw`` holds every ``type`` value of the query (the parameter may repeat).
    Raises :class:`ApiError` (400) for the documented date rules and bad ``timeRange``.
    """
    start_raw, end_raw = params.get("startDate"), params.get("endDate")
    if (start_raw is None) != (end_raw is None):
        missing = "endDate" if end_raw is None else "startDate"
        raise ApiError(400, f"startDate and endDate must be given together: {missing} missing")
    if start_raw is not None and end_raw is not None:
        start, end = _parse_date("startDate", start_raw), _parse_date("endDate", end_raw)
        if end <= start:
            raise ApiError(400, "endDate must be after startDate")
        if end - start > MAX_CUSTOM_RANGE:
            raise ApiError(400, "startDate and endDate must be at most 120 days apart")
    else:
        name = params.get("timeRange") or DEFAULT_TIME_RANGE
        if name not in TIME_RANGES:
            raise ApiError(400, f"timeRange must be one of {', '.join(TIME_RANGES)}; got {name!r}")
        end = now
        start = now - TIME_RANGES[name]

    names = [t.strip() for raw in types_raw for t in raw.split(",") if t.strip()]
    valid = bool(names) and all(n in USAGE_TYPES for n in names)
    types = frozenset(names) if valid else frozenset(USAGE_TYPES)

    offset_raw = (params.get("activityOffset") or "").strip()
    offset = int(offset_raw) if offset_raw.isdecimal() and offset_raw.isascii() else 0

    drop_raw = params.get("dropZeroPoints")
    drop = drop_raw is not None and drop_raw.strip().lower() not in _FALSY

    user_ids = _id_set(params.get("userIds"))
    single = (params.get("userId") or "").strip()
    if single:
        user_ids = frozenset({single}) if user_ids is None else user_ids & {single}

    return UsagesQuery(
        start_ms=to_ms(start),
        end_ms=to_ms(end),
        granularity=granularity_override or granularity_for(end - start),
        types=types,
        project_ids=_id_set(params.get("projectIds")),
        user_ids=user_ids,
        activity_offset=offset,
        drop_zero_points=drop,
    )


def _num(x: float) -> int | float:
    """JSON number the way JavaScript prints it: integral floats without a ``.0``."""
    return int(x) if math.isfinite(x) and x == int(x) else x


def _num_str(x: float) -> str:
    return str(_num(x))


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("ascii", "replace"))


def nsfw_label(asset_id: str) -> str | None:
    """The synthetic NSFW classifier: a stable, rare label per asset."""
    h = _crc(asset_id) % 61
    return "explicit" if h == 0 else "suggestive" if h in (1, 2) else None


def quality_gate_verdict(job: Job) -> str | None:
    """The synthetic quality gate: some successful jobs are checked, a few rejected."""
    if job.status != "success" or not job.asset_ids:
        return None
    h = _crc(job.id)
    if h % 5:
        return None
    return "rejected" if h % 23 == 0 else "passed"


@dataclass(slots=True)
class _Series:
    """Per-bucket accumulators of one row (dict: bucket index → list of numbers)."""

    width: int
    buckets: dict[int, list[float]] = field(default_factory=dict)

    def add(self, b: int, *values: float) -> None:
        acc = self.buckets.get(b)
        if acc is None:
            acc = self.buckets[b] = [0.0] * self.width
        for i, v in enumerate(values):
            acc[i] += v

    def total(self, i: int) -> float:
        return math.fsum(acc[i] for acc in self.buckets.values())


class _TeamIndex:
    """Facts about a team that every request needs and that never change."""

    def __init__(self, team: SyntheticTeam) -> None:
        self.api_user_ids = frozenset(u.id for u in team.users if u.is_api_key)
        special = {CREATIVE_UNIT_COST, CREATIVE_UNIT_DISCOUNT}
        # Rows that exist whatever the window holds, so a row never appears or vanishes
        # between two windows; action rows come after the two CU rows.
        self.usage_names = (
            CREATIVE_UNIT_COST,
            CREATIVE_UNIT_DISCOUNT,
            *sorted({j.usage_name for j in team.jobs} - special),
        )
        kinds = {j.asset_kind for j in team.jobs if j.asset_ids} | {"image"}
        self.asset_kinds = tuple(sorted(kinds))


_INDEXES: weakref.WeakKeyDictionary[SyntheticTeam, _TeamIndex] = weakref.WeakKeyDictionary()


def _index_for(team: SyntheticTeam) -> _TeamIndex:
    # Many simulators share one team in tests; the index costs a pass over every job.
    index = _INDEXES.get(team)
    if index is None:
        index = _INDEXES[team] = _TeamIndex(team)
    return index


def build_usages_payload(
    team: SyntheticTeam,
    query: UsagesQuery,
    now_ms: int,
    *,
    index: _TeamIndex | None = None,
    page_size: int = ACTIVITY_PAGE_SIZE,
    revoked: Mapping[str, int] | None = None,
) -> Json:
    """The ``GET /usages`` answer for ``query`` at time ``now_ms``: pure, deterministic.
    ``revoked``: member ID of a revoked API key → when (ms); its later jobs never ran."""
    index = index or _index_for(team)
    g_ms = GRANULARITY_MS[query.granularity]
    first = query.start_ms - query.start_ms % g_ms
    n_buckets = max(1, -(-(query.end_ms - first) // g_ms))
    visible_end = min(query.end_ms, now_ms)
    window = team.index_range(query.start_ms, visible_end)
    projects, users = query.project_ids, query.user_ids
    # Paging through activity asks for nothing else: skip the aggregation then.
    aggregate = bool(query.types - {"activity"})
    # Only the sections asked for are accumulated: the budget check asks for two of seven.
    want_usages = "usages" in query.types
    want_models = "model-usages" in query.types
    want_assets = "asset-usages" in query.types
    want_nsfw = "nsfw-usages" in query.types
    want_verdicts = "quality-gate-usages" in query.types
    api_ids = index.api_user_ids

    jobs: list[Job] = []
    cu = _Series(4)  # cost, discount, apiKeyCost, apiKeyDiscount
    per_usage = {name: _Series(6) for name in index.usage_names[2:]}  # count, api, +cu
    per_model: dict[str, _Series] = {}  # jobs, cost, discount, apiKeyCost, apiKeyDiscount
    per_kind = {kind: _Series(2) for kind in index.asset_kinds}  # count, countApiKey
    per_label = {label: _Series(2) for label in NSFW_LABELS}
    per_verdict = {verdict: _Series(2) for verdict in QUALITY_GATE_VERDICTS}
    consumption: dict[str, list[float]] = {}
    all_jobs, all_ms = team.jobs, team.job_ms
    for i in window:
        job = all_jobs[i]
        if projects is not None and job.project_id not in projects:
            continue
        if users is not None and job.user_id not in users:
            continue
        if revoked and job.user_id in revoked and all_ms[i] >= revoked[job.user_id]:
            continue
        jobs.append(job)
        if not aggregate:
            continue
        b = (all_ms[i] - first) // g_ms
        api = job.user_id in api_ids
        cost, disc = job.cu_cost, job.cu_discount
        a_cost, a_disc = (cost, disc) if api else (0.0, 0.0)
        if want_usages:
            cu.add(b, cost, disc, a_cost, a_disc)
            if job.usage_name not in (CREATIVE_UNIT_COST, CREATIVE_UNIT_DISCOUNT):
                series = per_usage.get(job.usage_name)
                if series is None:
                    series = per_usage[job.usage_name] = _Series(6)
                series.add(b, 1, 1 if api else 0, cost, disc, a_cost, a_disc)
        if want_models:
            series = per_model.get(job.model_id)
            if series is None:
                series = per_model[job.model_id] = _Series(5)
            series.add(b, 1, cost, disc, a_cost, a_disc)
        n_assets = len(job.asset_ids)
        if want_assets and n_assets:
            series = per_kind.get(job.asset_kind)
            if series is None:
                series = per_kind[job.asset_kind] = _Series(2)
            series.add(b, n_assets, n_assets if api else 0)
        if want_nsfw:
            for asset_id in job.asset_ids:
                label = nsfw_label(asset_id)
                if label is not None:
                    per_label[label].add(b, 1, 1 if api else 0)
        if want_verdicts:
            verdict = quality_gate_verdict(job)
            if verdict is not None:
                per_verdict[verdict].add(b, 1, 1 if api else 0)
        acc = consumption.get(job.user_id)
        if acc is None:
            acc = consumption[job.user_id] = [0.0, 0.0]
        acc[0] += cost
        acc[1] += disc

    # Bucket labels only when some section has points (not for consumption-only reads).
    series_wanted = want_usages or want_models or want_assets or want_nsfw or want_verdicts
    times = [iso_ms(from_ms(first + k * g_ms)) for k in range(n_buckets if series_wanted else 0)]
    drop = query.drop_zero_points

    def points(series: _Series, render: Callable[[str, list[float]], Json]) -> list[Json]:
        out: list[Json] = []
        zero = [0.0] * series.width
        for k in range(n_buckets):
            acc = series.buckets.get(k)
            if acc is None:
                if drop:
                    continue
                acc = zero
            point = render(times[k], acc)
            # Judged on the rendered fields: a row may show only part of its accumulators
            # (the discount row of a bucket with cost but no discount is all zero).
            if drop and all(v in (0, "0") for key, v in point.items() if key != "time"):
                continue
            out.append(point)
        return out

    def count_point(t: str, a: list[float]) -> Json:
        return {"count": _num(a[0]), "countApiKey": _num(a[1]), "time": t}

    payload: Json = {}
    page: list[Job] = []
    if "activity" in query.types:
        hi = len(jobs) - query.activity_offset
        page = jobs[max(0, hi - page_size) : max(0, hi)][::-1]
        payload["activity"] = [_activity_entry(job, api_ids) for job in page]
    if "asset-usages" in query.types:
        payload["assetUsages"] = [
            {"kind": kind, "points": points(series, count_point)}
            for kind, series in sorted(per_kind.items())
        ]
    if "consumption" in query.types:
        rows = sorted(consumption.items(), key=lambda kv: (-kv[1][0], kv[0]))
        payload["consumption"] = [
            {
                "discount": _num(disc),
                "total": _num(value + disc),
                "userId": user_id,
                "value": _num(value),
            }
            for user_id, (value, disc) in rows
        ]
    model_rows: list[tuple[str, _Series]] = []
    if "model-usages" in query.types:
        model_rows = sorted(per_model.items(), key=lambda kv: (-kv[1].total(1), kv[0]))
        payload["modelUsages"] = [
            {
                "modelId": model_id,
                "points": points(
                    series,
                    lambda t, a: {
                        "apiKeyCost": _num(a[3]),
                        "apiKeyDiscount": _num(a[4]),
                        "cost": _num(a[1]),
                        "discount": _num(a[2]),
                        "jobs": _num(a[0]),
                        "time": t,
                    },
                ),
            }
            for model_id, series in model_rows
        ]
    if "nsfw-usages" in query.types:
        payload["nsfwUsages"] = [
            {"label": label, "points": points(per_label[label], count_point)}
            for label in NSFW_LABELS
        ]
    if "quality-gate-usages" in query.types:
        payload["qualityGateUsages"] = [
            {"points": points(per_verdict[v], count_point), "verdict": v}
            for v in QUALITY_GATE_VERDICTS
        ]
    if "usages" in query.types:
        rows_out: list[Json] = [
            {
                "granularity": query.granularity,
                "points": points(
                    cu,
                    lambda t, a: {
                        "apiKey": _num_str(a[2]),
                        "apiKeyCost": _num(a[2]),
                        "apiKeyDiscount": _num(a[3]),
                        "cost": _num(a[0]),
                        "discount": _num(a[1]),
                        "time": t,
                        "value": _num_str(a[0]),
                    },
                ),
                "usageName": CREATIVE_UNIT_COST,
            },
            {
                "granularity": query.granularity,
                "points": points(
                    cu,
                    lambda t, a: {
                        "apiKey": _num_str(a[3]),
                        "apiKeyDiscount": _num(a[3]),
                        "discount": _num(a[1]),
                        "time": t,
                        "value": _num_str(a[1]),
                    },
                ),
                "usageName": CREATIVE_UNIT_DISCOUNT,
            },
        ]
        for name, series in sorted(per_usage.items()):
            rows_out.append(
                {
                    "granularity": query.granularity,
                    "points": points(
                        series,
                        lambda t, a: {
                            "apiKey": _num_str(a[1]),
                            "apiKeyCost": _num(a[4]),
                            "apiKeyDiscount": _num(a[5]),
                            "cost": _num(a[2]),
                            "discount": _num(a[3]),
                            "time": t,
                            "value": _num_str(a[0]),
                        },
                    ),
                    "usageName": name,
                }
            )
        payload["usages"] = rows_out

    user_ids = list(dict.fromkeys([*_consumption_user_ids(payload), *(j.user_id for j in page)]))
    model_ids = list(dict.fromkeys([*(m for m, _ in model_rows), *(j.model_id for j in page)]))
    payload["entities"] = _entities(team, user_ids, model_ids, page)
    return dict(sorted(payload.items()))


def _consumption_user_ids(payload: Json) -> list[str]:
    return [row["userId"] for row in payload.get("consumption", ())]


def _activity_entry(job: Job, api_ids: frozenset[str]) -> Json:
    data: Json = {}
    if job.asset_ids:
        data["assetId"] = job.asset_ids[0]
    data["isApiKey"] = job.user_id in api_ids
    data["jobId"] = job.id
    data["modelId"] = job.model_id
    return {
        "action": job.action,
        "creativeUnitsCost": _num(job.cu_cost),
        "data": data,
        "projectId": job.project_id,
        "time": iso_ms(job.time),
        "userId": job.user_id,
    }


def _job_metadata(job: Job) -> Json:
    meta: Json = {"assetIds": list(job.asset_ids)}
    if job.status == "failure":
        meta["error"] = "Generation failed: the model provider timed out"
    meta["input"] = {"modelId": job.model_id, "numSamples": max(1, len(job.asset_ids))}
    return meta


def _asset_entity(job: Job, asset_id: str) -> Json:
    h = _crc(asset_id)
    properties: Json = {"size": 200_000 + h % 3_000_000}
    if job.asset_kind in ("image", "video"):
        properties["height"] = 1024
        properties["width"] = (768, 1024, 1536)[h % 3]
    if job.asset_kind == "video":
        properties["duration"] = 5
    return {
        "id": asset_id,
        "kind": job.asset_kind,
        "metadata": {"type": job.asset_type},
        "properties": properties,
        "source": ASSET_SOURCES.get(job.asset_type, "unknown"),
    }


def _user_entity(team: SyntheticTeam, user_id: str) -> Json | None:
    user = team.user(user_id)
    if user is None:
        return None
    if user.is_api_key:
        out: Json = {"id": user.id, "isApiKey": True}
        if user.api_key_id:
            out["apiKeyId"] = user.api_key_id
        if user.api_key_status:
            out["apiKeyStatus"] = user.api_key_status
        return out
    out = {"id": user.id, "isApiKey": False}
    if user.email:
        out["email"] = user.email
    if user.full_name:
        out["fullName"] = user.full_name
    return out


def _entities(
    team: SyntheticTeam, user_ids: list[str], model_ids: list[str], page: list[Job]
) -> Json:
    models: list[Json] = []
    for model_id in model_ids:
        model = team.model(model_id)
        if model is not None:
            entry: Json = {"id": model.id, "name": model.name}
            if model.short_description:
                entry["shortDescription"] = model.short_description
            models.append(entry)
    return {
        "assets": [_asset_entity(job, a) for job in page for a in job.asset_ids],
        "collections": [],
        "jobs": [
            {"id": j.id, "jobType": j.job_type, "metadata": _job_metadata(j), "status": j.status}
            for j in page
        ],
        "models": models,
        "users": [u for u in (_user_entity(team, uid) for uid in user_ids) if u is not None],
    }


# --------------------------------------------------------------------------- other endpoints


def _period_spend(
    team: SyntheticTeam, start_ms: int, now_ms: int
) -> tuple[float, dict[str, float], dict[str, float]]:
    """CU in ``[start, now)``: total, per member and per project."""
    per_user: dict[str, float] = {}
    per_project: dict[str, float] = {}
    total: list[float] = []
    for job in team.job_slice(start_ms, now_ms):
        total.append(job.cu_cost)
        per_user[job.user_id] = per_user.get(job.user_id, 0.0) + job.cu_cost
        per_project[job.project_id] = per_project.get(job.project_id, 0.0) + job.cu_cost
    return math.fsum(total), per_user, per_project


def _project_json(
    team: SyntheticTeam, project_index: int, consumption: float, team_id: str
) -> Json:
    project = team.projects[project_index]
    keys = [
        {
            "apiKeyId": k.api_key_id or k.id,
            "apiKeyStatus": "inactive" if k.api_key_status == "inactive" else "active",
            "createdAt": iso_ms(k.created_at),
            "id": k.id,
            "name": k.key_name or k.id,
            "role": "editor",
            "scope": k.key_scope or "project",
            "updatedAt": iso_ms(k.created_at),
        }
        for k in team.api_keys
        if project.id in k.project_ids and k.api_key_status != "deleted"
    ]
    members = [
        {
            "createdAt": iso_ms(u.created_at),
            "email": u.email or "",
            "id": u.id,
            "role": "admin" if u.role == "admin" else "editor",
            "updatedAt": iso_ms(u.created_at),
        }
        for u in team.humans
        if project.id in u.project_ids
    ]
    return {
        "consumption": _num(consumption),
        "createdAt": iso_ms(project.created_at),
        "id": project.id,
        "keys": keys,
        "name": project.name,
        "privacyMode": project_index % 3 == 2,
        "teamId": team_id,
        "updatedAt": iso_ms(project.created_at),
        "users": members,
    }


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = raw.partition(":")
        if prefix != "offset" or not number.isdecimal():
            raise ValueError(raw)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "paginationToken is invalid") from None


def projects_payload(
    team: SyntheticTeam, params: Mapping[str, str], now_ms: int, *, team_id: str | None = None
) -> Json:
    raw_size = params.get("pageSize")
    size = 10
    if raw_size is not None:
        if not raw_size.strip().isdecimal() or not 1 <= int(raw_size) <= 100:
            raise ApiError(400, "pageSize must be an integer between 1 and 100")
        size = int(raw_size)
    team_id = team_id or team.team_id
    token = params.get("paginationToken")
    offset = _decode_token(token) if token else 0
    start_ms = to_ms(team.billing_period(from_ms(now_ms))[0])
    _, _, per_project = _period_spend(team, start_ms, now_ms)
    chosen = range(offset, min(offset + size, len(team.projects)))
    out: Json = {
        "projects": [
            _project_json(team, i, per_project.get(team.projects[i].id, 0.0), team_id)
            for i in chosen
        ]
    }
    if chosen.stop < len(team.projects):
        out["nextPaginationToken"] = _encode_token(chosen.stop)
    return out


def team_payload(
    team: SyntheticTeam,
    now_ms: int,
    *,
    team_id: str | None = None,
    revoked: Mapping[str, int] | None = None,
) -> Json:
    team_id = team_id or team.team_id
    start_ms = to_ms(team.billing_period(from_ms(now_ms))[0])
    _, per_user, _ = _period_spend(team, start_ms, now_ms)
    keys: list[Json] = []
    for i, k in enumerate(team.api_keys):
        if k.api_key_status == "deleted" or k.id in (revoked or {}):
            continue
        key: Json = {
            "apiKeyId": k.api_key_id or k.id,
            "apiKeyStatus": "inactive" if k.api_key_status == "inactive" else "active",
            "consumption": _num(per_user.get(k.id, 0.0)),
            "createdAt": iso_ms(k.created_at),
            "id": k.id,
            "name": k.key_name or k.id,
            "scope": k.key_scope or "team",
            "updatedAt": iso_ms(k.created_at),
        }
        if i == 1:
            key["maxConsumption"] = 8000
        if k.key_scope == "project":
            key["ownerId"] = k.project_ids[0] if k.project_ids else team_id
            key["projects"] = [{"projectId": p, "role": "editor"} for p in k.project_ids]
        else:
            key["role"] = "team.read;team.usage.read"
        keys.append(key)
    users = [
        {
            "consumption": _num(per_user.get(u.id, 0.0)),
            "createdAt": iso_ms(u.created_at),
            "email": u.email or "",
            "id": u.id,
            "role": "admin" if u.role == "admin" else "member",
            "updatedAt": iso_ms(u.created_at),
        }
        for u in team.humans
    ]
    indexes = {
        kind: {"private": f"{team_id}-{kind}-private", "public": f"public-{kind}"}
        for kind in ("assets", "models", "workflows")
    }
    return {
        "team": {
            "createdAt": iso_ms(team.created_at),
            "id": team_id,
            "invitations": [],
            "keys": keys,
            "name": team.name,
            "paymentStatus": "succeeded",
            "plan": team.plan,
            "projects": [
                {
                    "createdAt": iso_ms(p.created_at),
                    "id": p.id,
                    "name": p.name,
                    "updatedAt": iso_ms(p.created_at),
                }
                for p in team.projects
            ],
            "searchHost": "search.simulator.invalid",
            "searchIndexes": indexes,
            "subscriptionStatus": "active",
            "type": "shared",
            "updatedAt": iso_ms(team.created_at),
            "users": users,
        }
    }


def limits_payload(team: SyntheticTeam, now_ms: int) -> Json:
    start, end = team.billing_period(from_ms(now_ms))
    used, _, _ = _period_spend(team, to_ms(start), now_ms)
    anchor = team.anchor or from_ms(now_ms)
    granted = anchor - timedelta(days=40)
    return {
        "limits": {
            "OTPSessions": 5,
            "apiKeys": 10,
            "canvasAssetLayers": 100,
            "canvasAssets": 500,
            "collections": 1000,
            "creativeUnits": _num(team.plan_creative_units),
            "defaultSeats": 10,
            "downloadAssets": 1000,
            "downloadModel": 10,
            "inferenceBatchSize": 8,
            "maxCooldown": 60,
            "maxTrainingDatasets": 50,
            "minCooldown": 0,
            "models": 200,
            "parallelCustomJobs": 4,
            "parallelInferences": 8,
            "parallelTraining": 2,
            "parallelWorkflowRuns": 4,
            "premiumGenerationSamples": 4,
            "projects": 20,
            "scalingFactor": 1,
            "seats": 25,
            "snapshotsRetention": 30,
            "upload": 10_000,
        },
        "oneShotCreativeUnits": [
            {
                "amount": 5000,
                "createdAt": iso_ms(granted),
                "expiration": iso_ms(granted + timedelta(days=365)),
                "remaining": 3200,
                "updatedAt": iso_ms(granted + timedelta(days=10)),
            }
        ],
        "period": {"end": iso_ms(end), "start": iso_ms(start)},
        "plan": team.plan,
        "values": {
            "apiKeys": sum(1 for k in team.api_keys if k.api_key_status != "deleted"),
            "canvasAssets": 42,
            "collections": 7,
            "creativeUnits": _num(used),
            "projects": len(team.projects),
            "seats": len(team.humans),
        },
    }


def model_payload(team: SyntheticTeam, model_id: str) -> Json:
    model = team.model(model_id)
    if model is None:
        raise ApiError(404, f"Model {model_id} not found")
    out: Json = {
        "capabilities": list(model.capabilities),
        "collectionIds": [],
        "createdAt": iso_ms(model.created_at),
        "custom": model.custom,
        "exampleAssetIds": [],
        "id": model.id,
        "name": model.name,
        "privacy": "private" if model.custom else "public",
        "source": "scenario",
        "status": "trained",
        "tags": [],
        "trainingImagesNumber": 24 if model.custom else 0,
        "type": model.type,
        "updatedAt": iso_ms(model.created_at),
    }
    if model.short_description:
        out["shortDescription"] = model.short_description
    return {"model": out}


def job_payload(team: SyntheticTeam, job_id: str, now_ms: int) -> Json:
    job = team.job(job_id)
    # A job scheduled after `now` has not happened yet: it is as unknown as a bad ID.
    if job is None or to_ms(job.time) >= now_ms:
        raise ApiError(404, f"Job {job_id} not found")
    done = job.time + timedelta(seconds=4 + _crc(job.id) % 40)
    history = [
        {"date": iso_ms(job.time), "status": "queued"},
        {"date": iso_ms(job.time + timedelta(seconds=1)), "status": "in-progress"},
        {"date": iso_ms(done), "status": job.status},
    ]
    return {
        "job": {
            "authorId": job.user_id,
            "billing": {"cuCost": _num(job.cu_cost), "cuDiscount": _num(job.cu_discount)},
            "createdAt": iso_ms(job.time),
            "jobId": job.id,
            "jobType": job.job_type,
            "metadata": _job_metadata(job),
            "ownerId": job.project_id,
            "progress": 1 if job.status == "success" else 0,
            "status": job.status,
            "statusHistory": history,
            "updatedAt": iso_ms(done),
        }
    }


# --------------------------------------------------------------------------- fault injection


def _inject_unknown_usages(payload: Json) -> None:
    for i, entry in enumerate(payload.get("activity", ())):
        if i % 2 == 0:
            entry["action"] = UNKNOWN_ACTION
    entities = payload.get("entities", {})
    for i, job in enumerate(entities.get("jobs", ())):
        if i % 2 == 0:
            job["jobType"] = UNKNOWN_JOB_TYPE
    for i, asset in enumerate(entities.get("assets", ())):
        if i % 2 == 0:
            asset["kind"] = UNKNOWN_ASSET_KIND
    if payload.get("usages"):
        template = payload["usages"][0]
        payload["usages"].append(
            {
                "granularity": template["granularity"],
                "points": [
                    {"apiKey": "0", "time": p["time"], "value": "1"} for p in template["points"]
                ],
                "usageName": UNKNOWN_USAGE_NAME,
            }
        )
    if "assetUsages" in payload:
        times = [p["time"] for row in payload["assetUsages"][:1] for p in row["points"]]
        payload["assetUsages"].append(
            {
                "kind": UNKNOWN_ASSET_KIND,
                "points": [{"count": 1, "countApiKey": 0, "time": t} for t in times],
            }
        )


def _inject_unknown_job(payload: Json) -> None:
    payload["job"]["jobType"] = UNKNOWN_JOB_TYPE


def _with_extra_keys(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _with_extra_keys(v) for k, v in value.items()}
        out[EXTRA_KEY] = "added by the simulator"
        return out
    if isinstance(value, list):
        return [_with_extra_keys(v) for v in value]
    return value


@dataclass
class Faults:
    """Failure knobs; change the attributes at any time, the next request sees them.

    Order of evaluation for each request: ``hold`` → ``latency`` → authentication (401) → ``outage``
    → ``rate_limit_next`` (429) → ``server_error_next`` (500) → ``failure_rate`` (500) →
    the real answer, then ``unknown_enums`` / ``extra_keys`` / ``malformed_next``.
    """

    latency: float = 0.0  # seconds awaited before answering
    # Requests wait until it is set (Simulator.held counts those waiting): a test can keep
    # a read in flight for as long as it needs, without guessing a latency.
    hold: asyncio.Event | None = None
    failure_rate: float = 0.0  # probability of a random 500 (seeded, see Simulator)
    rate_limit_next: int = 0  # the next N requests get 429 + retry-after
    retry_after: float = 1.0  # seconds, sent in the `retry-after` header
    server_error_next: int = 0  # the next N requests get 500
    outage: bool = False  # every request gets `outage_status` until cleared
    outage_status: int = 500
    malformed_next: int = 0  # the next N successful answers are truncated JSON
    unknown_enums: bool = False  # enum values and a usage row the SDK has never seen
    extra_keys: bool = False  # an unknown key in every JSON object


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: str  # the raw query string
    params: tuple[tuple[str, str], ...]
    status: int
    at: datetime  # the simulator's clock when the request arrived

    def param(self, name: str) -> str | None:
        """The last value of query parameter ``name``, or None."""
        values = [v for k, v in self.params if k == name]
        return values[-1] if values else None


class Simulator:
    """State of one fake Scenario API: team, clock, credentials, faults and a request log."""

    def __init__(
        self,
        team: SyntheticTeam | None = None,
        *,
        clock: Clock | None = None,
        api_key: str = "test-key",
        api_secret: str = "test-secret",
        team_id: str | None = None,
        faults: Faults | None = None,
        fault_seed: int = 0,
        max_response_bytes: int | None = GATEWAY_LIMIT_BYTES,
        granularity_override: str | None = None,
    ) -> None:
        self.team = team if team is not None else SyntheticTeam.build()
        # Wall-clock by default, as a live API would be; tests pass a ManualClock.
        self.clock: Clock = clock or system_clock
        self.api_key = api_key
        self.api_secret = api_secret
        self.team_id = team_id or self.team.team_id
        self.faults = faults if faults is not None else Faults()
        self.max_response_bytes = max_response_bytes
        if granularity_override is not None and granularity_override not in GRANULARITY_MS:
            raise ValueError(f"unknown granularity {granularity_override!r}")
        self.granularity_override = granularity_override
        # API keys revoked through DELETE /projects/{id}/api-keys/{key}: member ID → when.
        self.revoked: dict[str, int] = {}
        self.requests: list[RecordedRequest] = []
        self.held = 0  # requests waiting for faults.hold
        self._fault_rng = random.Random(fault_seed)
        self._index = _index_for(self.team)

    def now(self) -> datetime:
        return _aware(self.clock())

    def count(self, path: str | None = None, **params: str) -> int:
        """How many requests hit ``path`` (e.g. ``"/v1/usages"``; None = any path) whose
        query holds every given ``name=value`` (e.g. ``count("/v1/usages", type="activity")``).
        """
        return sum(
            1
            for r in self.requests
            if (path is None or r.path == path) and all(r.param(k) == v for k, v in params.items())
        )

    def reset_requests(self) -> None:
        self.requests.clear()

    # -- request handling

    def _authorized(self, header: str | None) -> bool:
        if not header or header[:6].lower() != "basic ":
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        key, sep, secret = decoded.partition(b":")
        ok_key = hmac.compare_digest(key, self.api_key.encode())
        ok_secret = hmac.compare_digest(secret, self.api_secret.encode())
        return bool(sep) and ok_key and ok_secret

    async def handle(
        self,
        request: Request,
        answer: Callable[[Request, int], Json],
        inject_unknown: Callable[[Json], None] | None = None,
    ) -> Response:
        faults = self.faults
        if faults.hold is not None:
            self.held += 1
            try:
                await faults.hold.wait()
            finally:
                self.held -= 1
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        if not self._authorized(request.headers.get("authorization")):
            return _error(401, "Unauthorized: missing or invalid API key and secret")
        if faults.outage:
            return _error(faults.outage_status, "Internal server error")
        if faults.rate_limit_next > 0:
            faults.rate_limit_next -= 1
            return _error(
                429,
                "Too many requests, please retry later",
                headers={"retry-after": _num_str(faults.retry_after)},
            )
        if faults.server_error_next > 0:
            faults.server_error_next -= 1
            return _error(500, "Internal server error")
        if faults.failure_rate > 0 and self._fault_rng.random() < faults.failure_rate:
            return _error(500, "Internal server error")
        try:
            payload = answer(request, to_ms(self.now()))
        except ApiError as exc:
            return _error(exc.status, exc.message)
        if faults.unknown_enums and inject_unknown is not None:
            inject_unknown(payload)
        if faults.extra_keys:
            payload = _with_extra_keys(payload)
        body = dump_json(payload)
        if self.max_response_bytes is not None and len(body) > self.max_response_bytes:
            return _error(
                502,
                "Response payload size exceeded maximum allowed payload size "
                f"({self.max_response_bytes} bytes).",
            )
        if faults.malformed_next > 0:
            faults.malformed_next -= 1
            body = body[: max(1, len(body) // 2)]
        return Response(body, 200, media_type="application/json")

    # -- endpoint bodies (sync, pure given `now_ms`)

    def _check_team(self, team_id: str | None) -> None:
        if team_id is not None and team_id != self.team_id:
            raise ApiError(404, f"Team {team_id} not found")

    def usages(self, request: Request, now_ms: int) -> Json:
        params = request.query_params
        self._check_team(params.get("teamId"))
        query = parse_usages_query(
            params,
            from_ms(now_ms),
            types_raw=params.getlist("type"),
            granularity_override=self.granularity_override,
        )
        return build_usages_payload(
            self.team, query, now_ms, index=self._index, revoked=self.revoked
        )

    def projects(self, request: Request, now_ms: int) -> Json:
        self._check_team(request.query_params.get("teamId"))
        return projects_payload(self.team, request.query_params, now_ms, team_id=self.team_id)

    def team_info(self, request: Request, now_ms: int) -> Json:
        self._check_team(request.path_params["team_id"])
        return team_payload(self.team, now_ms, team_id=self.team_id, revoked=self.revoked)

    def delete_api_key(self, request: Request, now_ms: int) -> Json:
        """DELETE /projects/{projectId}/api-keys/{keyId} (the SDK's `projects.api_keys.
        delete`): a project key of that project, by its key ID (`api_…`), revoked now."""
        project_id, key_id = request.path_params["project_id"], request.path_params["key_id"]
        if all(p.id != project_id for p in self.team.projects):
            raise ApiError(404, f"Project {project_id} not found")
        key = next(
            (
                k
                for k in self.team.api_keys
                if k.api_key_id == key_id
                and k.api_key_status != "deleted"
                and k.id not in self.revoked
                and k.key_scope == "project"
                and project_id in k.project_ids
            ),
            None,
        )
        if key is None:
            raise ApiError(404, f"API key {key_id} not found in project {project_id}")
        self.revoked[key.id] = now_ms
        return {}

    def limits(self, request: Request, now_ms: int) -> Json:
        self._check_team(request.path_params["team_id"])
        return limits_payload(self.team, now_ms)

    def model_info(self, request: Request, now_ms: int) -> Json:
        return model_payload(self.team, request.path_params["model_id"])

    def job_info(self, request: Request, now_ms: int) -> Json:
        return job_payload(self.team, request.path_params["job_id"], now_ms)


def dump_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        dump_json({"message": message}), status, headers=headers, media_type="application/json"
    )


# --------------------------------------------------------------------------- the ASGI app


class _RecordingMiddleware:
    """Logs every request (including 404s) with the status it got."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        arrived = self.simulator.now()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.simulator.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    params=tuple(request.query_params.multi_items()),
                    status=status,
                    at=arrived,
                )
            )


def create_app(simulator: Simulator) -> Starlette:
    """The Starlette app serving ``simulator`` under ``/v1``."""

    def route(
        path: str,
        answer: Callable[[Request, int], Json],
        inject: Callable[[Json], None] | None = None,
        method: str = "GET",
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            return await simulator.handle(request, answer, inject)

        return Route(path, endpoint, methods=[method])

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"message": exc.detail}, status_code=exc.status_code)

    return Starlette(
        routes=[
            route("/v1/usages", simulator.usages, _inject_unknown_usages),
            route("/v1/projects", simulator.projects),
            route(
                "/v1/projects/{project_id}/api-keys/{key_id}",
                simulator.delete_api_key,
                method="DELETE",
            ),
            route("/v1/teams/{team_id}", simulator.team_info),
            route("/v1/teams/{team_id}/limits", simulator.limits),
            route("/v1/models/{model_id}", simulator.model_info),
            route("/v1/jobs/{job_id}", simulator.job_info, _inject_unknown_job),
        ],
        middleware=[Middleware(_RecordingMiddleware, simulator=simulator)],
        exception_handlers={HTTPException: http_error},
    )


# --------------------------------------------------------------------------- serving


@contextlib.asynccontextmanager
async def serve_simulator(
    simulator: Simulator,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
) -> AsyncIterator[str]:
    """Serve ``simulator`` over HTTP in this event loop; yields the base URL (``…/v1``).

    ``port=0`` binds a free port; the yielded URL names the one bound.
    """
    async with serve_app(
        create_app(simulator), host, port, startup_timeout=startup_timeout
    ) as origin:
        yield f"{origin}/v1"


def create_multi_app(simulators: Sequence[Simulator]) -> ASGIApp:
    """Several Scenario teams behind one base URL, each reached with its own credentials,
    as the real API serves every team (multi-workspace tests connect one per workspace).
    Unknown credentials are answered by the first team's app: 401."""
    apps = [(simulator, create_app(simulator)) for simulator in simulators]

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            for simulator, app in apps:
                if simulator._authorized(header):
                    await app(scope, receive, send)
                    return
        await apps[0][1](scope, receive, send)

    return dispatch


@contextlib.asynccontextmanager
async def serve_simulators(
    simulators: Sequence[Simulator], host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve several teams on one base URL (see :func:`create_multi_app`)."""
    async with serve_app(create_multi_app(simulators), host, port) as origin:
        yield f"{origin}/v1"


def run_simulator(
    simulator: Simulator,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    log_level: str = "info",
) -> None:
    """Serve ``simulator`` until interrupted (``budget-bot simulate``).

    Raises ``OSError`` at once when the address cannot be bound.
    """
    sock = listen(host, port)
    print(
        f"Scenario simulator: {origin(host, sock.getsockname()[1])}/v1 "
        f"(team {simulator.team_id}, API key {simulator.api_key!r}); Ctrl-C stops it.",
        flush=True,
    )
    config = uvicorn.Config(create_app(simulator), log_level=log_level, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def run_from_cli(args: argparse.Namespace, settings: Settings) -> int:
    """``budget-bot simulate``: accepts the configured Scenario credentials (or the test
    ones when none are set), so a bot pointed at the printed URL works unchanged."""
    team = SyntheticTeam.build(args.seed, args.anchor)
    port = DEFAULT_PORT if args.port is None else args.port
    secret = settings.scenario_sdk_api_secret
    simulator = Simulator(
        team,
        clock=ManualClock(team.anchor or system_clock()) if args.frozen else system_clock,
        api_key=settings.scenario_sdk_api_key or "test-key",
        api_secret=secret.get_secret_value() if secret is not None else "test-secret",
        team_id=settings.scenario_team_id or None,
        faults=Faults(
            latency=max(0.0, args.latency),
            failure_rate=min(1.0, max(0.0, args.failure_rate)),
            unknown_enums=args.unknown_enums,
            extra_keys=args.extra_keys,
        ),
    )
    try:
        run_simulator(simulator, args.host, port)
    except OSError as exc:
        print(f"budget-bot: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 2
    return 0


# --------------------------------------------------------------------------- benchmark body

BENCH_ANCHOR = datetime(2025, 6, 2, 12, tzinfo=UTC)


def big_usages_body(
    target_bytes: int = 6_000_000,
    *,
    seed: int = 7,
    anchor: datetime = BENCH_ANCHOR,
    granularity: str = "15m",
    team: SyntheticTeam | None = None,
) -> bytes:
    """A ``GET /usages`` body (all types, zero points kept) of about ``target_bytes``.

    It is what a wide window at a fine granularity returns: the window ends at ``anchor``
    and is widened until the body is within ~3 % of the target (at most 120 days).
    Deterministic for given arguments.
    """
    team = team if team is not None else SyntheticTeam.build(seed, anchor)
    index = _index_for(team)
    end_ms = to_ms(anchor)

    def body_for(hours: int) -> bytes:
        query = UsagesQuery(
            start_ms=end_ms - hours * HOUR_MS, end_ms=end_ms, granularity=granularity
        )
        return dump_json(build_usages_payload(team, query, end_ms, index=index))

    hours = 24
    body = body_for(hours)
    for _ in range(6):
        if abs(len(body) - target_bytes) <= 0.03 * target_bytes:
            break
        hours = max(1, min(120 * 24, round(hours * target_bytes / len(body))))
        body = body_for(hours)
    return body
