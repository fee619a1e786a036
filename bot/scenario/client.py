"""Async client of the Scenario API: GET /usages (with activity paging), projects, team,
limits, models and jobs.

It sends exactly what the official SDK (scenario-sdk 2.4.0) sends for the same arguments
(see tests/scenario/test_sdk_query_compat.py) and retries like it: connection errors,
timeouts, 408, 409, 429 and 5xx, ``max_retries`` times, after ``min(0.5·2^n, 8) s`` minus
up to 25 % jitter, or after the server's ``retry-after-ms`` / ``retry-after`` when that
asks for 0–60 s. Failures surface as the typed errors of :mod:`bot.scenario.errors`.
Sleeping, the clock and the jitter source are injected so tests never wait.

Why not the SDK itself: a transport on ``scenario_sdk.AsyncScenario`` (raw responses,
the SDK's retry loop with these hooks; commit "Scenario transport on
scenario_sdk.AsyncScenario") behaved the same but cost +37 % bot CPU per request on
bench/check_cycle.py (3.22 → 4.40 ms), mostly its per-request option models, parameter
transform and ten extra headers — over issue 9's 10 % budget.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import logging
import random as _random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from bot.config import Settings
from bot.scenario.errors import (
    MAX_RANGE_DAYS,
    BadCredentials,
    BadRequest,
    Forbidden,
    NotFound,
    RangeTooLong,
    RateLimited,
    ScenarioError,
    Unavailable,
)
from bot.scenario.models import (
    ACTIVITY_PAGE_SIZE,
    Activity,
    Entities,
    Job,
    MalformedPayload,
    Model,
    Project,
    Team,
    TeamLimits,
    TimeRange,
    UsagesResponse,
    UsageType,
    activity_key,
    parse_job,
    parse_model,
    parse_projects_page,
    parse_team,
    parse_team_limits,
    parse_usages,
)

__all__ = ["ScenarioClient", "format_iso"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# SDK defaults (scenario_sdk/_constants.py).
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
# One process polls one team: a handful of connections is plenty.
# One client serves every command of a workspace and its check cycle at once: with 10
# connections, 50 concurrent /usage commands (5 reads each) queued for 50 s.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
# Enough for 10,000 projects; guards against a server that never stops handing out tokens.
MAX_PROJECT_PAGES = 100
PROJECTS_PAGE_SIZE = 100

_RETRY_STATUSES = frozenset({408, 409, 429})
_NEVER_RETRY_STATUSES = frozenset({400, 401, 403, 404})
_SERVER_MESSAGE_KEYS = ("message", "reason", "error", "details")
_SERVER_MESSAGE_MAX = 300


def format_iso(moment: datetime) -> str:
    """A tz-aware datetime as Scenario's own time format: UTC, milliseconds, ``Z``.

    ``2024-03-01T12:00:00.000Z`` — what JavaScript's ``toISOString`` (and so the API's
    responses) produce; sub-millisecond digits are dropped.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes sent to Scenario must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _segment(value: str) -> str:
    """One URL path segment; dot segments would let an ID climb the path (as in the SDK)."""
    if not value or value.strip(".") == "" or value.strip() != value:
        raise ValueError(f"not a usable Scenario ID: {value!r}")
    return quote(value, safe="")


def _join_ids(ids: Iterable[str]) -> str:
    return ",".join(str(i).strip() for i in ids if str(i).strip())


def _normalise_types(types: Iterable[UsageType | str] | None) -> list[str] | None:
    """None or empty means "every section" (the server's default): send no ``type``."""
    if types is None:
        return None
    # Unknown names are passed through: the server answers them with every section.
    values = [str(t) for t in types]
    return values or None


