"""The buttons on alert messages: Snooze 24 h, Acknowledge, Raise budget, Open in Scenario
(SPEC §5).

Each press is acknowledged first, then recorded (the store writes the audit row and the
alert's event in one transaction) and delivered at once: the message is re-rendered from
the alert's state — so it keeps every line it had, shows who snoozed or acknowledged, and
gets one reply in its thread. A second press changes nothing and says so.

Who may press: snoozing mutes a budget's alerts for everyone, so it is a change and, like
every change, for admins only. Acknowledging changes nothing but says "I'm on it" — what
on-call tools let any responder do — so anyone who can see the alert may press it. Raise
budget opens the budget's edit form with a higher limit filled in (admins); the save is an
ordinary edit, which re-arms the levels above the spend and edits the alert in place.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.budgets.forecast import raise_suggestion
from bot.commands.requests import MAX_LIMIT
from bot.jobs.delivery import slack_error
from bot.messages.alerts import ACTION_ACKNOWLEDGE, ACTION_OPEN, ACTION_RAISE, ACTION_SNOOZE
from bot.messages.modals import RaiseTo
from bot.messages.mrkdwn import Json, local_time
from bot.slack.admins import admin_problem, may_open_form
from bot.slack.payloads import interaction
from bot.slack.views.budget_modal import open_budget_modal
from bot.store import alerts, snoozes
from bot.store.alerts import Alert
from bot.store.budgets import Budget, BudgetNotFound, find_budget, get_budget

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.deps import Deps

log = logging.getLogger(__name__)


SNOOZE_FOR = timedelta(hours=24)
# A snooze already ending this close to (or after) the one asked for is the same snooze: a
# double press, or a longer `/budget snooze` that the button must not shorten.
SAME_SNOOZE = timedelta(hours=1)

SNOOZE_REFUSAL = (
    "Sorry — only workspace admins and owners (or people listed in `BUDGET_BOT_ADMINS`) can "
    "snooze a budget's alerts. Nothing was changed. Anyone can press *Acknowledge*."
)


async def tell(respond: AsyncRespond, text: str) -> None:
    """An ephemeral note to the presser that leaves the alert message as it is."""
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def snooze_pressed(
    body: Json, client: AsyncWebClient, respond: AsyncRespond, deps: Deps
) -> None:
    pressed = interaction(body)
    team_id, user_id, budget_id = pressed.team_id, pressed.user_id, pressed.id_value
    if problem := await admin_problem(deps.admins, client, team_id, user_id, SNOOZE_REFUSAL):
        return await tell(respond, problem)
    try:
        if budget_id is None:
            raise BudgetNotFound(0)
        get_budget(deps.db, team_id, budget_id)  # the button's value is not trusted
    except BudgetNotFound:
        return await tell(respond, "This budget no longer exists, so there is nothing to snooze.")
    now = deps.clock()
    until = now + SNOOZE_FOR
    current = snoozes.get_snooze(deps.db, budget_id)
    tz = deps.timezone_of(team_id)
    if current is not None and current.until >= until - SAME_SNOOZE:
        local = f"{local_time(current.until, tz)} ({tz})"
        # Nothing changed: say why, rather than leave the press unanswered.
        return await tell(
            respond, f"Already snoozed until {local} by <@{current.created_by}>; nothing changed."
        )
    snoozes.snooze(deps.db, team_id, budget_id, until, actor=user_id, now=now)
    await deps.deliver_now(team_id)


async def acknowledge_pressed(
    body: Json, client: AsyncWebClient, respond: AsyncRespond, deps: Deps
) -> None:
    pressed = interaction(body)
    team_id, user_id, alert_id = pressed.team_id, pressed.user_id, pressed.id_value
    alert = alerts.get_alert(deps.db, team_id, alert_id) if alert_id is not None else None
    if alert is None or alert.finding is not None:  # a watch episode has no Acknowledge
        return await tell(respond, "This alert no longer exists (its budget was removed).")
    if not alerts.acknowledge(deps.db, team_id, alert.id, actor=user_id, now=deps.clock()):
        first = alerts.get_alert(deps.db, team_id, alert.id)
        by = first.acknowledged_by if first else None
        who = "You" if by == user_id else f"<@{by}>"
        return await tell(respond, f"{who} already acknowledged this alert; nothing changed.")
    await deps.deliver_now(team_id)


STALE_ALERT = (
    "This alert is closed — its period ended, its episode is over, or the budget's period or "
    "scope changed since — so nothing is proposed from its figures."
)
RAISE_REFUSAL = (
    "Sorry — only workspace admins and owners (or people listed in `BUDGET_BOT_ADMINS`) can "
    "raise a budget. Nothing was changed."
)


def raise_proposal(alert: Alert, budget: Budget, now: datetime) -> RaiseTo:
    """The limit the form proposes, from what the alert saw — only while that is the
    budget's current story: once its period (or episode) is over, or its period or scope
    was edited, those figures say nothing about the limit it needs now."""
    if not alert.is_current(now):
        return RaiseTo(None, STALE_ALERT)
    projection = alert.projection if budget.forecast else None
    from_forecast = projection is not None and projection.high_cu > budget.limit_cu
    return RaiseTo(
        min(raise_suggestion(budget.limit_cu, alert.spend_cu, projection), float(MAX_LIMIT)),
        "the forecast's high end, rounded up"
        if from_forecast
        else "25 % more than the limit or the spend so far, rounded up",
    )


async def raise_pressed(
    body: Json, client: AsyncWebClient, respond: AsyncRespond, deps: Deps
) -> None:
    """Open the budget's edit form with the proposed limit (the trigger lasts 3 s)."""
    pressed = interaction(body)
    team_id, user_id, alert_id = pressed.team_id, pressed.user_id, pressed.id_value
    if not await may_open_form(deps.admins, client, team_id, user_id):
        return await tell(respond, RAISE_REFUSAL)
    alert = alerts.get_alert(deps.db, team_id, alert_id) if alert_id is not None else None
    # get_alert checked that the alert's budget is this workspace's.
    budget = find_budget(deps.db, alert.budget_id) if alert and alert.finding is None else None
    if alert is None or budget is None:
        return await tell(respond, "This budget no longer exists, so there is nothing to raise.")
    try:
        await open_budget_modal(
            client,
            pressed.trigger_id,
            deps,
            team_id,
            budget.channel_id,
            budget,
            raise_to=raise_proposal(alert, budget, deps.clock()),
        )
    except SlackApiError as exc:
        log.warning("raise form not opened: %s", slack_error(exc))
        await tell(respond, "Slack didn't open the form in time. Press *Raise budget* again.")


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(ACTION_SNOOZE)
    async def on_snooze(
        ack: AsyncAck, body: Json, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        await snooze_pressed(body, client, respond, deps)

    @app.action(ACTION_ACKNOWLEDGE)
    async def on_acknowledge(
        ack: AsyncAck, body: Json, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        await acknowledge_pressed(body, client, respond, deps)

    @app.action(ACTION_RAISE)
    async def on_raise(
        ack: AsyncAck, body: Json, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        await raise_pressed(body, client, respond, deps)

    @app.action(ACTION_OPEN)
    async def on_open(ack: AsyncAck) -> None:
        # A link button: Slack opens the URL itself but still sends the press, and shows a
        # warning unless it is acknowledged.
        await ack()
