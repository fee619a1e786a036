"""`/budget` (SPEC §4): list, add, edit, remove (and its confirmation buttons), snooze,
unsnooze, digest, watch, timezone, history, connect, disconnect, help.

Every request is acknowledged first, then answered through its response_url: ephemeral
unless the person added `public`, and always ephemeral for mistakes and refusals. Changes are
for admins only and every one of them is audited by the store function that makes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.budgets.evaluate import BudgetRule
from bot.budgets.periods import ROLLING_LENGTHS
from bot.budgets.types import PeriodKind
from bot.budgets.watch import Sensitivity
from bot.commands.budget import parse_budget
from bot.commands.help import help_text
from bot.commands.requests import (
    BudgetAdd,
    BudgetConnect,
    BudgetDigest,
    BudgetDisconnect,
    BudgetEdit,
    BudgetHelp,
    BudgetHistory,
    BudgetList,
    BudgetRemove,
    BudgetRequest,
    BudgetSnooze,
    BudgetTest,
    BudgetTimezone,
    BudgetUnsnooze,
    BudgetWatch,
    GrammarError,
    OpenBudgetModal,
)
from bot.config import ConfigError
from bot.jobs.delivery import slack_error
from bot.jobs.digest import held_until
from bot.jobs.sample import SampleUnavailable, sample_alert
from bot.messages import budgets as budget_messages
from bot.messages import connect as connect_messages
from bot.messages.backtest import backtest_blocks, no_backtest
from bot.messages.digest import digest_lines
from bot.messages.history import history_message
from bot.messages.mrkdwn import Json, escape
from bot.reports.backtest import backtest
from bot.reports.reads import periods_for
from bot.reports.status import (
    BudgetStatus,
    read_statuses,
    statuses_without_spend,
    watch_status,
)
from bot.scenario.errors import ScenarioError
from bot.slack import changes
from bot.slack.admins import REFUSAL, AdminUnknown, may_open_form
from bot.slack.changes import Draft, Refusal
from bot.slack.channels import post_problem
from bot.slack.deps import Deps
from bot.slack.views.budget_modal import open_budget_modal
from bot.slack.views.scenario_connect import open_connect_modal
from bot.store import alerts, audit, digests, snoozes
from bot.store import watch as watch_store
from bot.store.budgets import Budget, BudgetNotFound, get_budget, list_budgets
from bot.store.workspaces import disconnect_scenario, get_workspace, set_timezone

log = logging.getLogger(__name__)

COMMAND = "/budget"
# Open to everyone; any other request changes something and is for admins.
_READ_ONLY = (BudgetList, BudgetHelp, BudgetHistory)
# What works before a workspace is connected to Scenario (multi-workspace mode).
_WITHOUT_SCENARIO = (
    BudgetHelp,
    BudgetHistory,
    BudgetTimezone,
    BudgetConnect,
    BudgetDisconnect,
    BudgetWatch,  # it reads Scenario at the checks, once connected
)
HISTORY_ALERTS = 10
HISTORY_CHANGES = 20


def register(app: AsyncApp, deps: Deps) -> None:
    async def on_budget(
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()  # within Slack's 3 s; everything else answers through response_url
        await handle_command(deps, client, respond, command)

    app.command(COMMAND)(on_budget)


@dataclass(frozen=True, slots=True)
class BudgetCommand:
    """One `/budget` request and where to answer it (also one `budget-bot budget` run)."""

    deps: Deps
    # None on the command line without a Slack token: channels are not checked then.
    client: AsyncWebClient | None
    respond: Callable[..., Awaitable[Any]]
    team_id: str
    user_id: str
    channel_id: str
    trigger_id: str
    public: bool

    @property
    def tz(self) -> str:
        return self.deps.timezone_of(self.team_id)

    async def answer(self, message: Json) -> None:
        response_type = "in_channel" if self.public else "ephemeral"
        await self.respond(
            text=message["text"], blocks=message["blocks"], response_type=response_type
        )

    @property
    def slack(self) -> AsyncWebClient:
        """The client for what only Slack can do (forms, posts), which the command line
        refuses before it gets here."""
        if self.client is None:
            raise Refusal("That needs Slack: run it as `/budget` in Slack.")
        return self.client

    async def privately(self, message: Json) -> None:
        """Mistakes and refusals are only shown to the person who asked, even with `public`."""
        await self.respond(
            text=message["text"], blocks=message["blocks"], response_type="ephemeral"
        )


async def handle_command(
    deps: Deps, client: AsyncWebClient, respond: AsyncRespond, command: dict[str, Any]
) -> None:
    parsed = parse_budget(command.get("text") or "")
    asked = BudgetCommand(
        deps=deps,
        client=client,
        respond=respond,
        team_id=command.get("team_id") or "",
        user_id=command.get("user_id") or "",
        channel_id=command.get("channel_id") or "",
        trigger_id=command.get("trigger_id") or "",
        public=not isinstance(parsed, GrammarError) and parsed.public,
    )
    try:
        if isinstance(parsed, GrammarError):
            await asked.privately(budget_messages.notice(parsed.text))
        elif not isinstance(parsed, _READ_ONLY) and not await _admin(asked, parsed):
            await asked.privately(budget_messages.notice(REFUSAL))
        elif not_connected(deps, asked.team_id, parsed):
            await asked.privately(connect_messages.not_connected())
        else:
            await dispatch(asked, parsed)
    except Refusal as refusal:
        await asked.privately(budget_messages.notice(str(refusal)))
    except AdminUnknown as unknown:
        await asked.privately(budget_messages.notice(unknown.message))
    except BudgetNotFound as missing:
        await asked.privately(budget_messages.notice(not_found(missing)))
    except Exception:
        # Never a stack trace, never silence: the person hears something went wrong.
        log.exception("/budget %r failed", command.get("text"))
        await asked.privately(budget_messages.notice(budget_messages.OOPS))


async def _admin(asked: BudgetCommand, request: BudgetRequest) -> bool:
    """A request that opens a form must not outwait its trigger (3 s) on Slack's answer:
    the form's Save checks the rights again."""
    deps, team_id, user_id = asked.deps, asked.team_id, asked.user_id
    if isinstance(request, OpenBudgetModal | BudgetConnect):
        return await may_open_form(deps.admins, asked.client, team_id, user_id)
    return await deps.admins.is_admin(asked.client, team_id, user_id)


