"""Tolerant pydantic v2 models of the Scenario API responses the bot reads.

Scenario's enums grow between releases, "required" keys go missing and numbers sometimes
arrive as strings, so these models follow the tolerant-reader rule (ARCHITECTURE.md):

* attributes are snake_case, the wire names camelCase aliases; both are accepted;
* unknown keys are ignored; every field that may be absent has a default;
* enum-like fields (action, jobType, status, usageName, granularity, kind, …) are plain
  ``str``: values this code has never heard of are kept as they are. The values known at
  the time of writing are listed in ``KNOWN_*`` constants, for documentation only;
* numbers that arrive as strings are parsed; a non-numeric or non-finite number in an
  optional field falls back to the field's default;
* a list row whose *essential* data is unusable is dropped, not the whole response. The
  essential data is: the ``time`` of every series point and activity entry, the ``value``
  of a ``usages`` point and of a ``consumption`` row, and the ``id`` of an entity. So a
  point whose value is ``"abc"`` is skipped (it would count as zero anyway, and a guessed
  number would be worse);
* times are parsed to tz-aware UTC datetimes (naive strings are taken as UTC).

Everything ignored is counted while parsing, and ``parse_*`` logs **one** warning per
response that lists what was skipped. The ``parse_*`` functions never raise for a JSON
object; they raise :class:`MalformedPayload` only when the body is not the JSON object
expected (a list, a string, or an object without the wrapper key such as ``team``).

The pure helpers at the end (``total_cu``, ``totals_per_user``, …) turn a parsed
``/usages`` response into the numbers the budget core needs.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import repeat
from typing import Annotated, Any, NamedTuple, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SerializationInfo,
    ValidationError,
    ValidationInfo,
    WrapValidator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUseDefault, core_schema

log = logging.getLogger(__name__)

__all__ = [
    "ACTIVITY_PAGE_SIZE",
    "CU_SERIES_NAME",
    "KNOWN_ASSET_KINDS",
    "KNOWN_GRANULARITIES",
    "KNOWN_JOB_STATUSES",
    "KNOWN_QUALITY_GATE_VERDICTS",
    "Activity",
    "ActivityData",
    "AssetUsage",
    "Consumption",
    "CountPoint",
    "Entities",
    "EntityAsset",
    "EntityCollection",
    "EntityJob",
    "EntityModel",
    "EntityUser",
    "Job",
    "JobBilling",
    "JobMetadata",
    "MalformedPayload",
    "Model",
    "ModelUsage",
    "ModelUsagePoint",
    "NsfwUsage",
    "OneShotCreativeUnits",
    "PlanLimits",
    "PlanValues",
    "Project",
    "ProjectsPage",
    "QualityGateUsage",
    "Team",
    "TeamKey",
    "TeamLimits",
    "TeamProject",
    "TeamUser",
    "TimeRange",
    "Usage",
    "UsagePoint",
    "UsageType",
    "UsagesResponse",
    "UserTotals",
    "activity_cu_per_job",
    "activity_cu_per_model",
    "activity_cu_per_user",
    "activity_key",
    "cu_per_model",
    "cu_series",
    "parse_job",
    "parse_model",
    "parse_projects_page",
    "parse_team",
    "parse_team_limits",
    "parse_usages",
    "spend_of",
    "total_cu",
    "totals_per_user",
]

# ---------------------------------------------------------------------------------------
# Request-side enums


class TimeRange(StrEnum):
    """``timeRange`` values of GET /usages."""

    LAST_HOUR = "last-hour"
    LAST_DAY = "last-day"
    LAST_THREE_DAYS = "last-three-days"
    LAST_SEVEN_DAYS = "last-seven-days"
    LAST_THIRTY_ONE_DAYS = "last-thirty-one-days"

    @property
    def duration(self) -> timedelta:
        return _TIME_RANGE_DURATIONS[self]


_TIME_RANGE_DURATIONS = {
    TimeRange.LAST_HOUR: timedelta(hours=1),
    TimeRange.LAST_DAY: timedelta(days=1),
    TimeRange.LAST_THREE_DAYS: timedelta(days=3),
    TimeRange.LAST_SEVEN_DAYS: timedelta(days=7),
    TimeRange.LAST_THIRTY_ONE_DAYS: timedelta(days=31),
}


class UsageType(StrEnum):
    """``type`` values of GET /usages (which sections of the response to compute)."""

    USAGES = "usages"
    ACTIVITY = "activity"
    CONSUMPTION = "consumption"
    MODEL_USAGES = "model-usages"
    ASSET_USAGES = "asset-usages"
    NSFW_USAGES = "nsfw-usages"
    QUALITY_GATE_USAGES = "quality-gate-usages"


# The server pages activity by this many entries, newest first, with no "has more" flag.
ACTIVITY_PAGE_SIZE = 100
CU_SERIES_NAME = "creative-unit-cost"

# Known values at SDK 2.4.0, for documentation and tests; the models keep any string.
KNOWN_GRANULARITIES = ("1m", "5m", "15m", "30m", "1h", "1d", "7d")
KNOWN_ASSET_KINDS = ("3d", "audio", "document", "image", "image-hdr", "json", "text", "video")
KNOWN_JOB_STATUSES = (
    "canceled",
    "failure",
    "finalizing",
    "in-progress",
    "pending",
    "queued",
    "success",
    "warming-up",
)
KNOWN_QUALITY_GATE_VERDICTS = ("total", "pass", "warn", "fail")


class MalformedPayload(ValueError):
    """The body is not the JSON object an endpoint answers with (the only parse error)."""


# ---------------------------------------------------------------------------------------
# Lenient field types

_PROBLEMS_KEY = "scenario_problems"


def _note(info: ValidationInfo, what: str) -> None:
    """Record a skipped value in the parse context, so parse_* can log once per body."""
    context = info.context
    if isinstance(context, dict):
        problems = context.get(_PROBLEMS_KEY)
        if isinstance(problems, list):
            problems.append(f"{info.config.get('title', '?') if info.config else '?'}.{what}")


def _to_float(value: Any) -> Any:
    """Numbers and numeric strings to a finite float; anything else is an error."""
    kind = type(value)  # exact-type checks first: this runs for every number of a body
    if kind is float:
        number = value
    elif kind is int and value == 0:
        return 0.0  # one shared object for the most common number of all
    elif kind is bool:
        raise ValueError("a boolean is not a number")
    elif kind is int or isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError as exc:
            raise ValueError("number out of range") from exc
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError as exc:
            raise ValueError("not a number") from exc
    else:
        raise ValueError("not a number")
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _to_str(value: Any) -> Any:
    """Strings stay; numbers become their text (an ID sent as a number is still an ID)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError("not a string")


