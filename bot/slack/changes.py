"""Adding and changing budgets: `/budget add|edit`, the modal and `budget-bot budget` share
this — resolving what people typed to Scenario IDs, validating, saving with the audit."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.budgets.types import DEFAULT_THRESHOLDS, TEAM, PeriodKind, Scope, ScopeKind
from bot.commands.requests import BudgetAdd, BudgetEdit, ChannelRef, ScopeRef
from bot.messages.mrkdwn import escape
from bot.messages.names import describe
from bot.scenario.errors import ScenarioError
from bot.scenario.names import Found, match
from bot.slack.channels import channel_problem
from bot.slack.deps import Deps
from bot.store.budgets import Budget, BudgetNotFound, NewBudget, create_budget, update_budget


class Refusal(Exception):
    """Why a change cannot be made, in words fit for the person who asked. Nothing changed.

    The text is mrkdwn: names in it (from Scenario or typed) are escaped where it is made."""


class ChannelRefusal(Refusal):
    """The bot cannot post to the chosen channel (the form shows it next to that field)."""


async def check_channel(slack: AsyncWebClient | None, channel_id: str) -> None:
    """Refuse a channel the bot cannot post to. Without Slack (the command line with no
    token) there is no one to ask: the channel is not checked."""
    if slack is None:
        return
    if problem := await channel_problem(slack, channel_id):
        raise ChannelRefusal(f"{problem} Nothing was saved.")


@dataclass(frozen=True, slots=True)
class Draft:
    """The fields a person gave; None means "not given" (keep it, or use the default)."""

    limit: Decimal | None = None
    period: PeriodKind | None = None
    scope: ScopeRef | None = None
    channel: ChannelRef | None = None
    thresholds: tuple[int, ...] | None = None
    forecast: bool | None = None

    @classmethod
    def of(cls, request: BudgetAdd | BudgetEdit) -> Draft:
        """The fields of a parsed `/budget add` or `edit`."""
        return cls(
            limit=request.limit,
            period=request.period,
            scope=request.scope,
            channel=request.channel,
            thresholds=request.thresholds,
            forecast=request.forecast,
        )


_WHAT = {
    ScopeKind.PROJECT: "project",
    ScopeKind.USER: "member",
    ScopeKind.KEY: "API key",
    ScopeKind.MODEL: "model",
}


async def resolve_scope(
    deps: Deps, team_id: str, ref: ScopeRef, slack: AsyncWebClient | None
) -> tuple[Scope, str | None]:
    """The Scenario scope and its display name for what was typed; Refusal if unknown."""
    if ref.kind is ScopeKind.TEAM:
        return TEAM, None
    text = ref.text or ""
    if ref.kind is ScopeKind.USER and ref.slack_user_id:
        text = await _email_of(slack, ref.slack_user_id)
    try:
        directory = await deps.directory.get(await deps.scenario_for(team_id))
    except ScenarioError as exc:
        raise Refusal(
            f"I couldn't reach Scenario to look up “{escape(text)}”: {escape(exc.message)}"
        ) from None
    entries = {
        ScopeKind.PROJECT: directory.projects,
        ScopeKind.USER: directory.members,
        ScopeKind.KEY: directory.keys,
        ScopeKind.MODEL: directory.models,
    }[ref.kind]
    found = match(text, entries)
    if not isinstance(found, Found):
        raise Refusal(describe(found, _WHAT[ref.kind]))
    return Scope(ref.kind, found.entry.id), found.entry.name


async def _email_of(slack: AsyncWebClient | None, user_id: str) -> str:
    if slack is None:
        raise Refusal(
            f"<@{user_id}> is a Slack member and I can't ask Slack who that is here. "
            "Use their Scenario email instead: `user:name@example.com`."
        )
    try:
        response = await slack.users_info(user=user_id)
    except SlackApiError:
        raise Refusal(f"I couldn't look up <@{user_id}> in Slack.") from None
    email = ((response.get("user") or {}).get("profile") or {}).get("email")
    if not email:
        raise Refusal(
            f"<@{user_id}> has no email I can see, so I can't find them in Scenario. "
            "Use their Scenario email instead: `user:name@example.com`."
        )
    return str(email)


def _check_billing(deps: Deps, team_id: str, period: PeriodKind) -> None:
    if period is not PeriodKind.BILLING:
        return
    runtime = deps.runtime
    if runtime.multi_workspace:
        known, where = (
            bool(runtime.connected_team(team_id)),
            "an admin adds it with `/budget connect`",
        )
    else:
        known = bool(deps.settings.scenario_team_id)
        where = "it is `SCENARIO_TEAM_ID` in the bot's settings; ask whoever runs the bot"
    if not known:
        raise Refusal(
            "`billing` budgets follow the plan period Scenario reports for the team, which"
            f" needs the Scenario team ID: {where}. Or use `monthly` meanwhile."
        )


def channel_id_of(channel: ChannelRef | None, default: str) -> str:
    if channel is None:
        return default
    if channel.id:
        return channel.id
    raise Refusal(
        f"I can't tell which channel “#{channel.name}” is. Pick it from Slack's "
        "autocomplete (type `#` and choose) so it arrives as a link."
    )


async def add_budget(
    deps: Deps,
    slack: AsyncWebClient | None,
    *,
    team_id: str,
    user_id: str,
    draft: Draft,
    default_channel: str,
) -> Budget:
    if draft.limit is None or draft.period is None:
        raise Refusal("A budget needs a limit and a period, e.g. `12k monthly`.")
    _check_billing(deps, team_id, draft.period)
    channel_id = channel_id_of(draft.channel, default_channel)
    await check_channel(slack, channel_id)
    scope, name = await resolve_scope(deps, team_id, draft.scope or ScopeRef(ScopeKind.TEAM), slack)
    new = NewBudget(
        workspace_id=team_id,
        period=draft.period,
        limit_cu=float(draft.limit),
        channel_id=channel_id,
        created_by=user_id,
        scope=scope,
        scope_name=name,
        thresholds=draft.thresholds or DEFAULT_THRESHOLDS,
        forecast=bool(draft.forecast),
    )
    return create_budget(deps.db, new, now=deps.clock())


async def edit_budget(
    deps: Deps,
    slack: AsyncWebClient | None,
    *,
    team_id: str,
    user_id: str,
    budget_id: int,
    draft: Draft,
) -> Budget:
    changes: dict[str, Any] = {}
    if draft.limit is not None:
        changes["limit_cu"] = float(draft.limit)
    if draft.period is not None:
        _check_billing(deps, team_id, draft.period)
        changes["period"] = draft.period
    if draft.scope is not None:
        changes["scope"], changes["scope_name"] = await resolve_scope(
            deps, team_id, draft.scope, slack
        )
    if draft.channel is not None:
        changes["channel_id"] = channel_id_of(draft.channel, "")
        await check_channel(slack, changes["channel_id"])
    if draft.thresholds is not None:
        changes["thresholds"] = draft.thresholds
    if draft.forecast is not None:
        changes["forecast"] = draft.forecast
    try:
        budget = update_budget(
            deps.db, team_id, budget_id, changes, actor=user_id, now=deps.clock()
        )
    except BudgetNotFound as exc:
        raise Refusal(f"{exc} — `/budget list` shows their numbers.") from None
    # The caller delivers (`deps.deliver_now`) once it has answered: the alert's message
    # shows the new limit at once, and a slow Slack cannot make a saved edit look unsaved.
    return budget
