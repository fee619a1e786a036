"""The buttons on watch episodes (SPEC §5b): Expected, Snooze 24 h, Open in Scenario, and on
an API key's episode Revoke key.

Expected and Snooze mute alerts for everyone and Revoke key stops a key, so, like every
change, they are for admins; each is audited and told on the episode's message (an edit and
one reply), delivered at once. Revoke key first asks, in a form naming the key and its
project (`bot/slack/views/watch_revoke.py` does it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.jobs.delivery import slack_error
from bot.messages.modals import Metadata
from bot.messages.mrkdwn import Json, local_time
from bot.messages.watch import (
    ACTION_EXPECTED,
    ACTION_REVOKE,
    ACTION_WATCH_OPEN,
    ACTION_WATCH_SNOOZE,
    revoke_view,
)
from bot.slack.actions.alerts import SAME_SNOOZE, SNOOZE_FOR, tell
from bot.slack.admins import admin_problem
from bot.slack.keys import find_key
from bot.slack.payloads import interaction
from bot.store import alerts, snoozes
from bot.store import watch as watch_store
from bot.store.alerts import Alert

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.deps import Deps

REFUSAL = (
    "Sorry — only workspace admins and owners (or people listed in `BUDGET_BOT_ADMINS`) can "
    "quiet the watch. Nothing was changed."
)
GONE = "This watch alert no longer exists (the watch was turned off)."


async def _episode(
    body: Json, client: AsyncWebClient, respond: AsyncRespond, deps: Deps
) -> tuple[Alert, str, str] | None:
    """The pressed episode (its button's value is not trusted) if the presser may act on it."""
    pressed = interaction(body)
    team_id, user_id = pressed.team_id, pressed.user_id
    if problem := await admin_problem(deps.admins, client, team_id, user_id, REFUSAL):
        await tell(respond, problem)
        return None
    alert_id = pressed.id_value
    alert = alerts.get_alert(deps.db, team_id, alert_id) if alert_id is not None else None
    if alert is None or alert.finding is None:
        await tell(respond, GONE)
        return None
    return alert, team_id, user_id


async def expected_pressed(
    body: Json, client: AsyncWebClient, respond: AsyncRespond, deps: Deps
) -> None:
    found = await _episode(body, client, respond, deps)
    if found is None:
        return
    alert, team_id, user_id = found
    if watch_store.mark_expected(deps.db, team_id, alert, actor=user_id, now=deps.clock()) is None:
        return await tell(respond, "This is already marked as expected; nothing changed.")
    await deps.deliver_now(team_id)


async def snooze_pressed(
    body: Json, client: AsyncWebClient, respond: AsyncRespond, deps: Deps
) -> None:
    found = await _episode(body, client, respond, deps)
    if found is None:
        return
    alert, team_id, user_id = found
    now = deps.clock()
    until = now + SNOOZE_FOR
    current = snoozes.get_snooze(deps.db, alert.budget_id)
    if current is not None and current.until >= until - SAME_SNOOZE:
        tz = deps.timezone_of(team_id)
        return await tell(
            respond,
            f"The watch is already snoozed until {local_time(current.until, tz)} ({tz}) by"
            f" <@{current.created_by}>; nothing changed.",
        )
    snoozes.snooze(
        deps.db, team_id, alert.budget_id, until, actor=user_id, now=now, told_on=alert.id
    )
    await deps.deliver_now(team_id)


async def revoke_pressed(
    body: Json, client: AsyncWebClient, respond: AsyncRespond, deps: Deps
) -> None:
    """The confirmation form, naming the key and its project as Scenario has them now."""
    found = await _episode(body, client, respond, deps)
    if found is None:
        return
    alert, team_id, _ = found
    key = await find_key(deps, team_id, alert)
    if isinstance(key, str):
        return await tell(respond, key)
    metadata = Metadata(team_id, "", alert.id).dump()
    try:
        await client.views_open(
            trigger_id=interaction(body).trigger_id,
            view=revoke_view(metadata, key.name, key.project_name),
        )
    except SlackApiError as exc:  # e.g. Scenario took the trigger's 3 seconds
        error = slack_error(exc) or "unknown error"
        await tell(respond, f"I couldn't open the form — Slack said `{error}`. Press it again.")


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(ACTION_EXPECTED)
    async def on_expected(
        ack: AsyncAck, body: Json, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        await expected_pressed(body, client, respond, deps)

    @app.action(ACTION_WATCH_SNOOZE)
    async def on_snooze(
        ack: AsyncAck, body: Json, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        await snooze_pressed(body, client, respond, deps)

    @app.action(ACTION_REVOKE)
    async def on_revoke(
        ack: AsyncAck, body: Json, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        await revoke_pressed(body, client, respond, deps)

    @app.action(ACTION_WATCH_OPEN)
    async def on_open(ack: AsyncAck) -> None:
        await ack()  # a link button: Slack opens the URL, but warns unless acknowledged
