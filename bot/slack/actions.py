"""The buttons on alert messages: Snooze 24 h, Acknowledge, Open in Scenario (SPEC §5).

Each press is acknowledged first, then recorded (the store writes the audit row) and shown
in the message itself: a status line just above the buttons, one per kind, replaced rather
than added when pressed again — so a second press neither duplicates the line nor writes a
second audit row. The message is re-rendered from the blocks Slack sends with the press,
not recomputed: the alert says what it said when it fired.

Who may press: snoozing mutes a budget's alerts for everyone, so it is a change and, like
every change, for admins only. Acknowledging changes nothing but says "I'm on it" — what
on-call tools let any responder do — so anyone who can see the alert may press it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import blocks
from bot.slack.blocks import ACTION_ACKNOWLEDGE, ACTION_OPEN, ACTION_SNOOZE
from bot.store import alerts
from bot.store.budgets import BudgetNotFound, get_budget

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

    from bot.slack.app import Deps

log = logging.getLogger(__name__)

Json = dict[str, Any]

SNOOZE_FOR = timedelta(hours=24)
# A snooze already ending this close to (or after) the one asked for is the same snooze: a
# double press, or a longer `/budget snooze` that the button must not shorten.
SAME_SNOOZE = timedelta(hours=1)
STATUS_SNOOZE = "alert_status_snooze"
STATUS_ACK = "alert_status_ack"

SNOOZE_REFUSAL = (
    "Sorry — only workspace admins and owners (or people listed in `BUDGET_BOT_ADMINS`) can "
    "snooze a budget's alerts. Nothing was changed. Anyone can press *Acknowledge*."
)


# ---------------------------------------------------------------------------------------------
# Pure: the status lines and the message's blocks
# ---------------------------------------------------------------------------------------------


def when(instant: datetime, tz: str) -> str:
    """A time every reader sees in their own timezone; the workspace's local time otherwise."""
    fallback = f"{blocks.local_time(instant, tz)} ({tz})"
    return f"<!date^{int(instant.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def snooze_line(user_id: str, until: datetime, tz: str) -> str:
    return f"💤 Snoozed by <@{user_id}> until {when(until, tz)}"


def acknowledged_line(user_id: str, at: datetime, tz: str) -> str:
    return f"✅ Acknowledged by <@{user_id}> · {when(at, tz)}"


def with_status(message_blocks: list[Json], block_id: str, text: str) -> list[Json]:
    """The blocks with status line ``block_id`` set to ``text``: replaced where it is, else
    inserted just above the buttons (else at the end). The input is not modified."""
    line = blocks.context(text)
    line["block_id"] = block_id
    out = [dict(b) for b in message_blocks]
    for i, block in enumerate(out):
        if block.get("block_id") == block_id:
            out[i] = line
            return out
    at = next((i for i, b in enumerate(out) if b.get("type") == "actions"), len(out))
    out.insert(at, line)
    return out


def _status_of(message_blocks: list[Json], block_id: str) -> str | None:
    """The text of status line ``block_id``, if the message has it."""
    for block in message_blocks:
        if block.get("block_id") == block_id:
            elements = block.get("elements") or [{}]
            return str(elements[0].get("text") or "")
    return None


# ---------------------------------------------------------------------------------------------
# Slack side
# ---------------------------------------------------------------------------------------------


def _ids(body: Json) -> tuple[str, str, str | None, str | None]:
    """team, user, and the message's channel and ts (None when the press isn't on a message)."""
    team_id = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or ""
    user_id = (body.get("user") or {}).get("id") or ""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    ts = (body.get("message") or {}).get("ts") or container.get("message_ts")
    return team_id, user_id, channel, ts


def _value(body: Json) -> int | None:
    actions = body.get("actions") or [{}]
    raw = str(actions[0].get("value") or "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


async def _tell(respond: AsyncRespond, text: str) -> None:
    """An ephemeral note to the presser that leaves the alert message as it is."""
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def _show_status(
    client: AsyncWebClient, body: Json, block_id: str, text: str
) -> SlackApiError | None:
    """Put the status line into the pressed message, unless it already says exactly that."""
    _, _, channel, ts = _ids(body)
    message = body.get("message") or {}
    current = message.get("blocks") or []
    if channel is None or ts is None or _status_of(current, block_id) == text:
        return None
    updated = with_status(current, block_id, text)
    try:
        await client.chat_update(
            channel=channel, ts=ts, text=message.get("text") or "Budget alert", blocks=updated
        )
    except SlackApiError as exc:
        log.warning("could not update alert message %s/%s: %s", channel, ts, exc)
        return exc
    return None


async def snooze_pressed(
    body: Json, client: AsyncWebClient, respond: AsyncRespond, deps: Deps
) -> None:
    team_id, user_id, _, _ = _ids(body)
    budget_id = _value(body)
    if not await deps.admins.is_admin(client, team_id, user_id):
        return await _tell(respond, SNOOZE_REFUSAL)
    try:
        if budget_id is None:
            raise BudgetNotFound(0)
        get_budget(deps.db, team_id, budget_id)  # the button's value is not trusted
    except BudgetNotFound:
        return await _tell(respond, "This budget no longer exists, so there is nothing to snooze.")
    now = deps.clock()
    until = now + SNOOZE_FOR
    current = alerts.get_snooze(deps.db, budget_id)
    again = current is not None and current.until >= until - SAME_SNOOZE
    if current is not None and again:
        by, until = current.created_by, current.until
    else:
        alerts.snooze(deps.db, team_id, budget_id, until, actor=user_id, now=now)
        by = user_id
    tz = deps.timezone_of(team_id)
    problem = await _show_status(client, body, STATUS_SNOOZE, snooze_line(by, until, tz))
    local = f"{blocks.local_time(until, tz)} ({tz})"
    if problem is not None:
        await _tell(
            respond,
            f"Snoozed until {local}, but I couldn't update the message"
            f" (`{problem.response.get('error')}`).",
        )
    elif again:
        # Nothing changed: say why, rather than leave the press unanswered.
        await _tell(respond, f"Already snoozed until {local} by <@{by}>; nothing changed.")


async def acknowledge_pressed(
    body: Json, client: AsyncWebClient, respond: AsyncRespond, deps: Deps
) -> None:
    team_id, user_id, _, _ = _ids(body)
    alert_id = _value(body)
    alert = alerts.get_alert(deps.db, team_id, alert_id) if alert_id is not None else None
    if alert is None:
        return await _tell(respond, "This alert no longer exists (its budget was removed).")
    recorded = alerts.acknowledge(deps.db, team_id, alert.id, actor=user_id, now=deps.clock())
    first = alerts.get_acknowledgement(deps.db, alert.id)
    assert first is not None  # just written, or written before
    tz = deps.timezone_of(team_id)
    problem = await _show_status(
        client, body, STATUS_ACK, acknowledged_line(first.user_id, first.created_at, tz)
    )
    if problem is not None:
        await _tell(
            respond,
            f"Acknowledged, but I couldn't update the message (`{problem.response.get('error')}`).",
        )
    elif not recorded:
        who = "You" if first.user_id == user_id else f"<@{first.user_id}>"
        await _tell(respond, f"{who} already acknowledged this alert; nothing changed.")


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

    @app.action(ACTION_OPEN)
    async def on_open(ack: AsyncAck) -> None:
        # A link button: Slack opens the URL itself but still sends the press, and shows a
        # warning unless it is acknowledged.
        await ack()
