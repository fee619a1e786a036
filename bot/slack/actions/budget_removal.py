"""The two buttons under "Remove budget #N?": remove it, or keep it. Admins only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.messages import budgets as budget_messages
from bot.messages.budgets import ACTION_REMOVE_CANCEL, ACTION_REMOVE_CONFIRM
from bot.slack.admins import REFUSAL
from bot.slack.payloads import interaction
from bot.store.budgets import Budget, BudgetNotFound, delete_budget, get_budget

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.deps import Deps

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(ACTION_REMOVE_CONFIRM)
    async def on_remove_confirm(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        await handle_remove_confirm(deps, client, respond, body)

    @app.action(ACTION_REMOVE_CANCEL)
    async def on_remove_cancel(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        await handle_remove_cancel(deps, client, respond, body)


async def _refuse_non_admin(
    deps: Deps, client: AsyncWebClient, respond: AsyncRespond, team_id: str, user_id: str
) -> bool:
    """Either button of the removal question is for admins: refuse anyone else (True)."""
    if await deps.admins.is_admin(client, team_id, user_id):
        return False
    # The question stays up for an admin to answer; only the presser sees the refusal.
    message = budget_messages.notice(REFUSAL)
    await respond(
        text=message["text"],
        blocks=message["blocks"],
        response_type="ephemeral",
        replace_original=False,
    )
    return True


async def handle_remove_confirm(
    deps: Deps, client: AsyncWebClient, respond: AsyncRespond, body: dict[str, Any]
) -> None:
    pressed = interaction(body)
    team_id, user_id, budget_id = pressed.team_id, pressed.user_id, pressed.id_value
    try:
        if budget_id is None:
            return
        if await _refuse_non_admin(deps, client, respond, team_id, user_id):
            return
        try:
            budget = delete_budget(deps.db, team_id, budget_id, actor=user_id, now=deps.clock())
        except BudgetNotFound:
            message = budget_messages.already_removed(
                budget_id
            )  # pressed twice, or removed meanwhile
        else:
            message = budget_messages.removed(budget, user_id)
        await respond(text=message["text"], blocks=message["blocks"], replace_original=True)
    except Exception:
        log.exception("removing budget %s failed", budget_id)
        message = budget_messages.notice(budget_messages.OOPS)
        await respond(text=message["text"], blocks=message["blocks"], replace_original=False)


async def handle_remove_cancel(
    deps: Deps, client: AsyncWebClient, respond: AsyncRespond, body: dict[str, Any]
) -> None:
    pressed = interaction(body)
    team_id, user_id, budget_id = pressed.team_id, pressed.user_id, pressed.id_value
    try:
        if budget_id is None:
            return
        if await _refuse_non_admin(deps, client, respond, team_id, user_id):
            return
        try:
            budget: Budget | None = get_budget(deps.db, team_id, budget_id)
        except BudgetNotFound:
            budget = None
        message = budget_messages.kept(budget, budget_id)
        await respond(text=message["text"], blocks=message["blocks"], replace_original=True)
    except Exception:
        log.exception("keeping budget %s failed", budget_id)
        message = budget_messages.notice(budget_messages.OOPS)
        await respond(text=message["text"], blocks=message["blocks"], replace_original=False)