class ScenarioClient:
    """One shared ``httpx.AsyncClient`` with Basic auth ``key:secret``.

    Use ``async with ScenarioClient(...) as client`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        api_secret: str | SecretStr,
        team_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_retries: int = 2,
        activity_page_cap: int = 20,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        secret = api_secret.get_secret_value() if isinstance(api_secret, SecretStr) else api_secret
        if not api_key or not secret:
            raise ValueError("a Scenario API key and secret are required")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if activity_page_cap < 1:
            raise ValueError("activity_page_cap must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.team_id = team_id or None
        # Which credentials these are, without keeping them: when no team ID is given, this
        # is how the watch tells one Scenario team's history from another's.
        self.key_fingerprint = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self.max_retries = max_retries
        self.activity_page_cap = activity_page_cap
        self._sleep = sleep
        self._random = random
        self._clock = clock
        # Total time for one attempt; httpx's own timeouts are per read/write/connect.
        self._attempt_deadline = timeout.read or DEFAULT_TIMEOUT.read or 60.0
        token = base64.b64encode(f"{api_key}:{secret}".encode()).decode()
        # Anything the server echoes back is scrubbed of these before it reaches a message.
        self._redactions = tuple(
            sorted({secret, f"{api_key}:{secret}", token}, key=len, reverse=True)
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=httpx.BasicAuth(api_key, secret),
            timeout=timeout,
            limits=DEFAULT_LIMITS,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "scenario-budget-bot"},
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ScenarioClient:
        """Build from :class:`bot.config.Settings`; ``kwargs`` override (tests, simulator)."""
        settings.require_scenario_credentials()
        options: dict[str, Any] = {
            "base_url": settings.scenario_base,
            "api_key": settings.scenario_sdk_api_key,
            "api_secret": settings.scenario_sdk_api_secret,
            "team_id": settings.scenario_team_id,
        }
        options.update(kwargs)
        return cls(**options)

    def __repr__(self) -> str:
        return f"ScenarioClient(base_url={self.base_url!r}, team_id={self.team_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -----------------------------------------------------------------------------------
    # GET /usages

    def _usages_params(
        self,
        *,
        time_range: TimeRange | str | None,
        start: datetime | None,
        end: datetime | None,
        project_ids: Iterable[str],
        user_ids: Iterable[str],
        user_id: str | None,
        team_id: str | None,
        types: Iterable[UsageType | str] | None,
        activity_offset: int | None,
        drop_zero_points: bool,
    ) -> list[tuple[str, str]]:
        """The query, in the SDK's key order so the strings compare equal byte for byte."""
        if (start is None) != (end is None):
            raise ValueError("start and end go together: give both or neither")
        if start is not None and end is not None:
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("start and end must be timezone-aware")
            if end <= start:
                raise ValueError("end must be after start")
            if end - start > timedelta(days=MAX_RANGE_DAYS):
                raise RangeTooLong((end - start) / timedelta(days=1))
        if activity_offset is not None and (
            isinstance(activity_offset, bool)
            or not isinstance(activity_offset, int)
            or activity_offset < 0
        ):
            raise ValueError("activity_offset must be a non-negative integer")
        if time_range is not None:
            time_range = TimeRange(time_range)
        team = team_id if team_id is not None else self.team_id
        type_values = _normalise_types(types)

        params: list[tuple[str, str]] = []
        if activity_offset is not None:
            params.append(("activityOffset", str(activity_offset)))
        if drop_zero_points:
            params.append(("dropZeroPoints", "true"))
        if end is not None:
            params.append(("endDate", format_iso(end)))
        if projects := _join_ids(project_ids):
            params.append(("projectIds", projects))
        if start is not None:
            params.append(("startDate", format_iso(start)))
        if team:
            params.append(("teamId", team))
        if time_range is not None:
            params.append(("timeRange", time_range.value))
        if type_values:
            params.append(("type", ",".join(type_values)))
        if user_id:
            params.append(("userId", user_id))
        if users := _join_ids(user_ids):
            params.append(("userIds", users))
        return params

    async def usages(
        self,
        *,
        time_range: TimeRange | str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        project_ids: Iterable[str] = (),
        user_ids: Iterable[str] = (),
        user_id: str | None = None,
        team_id: str | None = None,
        types: Iterable[UsageType | str] | None = None,
        activity_offset: int | None = None,
        drop_zero_points: bool = False,
    ) -> UsagesResponse:
        """One GET /usages. ``start``/``end`` (tz-aware) go together, at most 120 days apart
        (else ``ValueError`` / ``RangeTooLong`` before any request); ``types`` None or
        empty asks for every section; ``team_id`` defaults to the client's."""
        params = self._usages_params(
            time_range=time_range,
            start=start,
            end=end,
            project_ids=project_ids,
            user_ids=user_ids,
            user_id=user_id,
            team_id=team_id,
            types=types,
            activity_offset=activity_offset,
            drop_zero_points=drop_zero_points,
        )
        body = await self._request("/usages", params, what="usage data")
        return self._parse(parse_usages, body)

    async def usages_with_all_activity(
        self,
        *,
        time_range: TimeRange | str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        project_ids: Iterable[str] = (),
        user_ids: Iterable[str] = (),
        user_id: str | None = None,
        team_id: str | None = None,
        types: Iterable[UsageType | str] | None = None,
        activity_offset: int | None = None,
        drop_zero_points: bool = False,
    ) -> UsagesResponse:
        """GET /usages, then every further activity page, merged into one response.

        Activity comes 100 entries a page, newest first, with no "has more" flag: while a
        page is full, the same request is repeated with ``type=activity`` and
        ``activityOffset`` 100 further, up to ``activity_page_cap`` pages in all (then
        ``activity_truncated`` is set). Entries that slid from one page to the next while
        paging are kept once; the result stays newest first. Entities of every page are
        merged (later pages name the jobs, models and assets of their own entries).
        """
        project_ids, user_ids = tuple(project_ids), tuple(user_ids)
        type_values = _normalise_types(types)
        common: dict[str, Any] = {
            "time_range": time_range,
            "start": start,
            "end": end,
            "project_ids": project_ids,
            "user_ids": user_ids,
            "user_id": user_id,
            "team_id": team_id,
            "drop_zero_points": drop_zero_points,
        }
        first = await self.usages(**common, types=type_values, activity_offset=activity_offset)
        if type_values is not None and UsageType.ACTIVITY.value not in type_values:
            return first
        pages = [first]
        offset = activity_offset or 0
        while len(pages[-1].activity) >= ACTIVITY_PAGE_SIZE and len(pages) < self.activity_page_cap:
            offset += ACTIVITY_PAGE_SIZE
            pages.append(
                await self.usages(**common, types=[UsageType.ACTIVITY], activity_offset=offset)
            )
        truncated = len(pages[-1].activity) >= ACTIVITY_PAGE_SIZE
        if truncated:
            log.warning(
                "Scenario activity: stopped after %d pages (%d entries); older entries skipped",
                len(pages),
                sum(len(p.activity) for p in pages),
            )
        if len(pages) == 1:
            return first.model_copy(update={"activity_truncated": truncated})
        return first.model_copy(
            update={
                "activity": _merge_activity(p.activity for p in pages),
                "entities": _merge_entities(p.entities for p in pages),
                "activity_truncated": truncated,
            }
        )

    # -----------------------------------------------------------------------------------
    # Names, plan period, models and jobs

    async def projects(self, *, team_id: str | None = None) -> list[Project]:
        """Every project of the team, following ``nextPaginationToken`` (100 a page)."""
        team = team_id if team_id is not None else self.team_id
        projects: dict[str, Project] = {}
        token: str | None = None
        seen_tokens: set[str] = set()
        for _ in range(MAX_PROJECT_PAGES):
            params = [("pageSize", str(PROJECTS_PAGE_SIZE))]
            if token:
                params.append(("paginationToken", token))
            if team:
                params.append(("teamId", team))
            page = self._parse(
                parse_projects_page, await self._request("/projects", params, what="projects")
            )
            for project in page.projects:
                projects.setdefault(project.id, project)
            token = page.next_pagination_token
            if not token or token in seen_tokens:
                break
            seen_tokens.add(token)
        return list(projects.values())

    async def team(self, team_id: str | None = None) -> Team:
        team = self._team_or_default(team_id)
        body = await self._request(f"/teams/{_segment(team)}", [], what=f"team {team!r}")
        return self._parse(parse_team, body)

    async def team_limits(self, team_id: str | None = None) -> TeamLimits:
        """The plan, the current billing period and the CU allowance."""
        team = self._team_or_default(team_id)
        body = await self._request(
            f"/teams/{_segment(team)}/limits", [], what=f"limits of team {team!r}"
        )
        return self._parse(parse_team_limits, body)

    async def model(self, model_id: str) -> Model:
        body = await self._request(f"/models/{_segment(model_id)}", [], what=f"model {model_id!r}")
        return self._parse(parse_model, body)

    async def job(self, job_id: str) -> Job:
        body = await self._request(f"/jobs/{_segment(job_id)}", [], what=f"job {job_id!r}")
        return self._parse(parse_job, body)

    def _team_or_default(self, team_id: str | None) -> str:
        team = team_id or self.team_id
        if not team:
            raise ValueError("no team ID given and SCENARIO_TEAM_ID is not set")
        return team

    # -----------------------------------------------------------------------------------
    # Transport, retries and errors

    def _parse(self, parse: Callable[[object], _T], body: object) -> _T:
        try:
            return parse(body)
        except MalformedPayload as exc:
            raise Unavailable(f"Scenario sent an unexpected response ({exc}).") from None

    async def delete_api_key(self, project_id: str, api_key_id: str) -> None:
        """Revoke a project's API key (`api_…`): DELETE /projects/{id}/api-keys/{key}, as
        the SDK's `projects.api_keys.delete`. A retry that finds it gone (an earlier attempt
        did it) is a success."""
        path = f"/projects/{_segment(project_id)}/api-keys/{_segment(api_key_id)}"
        attempts: list[int] = []
        try:
            await self._request(
                path, [], what=f"API key {api_key_id!r}", method="DELETE", tries=attempts
            )
        except NotFound:
            if len(attempts) <= 1:
                raise

    async def _request(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        *,
        what: str,
        method: str = "GET",
        tries: list[int] | None = None,
    ) -> object:
        """A request (GET unless told) with the SDK's retry policy; the decoded JSON body or
        a typed error. `tries` collects each attempt's number."""
        attempt = 0
        while True:
            response: httpx.Response | None = None
            if tries is not None:
                tries.append(attempt)
            try:
                async with asyncio.timeout(self._attempt_deadline):
                    response = await self._http.request(method, path, params=list(params))
            except (httpx.TimeoutException, TimeoutError):
                error: ScenarioError = Unavailable(
                    "Scenario did not answer in time; try again later."
                )
                retry = True
            except httpx.RequestError as exc:
                error = Unavailable(
                    f"Scenario could not be reached ({type(exc).__name__}); try again later."
                )
                retry = True
            else:
                if response.is_success:
                    # A DELETE may answer 204 with no body.
                    return self._json(response) if response.content else None
                error = self._error_for(response, what)
                retry = _should_retry(response)

            if not retry or attempt >= self.max_retries:
                raise error
            delay = self._retry_delay(attempt, response.headers if response else None)
            attempt += 1
            log.warning(
                "Scenario %s %s failed (%s%s); retry %d/%d in %.2f s",
                method,
                path,
                error.cause,
                f", HTTP {error.status}" if error.status else "",
                attempt,
                self.max_retries,
                delay,
            )
            await self._sleep(delay)

    def _json(self, response: httpx.Response) -> object:
        try:
            return response.json()
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise Unavailable(
                f"Scenario sent a response that is not JSON (HTTP {response.status_code}).",
                status=response.status_code,
            ) from None

    def _retry_delay(self, attempt: int, headers: httpx.Headers | None) -> float:
        """``_calculate_retry_timeout`` of the SDK: the server's wish when 0 < s ≤ 60,
        else ``min(0.5 · 2^attempt, 8)`` scaled by a jitter in (0.75, 1]."""
        retry_after = self._parse_retry_after(headers)
        if retry_after is not None and 0 < retry_after <= MAX_RETRY_AFTER:
            return retry_after
        backoff = min(INITIAL_RETRY_DELAY * pow(2.0, min(attempt, 1000)), MAX_RETRY_DELAY)
        jitter = 1 - 0.25 * self._random()
        return max(backoff * jitter, 0.0)

    def _parse_retry_after(self, headers: httpx.Headers | None) -> float | None:
        """Seconds from ``retry-after-ms``, else ``retry-after`` (seconds or HTTP date)."""
        if headers is None:
            return None
        try:
            return float(headers["retry-after-ms"]) / 1000
        except (KeyError, TypeError, ValueError):
            pass
        header = headers.get("retry-after")
        if header is None:
            return None
        try:
            return float(header)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - self._clock()).total_seconds()

    def _error_for(self, response: httpx.Response, what: str) -> ScenarioError:
        status = response.status_code
        server = self._server_message(response)
        if status == 401:
            return BadCredentials()
        if status == 403:
            return Forbidden(
                f"Scenario denied access to {what} (HTTP 403): the API key lacks permission"
                + (f" ({server})." if server else ".")
            )
        if status == 404:
            return NotFound(
                f"Scenario has no {what} (HTTP 404)" + (f": {server}." if server else ".")
            )
        if status == 429:
            retry_after = self._parse_retry_after(response.headers)
            return RateLimited(retry_after if retry_after and retry_after > 0 else None)
        if status in (408, 409) or status >= 500:
            return Unavailable(status=status)
        if 400 <= status < 500:
            return BadRequest(server, status=status)
        return Unavailable(f"Scenario answered with HTTP {status}.", status=status)

    def _server_message(self, response: httpx.Response) -> str | None:
        """The server's explanation, read defensively; scrubbed, one line, bounded."""
        try:
            body: object = response.json()
        except ValueError:
            text = response.text.strip()
            # An HTML error page from a gateway says nothing a Slack user can use.
            body = text if text and not text.startswith("<") else None
        message = _find_message(body)
        if not message:
            return None
        for secret in self._redactions:
            message = message.replace(secret, "[redacted]")
        message = " ".join(message.split())
        if len(message) > _SERVER_MESSAGE_MAX:
            message = message[: _SERVER_MESSAGE_MAX - 1] + "…"
        return message