def _to_utc(value: Any) -> Any:
    """ISO 8601 text (or a datetime) to a tz-aware UTC datetime; naive means UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError("not an ISO 8601 time") from exc
    else:
        raise ValueError("not an ISO 8601 time")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError("time out of range") from exc


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("not a boolean")


def _default_on_error(value: Any, handler: Any, info: ValidationInfo) -> Any:
    """Use the field's default instead of failing the row (null counts as absent)."""
    if value is None:
        raise PydanticUseDefault()
    try:
        return handler(value)
    except ValidationError:
        _note(info, info.field_name or "?")
        raise PydanticUseDefault() from None


def _drop_bad_items(value: Any, handler: Any, info: ValidationInfo) -> Any:
    """Validate a list item by item, dropping the rows that cannot be read."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        _note(info, f"{info.field_name} (not a list)")
        return []
    kept: list[Any] = []
    for item in value:
        try:
            kept.extend(handler([item]))
        except ValidationError:
            _note(info, f"{info.field_name}[]")
    return kept


_T = TypeVar("_T")

# Required: a bad value fails the row (which the enclosing list then drops).
ReqFloat = Annotated[float, BeforeValidator(_to_float)]
ReqStr = Annotated[str, BeforeValidator(_to_str)]
ReqTime = Annotated[datetime, BeforeValidator(_to_utc)]
# Optional: a bad value becomes the default.
Float = Annotated[float, BeforeValidator(_to_float), WrapValidator(_default_on_error)]
OptFloat = Annotated[float | None, BeforeValidator(_to_float), WrapValidator(_default_on_error)]
Str = Annotated[str, BeforeValidator(_to_str), WrapValidator(_default_on_error)]
OptStr = Annotated[str | None, BeforeValidator(_to_str), WrapValidator(_default_on_error)]
OptBool = Annotated[bool | None, BeforeValidator(_to_bool), WrapValidator(_default_on_error)]
OptTime = Annotated[datetime | None, BeforeValidator(_to_utc), WrapValidator(_default_on_error)]
StrList = Annotated[list[ReqStr], WrapValidator(_drop_bad_items)]
LenientList = Annotated[list[_T], WrapValidator(_drop_bad_items)]
# A nested object that is not an object (or is broken beyond repair) becomes the default.
Tolerant = WrapValidator(_default_on_error)


def _float_map(value: Any) -> Any:
    """``{"quality-gate": 12, "x": "oops"}`` → ``{"quality-gate": 12.0}``."""
    if not isinstance(value, Mapping):
        raise ValueError("not an object")
    result: dict[str, float] = {}
    for key, item in value.items():
        try:
            result[str(key)] = _to_float(item)
        except ValueError:
            continue
    return result


FloatMap = Annotated[dict[str, float], BeforeValidator(_float_map), Tolerant]


class _Lenient(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        protected_namespaces=(),
        frozen=True,
    )


# ---------------------------------------------------------------------------------------
# GET /usages


class Consumption(_Lenient):
    """CU per user over the range. ``total = value + discount``; spend is ``value``."""

    user_id: Str = ""
    value: ReqFloat
    discount: Float = 0.0
    total: Float = 0.0
    cost_details: FloatMap = Field(default_factory=dict)


# The series points are most of a large body (tens of thousands of them in a 6 MB one), so
# they are not pydantic models but NamedTuples (small, immutable, fast to build), read by
# `_read_points` with the same tolerant rules as the models: camelCase or snake_case keys,
# unknown keys ignored, numbers as strings parsed, a bad optional number falls back to its
# default, a point without a usable time (or ``value``) is dropped. A regular series (the
# usual case) is read column by column with C-level `map` calls; any other one row by row.
# Times are parsed once per distinct string per response (every series repeats them).


class UsagePoint(NamedTuple):
    """A point of a ``usages`` series; ``value`` and ``apiKey`` arrive as strings."""

    time: datetime
    value: float
    api_key: float = 0.0
    cost: float | None = None
    discount: float | None = None
    api_key_cost: float | None = None
    api_key_discount: float | None = None


class ModelUsagePoint(NamedTuple):
    time: datetime
    jobs: float = 0.0
    cost: float = 0.0
    discount: float = 0.0
    api_key_cost: float = 0.0
    api_key_discount: float = 0.0


class CountPoint(NamedTuple):
    """A point of the asset, NSFW and quality-gate count series."""

    time: datetime
    count: float = 0.0
    count_api_key: float = 0.0


_MISSING: Any = object()
_TIMES_KEY = "scenario_times"
_PLAIN_NUMBER_TYPES = frozenset({int, float, str})
_DICT_TYPE = frozenset({dict})
_STR_TYPE = frozenset({str})
_NONE_TYPE = frozenset({type(None)})


class _Times:
    """The times of one response, each distinct string parsed once (series share them)."""

    __slots__ = ("_last", "_last_raw", "_parsed")

    def __init__(self) -> None:
        self._parsed: dict[str, datetime] = {}
        self._last_raw: list[str] = []
        self._last: list[datetime] = []

    def one(self, raw: Any) -> datetime:
        """`_to_utc`, cached for strings."""
        if type(raw) is not str:
            return _to_utc(raw)
        moment = self._parsed.get(raw)
        if moment is None:
            moment = self._parsed[raw] = _to_utc(raw)
        return moment

    def column(self, raws: list[str]) -> list[datetime]:
        """`_to_utc` of each string; the series of a response mostly share one column."""
        if raws != self._last_raw:
            parsed = self._parsed
            for raw in set(raws).difference(parsed):
                parsed[raw] = _to_utc(raw)
            self._last_raw, self._last = raws, list(map(parsed.__getitem__, raws))
        return self._last


@dataclass(frozen=True, slots=True)
class _Points:
    """Pydantic marker for a ``points`` list: validates it with `_read_points`, dumps dicts.

    ``where`` names the list in the warning (``Usage.points[] ×3``), as the models do.
    """

    cls: type[tuple[Any, ...]]
    where: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        names: tuple[str, ...] = self.cls._fields  # type: ignore[attr-defined]
        defaults: dict[str, Any] = self.cls._field_defaults  # type: ignore[attr-defined]
        assert names[0] == "time" and "time" not in defaults and len(names) > 2
        # (attribute, wire name, required, default) of each number after `time`.
        fields = tuple((n, to_camel(n), n not in defaults, defaults.get(n)) for n in names[1:])

        def validate(value: Any, info: ValidationInfo) -> list[Any]:
            return _read_points(self.cls, fields, self.where, value, info)

        number = core_schema.union_schema([core_schema.float_schema(), core_schema.str_schema()])
        wire_point = core_schema.typed_dict_schema(
            {"time": core_schema.typed_dict_field(core_schema.datetime_schema())}
            | {
                alias: core_schema.typed_dict_field(number, required=req)
                for _, alias, req, _ in fields
            }
        )
        return core_schema.with_info_plain_validator_function(
            validate,
            json_schema_input_schema=core_schema.list_schema(wire_point),  # for documentation
            serialization=core_schema.plain_serializer_function_ser_schema(
                _dump_points,
                info_arg=True,
                return_schema=core_schema.list_schema(
                    core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema())
                ),
            ),
        )


def _read_points(
    cls: type[tuple[Any, ...]],
    fields: tuple[tuple[str, str, bool, Any], ...],
    where: str,
    value: Any,
    info: ValidationInfo,
) -> list[Any]:
    """``points`` of a series, by the models' tolerant rules (see above)."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        _note(info, f"{info.field_name} (not a list)")
        return []
    context = info.context if isinstance(info.context, dict) else {}
    times = context.get(_TIMES_KEY)
    if not isinstance(times, _Times):
        times = context[_TIMES_KEY] = _Times()
    fast = _read_regular_points(cls, fields, value, times)
    if fast is not None:
        return fast
    problems = context.get(_PROBLEMS_KEY)
    if not isinstance(problems, list):
        problems = []
    kept: list[Any] = []
    for item in value:
        point = _read_point(cls, fields, item, times, problems)
        if point is None:
            problems.append(f"{where}[]")
        else:
            kept.append(point)
    return kept