def needs_scenario(request: BudgetRequest) -> bool:
    return not isinstance(request, _WITHOUT_SCENARIO)


def not_connected(deps: Deps, team_id: str, request: BudgetRequest) -> bool:
    """Multi-workspace mode: the request needs Scenario and the workspace has not connected."""
    if not needs_scenario(request):
        return False
    runtime = deps.runtime
    return runtime.multi_workspace and runtime.connected_team(team_id) is None


def not_found(missing: BudgetNotFound) -> str:
    return f"There is no budget #{missing.budget_id} in this workspace — `/budget list` shows them."


async def dispatch(asked: BudgetCommand, request: BudgetRequest) -> None:
    """Answer a parsed request (the admin and connection checks are the caller's)."""
    deps, now = asked.deps, asked.deps.clock()
    match request:
        case BudgetList():
            await _list(asked, now)
        case BudgetHelp(topic=topic):
            await asked.answer(budget_messages.help_message(help_text(topic)))
        case BudgetHistory(budget_id=budget_id):
            await _history(asked, budget_id)
        case OpenBudgetModal(budget_id=budget_id):
            budget = None if budget_id is None else get_budget(deps.db, asked.team_id, budget_id)
            try:
                await open_budget_modal(
                    asked.slack, asked.trigger_id, deps, asked.team_id, asked.channel_id, budget
                )
            except SlackApiError as exc:  # e.g. the trigger expired: say so, and the way around
                await asked.privately(budget_messages.form_refused(slack_error(exc), budget_id))
        case BudgetAdd():
            budget = await changes.add_budget(
                deps,
                asked.client,
                team_id=asked.team_id,
                user_id=asked.user_id,
                draft=Draft.of(request),
                default_channel=asked.channel_id,
            )
            await _saved(asked, budget, None, now)
        case BudgetEdit():
            before = get_budget(deps.db, asked.team_id, request.budget_id)
            budget = await changes.edit_budget(
                deps,
                asked.client,
                team_id=asked.team_id,
                user_id=asked.user_id,
                budget_id=request.budget_id,
                draft=Draft.of(request),
            )
            await deps.deliver_now(asked.team_id)  # the alert's message shows the change
            await _saved(asked, budget, before, now)
        case BudgetRemove(budget_id=budget_id):
            budget = get_budget(deps.db, asked.team_id, budget_id)
            await asked.answer(budget_messages.remove_confirmation(budget))
        case BudgetSnooze():
            await _snooze(asked, request, now)
        case BudgetUnsnooze(budget_id=budget_id):
            budget = get_budget(deps.db, asked.team_id, budget_id)
            was = snoozes.unsnooze(deps.db, asked.team_id, budget.id, actor=asked.user_id, now=now)
            await deps.deliver_now(asked.team_id)
            await asked.answer(budget_messages.unsnoozed(budget, was_snoozed=was))
        case BudgetDigest():
            await _digest(asked, request, now)
        case BudgetWatch():
            await _watch(asked, request, now)
        case BudgetTest(budget_id=budget_id):
            await _test(asked, get_budget(deps.db, asked.team_id, budget_id), now)
        case BudgetConnect():
            await _connect(asked)
        case BudgetDisconnect():
            await _disconnect(asked, now)
        case BudgetTimezone(name=name):
            workspace = get_workspace(deps.db, asked.team_id)
            was = asked.tz
            changed = workspace is None or workspace.timezone != name
            if changed:
                set_timezone(deps.db, asked.team_id, name, actor=asked.user_id, now=now)
                deps.runtime.digests_changed()  # digests follow the new zone at once
            await asked.answer(
                budget_messages.timezone_set(name, was=was, now=now, changed=changed)
            )


