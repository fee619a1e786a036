"""The buttons on a real alert: fired by a check cycle, delivered to the fake Slack, pressed
with signed interactivity payloads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import run_check
from bot.jobs.delivery import drain
from bot.messages.alerts import (
    ACTION_ACKNOWLEDGE,
    ACTION_OPEN,
    ACTION_RAISE,
    ACTION_SNOOZE,
    STATUS_ACK,
    STATUS_SNOOZE,
)
from bot.sim.slack_api import Fault, Message
from bot.store import alerts, audit, snoozes
from bot.store.budgets import Budget, NewBudget, create_budget
from tests.e2e.conftest import ADMIN, ANCHOR, CONFIGURED_ADMIN, MEMBER, TEAM, TEAM_ID, Bot

Json = dict[str, Any]
CHANNEL = "C_SPEND"


# ---------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------


async def fire_alert(bot: Bot) -> tuple[Budget, Message]:
    """A budget on the simulator's runaway key, crossed: one alert message in CHANNEL."""
    budget = create_budget(
        bot.db,
        NewBudget(
            workspace_id=TEAM_ID,
            period=PeriodKind.ROLLING_24H,
            limit_cu=100,
            channel_id=CHANNEL,
            created_by=ADMIN,
            scope=Scope(ScopeKind.KEY, TEAM.spike.user_id),
            scope_name="Runaway key",
        ),
        now=ANCHOR,
    )
    deps = bot.deps
    await run_check(
        deps.db, lambda ws: deps.scenario_for(ws.team_id), deps.runtime.check_settings, ANCHOR
    )
    report = await drain(deps.db, lambda team: deps.runtime.slack_for(team), deps.clock)
    assert report.sent == 1
    [message] = bot.slack.top_level(CHANNEL)
    return budget, message


def press(bot: Bot, message: Message, action_id: str, user: str) -> tuple[Json, str]:
    """The payload Slack sends when ``user`` presses a button of ``message`` as it is now."""
    actions = next(b for b in message.blocks if b["type"] == "actions")
    button = next(e for e in actions["elements"] if e["action_id"] == action_id)
    hook = bot.new_hook()
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user, "team_id": TEAM_ID, "username": user.lower()},
        "api_app_id": "A_BOT",
        "token": "legacy-token-unused",
        "trigger_id": f"trigger-{hook}",
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": False,
        },
        "channel": {"id": message.channel, "name": "spend"},
        "message": message.as_json(with_metadata=False),
        "response_url": f"{bot.slack_origin}/response/{hook}",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": actions["block_id"],
                "value": button.get("value"),
                "action_ts": "1700000100.000001",
            }
        ],
    }
    return payload, hook


def status_lines(message: Message, block_id: str) -> list[str]:
    return [b["elements"][0]["text"] for b in message.blocks if b.get("block_id") == block_id]


def changes(bot: Bot, action: str) -> list[audit.AuditEntry]:
    return [e for e in audit.history(bot.db, TEAM_ID) if e.action == action]


async def test_an_admin_snoozes_for_24_hours_and_the_message_says_so(bot: Bot) -> None:
    budget, message = await fire_alert(bot)
    blocks_before = [dict(b) for b in message.blocks]
    payload, hook = press(bot, message, ACTION_SNOOZE, ADMIN)
    answer = await bot.interact(payload)
    assert answer.status_code == 200
    [update] = await bot.wait_for(lambda: bot.slack.calls_to("chat.update"), what="chat.update")
    assert update.args["channel"] == CHANNEL and update.args["ts"] == message.ts
    # One reply in the alert's thread says who snoozed it, until when (posted just after).
    [reply] = await bot.wait_for(lambda: bot.slack.replies(CHANNEL, message.ts), what="reply")
    assert reply.text.startswith(f"💤 <@{ADMIN}> snoozed this budget until <!date^")

    until = ANCHOR + timedelta(hours=24)
    assert snoozes.snoozed_until(bot.db, budget.id) == until
    [change] = changes(bot, "budget.snooze")
    assert change.actor == ADMIN and change.target == f"budget:{budget.id}"
    [line] = status_lines(message, STATUS_SNOOZE)
    assert line.startswith(f"💤 Snoozed by <@{ADMIN}> until <!date^{int(until.timestamp())}^")
    assert "|Fri 27 Nov 13:00 (Europe/Paris)>" in line  # the workspace's local time
    # The buttons stay, last, and the line sits just above them.
    assert message.blocks[-1]["type"] == "actions"
    assert [e["action_id"] for e in message.blocks[-1]["elements"]] == [
        ACTION_SNOOZE,
        ACTION_ACKNOWLEDGE,
        ACTION_RAISE,
        ACTION_OPEN,
    ]
    assert message.blocks[-2]["block_id"] == STATUS_SNOOZE
    assert message.blocks[0] == blocks_before[0]  # the alert itself is as it was
    assert bot.responses(hook) == []  # nothing to tell: the message shows it

    # Pressed again: no second audit row, no second line, no needless edit; the presser
    # hears why nothing changed.
    payload, hook = press(bot, message, ACTION_SNOOZE, CONFIGURED_ADMIN)
    await bot.interact(payload)
    reply = await bot.response(hook)
    assert reply["replace_original"] is False and reply["response_type"] == "ephemeral"
    assert "Already snoozed" in reply["text"] and f"<@{ADMIN}>" in reply["text"]
    assert len(changes(bot, "budget.snooze")) == 1
    assert len(bot.slack.calls_to("chat.update")) == 1
    assert len(status_lines(message, STATUS_SNOOZE)) == 1
    assert len(bot.slack.replies(CHANNEL, message.ts)) == 1