def _read_regular_points(
    cls: type[tuple[Any, ...]],
    fields: tuple[tuple[str, str, bool, Any], ...],
    items: list[Any] | tuple[Any, ...],
    times: _Times,
) -> list[Any] | None:
    """The fast path: the whole series column by column, or None if any row is irregular.

    Regular means: every row is a dict with a readable ``time`` string, and each number
    is, in every row, an int, a float or a numeric string under its wire name, all finite,
    or (an optional one) absent or null in every row under both of its names. Such a series
    reads the same row by row, without a problem to note; one C-level ``map`` per column
    instead of a Python loop per row makes it several times faster.
    """
    if not _DICT_TYPE.issuperset(map(type, items)):
        return None
    get = dict.get
    raw_times = list(map(get, items, repeat("time")))
    if not _STR_TYPE.issuperset(map(type, raw_times)):
        return None
    try:
        columns: list[Iterable[Any]] = [times.column(raw_times)]
        for name, alias, required, default in fields:
            raws = list(map(get, items, repeat(alias)))
            kinds = set(map(type, raws))
            if kinds <= _PLAIN_NUMBER_TYPES:
                if kinds == _STR_TYPE:  # numbers as strings repeat ("0"): parse each once
                    numbers = list(map({raw: float(raw) for raw in set(raws)}.__getitem__, raws))
                else:
                    numbers = list(map(float, raws))
                total = sum(numbers)  # finite only if every number is
                if total - total != 0.0:
                    return None
                columns.append(numbers)
            elif (
                kinds == _NONE_TYPE
                and not required
                and (name == alias or not any(map(dict.__contains__, items, repeat(name))))
            ):
                columns.append(repeat(default))
            else:
                return None
    except (ValueError, OverflowError):
        return None
    return list(map(tuple.__new__, repeat(cls), zip(*columns, strict=False)))


