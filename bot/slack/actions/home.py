"""The Home tab's buttons: add or edit a budget, the digest settings, refresh. Everyone sees
them; a non-admin who presses one gets a small modal that says changes are for admins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.messages.home import (
    ACTION_ADD,
    ACTION_DIGEST,
    ACTION_EDIT,
    ACTION_REFRESH,
    digest_lines,
    digest_modal_view,
)
from bot.messages.modals import message_view
from bot.messages.mrkdwn import Json
from bot.slack.admins import REFUSAL, may_open_form
from bot.slack.events.home import publish_home
from bot.slack.payloads import interaction
from bot.slack.views.budget_modal import open_budget_modal
from bot.store.budgets import BudgetNotFound, get_budget
from bot.store.digests import list_digests

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(ACTION_ADD)
    async def on_add(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await ack()
        await add_pressed(body, client, deps)

    @app.action(ACTION_EDIT)
    async def on_edit(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await ack()
        await edit_pressed(body, client, deps)

    @app.action(ACTION_DIGEST)
    async def on_digest(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await ack()
        await digest_pressed(body, client, deps)

    @app.action(ACTION_REFRESH)
    async def on_refresh(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await ack()
        pressed = interaction(body)
        await publish_home(client, deps, pressed.team_id, pressed.user_id)


async def _refuse(client: AsyncWebClient, trigger_id: str, text: str = REFUSAL) -> None:
    await client.views_open(trigger_id=trigger_id, view=message_view("Admins only", text))


async def add_pressed(body: Json, client: AsyncWebClient, deps: Deps) -> None:
    pressed = interaction(body)
    team_id, user_id, trigger_id = pressed.team_id, pressed.user_id, pressed.trigger_id
    if not await may_open_form(deps.admins, client, team_id, user_id):
        return await _refuse(client, trigger_id)
    await open_budget_modal(client, trigger_id, deps, team_id, "", None, from_home=True)


async def edit_pressed(body: Json, client: AsyncWebClient, deps: Deps) -> None:
    pressed = interaction(body)
    team_id, user_id, trigger_id = pressed.team_id, pressed.user_id, pressed.trigger_id
    if not await may_open_form(deps.admins, client, team_id, user_id):
        return await _refuse(client, trigger_id)
    try:
        if pressed.id_value is None:
            raise BudgetNotFound(0)
        budget = get_budget(deps.db, team_id, pressed.id_value)
    except BudgetNotFound:
        await client.views_open(
            trigger_id=trigger_id,
            view=message_view("Budget gone", "That budget no longer exists."),
        )
        await publish_home(client, deps, team_id, user_id)
        return
    await open_budget_modal(client, trigger_id, deps, team_id, "", budget, from_home=True)


async def digest_pressed(body: Json, client: AsyncWebClient, deps: Deps) -> None:
    pressed = interaction(body)
    team_id, user_id, trigger_id = pressed.team_id, pressed.user_id, pressed.trigger_id
    tz = deps.timezone_of(team_id)
    digests = list_digests(deps.db, team_id)
    if not await may_open_form(deps.admins, client, team_id, user_id):
        return await _refuse(client, trigger_id, f"{REFUSAL}\n\n{digest_lines(digests, tz)}")
    await client.views_open(trigger_id=trigger_id, view=digest_modal_view(digests, tz))
