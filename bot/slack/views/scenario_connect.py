"""`/budget connect`: the form for a workspace's Scenario credentials (multi-workspace mode),
checked with a live call to Scenario before anything is saved."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
from slack_sdk.errors import SlackApiError

from bot.jobs.delivery import slack_error
from bot.messages.connect import (
    BLOCK_KEY,
    BLOCK_SECRET,
    BLOCK_TEAM,
    CONNECT_CALLBACK,
    FROM_ENVIRONMENT,
    checking_view,
    connect_view,
    connected_view,
)
from bot.messages.modals import Metadata
from bot.messages.mrkdwn import Json, escape
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import BadCredentials, Forbidden, NotFound, ScenarioError
from bot.slack.admins import ADMIN_WITHIN, form_admin_problem
from bot.slack.payloads import interaction
from bot.store.workspaces import ScenarioConnection, connect_scenario

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.deps import Deps

log = logging.getLogger(__name__)

# The live check answers in the form; a person waits for it, so it is short and not retried.
CHECK_WITHIN = httpx.Timeout(10.0, connect=5.0)
MAX_FIELD = 200


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(CONNECT_CALLBACK)
    async def on_connect_submit(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await submit_connect(ack, body, client, deps)


async def open_connect_modal(
    client: AsyncWebClient, trigger_id: str, deps: Deps, team_id: str
) -> None:
    workspace = deps.runtime.connected_team(team_id)
    await client.views_open(
        trigger_id=trigger_id, view=connect_view(team_id, connected_team=workspace)
    )


def read_connect_form(values: dict[str, dict[str, Json]]) -> tuple[str, str, str]:
    """(key, secret, team ID) from `view.state.values`, trimmed; missing ones read as ""."""

    def value(block_id: str) -> str:
        found = values.get(block_id) or {}
        element = next(iter(found.values()), {}) if found else {}
        return str(element.get("value") or "").strip()

    return value(BLOCK_KEY), value(BLOCK_SECRET), value(BLOCK_TEAM)


def _form_errors(key: str, secret: str, team: str) -> dict[str, str]:
    errors = {}
    if not key:
        errors[BLOCK_KEY] = "Enter the Scenario API key."
    elif any(c.isspace() for c in key) or len(key) > MAX_FIELD:
        errors[BLOCK_KEY] = "An API key has no spaces; paste it again."
    if not secret:
        errors[BLOCK_SECRET] = "Enter the API key's secret."
    elif len(secret) > MAX_FIELD:
        errors[BLOCK_SECRET] = "That is longer than any Scenario secret; paste it again."
    if team and (any(c.isspace() for c in team) or "/" in team or len(team) > MAX_FIELD):
        errors[BLOCK_TEAM] = "A team ID has no spaces or slashes, like `team_abc123`."
    return errors


async def submit_connect(ack: AsyncAck, body: Json, client: AsyncWebClient, deps: Deps) -> None:
    submitted = interaction(body)
    team_id, user_id = submitted.team_id, submitted.user_id
    view = body.get("view") or {}
    if not deps.runtime.multi_workspace:  # this form is only ever opened in that mode
        return await ack(response_action="errors", errors={BLOCK_KEY: FROM_ENVIRONMENT})
    if Metadata.load(view.get("private_metadata")).team_id != team_id:
        # A form opened in another workspace: nothing here may change for it.
        return await ack(
            response_action="errors", errors={BLOCK_KEY: "This form is not for this workspace."}
        )
    refused = "Only admins can connect Scenario. Nothing was saved."
    problem = await form_admin_problem(
        deps.admins, client, team_id, user_id, within=ADMIN_WITHIN, refused=refused
    )
    if problem is not None:
        return await ack(response_action="errors", errors={BLOCK_KEY: problem})
    key, secret, team = read_connect_form((view.get("state") or {}).get("values") or {})
    if errors := _form_errors(key, secret, team):
        return await ack(response_action="errors", errors=errors)
    # Scenario may take longer than Slack's 3 s: say "checking" now, answer in the form.
    await ack(response_action="update", view=checking_view())
    connection = ScenarioConnection(api_key=key, api_secret=secret, team_id=team or None)
    problem = await check_connection(deps, connection)
    if problem is None and not await _still_installed(deps, team_id):
        # Uninstalled while Scenario was being asked: nothing of this workspace is kept.
        problem = "The app was uninstalled from this workspace meanwhile. Nothing was saved."
    if problem is None:
        connect_scenario(
            deps.db,
            team_id,
            connection,
            deps.settings.require_secret_key(),
            actor=user_id,
            now=deps.clock(),
        )
        await deps.runtime.forget_scenario(team_id)  # the next read uses the new credentials
        answer = connected_view(connection.team_id)
    else:
        answer = connect_view(team_id, api_key=key, scenario_team_id=team, problem=problem)
    try:
        await client.views_update(view_id=view.get("id"), view=answer)
    except SlackApiError as exc:  # the person closed the form: the result is saved anyway
        log.info("connect form could not be updated (%s)", slack_error(exc))


async def _still_installed(deps: Deps, team_id: str) -> bool:
    installations = deps.runtime.installations
    if installations is None:
        return True
    return await installations.async_find_bot(enterprise_id=None, team_id=team_id) is not None


async def check_connection(deps: Deps, connection: ScenarioConnection) -> str | None:
    """None if Scenario answers a one-hour usage read with these credentials, else what a
    person can fix, as mrkdwn (never the secret, which the client scrubs from answers)."""
    now = deps.clock()
    try:
        async with ScenarioClient(
            base_url=deps.settings.scenario_base,
            api_key=connection.api_key,
            api_secret=connection.api_secret,
            team_id=connection.team_id,
            max_retries=0,
            timeout=CHECK_WITHIN,
        ) as scenario:
            await scenario.usages(start=now - timedelta(hours=1), end=now)
    except BadCredentials:
        return (
            "Scenario refused this key and secret. Check both (the secret is shown once,"
            " when the key is made) and try again."
        )
    except Forbidden:
        return (
            "Scenario accepted the key, but it may not read this team's usage. Use a key"
            " with access to usage, or check the team ID."
        )
    except NotFound:
        return (
            f"Scenario knows no team `{escape(connection.team_id or '')}` for this key."
            " Check the team ID, or leave it empty."
        )
    except ScenarioError as exc:
        return (
            f"I couldn't check these with Scenario: {escape(exc.message)}"
            " Nothing was saved; try again in a moment."
        )
    return None