async def _connect(asked: BudgetCommand) -> None:
    if not asked.deps.runtime.multi_workspace:
        await asked.privately(connect_messages.from_environment())
        return
    try:
        await open_connect_modal(asked.slack, asked.trigger_id, asked.deps, asked.team_id)
    except SlackApiError as exc:  # e.g. the trigger expired
        error = slack_error(exc) or "unknown error"
        await asked.privately(
            budget_messages.notice(
                f"I couldn't open the form — Slack said `{error}`. Run `/budget connect` again."
            )
        )


async def _disconnect(asked: BudgetCommand, now: datetime) -> None:
    deps = asked.deps
    if not deps.runtime.multi_workspace:
        await asked.privately(connect_messages.from_environment())
        return
    was = disconnect_scenario(deps.db, asked.team_id, actor=asked.user_id, now=now)
    await deps.runtime.forget_scenario(asked.team_id)
    await asked.answer(connect_messages.disconnected(was))


async def _statuses(
    asked: BudgetCommand, budgets: list[Budget], now: datetime
) -> tuple[list[BudgetStatus], str | None]:
    """Budget statuses with spend, or without it and the reason Scenario couldn't be read."""
    db = asked.deps.db
    try:
        client = await asked.deps.scenario_for(asked.team_id)
    except ConfigError as exc:  # no Scenario credentials: the budgets are still worth seeing
        return statuses_without_spend(db, budgets), str(exc)
    statuses, error = await read_statuses(db, client, budgets, asked.tz, now)
    return statuses, error.message if error else None


async def _list(asked: BudgetCommand, now: datetime) -> None:
    budgets = list_budgets(asked.deps.db, asked.team_id)
    statuses, error = await _statuses(asked, budgets, now) if budgets else ([], None)
    await asked.answer(
        budget_messages.budget_list(
            statuses,
            tz=asked.tz,
            now=now,
            error=error,
            watch=budget_messages.watch_summary(*watch_status(asked.deps.db, asked.team_id)),
            digests=digest_lines(digests.list_digests(asked.deps.db, asked.team_id), asked.tz),
        )
    )