def _read_point(
    cls: type[tuple[Any, ...]],
    fields: tuple[tuple[str, str, bool, Any], ...],
    item: Any,
    times: _Times,
    problems: list[str],
) -> Any:
    """One point, field by field; None if it has no usable time or required number."""
    if isinstance(item, cls):
        return item
    if not isinstance(item, Mapping):
        return None
    ok = True
    try:
        moment: datetime | None = times.one(item.get("time"))
    except ValueError:
        ok, moment = False, None
    row: list[Any] = [moment]
    for name, alias, required, default in fields:
        raw = item.get(alias, _MISSING)
        if raw is _MISSING:
            raw = item.get(name)
        if raw is None:  # absent or null: the default (or, if required, no point)
            ok = ok and not required
            row.append(default)
            continue
        try:
            row.append(_to_float(raw))
        except ValueError:
            if required:
                ok = False
            else:
                problems.append(f"{cls.__name__}.{name}")
            row.append(default)
    return tuple.__new__(cls, row) if ok else None


def _dump_points(points: list[Any], info: SerializationInfo) -> list[dict[str, Any]]:
    """Points dump as the dicts they were as models (camelCase keys if ``by_alias``)."""
    if info.by_alias:
        return [{to_camel(k): v for k, v in point._asdict().items()} for point in points]
    return [point._asdict() for point in points]


