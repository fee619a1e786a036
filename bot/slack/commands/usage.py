"""`/usage [project …] [user …] [model …] [RANGE] [public]` (SPEC §4).

The command is acknowledged at once; the report is gathered afterwards and sent through
`response_url`, ephemeral unless `public`:

- the range, cut at now, as explicit UTC `start`/`end` (the range before it, of the same
  length, is the comparison);
- filters resolved to IDs through the Scenario directory (project and model names by
  unique prefix, users by Slack mention → email, email, ID or API key name); a name that
  is ambiguous or unknown is answered with the candidates and nothing else;
- one `/usages` call for the range, one for the range before, and one per project (at most
  MAX_PROJECT_READS, PROJECT_READS_AT_ONCE at a time), all concurrently, with the names
  from the cached directory: one round trip to Scenario. (One wider read cannot stand in
  for the first two: its per-user totals cover the whole read and its points are cut at
  buckets the server chooses, a day for a week, which the boundary between the ranges
  does not fall on.) The API cannot filter by model, so a model filter measures the
  model's own cost series and counts its users from the activity log.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.budgets.culprits import Names
from bot.budgets.periods import day_start, local_day_range, this_month, this_week
from bot.budgets.spend import scope_series, scope_spend, types_needed
from bot.budgets.types import TEAM, Scope, ScopeKind
from bot.commands.requests import (
    DateRange,
    GrammarError,
    RangePreset,
    ScopeRef,
    UsageRange,
    UsageRequest,
)
from bot.commands.usage import parse_usage
from bot.config import ConfigError
from bot.messages.connect import NOT_CONNECTED
from bot.messages.mrkdwn import Json, escape
from bot.messages.usage import Filter, UsageView, range_label, usage_message
from bot.reports.reads import MAX_PROJECT_READS, spend_per_project
from bot.scenario.errors import MAX_RANGE_DAYS, RangeTooLong, ScenarioError
from bot.scenario.links import api_keys_url, model_url
from bot.scenario.models import (
    UsagesResponse,
    UsageType,
    activity_cu_per_user,
    cu_per_model,
    totals_per_user,
)
from bot.scenario.names import Directory
from bot.slack.changes import Refusal, resolve_scope

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.deps import Deps
from bot.store.workspaces import NotConnected

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/usage")
    async def usage_command(ack: Any, command: Json, respond: Any, client: AsyncWebClient) -> None:
        request = parse_usage(command.get("text") or "")
        if isinstance(request, GrammarError):
            await ack(text=request.text, response_type="ephemeral")
            return
        await ack()
        message, shareable = await answer(deps, client, command["team_id"], request)
        public = request.public and shareable
        await respond(**message, response_type="in_channel" if public else "ephemeral")


async def answer(
    deps: Deps, slack: AsyncWebClient, team_id: str, request: UsageRequest
) -> tuple[Json, bool]:
    """The reply to a parsed `/usage`, and whether it is a report (only those go public)."""
    try:
        return await report(deps, slack, team_id, request), True
    except Refusal as refusal:
        return {"text": str(refusal)}, False
    except RangeTooLong as exc:
        return {"text": exc.message}, False
    except ScenarioError as exc:
        # The server's own words may be quoted in the message: data, escaped for mrkdwn.
        sorry = f"Sorry — I couldn't get the usage from Scenario. {escape(exc.message)}"
        return {"text": sorry}, False
    except NotConnected:
        return {"text": NOT_CONNECTED}, False
    except ConfigError as exc:
        return {"text": f"Sorry — Scenario isn't set up for this workspace: {exc}"}, False
    except Exception:
        log.exception("/usage failed")
        return {"text": "Sorry — something went wrong while gathering usage; try again."}, False


async def report(deps: Deps, slack: AsyncWebClient, team_id: str, request: UsageRequest) -> Json:
    """Resolve the filters, measure the range (and the one before), name everything."""
    tz = deps.timezone_of(team_id)
    start, end = span_of(request.range, deps.clock(), tz)
    if end <= start:
        return {"text": f"{range_label(request.range).capitalize()} hasn't begun yet."}
    client = await deps.scenario_for(team_id)
    # Filter kind → (resolved scope, its name); a user filter may resolve to an API key.
    filters: dict[ScopeKind, tuple[Scope, str]] = {}
    for ref in (request.project, request.user, request.model):
        if ref is not None:
            scope, name = await _resolve(deps, team_id, ref, slack)
            filters[ref.kind] = (scope, name or scope.ref or "")
    app_url = deps.settings.scenario_app

    ids = {kind: scope.ref or "" for kind, (scope, _) in filters.items()}
    project_ids = [ids[ScopeKind.PROJECT]] if ScopeKind.PROJECT in ids else []
    user_ids = [ids[ScopeKind.USER]] if ScopeKind.USER in ids else []
    model_id = ids.get(ScopeKind.MODEL)
    # What is measured: everyone's consumption, or (the API has no model filter) the
    # model's own cost series; project and user filters narrow every call.
    scope = Scope(ScopeKind.MODEL, model_id) if model_id else TEAM
    measured = types_needed([scope], forecast=False)
    narrowed: Json = {"project_ids": project_ids, "user_ids": user_ids}
    if not model_id:  # per user, per model, and the CU series for the trend
        types: tuple[UsageType, ...] = (
            UsageType.CONSUMPTION,
            UsageType.MODEL_USAGES,
            UsageType.USAGES,
        )
    elif user_ids:
        types = (UsageType.MODEL_USAGES,)
    else:  # the model's users, from the activity log
        types = (UsageType.MODEL_USAGES, UsageType.ACTIVITY)
    main = client.usages_with_all_activity(start=start, end=end, **narrowed, types=types)
    before = client.usages(start=start - (end - start), end=start, **narrowed, types=measured)

    async def by_project() -> tuple[Directory, dict[str, float], int]:
        """The names (cached), then each project's spend; how many projects were left out."""
        directory = await deps.directory.get(client)
        projects = [] if project_ids else [p.id for p in directory.projects]
        spends = await spend_per_project(
            client,
            projects[:MAX_PROJECT_READS],
            start=start,
            end=end,
            user_ids=user_ids,
            scope=scope,
        )
        return directory, spends, max(0, len(projects) - MAX_PROJECT_READS)

    # All at once: with the names cached, one round trip to Scenario in all.
    current, previous, (directory, project_cu, left_out) = await asyncio.gather(
        main, before, by_project()
    )

    names = Names(app_url, current.entities, directory)
    per_user: dict[str, float] = {}  # none when a user is the filter
    if UsageType.ACTIVITY in types:
        per_user = activity_cu_per_user(_only_model(current, model_id or ""))
    elif not user_ids:
        per_user = {user: totals.spend for user, totals in totals_per_user(current).items()}
    per_model = {} if model_id else cu_per_model(current)
    view = UsageView(
        range=request.range,
        start=start,
        end=end,
        tz=tz,
        total_cu=scope_spend(scope, current),
        previous_cu=scope_spend(scope, previous),
        projects=names.top(names.project, project_cu),
        users=names.top(names.user, per_user),
        models=names.top(names.model, per_model),
        series=tuple(value for _, value in scope_series(scope, current)),
        filters=tuple(_filter(scope, name, app_url) for scope, name in filters.values()),
        by_model=model_id is not None,
        users_partial=current.activity_truncated,
        projects_left_out=left_out,
    )
    return usage_message(view)


