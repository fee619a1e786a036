"""The App Home tab (SPEC §7): the workspace's budgets with spend bars, the last alerts, and
buttons to add a budget and open the digest settings.

The tab is published whenever someone opens it (and after a change made from it). Spend
comes from Scenario through the same reads as `/budget list`; when Scenario cannot be read
the tab says so and still lists the budgets. Everyone sees the same buttons: changes are for
admins, and a non-admin who presses one gets a small modal that says so — a DM would land in
the Messages tab, which the manifest turns off, and Home has no channel for an ephemeral.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.budgets.evaluate import AlertKind
from bot.jobs.status import BudgetStatus, read_statuses
from bot.slack import blocks
from bot.slack.admins import REFUSAL
from bot.slack.modals import ADMIN_CHECK_SLOW, message_view, open_budget_modal
from bot.store import alerts
from bot.store.alerts import AlertRow
from bot.store.budgets import Budget, BudgetNotFound, get_budget, list_budgets
from bot.store.digests import Digest, get_digest, list_digests, set_digest, turn_off

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp

    from bot.slack.app import Deps

log = logging.getLogger(__name__)

Json = dict[str, Any]

MAX_BLOCKS = 100  # Slack's limit for the Home tab
RECENT_ALERTS = 8
ACTION_ADD = "home_add_budget"
ACTION_EDIT = "home_edit_budget"
ACTION_DIGEST = "home_digest_settings"
ACTION_REFRESH = "home_refresh"
DIGEST_CALLBACK = "digest_settings"
BLOCK_DIGEST_CHANNEL = "digest_channel"
BLOCK_DIGEST_TIME = "digest_time"
BLOCK_DIGEST_OFF = "digest_off"
DIGEST_OFF = "off"
DEFAULT_DIGEST_TIME = "09:00"


# ---------------------------------------------------------------------------------------------
# The views (pure)
# ---------------------------------------------------------------------------------------------


def budget_line(status: BudgetStatus, tz: str, now: datetime) -> str:
    budget = status.budget
    head = f"*{blocks.escape(budget.label)}* · alerts in <#{budget.channel_id}>"
    if status.spend is None:
        spend = (
            f"{blocks.progress_bar(0, 0)} spend unavailable · limit {blocks.cu(budget.limit_cu)}"
        )
    else:
        spend = (
            f"{blocks.progress_bar(status.spend, budget.limit_cu)} *{blocks.cu(status.spend)}*"
            f" of {blocks.cu(budget.limit_cu)} · *{blocks.percent(status.spend, budget.limit_cu)}*"
        )
        if status.forecast is not None:
            spend += f" · 📈 likely {blocks.likely_range(status.forecast)} by the period's end"
    thresholds = ", ".join(f"{t} %" for t in budget.thresholds)
    state = f"{status.state(tz, now)} · alerts at {thresholds}"
    if budget.forecast:
        state += " and on forecast"
    return f"{head}\n{spend}\n{state}"


def alert_line(alert: AlertRow, label: str, tz: str) -> str:
    """One recent alert; ``label`` is the budget's label as stored (escaped here)."""
    when = blocks.local_time(alert.fired_at, tz)
    label = blocks.escape(label)
    amounts = f"{blocks.cu(alert.spend_cu)} of {blocks.cu(alert.limit_cu)}"
    if alert.kind is AlertKind.FORECAST:
        line = f"🔮 *{label}* on track to exceed its limit — {amounts}"
    else:
        icon = "🔴" if alert.level >= 100 else "🟠" if alert.level >= 80 else "🟡"
        line = f"{icon} *{label}* reached {alert.level} % — {amounts}"
    if alert.resolved_at is not None:
        line += " · since back under"
    return f"• {line} · {when}"


def digest_lines(digests: list[Digest], tz: str) -> str:
    if not digests:
        return "*Daily digest*: none yet."
    places = ", ".join(f"{d.at} in <#{d.channel_id}>" for d in digests)
    return f"*Daily digest*: {places} ({tz} time)."


