"""The digest settings form of the Home tab: checked, saved, answered in the form."""

from __future__ import annotations

from datetime import time
from typing import TYPE_CHECKING

from bot.budgets.types import PeriodKind
from bot.jobs.digest import held_until
from bot.messages.budgets import held_words
from bot.messages.digest import schedule_words
from bot.messages.home import (
    BLOCK_DIGEST_CHANNEL,
    BLOCK_DIGEST_OFF,
    BLOCK_DIGEST_TIME,
    DIGEST_CALLBACK,
    DIGEST_OFF,
)
from bot.messages.modals import message_view
from bot.messages.mrkdwn import Json
from bot.slack.admins import ADMIN_WITHIN, form_admin_problem
from bot.slack.events.home import publish_home
from bot.slack.payloads import interaction
from bot.store.digests import get_digest, set_digest, turn_off

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(DIGEST_CALLBACK)
    async def on_digest_submit(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await submit_digest(ack, body, client, deps)


def read_digest_form(values: dict[str, dict[str, Json]]) -> tuple[str | None, str | None, bool]:
    """(channel, "HH:MM", off) from `view.state.values`; missing values read as None."""

    def element(block_id: str) -> Json:
        found = values.get(block_id) or {}
        return next(iter(found.values()), {}) if found else {}

    off = element(BLOCK_DIGEST_OFF).get("selected_options") or []
    return (
        element(BLOCK_DIGEST_CHANNEL).get("selected_conversation"),
        element(BLOCK_DIGEST_TIME).get("selected_time"),
        any(o.get("value") == DIGEST_OFF for o in off),
    )


def _clock(text: str | None) -> time | None:
    try:
        return time.fromisoformat(text or "")
    except ValueError:
        return None


async def submit_digest(ack: AsyncAck, body: Json, client: AsyncWebClient, deps: Deps) -> None:
    submitted = interaction(body)
    team_id, user_id = submitted.team_id, submitted.user_id
    view = body.get("view") or {}
    refused = "Only admins can change the digest. Nothing was saved."
    problem = await form_admin_problem(
        deps.admins, client, team_id, user_id, within=ADMIN_WITHIN, refused=refused
    )
    if problem is not None:
        return await ack(response_action="errors", errors={BLOCK_DIGEST_CHANNEL: problem})
    channel, at_text, off = read_digest_form((view.get("state") or {}).get("values") or {})
    at = _clock(at_text)
    errors = {}
    if not channel:
        errors[BLOCK_DIGEST_CHANNEL] = "Pick the channel for the digest."
    if at is None and not off:
        errors[BLOCK_DIGEST_TIME] = "Pick the time of day for the digest."
    if errors or channel is None:
        return await ack(response_action="errors", errors=errors)
    tz = deps.timezone_of(team_id)
    if off:
        removed = turn_off(deps.db, team_id, channel, actor=user_id, now=deps.clock())
        if removed is None:
            return await ack(
                response_action="errors",
                errors={BLOCK_DIGEST_OFF: "This channel has no digest to turn off."},
            )
        text = f"The {removed.cadence.value} digest in <#{channel}> is off."
    else:
        assert at is not None
        current = get_digest(deps.db, team_id, channel)
        # The form has only the time: keep the cadence and the quiet of `/budget digest`.
        _, saved = set_digest(
            deps.db,
            team_id,
            channel,
            at,
            actor=user_id,
            now=deps.clock(),
            when_empty=current.when_empty if current else "line",
            cadence=current.cadence if current else PeriodKind.DAILY,
            weekday=current.weekday if current else None,
        )
        when = schedule_words(saved.cadence, saved.weekday, saved.at)
        text = f"✅ The {saved.cadence.value} digest goes to <#{channel}> {when} ({tz} time)."
        held = held_until(saved, tz, deps.clock())
        if held is not None:
            text += " " + held_words(saved, *held)
        text += " Invite me there if I'm not in it yet (`/invite @Budget Bot`)."
    deps.runtime.digests_changed()
    await ack(response_action="update", view=message_view("Daily digest", text))
    await publish_home(client, deps, team_id, user_id)