async def test_a_member_cannot_snooze_and_nothing_changes(bot: Bot) -> None:
    budget, message = await fire_alert(bot)
    blocks_before = [dict(b) for b in message.blocks]
    payload, hook = press(bot, message, ACTION_SNOOZE, MEMBER)
    await bot.interact(payload)
    reply = await bot.response(hook)
    assert reply["replace_original"] is False and reply["response_type"] == "ephemeral"
    assert "only workspace admins" in reply["text"] and "Nothing was changed" in reply["text"]
    assert snoozes.snoozed_until(bot.db, budget.id) is None
    assert changes(bot, "budget.snooze") == []
    assert bot.slack.calls_to("chat.update") == []
    assert message.blocks == blocks_before


async def test_a_longer_snooze_is_not_shortened_by_the_button(bot: Bot) -> None:
    budget, message = await fire_alert(bot)
    longer = ANCHOR + timedelta(days=3)
    snoozes.snooze(bot.db, TEAM_ID, budget.id, longer, actor=CONFIGURED_ADMIN, now=ANCHOR)
    await bot.deps.runtime.deliver(bot.deps.clock)
    [line] = status_lines(message, STATUS_SNOOZE)
    assert line.startswith(f"💤 Snoozed by <@{CONFIGURED_ADMIN}> until")
    payload, hook = press(bot, message, ACTION_SNOOZE, ADMIN)
    await bot.interact(payload)
    assert "Already snoozed" in (await bot.response(hook))["text"]
    assert snoozes.snoozed_until(bot.db, budget.id) == longer
    assert len(changes(bot, "budget.snooze")) == 1  # only the one made above
    assert status_lines(message, STATUS_SNOOZE) == [line]


async def test_anyone_acknowledges_once_and_pressing_again_changes_nothing(bot: Bot) -> None:
    _, message = await fire_alert(bot)
    alert_id = int(message.blocks[-1]["block_id"].removeprefix("alert:"))
    payload, _ = press(bot, message, ACTION_ACKNOWLEDGE, MEMBER)
    await bot.interact(payload)
    await bot.wait_for(lambda: bot.slack.calls_to("chat.update"), what="chat.update")
    [line] = status_lines(message, STATUS_ACK)
    assert line.startswith(f"✅ Acknowledged by <@{MEMBER}> · <!date^")
    assert message.blocks[-1]["type"] == "actions"
    [change] = changes(bot, "alert.acknowledge")
    assert change.actor == MEMBER and change.target == f"alert:{alert_id}"

    for user in (MEMBER, ADMIN):
        payload, hook = press(bot, message, ACTION_ACKNOWLEDGE, user)
        await bot.interact(payload)
        reply = await bot.response(hook)
        assert "already acknowledged" in reply["text"] and reply["replace_original"] is False
    assert len(changes(bot, "alert.acknowledge")) == 1
    assert len(bot.slack.calls_to("chat.update")) == 1
    assert status_lines(message, STATUS_ACK) == [line]
    [reply] = await bot.wait_for(lambda: bot.slack.replies(CHANNEL, message.ts), what="reply")
    assert reply.text == f"👀 <@{MEMBER}> acknowledged this alert."
    first = alerts.get_alert(bot.db, TEAM_ID, alert_id)
    assert first is not None and first.acknowledged_by == MEMBER