def home_view(
    *,
    statuses: list[BudgetStatus],
    scenario_error: str | None,
    recent: list[AlertRow],
    labels: dict[int, str],
    digests: list[Digest],
    tz: str,
    now: datetime,
) -> Json:
    """The Home tab: at most MAX_BLOCKS blocks whatever the number of budgets."""
    top: list[Json] = [
        blocks.header("Scenario budgets"),
        blocks.context(
            f"Spend in Compute Units (CU) · periods in {tz} · updated {blocks.local_time(now, tz)}"
        ),
        {
            "type": "actions",
            "block_id": "home_actions",
            "elements": [
                {**blocks.button("Add budget", ACTION_ADD), "style": "primary"},
                blocks.button("Digest settings", ACTION_DIGEST),
                blocks.button("Refresh", ACTION_REFRESH),
            ],
        },
        {"type": "divider"},
    ]
    if scenario_error is not None:
        top.append(
            blocks.section(
                f"⚠️ I couldn't read Scenario just now ({blocks.escape(scenario_error)})."
                " The budgets are "
                "listed without their spend; press *Refresh* in a minute."
            )
        )
    if not statuses:
        top.append(
            blocks.section(
                "No budgets yet. Press *Add budget*, or type "
                "`/budget add 12k monthly` in the channel where alerts should go."
            )
        )

    shown = [line for line in recent if line.budget_id in labels]
    alert_text = "\n".join(alert_line(a, labels[a.budget_id], tz) for a in shown[:RECENT_ALERTS])
    bottom: list[Json] = [
        {"type": "divider"},
        blocks.header("Recent alerts"),
        blocks.section(alert_text or "No alerts yet."),
        {"type": "divider"},
        blocks.section(digest_lines(digests, tz)),
        blocks.context(
            "`/budget help` lists every command. Only admins can add or change budgets; "
            "`/budget list` and `/budget history` are open to everyone."
        ),
    ]

    room = MAX_BLOCKS - len(top) - len(bottom)
    budget_blocks: list[Json] = []
    visible = statuses if len(statuses) <= room else statuses[: room - 1]
    for status in visible:
        block = blocks.section(budget_line(status, tz, now))
        block["accessory"] = blocks.button("Edit", ACTION_EDIT, value=str(status.budget.id))
        budget_blocks.append(block)
    if len(visible) < len(statuses):
        budget_blocks.append(
            blocks.context(
                f"…and {len(statuses) - len(visible)} more: `/budget list` shows every budget."
            )
        )
    return {"type": "home", "blocks": [*top, *budget_blocks, *bottom]}


def _text(text: str) -> Json:
    return {"type": "plain_text", "text": text}


