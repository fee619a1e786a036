"""The two buttons under "Remove budget #N?": remove it, or keep it. Admins only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.messages import budgets as budget_messages
from bot.messages.budgets import ACTION_REMOVE_CANCEL, ACTION_REMOVE_CONFIRM
from bot.messages.mrkdwn import Json
from bot.slack.admins import REFUSAL, admin_problem
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
    refusal = await admin_problem(deps.admins, client, team_id, user_id, REFUSAL)
    if refusal is None:
        return False
    # The question stays up for an admin to answer; only the presser sees the refusal.
    message = budget_messages.notice(refusal)
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
    def remove(team_id: str, user_id: str, budget_id: int) -> Json:
        try:
            budget = delete_budget(deps.db, team_id, budget_id, actor=user_id, now=deps.clock())
        except BudgetNotFound:  # pressed twice, or removed meanwhile
            return budget_messages.already_removed(budget_id)
        return budget_messages.removed(budget, user_id)

    await _answer(deps, client, respond, body, "removing", remove)


async def handle_remove_cancel(
    deps: Deps, client: AsyncWebClient, respond: AsyncRespond, body: dict[str, Any]
) -> None:
    def keep(team_id: str, user_id: str, budget_id: int) -> Json:
        try:
            budget: Budget | None = get_budget(deps.db, team_id, budget_id)
        except BudgetNotFound:
            budget = None
        return budget_messages.kept(budget, budget_id)

    await _answer(deps, client, respond, body, "keeping", keep)


async def _answer(
    deps: Deps,
    client: AsyncWebClient,
    respond: AsyncRespond,
    body: dict[str, Any],
    doing: str,
    decide: Callable[[str, str, int], Json],
) -> None:
    """The question is replaced by the answer; a failure leaves it up and says so."""
    pressed = interaction(body)
    budget_id = pressed.id_value
    if budget_id is None:
        return
    try:
        if await _refuse_non_admin(deps, client, respond, pressed.team_id, pressed.user_id):
            return
        message = decide(pressed.team_id, pressed.user_id, budget_id)
        await respond(text=message["text"], blocks=message["blocks"], replace_original=True)
    except Exception:
        log.exception("%s budget %s failed", doing, budget_id)
        message = budget_messages.notice(budget_messages.OOPS)
        await respond(text=message["text"], blocks=message["blocks"], replace_original=False)