async def test_an_escalation_after_an_acknowledgement_keeps_it_and_replies_in_the_thread(
    bot: Bot,
) -> None:
    """Findings 1 and 9: a jump past two levels, then the next level, is one message: the
    escalation edits it (it still says who acknowledged it) and adds one reply to its thread."""
    key = TEAM.spike.user_id
    early = TEAM.spike.start + (TEAM.spike.end - TEAM.spike.start) / 2
    spent_early = TEAM.cu_between(early - timedelta(hours=24), early, user_ids=[key])
    spent_now = TEAM.cu_between(ANCHOR - timedelta(hours=24), ANCHOR, user_ids=[key])
    limit = spent_now / 1.05
    first_level = int(spent_early / limit * 100)
    assert 2 <= first_level < 100  # the spike is under way at `early`
    budget = create_budget(
        bot.db,
        NewBudget(
            workspace_id=TEAM_ID,
            period=PeriodKind.ROLLING_24H,
            limit_cu=limit,
            channel_id=CHANNEL,
            created_by=ADMIN,
            scope=Scope(ScopeKind.KEY, key),
            thresholds=(1, first_level, 100),
        ),
        now=early,
    )
    deps = bot.deps
    for now in (early, ANCHOR):
        bot.clock.set(now)
        await run_check(
            deps.db, lambda ws: deps.scenario_for(ws.team_id), deps.runtime.check_settings, now
        )
        await deps.runtime.deliver(deps.clock)
        if now == early:
            [message] = bot.slack.top_level(CHANNEL)
            assert f"{first_level} % of budget reached" in message.text
            payload, _ = press(bot, message, ACTION_ACKNOWLEDGE, MEMBER)
            await bot.interact(payload)
            await bot.wait_for(
                lambda shown=message: status_lines(shown, STATUS_ACK), what="acknowledged"
            )
    assert bot.slack.top_level(CHANNEL) == [message]
    assert "100 % of budget reached" in message.text
    assert status_lines(message, STATUS_ACK)  # still there after the rebuild
    thread = await bot.wait_for(
        lambda: (
            len(bot.slack.replies(CHANNEL, message.ts)) >= 2
            and bot.slack.replies(CHANNEL, message.ts)
        ),
        what="two replies",
    )
    replies = [r.text for r in thread]
    assert len(replies) == 2
    assert replies[0].startswith("👀") and replies[1].startswith("⬆️ Now at 105 %: crossed 100 %")
    assert snoozes.snoozed_until(bot.db, budget.id) is None


async def test_snooze_and_acknowledge_each_keep_their_own_line(bot: Bot) -> None:
    _, message = await fire_alert(bot)
    payload, _ = press(bot, message, ACTION_ACKNOWLEDGE, MEMBER)
    await bot.interact(payload)
    await bot.wait_for(lambda: status_lines(message, STATUS_ACK), what="acknowledged line")
    payload, _ = press(bot, message, ACTION_SNOOZE, ADMIN)
    await bot.interact(payload)
    await bot.wait_for(lambda: status_lines(message, STATUS_SNOOZE), what="snoozed line")
    kinds = [b.get("block_id") for b in message.blocks[-3:]]
    assert kinds == [STATUS_SNOOZE, STATUS_ACK, message.blocks[-1]["block_id"]]
    assert message.blocks[0]["type"] == "header"  # the alert itself is as it was


@pytest.mark.parametrize("action_id", [ACTION_SNOOZE, ACTION_ACKNOWLEDGE])
async def test_a_button_of_a_budget_that_is_gone_or_elsewhere_changes_nothing(
    bot: Bot, action_id: str
) -> None:
    _, message = await fire_alert(bot)
    payload, hook = press(bot, message, action_id, ADMIN)
    payload["actions"][0]["value"] = "999"  # forged or removed since
    await bot.interact(payload)
    reply = await bot.response(hook)
    assert "no longer exists" in reply["text"]
    assert bot.slack.calls_to("chat.update") == []
    assert changes(bot, "budget.snooze") == changes(bot, "alert.acknowledge") == []


async def test_open_in_scenario_is_acknowledged_and_does_nothing_else(bot: Bot) -> None:
    _, message = await fire_alert(bot)
    payload, hook = press(bot, message, ACTION_OPEN, MEMBER)
    answer = await bot.interact(payload)
    assert answer.status_code == 200 and answer.text == ""
    # Bolt itself asks auth.test who the bot is; the listener calls nothing.
    assert [c.method for c in bot.slack.calls] == ["chat.postMessage", "auth.test"]
    assert bot.responses(hook) == []


async def test_when_slack_cannot_say_who_snoozes_it_is_said_and_nothing_changes(
    bot: Bot,
) -> None:
    budget, message = await fire_alert(bot)
    bot.slack.fail_next("users.info", Fault(status=200, error="ratelimited"))
    payload, hook = press(bot, message, ACTION_SNOOZE, ADMIN)
    await bot.interact(payload)
    reply = await bot.response(hook)
    assert "couldn't confirm your admin rights" in reply["text"]
    assert "only workspace admins" not in reply["text"]
    assert snoozes.snoozed_until(bot.db, budget.id) is None