class Usage(_Lenient):
    usage_name: Str = ""
    granularity: Str = ""
    points: Annotated[list[UsagePoint], _Points(UsagePoint, "Usage.points")] = Field(
        default_factory=list
    )


class ModelUsage(_Lenient):
    model_id: Str = ""
    points: Annotated[list[ModelUsagePoint], _Points(ModelUsagePoint, "ModelUsage.points")] = Field(
        default_factory=list
    )


class AssetUsage(_Lenient):
    kind: Str = ""
    points: Annotated[list[CountPoint], _Points(CountPoint, "AssetUsage.points")] = Field(
        default_factory=list
    )


class NsfwUsage(_Lenient):
    label: Str = ""
    points: Annotated[list[CountPoint], _Points(CountPoint, "NsfwUsage.points")] = Field(
        default_factory=list
    )


class QualityGateUsage(_Lenient):
    verdict: Str = ""
    points: Annotated[list[CountPoint], _Points(CountPoint, "QualityGateUsage.points")] = Field(
        default_factory=list
    )


class ByokProvider(_Lenient):
    id: Str = ""
    display_name: Str = ""


class ActivityData(_Lenient):
    asset_id: OptStr = None
    job_id: OptStr = None
    model_id: OptStr = None
    collection_id: OptStr = None
    is_api_key: OptBool = None
    byok_provider: Annotated[ByokProvider | None, Tolerant] = None


class Activity(_Lenient):
    """One action of the activity log (pages of 100, newest first)."""

    action: Str = ""
    time: ReqTime
    user_id: Str = ""
    project_id: Str = ""
    data: Annotated[ActivityData, Tolerant] = Field(default_factory=ActivityData)
    creative_units_cost: OptFloat = None


class EntityModel(_Lenient):
    id: ReqStr
    name: Str = ""
    short_description: OptStr = None


class EntityUser(_Lenient):
    id: ReqStr
    is_api_key: Annotated[bool, BeforeValidator(_to_bool), Tolerant] = False
    api_key_id: OptStr = None
    api_key_status: OptStr = None
    email: OptStr = None
    full_name: OptStr = None


class JobMetadata(_Lenient):
    asset_ids: StrList = Field(default_factory=list)
    error: OptStr = None
    workflow_id: OptStr = None
    workflow_job_id: OptStr = None