def _should_retry(response: httpx.Response) -> bool:
    status = response.status_code
    if status in _NEVER_RETRY_STATUSES:
        return False
    # The SDK obeys this non-standard header, so Scenario may send it.
    hint = response.headers.get("x-should-retry")
    if hint == "true":
        return True
    if hint == "false":
        return False
    return status in _RETRY_STATUSES or status >= 500


def _find_message(body: object, depth: int = 0) -> str | None:
    if depth > 3 or body is None:
        return None
    if isinstance(body, str):
        return body or None
    if isinstance(body, list):
        parts = [m for m in (_find_message(item, depth + 1) for item in body[:5]) if m]
        return "; ".join(parts) or None
    if isinstance(body, dict):
        for key in _SERVER_MESSAGE_KEYS:
            found = _find_message(body.get(key), depth + 1)
            if found:
                return found
    return None


def _merge_activity(pages: Iterable[list[Activity]]) -> list[Activity]:
    seen: set[tuple[object, ...]] = set()
    merged: list[Activity] = []
    for page in pages:
        for entry in page:
            key = activity_key(entry)
            if key not in seen:
                seen.add(key)
                merged.append(entry)
    # Pages are newest first already; a stable sort only repairs a server that is not.
    merged.sort(key=lambda entry: entry.time, reverse=True)
    return merged


def _merge_entities(all_entities: Iterable[Entities]) -> Entities:
    merged: dict[str, dict[str, Any]] = {
        "models": {},
        "users": {},
        "jobs": {},
        "assets": {},
        "collections": {},
    }
    for entities in all_entities:
        for name, by_id in merged.items():
            for item in getattr(entities, name):
                by_id.setdefault(item.id, item)
    return Entities(**{name: list(by_id.values()) for name, by_id in merged.items()})