async def _saved(
    asked: BudgetCommand, budget: Budget, before: Budget | None, now: datetime
) -> None:
    statuses, looking_back = await asyncio.gather(
        _statuses(asked, [budget], now), _looking_back(asked, budget, before, now)
    )
    [status], error = statuses
    await asked.answer(
        budget_messages.saved_budget(
            status, tz=asked.tz, now=now, before=before, error=error, looking_back=looking_back
        )
    )


LOOK_BACK_WITHIN = 8.0  # seconds


def _rule_of(budget: Budget) -> tuple[object, ...]:
    return (budget.scope, budget.period, budget.limit_cu, budget.thresholds, budget.forecast)


async def _looking_back(
    asked: BudgetCommand, budget: Budget, before: Budget | None, now: datetime
) -> list[Json]:
    """The budget's backtest, when what decides its alerts is new (not for a new channel)."""
    if before is not None and _rule_of(before) == _rule_of(budget):
        return []
    if budget.period is PeriodKind.BILLING:
        return no_backtest("No look back for `billing` budgets: past plan periods aren't known.")
    rule = BudgetRule(budget.limit_cu, budget.thresholds, budget.forecast)
    try:
        client = await asked.deps.scenario_for(asked.team_id)
        # Bounded: the saved budget's confirmation must not wait on a slow Scenario.
        found = await asyncio.wait_for(
            backtest(client, budget.scope, rule, budget.period, asked.tz, now), LOOK_BACK_WITHIN
        )
    except ScenarioError as exc:
        return no_backtest(f"I couldn't look back at the last 30 days: {escape(exc.message)}")
    except TimeoutError:
        return no_backtest("Scenario is slow, so I skipped the look back at the last 30 days.")
    except Exception:  # the budget is saved: its confirmation must still arrive
        log.exception("backtest of budget %s failed", budget.id)
        return no_backtest("I couldn't look back at the last 30 days.")
    return backtest_blocks(found, budget.limit_cu, budget.period, asked.tz)


async def _snooze(asked: BudgetCommand, request: BudgetSnooze, now: datetime) -> None:
    deps = asked.deps
    budget = get_budget(deps.db, asked.team_id, request.budget_id)
    if request.duration is not None:
        until = now + request.duration
    else:
        until = await _period_end(asked, budget, now)
    snoozes.snooze(deps.db, asked.team_id, budget.id, until, actor=asked.user_id, now=now)
    await deps.deliver_now(asked.team_id)
    await asked.answer(
        budget_messages.snoozed(budget, until, asked.tz, until_reset=request.until_reset)
    )


async def _period_end(asked: BudgetCommand, budget: Budget, now: datetime) -> datetime:
    """When `until-reset` ends: the end of the current period; a rolling window never
    resets, so one window length from now (by then today's spend has left the window)."""
    if budget.period.is_rolling:
        return now + ROLLING_LENGTHS[budget.period]
    try:
        # Only a billing period needs Scenario (the plan period); calendar ones are local.
        client = await asked.deps.scenario_for(asked.team_id)
        periods, unreadable = await periods_for(client, [budget], asked.tz, now)
        if unreadable is not None:
            raise unreadable
    except ScenarioError as exc:
        raise Refusal(
            f"I couldn't read the billing period from Scenario: {escape(exc.message)}"
            f" Try a duration instead, like `/budget snooze {budget.id} 1d`."
        ) from None
    except (ConfigError, ValueError):
        raise Refusal(
            "Scenario didn't tell me when this billing period ends. Try a duration instead,"
            f" like `/budget snooze {budget.id} 1d`."
        ) from None
    return periods[budget.id].end


async def _digest(asked: BudgetCommand, request: BudgetDigest, now: datetime) -> None:
    deps = asked.deps
    channel = changes.channel_id_of(request.channel, asked.channel_id)
    if request.at is None:
        removed = digests.turn_off(deps.db, asked.team_id, channel, actor=asked.user_id, now=now)
        deps.runtime.digests_changed()
        await asked.answer(budget_messages.digest_off(channel, before=removed, tz=asked.tz))
        return
    old, new = digests.set_digest(
        deps.db,
        asked.team_id,
        channel,
        request.at,
        actor=asked.user_id,
        now=now,
        when_empty="skip" if request.quiet else "line",
        cadence=request.cadence,
        weekday=request.weekday,
    )
    deps.runtime.digests_changed()
    held = held_until(new, asked.tz, now)
    await asked.answer(budget_messages.digest_set(new, asked.tz, before=old, held=held))