class EntityJob(_Lenient):
    id: ReqStr
    job_type: Str = ""
    status: Str = ""
    metadata: Annotated[JobMetadata, Tolerant] = Field(default_factory=JobMetadata)


class EntityAssetMetadata(_Lenient):
    type: Str = ""


class EntityAsset(_Lenient):
    id: ReqStr
    kind: Str = ""
    source: Str = ""
    metadata: Annotated[EntityAssetMetadata, Tolerant] = Field(default_factory=EntityAssetMetadata)


class EntityCollection(_Lenient):
    id: ReqStr
    name: Str = ""


class Entities(_Lenient):
    """Name lookups shipped with a /usages response (no projects: see GET /projects)."""

    models: LenientList[EntityModel] = Field(default_factory=list)
    users: LenientList[EntityUser] = Field(default_factory=list)
    jobs: LenientList[EntityJob] = Field(default_factory=list)
    assets: LenientList[EntityAsset] = Field(default_factory=list)
    collections: LenientList[EntityCollection] = Field(default_factory=list)

    def model(self, model_id: str) -> EntityModel | None:
        return next((m for m in self.models if m.id == model_id), None)

    def user(self, user_id: str) -> EntityUser | None:
        return next((u for u in self.users if u.id == user_id), None)

    def job(self, job_id: str) -> EntityJob | None:
        return next((j for j in self.jobs if j.id == job_id), None)

    def asset(self, asset_id: str) -> EntityAsset | None:
        return next((a for a in self.assets if a.id == asset_id), None)


class UsagesResponse(_Lenient):
    """The whole GET /usages answer; every section is optional on the wire.

    ``activity_truncated`` is not a wire field: the client sets it when it stopped paging
    activity at its page cap while the last page was still full.
    """

    consumption: LenientList[Consumption] = Field(default_factory=list)
    usages: LenientList[Usage] = Field(default_factory=list)
    model_usages: LenientList[ModelUsage] = Field(default_factory=list)
    asset_usages: LenientList[AssetUsage] = Field(default_factory=list)
    nsfw_usages: LenientList[NsfwUsage] = Field(default_factory=list)
    quality_gate_usages: LenientList[QualityGateUsage] = Field(default_factory=list)
    activity: LenientList[Activity] = Field(default_factory=list)
    entities: Annotated[Entities, Tolerant] = Field(default_factory=Entities)
    activity_truncated: bool = Field(default=False, exclude=True)


# ---------------------------------------------------------------------------------------
# GET /projects, /teams/{id}, /teams/{id}/limits, /models/{id}, /jobs/{id}


class Project(_Lenient):
    id: ReqStr
    name: Str = ""
    team_id: OptStr = None
    consumption: OptFloat = None
    max_consumption: OptFloat = None


class ProjectsPage(_Lenient):
    projects: LenientList[Project] = Field(default_factory=list)
    next_pagination_token: OptStr = None


class TeamProject(_Lenient):
    id: ReqStr
    name: Str = ""


class TeamUser(_Lenient):
    id: ReqStr
    email: OptStr = None
    role: Str = ""
    consumption: OptFloat = None
    max_consumption: OptFloat = None


class TeamKey(_Lenient):
    id: ReqStr
    api_key_id: OptStr = None
    name: Str = ""
    scope: Str = ""
    owner_id: OptStr = None  # a project key's project (the team ID on some legacy keys)
    api_key_status: Str = ""
    consumption: OptFloat = None
    max_consumption: OptFloat = None


class Team(_Lenient):
    id: Str = ""
    name: Str = ""
    plan: Str = ""
    projects: LenientList[TeamProject] = Field(default_factory=list)
    users: LenientList[TeamUser] = Field(default_factory=list)
    keys: LenientList[TeamKey] = Field(default_factory=list)
    default_user_max_consumption: OptFloat = None


class BillingPeriod(_Lenient):
    start: OptTime = None
    end: OptTime = None


class PlanLimits(_Lenient):
    """The plan allowance; only the fields the bot uses (the wire has many more)."""

    creative_units: OptFloat = None
    seats: OptFloat = None
    api_keys: OptFloat = None
    projects: OptFloat = None


