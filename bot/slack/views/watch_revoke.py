"""The Revoke key form of a watch episode: on submission, Scenario deletes the API key.

Everything is decided again at submission — who submits (an admin, of this workspace), which
key the episode is about and its project as Scenario has them now — from the episode's ID
alone: nothing else the form carries is trusted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.jobs.delivery import slack_error
from bot.messages.modals import Metadata
from bot.messages.mrkdwn import Json, escape
from bot.messages.watch import (
    REVOKE_CALLBACK,
    revoke_failed_view,
    revoked_view,
    revoking_view,
)
from bot.scenario.errors import NotFound, ScenarioError
from bot.slack.admins import ADMIN_WITHIN, form_admin_problem
from bot.slack.keys import find_key
from bot.slack.payloads import interaction
from bot.store import alerts
from bot.store import watch as watch_store

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.deps import Deps

log = logging.getLogger(__name__)

# A person waits for the answer in the form.
REVOKE_WITHIN = 10.0


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(REVOKE_CALLBACK)
    async def on_revoke_submit(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await submit_revoke(ack, body, client, deps)


async def submit_revoke(ack: AsyncAck, body: Json, client: AsyncWebClient, deps: Deps) -> None:
    submitted = interaction(body)
    team_id, user_id = submitted.team_id, submitted.user_id
    view = body.get("view") or {}
    metadata = Metadata.load(view.get("private_metadata"))
    refused = "Only admins can revoke a key."
    problem = await form_admin_problem(
        deps.admins, client, team_id, user_id, within=ADMIN_WITHIN, refused=refused
    )
    alert = (
        alerts.get_alert(deps.db, team_id, metadata.budget_id)
        if metadata.team_id == team_id and metadata.budget_id is not None
        else None
    )
    if problem is None and (alert is None or alert.finding is None):
        problem = "This alert is not of this workspace, or the watch was turned off."
    if problem is not None or alert is None:
        return await ack(response_action="update", view=revoke_failed_view(problem or ""))
    # Scenario may take longer than Slack's 3 s: say "revoking" now, answer in the form.
    await ack(response_action="update", view=revoking_view())
    key = await find_key(deps, team_id, alert, within=REVOKE_WITHIN)
    if isinstance(key, str):
        answer = revoke_failed_view(key)
    else:
        try:
            scenario = await deps.scenario_for(team_id)
            await scenario.delete_api_key(key.project_id, key.api_key_id)
        except NotFound:
            answer = revoke_failed_view(
                "Scenario no longer has this key in its project (it may be revoked already)."
            )
        except ScenarioError as exc:
            answer = revoke_failed_view(f"Scenario refused: {escape(exc.message)}")
        else:
            watch_store.record_revoked(
                deps.db,
                team_id,
                alert,
                key=key.name,
                project=key.project_name,
                actor=user_id,
                now=deps.clock(),
            )
            await deps.deliver_now(team_id)
            answer = revoked_view(key.name)
    try:
        await client.views_update(view_id=view.get("id"), view=answer)
    except SlackApiError as exc:  # the person closed the form: what happened stays
        log.info("revoke form could not be updated (%s)", slack_error(exc))