async def _watch(asked: BudgetCommand, request: BudgetWatch, now: datetime) -> None:
    db = asked.deps.db
    if request.off:
        current = watch_store.get_watch(db, asked.team_id)
        named = changes.channel_id_of(request.channel, "") if request.channel else None
        if current is not None and named is not None and named != current.channel_id:
            raise Refusal(
                f"The watch alerts in <#{current.channel_id}>, not <#{named}>;"
                " `/budget watch off` turns it off."
            )
        removed = watch_store.turn_off(db, asked.team_id, actor=asked.user_id, now=now)
        await asked.answer(budget_messages.watch_off(removed.channel_id if removed else None))
        return
    channel = changes.channel_id_of(request.channel, asked.channel_id)
    current = watch_store.get_watch(db, asked.team_id)
    if current is None or current.channel_id != channel:
        await changes.check_channel(asked.client, channel)
    sensitivity = request.sensitivity or (current.watch if current else None) or "normal"
    before, _ = watch_store.set_watch(
        db, asked.team_id, channel, Sensitivity(sensitivity), actor=asked.user_id, now=now
    )
    was = (before.channel_id, before.watch or "normal") if before else None
    await asked.answer(budget_messages.watch_set(channel, sensitivity, before=was))


async def _test(asked: BudgetCommand, budget: Budget, now: datetime) -> None:
    deps = asked.deps
    try:
        message = await sample_alert(
            await deps.scenario_for(asked.team_id),
            budget,
            asked.tz,
            deps.settings.scenario_app,
            now,
        )
    except ScenarioError as exc:
        raise Refusal(f"I couldn't read Scenario for the test: {escape(exc.message)}") from None
    except ConfigError as exc:  # e.g. no Scenario credentials in the environment
        raise Refusal(f"I can't read Scenario for the test: {escape(str(exc))}") from None
    except SampleUnavailable as exc:
        raise Refusal(f"I can't measure this budget now: {escape(str(exc))}.") from None
    try:
        await asked.slack.chat_postMessage(
            channel=budget.channel_id,
            text=message["text"],
            blocks=message["blocks"],
            # As the real alert is posted (bot.jobs.delivery): its Scenario links unfolded
            # into previews would bury the figures.
            unfurl_links=False,
            unfurl_media=False,
        )
    except SlackApiError as exc:
        error = slack_error(exc)
        problem = post_problem(error, budget.channel_id) or (
            f"Slack said `{error}`."
            if error
            else "Slack answered with something that isn't Slack's."
        )
        raise Refusal(f"The test alert couldn't be posted. {problem}") from None
    await asked.privately(
        budget_messages.notice(
            f"🧪 Posted a test alert for *Budget {escape(budget.label)}* to"
            f" <#{budget.channel_id}>. Nothing was changed."
        )
    )


async def _history(asked: BudgetCommand, budget_id: int | None) -> None:
    db, team = asked.deps.db, asked.team_id
    target = None if budget_id is None else f"budget:{budget_id}"
    alert_rows = alerts.recent_alerts(db, team, budget_id=budget_id, limit=HISTORY_ALERTS)
    entries = audit.history(db, team, target=target, limit=HISTORY_CHANGES)
    if budget_id is not None and not entries and not alert_rows:
        get_budget(db, team, budget_id)  # BudgetNotFound: a number that never existed here
    labels = {b.id: b.label for b in list_budgets(db, team)}
    await asked.answer(
        history_message(alert_rows, entries, labels=labels, tz=asked.tz, budget_id=budget_id)
    )


# ---------------------------------------------------------------------------------------------
# The removal buttons
# ---------------------------------------------------------------------------------------------