class PlanValues(_Lenient):
    """Current use of the limits in the billing period."""

    creative_units: OptFloat = None
    seats: OptFloat = None
    api_keys: OptFloat = None
    projects: OptFloat = None


class OneShotCreativeUnits(_Lenient):
    amount: Float = 0.0
    remaining: Float = 0.0
    expiration: OptTime = None
    created_at: OptTime = None


class TeamLimits(_Lenient):
    """GET /teams/{id}/limits: the plan, the **billing period** and the CU allowance."""

    plan: Str = ""
    period: Annotated[BillingPeriod, Tolerant] = Field(default_factory=BillingPeriod)
    limits: Annotated[PlanLimits, Tolerant] = Field(default_factory=PlanLimits)
    values: Annotated[PlanValues, Tolerant] = Field(default_factory=PlanValues)
    one_shot_creative_units: LenientList[OneShotCreativeUnits] = Field(default_factory=list)


class Model(_Lenient):
    id: Str = ""
    name: OptStr = None
    short_description: OptStr = None
    type: OptStr = None
    status: OptStr = None
    privacy: OptStr = None


class JobBilling(_Lenient):
    cu_cost: Float = 0.0
    cu_discount: Float = 0.0
    cu_cost_details: FloatMap = Field(default_factory=dict)

    @property
    def total_cu(self) -> float:
        """The SDK: "cuCost is the main action alone, so the job's total is cuCost plus
        the values [of cuCostDetails]" (add-ons such as quality-gate)."""
        return self.cu_cost + sum(self.cu_cost_details.values())


class Job(_Lenient):
    job_id: Str = ""
    job_type: Str = ""
    status: Str = ""
    progress: OptFloat = None
    author_id: OptStr = None
    owner_id: OptStr = None
    created_at: OptTime = None
    updated_at: OptTime = None
    metadata: Annotated[JobMetadata, Tolerant] = Field(default_factory=JobMetadata)
    billing: Annotated[JobBilling | None, Tolerant] = None


# ---------------------------------------------------------------------------------------
# Parsing entry points

_M = TypeVar("_M", bound=BaseModel)


def _validate(model: type[_M], data: object, what: str) -> _M:
    if not isinstance(data, Mapping):
        raise MalformedPayload(f"{what}: expected a JSON object, got {type(data).__name__}")
    problems: list[str] = []
    try:
        context = {_PROBLEMS_KEY: problems, _TIMES_KEY: _Times()}
        parsed = model.model_validate(data, context=context)
    except ValidationError as exc:
        # Unreachable by design (every field is lenient); kept so a slip is still typed.
        raise MalformedPayload(f"{what}: {exc.error_count()} unreadable field(s)") from None
    if problems:
        counts: dict[str, int] = defaultdict(int)
        for problem in problems:
            counts[problem] += 1
        summary = ", ".join(f"{name} ×{n}" for name, n in sorted(counts.items()))
        log.warning("Scenario %s: ignored %d unreadable value(s): %s", what, len(problems), summary)
    return parsed


def _unwrap(data: object, key: str, what: str) -> object:
    if not isinstance(data, Mapping) or not isinstance(data.get(key), Mapping):
        raise MalformedPayload(f"{what}: expected an object with a {key!r} object")
    return data[key]


def parse_usages(data: object) -> UsagesResponse:
    return _validate(UsagesResponse, data, "GET /usages")


def parse_projects_page(data: object) -> ProjectsPage:
    return _validate(ProjectsPage, data, "GET /projects")


def parse_team(data: object) -> Team:
    return _validate(Team, _unwrap(data, "team", "GET /teams/{id}"), "GET /teams/{id}")


def parse_team_limits(data: object) -> TeamLimits:
    return _validate(TeamLimits, data, "GET /teams/{id}/limits")


def parse_model(data: object) -> Model:
    return _validate(Model, _unwrap(data, "model", "GET /models/{id}"), "GET /models/{id}")


def parse_job(data: object) -> Job:
    return _validate(Job, _unwrap(data, "job", "GET /jobs/{id}"), "GET /jobs/{id}")


# ---------------------------------------------------------------------------------------
# Pure helpers on a parsed /usages response