def digest_modal_view(digests: list[Digest], tz: str) -> Json:
    """Set the daily digest of a channel, or turn it off; shows the digests there are."""
    current = digests[0] if digests else None
    channel: Json = {
        "type": "conversations_select",
        "action_id": "channel",
        "placeholder": _text("Pick a channel"),
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if current is not None:
        channel["initial_conversation"] = current.channel_id
    off = {"text": _text("Turn the digest off in this channel"), "value": DIGEST_OFF}
    return {
        "type": "modal",
        "callback_id": DIGEST_CALLBACK,
        "title": _text("Daily digest"),
        "submit": _text("Save"),
        "close": _text("Cancel"),
        "blocks": [
            blocks.section(
                digest_lines(digests, tz)
                + "\nEach day at the time you pick: yesterday's spend, every budget's progress"
                " and a 14-day chart."
            ),
            {
                "type": "input",
                "block_id": BLOCK_DIGEST_CHANNEL,
                "label": _text("Channel"),
                "element": channel,
            },
            {
                "type": "input",
                "block_id": BLOCK_DIGEST_TIME,
                "label": _text(f"Time ({tz})"),
                "element": {
                    "type": "timepicker",
                    "action_id": "time",
                    "initial_time": current.at if current else DEFAULT_DIGEST_TIME,
                },
            },
            {
                "type": "input",
                "block_id": BLOCK_DIGEST_OFF,
                "optional": True,
                "label": _text("Off"),
                "element": {"type": "checkboxes", "action_id": "off", "options": [off]},
            },
        ],
    }


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


# ---------------------------------------------------------------------------------------------
# Slack side
# ---------------------------------------------------------------------------------------------


async def build_home(deps: Deps, team_id: str) -> Json:
    now = deps.clock()
    tz = deps.timezone_of(team_id)
    budgets = list_budgets(deps.db, team_id)
    error: str | None = None
    try:
        client = await deps.scenario_for(team_id)
        statuses, failure = await read_statuses(deps.db, client, budgets, tz, now)
        error = failure.message if failure is not None else None
    except Exception as exc:  # e.g. no credentials: still show the budgets
        log.warning("Home tab: Scenario unreadable: %s", type(exc).__name__)
        statuses, error = [_without_spend(deps, b) for b in budgets], "not configured"
    return home_view(
        statuses=statuses,
        scenario_error=error,
        recent=alerts.recent_alerts(deps.db, team_id, limit=RECENT_ALERTS),
        labels={b.id: b.label for b in budgets},
        digests=list_digests(deps.db, team_id),
        tz=tz,
        now=now,
    )


def _without_spend(deps: Deps, budget: Budget) -> BudgetStatus:
    return BudgetStatus(
        budget=budget,
        period=None,
        spend=None,
        forecast=None,
        alerted_level=None,
        snoozed_until=alerts.snoozed_until(deps.db, budget.id),
        delivery_problem=None,
    )


async def publish_home(client: AsyncWebClient, deps: Deps, team_id: str, user_id: str) -> None:
    view = await build_home(deps, team_id)
    try:
        await client.views_publish(user_id=user_id, view=view)
    except SlackApiError as exc:
        log.warning("could not publish the Home tab of %s: %s", user_id, exc)


def _ids(body: Json) -> tuple[str, str, str]:
    team_id = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or ""
    return team_id, (body.get("user") or {}).get("id") or "", body.get("trigger_id") or ""


async def _refuse(client: AsyncWebClient, trigger_id: str, text: str = REFUSAL) -> None:
    await client.views_open(trigger_id=trigger_id, view=message_view("Admins only", text))


async def add_pressed(body: Json, client: AsyncWebClient, deps: Deps) -> None:
    team_id, user_id, trigger_id = _ids(body)
    if not await deps.admins.is_admin(client, team_id, user_id):
        return await _refuse(client, trigger_id)
    await open_budget_modal(client, trigger_id, deps, team_id, "", None, from_home=True)


async def edit_pressed(body: Json, client: AsyncWebClient, deps: Deps) -> None:
    team_id, user_id, trigger_id = _ids(body)
    if not await deps.admins.is_admin(client, team_id, user_id):
        return await _refuse(client, trigger_id)
    raw = str(((body.get("actions") or [{}])[0]).get("value") or "")
    try:
        if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
            raise BudgetNotFound(0)
        budget = get_budget(deps.db, team_id, int(raw))
    except BudgetNotFound:
        await client.views_open(
            trigger_id=trigger_id,
            view=message_view("Budget gone", "That budget no longer exists."),
        )
        await publish_home(client, deps, team_id, user_id)
        return
    await open_budget_modal(client, trigger_id, deps, team_id, "", budget, from_home=True)


async def digest_pressed(body: Json, client: AsyncWebClient, deps: Deps) -> None:
    team_id, user_id, trigger_id = _ids(body)
    tz = deps.timezone_of(team_id)
    digests = list_digests(deps.db, team_id)
    if not await deps.admins.is_admin(client, team_id, user_id):
        return await _refuse(client, trigger_id, f"{REFUSAL}\n\n{digest_lines(digests, tz)}")
    await client.views_open(trigger_id=trigger_id, view=digest_modal_view(digests, tz))


async def submit_digest(ack: AsyncAck, body: Json, client: AsyncWebClient, deps: Deps) -> None:
    team_id, user_id, _ = _ids(body)
    view = body.get("view") or {}
    team_id = team_id or view.get("team_id") or ""
    try:
        # Bounded: the answer (errors included) must reach Slack within 3 s.
        admin = await asyncio.wait_for(deps.admins.is_admin(client, team_id, user_id), 2.0)
    except TimeoutError:
        return await ack(response_action="errors", errors={BLOCK_DIGEST_CHANNEL: ADMIN_CHECK_SLOW})
    if not admin:
        return await ack(
            response_action="errors",
            errors={BLOCK_DIGEST_CHANNEL: "Only admins can change the digest. Nothing was saved."},
        )
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
        text = f"The daily digest in <#{channel}> is off."
    else:
        assert at is not None
        current = get_digest(deps.db, team_id, channel)
        set_digest(
            deps.db,
            team_id,
            channel,
            at,
            actor=user_id,
            now=deps.clock(),
            # The form has no "quiet" box: keep what `/budget digest … quiet` chose.
            when_empty=current.when_empty if current else "line",
        )
        text = (
            f"✅ The daily digest goes to <#{channel}> at {at.strftime('%H:%M')} ({tz} time)."
            " Invite me there if I'm not in it yet (`/invite @Budget Bot`)."
        )
    deps.runtime.digests_changed()
    await ack(response_action="update", view=message_view("Daily digest", text))
    await publish_home(client, deps, team_id, user_id)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: Json, body: Json, client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab (turned off in the manifest) has nothing to publish
        team_id = body.get("team_id") or event.get("view", {}).get("team_id") or ""
        await publish_home(client, deps, team_id, event["user"])

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
        team_id, user_id, _ = _ids(body)
        await publish_home(client, deps, team_id, user_id)

    @app.view(DIGEST_CALLBACK)
    async def on_digest_submit(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await submit_digest(ack, body, client, deps)