def span_of(wanted: UsageRange, now: datetime, tz: str) -> tuple[datetime, datetime]:
    """UTC `[start, end)` of a `/usage` range at `now`, cut at `now` (nothing is spent
    later). Calendar ranges and dates are local to `tz`; a date range includes its end."""
    if isinstance(wanted, DateRange):
        start, end = day_start(wanted.start, tz), day_start(wanted.end_exclusive, tz)
        # 120 local days across a DST fall-back are 120 days and an hour: the API's limit.
        start = max(start, end - timedelta(days=MAX_RANGE_DAYS))
    elif (length := wanted.rolling) is not None:
        return now - length, now
    elif wanted is RangePreset.TODAY:
        start, end = local_day_range(now, tz)
    elif wanted is RangePreset.YESTERDAY:
        start, end = local_day_range(now, tz, 1)
    elif wanted is RangePreset.THIS_WEEK:
        start, end = this_week(now, tz)
    else:
        start, end = this_month(now, tz)
    return start, min(end, now)


async def _resolve(
    deps: Deps, team_id: str, ref: ScopeRef, slack: AsyncWebClient
) -> tuple[Scope, str | None]:
    """A filter's Scenario ID; a user that is no member may be an API key (by ID or name)."""
    try:
        return await resolve_scope(deps, team_id, ref, slack)
    except Refusal as not_a_member:
        if ref.kind is not ScopeKind.USER or ref.slack_user_id or ref.is_email:
            raise
        try:
            return await resolve_scope(deps, team_id, ScopeRef(ScopeKind.KEY, ref.text), slack)
        except Refusal:
            raise not_a_member from None


def _only_model(response: UsagesResponse, model_id: str) -> UsagesResponse:
    entries = [e for e in response.activity if e.data.model_id == model_id]
    return response.model_copy(update={"activity": entries})


def _filter(scope: Scope, name: str, app_url: str) -> Filter:
    if scope.kind is ScopeKind.MODEL:
        return Filter("model", name, model_url(app_url, scope.ref or ""))
    if scope.kind is ScopeKind.KEY:
        return Filter("API key", name, api_keys_url(app_url))
    return Filter(scope.kind.value, name)