def spend_of(row: Consumption) -> float:
    """The CU a consumption row counts as spent: its ``value``.

    The SDK documents ``value`` as "the Compute Units consumption for the user",
    ``discount`` as "the Compute Units discount" and ``total`` as "value + discount", and
    says per-action add-on fees (``costDetails``) "are included in ``value``". ``value``
    is therefore what was actually drawn from the team's CU allowance, after discounts;
    ``total`` is the undiscounted figure. Budgets measure what the team is billed, so
    spend is ``value`` — consistent with ``modelUsages[].points[].cost`` and the
    ``creative-unit-cost`` series, which carry their discounts separately too.
    """
    return row.value


def total_cu(response: UsagesResponse) -> float:
    """CU spent in the range by everyone in the response (sum of ``spend_of``)."""
    return math.fsum(spend_of(row) for row in response.consumption)


@dataclass(frozen=True, slots=True)
class UserTotals:
    value: float
    discount: float
    total: float

    @property
    def spend(self) -> float:
        return self.value


def totals_per_user(response: UsagesResponse) -> dict[str, UserTotals]:
    """Consumption per user ID (rows for the same user are added up)."""
    sums: dict[str, list[float]] = {}
    for row in response.consumption:
        acc = sums.setdefault(row.user_id, [0.0, 0.0, 0.0])
        acc[0] += row.value
        acc[1] += row.discount
        acc[2] += row.total
    return {user: UserTotals(*acc) for user, acc in sums.items()}


def cu_per_model(response: UsagesResponse) -> dict[str, float]:
    """CU per model ID: the sum of ``cost`` over each model's points."""
    result: dict[str, float] = defaultdict(float)
    for usage in response.model_usages:
        result[usage.model_id] += math.fsum(point.cost for point in usage.points)
    return dict(result)


_GRANULARITIES = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
}


def granularity_of(response: UsagesResponse) -> timedelta:
    """The length of the answer's time-series points (the server chooses it from the range
    read); an hour when the answer does not say."""
    for usage in response.usages:
        if usage.granularity in _GRANULARITIES:
            return _GRANULARITIES[usage.granularity]
    return timedelta(hours=1)


def cu_series(
    response: UsagesResponse, usage_name: str = CU_SERIES_NAME
) -> list[tuple[datetime, float]]:
    """The CU time series as (time, value) pairs in time order, at the server's granularity.

    Points sharing a time (should a series appear twice) are added up.
    """
    by_time: dict[datetime, float] = defaultdict(float)
    for usage in response.usages:
        if usage.usage_name == usage_name:
            for point in usage.points:
                by_time[point.time] += point.value
    return sorted(by_time.items())


def _activity_cu_by(
    activities: Iterable[Activity], key: Callable[[Activity], str | None]
) -> dict[str, float]:
    result: dict[str, float] = defaultdict(float)
    for entry in activities:
        name = key(entry)
        if name and entry.creative_units_cost:
            result[name] += entry.creative_units_cost
    return dict(result)


def activity_cu_per_job(response: UsagesResponse) -> dict[str, float]:
    """CU per job ID from the activity entries that carry a cost and a job."""
    return _activity_cu_by(response.activity, lambda entry: entry.data.job_id)


def activity_cu_per_user(response: UsagesResponse) -> dict[str, float]:
    return _activity_cu_by(response.activity, lambda entry: entry.user_id)


def activity_cu_per_model(response: UsagesResponse) -> dict[str, float]:
    return _activity_cu_by(response.activity, lambda entry: entry.data.model_id)


def activity_key(entry: Activity) -> tuple[object, ...]:
    """Identity of an activity entry, to spot the same entry on two pages.

    The API gives entries no ID; when new activity arrives while paging, the tail of one
    page reappears at the head of the next. Two entries with the same action, time, user,
    project, job, asset, model, collection and cost are taken to be the same entry.
    """
    data = entry.data
    return (
        entry.action,
        entry.time,
        entry.user_id,
        entry.project_id,
        data.job_id,
        data.asset_id,
        data.model_id,
        data.collection_id,
        entry.creative_units_cost,
    )
