"""The watch end to end (SPEC §5b): turned on with `/budget watch`, fed by real check cycles
against the simulator (whose CI key runs away for three hours), delivered to the fake Slack,
its buttons pressed with signed payloads."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest

from bot.jobs.check import run_check
from bot.jobs.delivery import drain
from bot.jobs.digest import run_digest
from bot.messages.watch import (
    ACTION_EXPECTED,
    ACTION_REVOKE,
    ACTION_WATCH_OPEN,
    ACTION_WATCH_SNOOZE,
    STATUS_BLOCK,
)
from bot.sim.slack_api import Message
from bot.store import alerts, audit, snoozes
from bot.store import watch as watch_store
from bot.store.alerts import EpisodeFinding
from bot.store.db import immediate, to_text
from bot.store.digests import list_digests, set_digest
from tests.e2e.conftest import ADMIN, MEMBER, TEAM, TEAM_ID, Bot
from tests.e2e.test_actions import press, status_lines

CHANNEL = "CSPEND1"
SPIKE = TEAM.spike
STEP = timedelta(minutes=5)


async def check_at(bot: Bot, at: datetime) -> None:
    """One check cycle at `at` (the simulator shows what was visible then), then delivery."""
    bot.clock.set(at)
    deps = bot.deps
    await run_check(
        deps.db, lambda ws: deps.scenario_for(ws.team_id), deps.runtime.check_settings, at
    )
    await drain(deps.db, lambda team: deps.runtime.slack_for(team), deps.clock)


async def checks(bot: Bot, start: datetime, end: datetime) -> None:
    at = start
    while at <= end:
        await check_at(bot, at)
        at += STEP


async def turn_on(bot: Bot, text: str = f"watch <#{CHANNEL}|spend>") -> str:
    _, hook = await bot.command("/budget", text)
    return (await bot.response(hook))["text"]


def watch_messages(bot: Bot) -> list[Message]:
    return bot.slack.top_level(CHANNEL)


async def episode(bot: Bot) -> Message:
    """The watch on before the spike, checks every 5 minutes into it: its one message."""
    bot.clock.set(SPIKE.start - timedelta(minutes=30))
    await turn_on(bot)
    await checks(bot, SPIKE.start - timedelta(minutes=30), SPIKE.start + timedelta(minutes=30))
    [message] = watch_messages(bot)
    return message


async def test_admins_turn_the_watch_on_change_it_and_turn_it_off(bot: Bot) -> None:
    bot.clock.set(SPIKE.start)
    _, hook = await bot.command("/budget", "watch", user=MEMBER)
    assert "only workspace admins" in (await bot.response(hook))["text"]
    assert watch_store.get_watch(bot.db, TEAM_ID) is None

    text = await turn_on(bot)
    assert "Watch on" in text and f"<#{CHANNEL}>" in text and "`normal`" in text
    watch = watch_store.get_watch(bot.db, TEAM_ID)
    assert watch is not None and watch.channel_id == CHANNEL and watch.watch == "normal"

    assert "already alerts" in await turn_on(bot)  # the same again: nothing changes
    assert "Watch updated" in await turn_on(bot, f"watch high <#{CHANNEL}|spend>")
    _, hook = await bot.command("/budget", "list")
    listed = await bot.response(hook)
    assert any(f"Watch: on in <#{CHANNEL}>, `high`" in str(b) for b in listed["blocks"])

    # The watch is no budget: budget numbers never reach it.
    watch_id = watch_store.get_watch(bot.db, TEAM_ID).id  # type: ignore[union-attr]
    for text in (f"remove {watch_id}", f"snooze {watch_id} 1d", f"edit {watch_id} 5k"):
        _, hook = await bot.command("/budget", text)
        assert f"no budget #{watch_id}" in (await bot.response(hook))["text"], text
    assert watch_store.get_watch(bot.db, TEAM_ID) is not None

    _, hook = await bot.command("/budget", "watch loudly")
    assert "doesn't take `loudly`" in (await bot.response(hook))["text"]
    assert watch_store.get_watch(bot.db, TEAM_ID).watch == "high"  # type: ignore[union-attr]

    _, hook = await bot.command("/budget", "watch off")
    assert "Watch turned off" in (await bot.response(hook))["text"]
    assert watch_store.get_watch(bot.db, TEAM_ID) is None
    _, hook = await bot.command("/budget", "watch off")
    assert "already off" in (await bot.response(hook))["text"]

    _, hook = await bot.command("/budget", "history")
    history = (await bot.response(hook))["text"] + str((await bot.response(hook))["blocks"])
    assert f"turned the watch on in <#{CHANNEL}> (normal)" in history
    assert "turned the watch off" in history
    trail = [(e.action, e.actor) for e in reversed(audit.history(bot.db, TEAM_ID))]
    assert trail == [("watch.on", ADMIN), ("watch.edit", ADMIN), ("watch.off", ADMIN)]
    # The watch is no budget: `/budget list` and budget numbers never show it.
    assert "No budgets yet" in listed["text"]


async def test_a_runaway_key_is_one_message_naming_it_with_its_jobs_then_one_end_reply(
    bot: Bot,
) -> None:
    message = await episode(bot)
    text = message.text
    assert "🔑 CI pipeline" in text and "its usual rate" in text
    body = "\n".join(str(b) for b in message.blocks)
    assert "Costliest jobs" in body and "https://app.example/assets?openAssetId=" in body
    assert "Kling Video" in body  # the model it ran away on
    actions = message.blocks[-1]
    assert [e["action_id"] for e in actions["elements"]] == [
        ACTION_EXPECTED,
        ACTION_WATCH_SNOOZE,
        ACTION_WATCH_OPEN,
        ACTION_REVOKE,
    ]
    assert actions["elements"][2]["url"] == "https://app.example/settings/api"
    # Found within two checks of the burst's start (one to see it, one to confirm it).
    [post] = [c for c in bot.slack.calls_to("chat.postMessage") if c.args["channel"] == CHANNEL]
    [opened] = alerts.open_alerts(bot.db, watch_store.get_watch(bot.db, TEAM_ID).id)  # type: ignore[union-attr]
    assert opened.opened_at - SPIKE.start <= 2 * STEP
    # Since when, to the quarter hour: the key's own trickle before the burst is not its start.
    assert opened.finding is not None and opened.finding.since == SPIKE.start

    # Through the rest of the spike and after it: still one message, one reply at the end.
    await checks(bot, SPIKE.start + timedelta(minutes=35), SPIKE.end + timedelta(hours=2))
    assert watch_messages(bot) == [message]
    [reply] = bot.slack.replies(CHANNEL, message.ts)
    assert reply.text.startswith("✅ 🔑 CI pipeline is back to usual")
    [status] = status_lines(message, STATUS_BLOCK)
    assert status.startswith("✅ Back to usual")
    assert post.args["text"] == text


async def test_expected_is_for_admins_is_audited_and_quiets_the_key(bot: Bot) -> None:
    message = await episode(bot)
    payload, hook = press(bot, message, ACTION_EXPECTED, MEMBER)
    await bot.interact(payload)
    assert "only workspace admins" in (await bot.response(hook))["text"]
    assert not [e for e in audit.history(bot.db, TEAM_ID) if e.action == "watch.expected"]

    payload, hook = press(bot, message, ACTION_EXPECTED, ADMIN)
    await bot.interact(payload)
    [reply] = await bot.wait_for(lambda: bot.slack.replies(CHANNEL, message.ts), what="reply")
    assert reply.text.startswith(f"👍 <@{ADMIN}> marked this as expected")
    [status] = status_lines(message, STATUS_BLOCK)
    assert status.startswith(f"👍 Marked as expected by <@{ADMIN}>")
    [change] = [e for e in audit.history(bot.db, TEAM_ID) if e.action == "watch.expected"]
    assert change.actor == ADMIN and change.after["entity"] == f"key:{SPIKE.user_id}"

    # The key goes on running away: nothing more is posted about it, not even an end reply.
    await checks(bot, SPIKE.start + timedelta(minutes=35), SPIKE.end + timedelta(hours=2))
    assert watch_messages(bot) == [message]
    assert len(bot.slack.replies(CHANNEL, message.ts)) == 1

    payload, hook = press(bot, message, ACTION_EXPECTED, ADMIN)
    await bot.interact(payload)
    assert "already marked as expected" in (await bot.response(hook))["text"]


async def test_snooze_quiets_the_whole_watch_for_a_day_and_says_so_on_the_episode(
    bot: Bot,
) -> None:
    message = await episode(bot)
    payload, _ = press(bot, message, ACTION_WATCH_SNOOZE, ADMIN)
    await bot.interact(payload)
    [reply] = await bot.wait_for(lambda: bot.slack.replies(CHANNEL, message.ts), what="reply")
    assert reply.text.startswith(f"💤 <@{ADMIN}> snoozed the watch until")
    watch = watch_store.get_watch(bot.db, TEAM_ID)
    assert watch is not None
    assert snoozes.snoozed_until(bot.db, watch.id) == bot.clock() + timedelta(hours=24)
    [change] = [e for e in audit.history(bot.db, TEAM_ID) if e.action == "watch.snooze"]
    assert change.actor == ADMIN and change.target == "watch"
    [status] = status_lines(message, STATUS_BLOCK)
    assert status.startswith(f"💤 Watch snoozed by <@{ADMIN}> until")
    # Snoozed, the watch opens nothing new: the key's episode is ended by hand here, and
    # the key still running away for hours brings no second message.
    [episode_alert] = alerts.open_alerts(bot.db, watch.id)
    with immediate(bot.db):
        watch_store.end_episode(bot.db, episode_alert, now=bot.clock())
    await checks(bot, SPIKE.start + timedelta(minutes=35), SPIKE.start + timedelta(hours=2))
    assert watch_messages(bot) == [message]


async def test_a_scenario_outage_creates_no_episode_and_the_gap_is_filled_after(bot: Bot) -> None:
    calm = SPIKE.end + timedelta(hours=3)  # well after the spike: nothing unusual
    bot.clock.set(calm)
    await turn_on(bot)
    await checks(bot, calm, calm + timedelta(minutes=20))
    bot.simulator.faults.outage = True
    for minutes in range(25, 121, 30):  # a few failing checks are enough to be told
        await check_at(bot, calm + timedelta(minutes=minutes))
    bot.simulator.faults.outage = False
    await checks(bot, calm + timedelta(hours=2, minutes=5), calm + timedelta(hours=2, minutes=30))
    watch = watch_store.get_watch(bot.db, TEAM_ID)
    assert watch is not None
    assert alerts.open_alerts(bot.db, watch.id) == []
    assert bot.db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0
    # Only the health notices (down, then back) were posted; no watch alert.
    texts = [m.text for m in watch_messages(bot)]
    assert all("Scenario" in t for t in texts) and len(texts) == 2
    # The quarters missed during the outage were read afterwards, not left at zero.
    progress = watch_store.progress(bot.db, TEAM_ID)
    assert progress.filled_until is not None
    assert progress.filled_until >= calm + timedelta(hours=2)
    missed = calm + timedelta(hours=1)
    hour = [to_text(missed), to_text(missed + timedelta(hours=1))]
    [stored] = bot.db.execute(
        "SELECT SUM(cu) FROM watch_spend WHERE entity = 'team' AND bucket >= ? AND bucket < ?",
        hour,
    ).fetchone()
    assert stored == pytest.approx(TEAM.cu_between(missed, missed + timedelta(hours=1)))


async def submit_form(bot: Bot, view: dict[str, Any], *, user: str = ADMIN) -> dict[str, Any]:
    return await bot.submit_view(view, {}, user=user, view_id="V_REVOKE")


async def test_an_admin_revokes_the_runaway_key_after_a_confirmation_naming_it(bot: Bot) -> None:
    message = await episode(bot)
    payload, hook = press(bot, message, ACTION_REVOKE, MEMBER)
    await bot.interact(payload)
    assert "only workspace admins" in (await bot.response(hook))["text"]
    assert bot.slack.calls_to("views.open") == []

    payload, _ = press(bot, message, ACTION_REVOKE, ADMIN)
    await bot.interact(payload)
    [opened] = await bot.wait_for(lambda: bot.slack.calls_to("views.open"), what="views.open")
    form = opened.args["view"]
    question = str(form["blocks"])
    assert "🔑 CI pipeline" in question and "Game Art" in question
    assert SPIKE.user_id not in bot.simulator.revoked  # asking changes nothing

    # Submitted by someone who is no admin (a form passed around): refused, key kept.
    refused = await submit_form(bot, form, user=MEMBER)
    assert "Only admins" in str(refused["view"]["blocks"])
    assert SPIKE.user_id not in bot.simulator.revoked

    answer = await submit_form(bot, form)
    assert "Revoking" in str(answer["view"]["blocks"])
    [update] = await bot.wait_for(lambda: bot.slack.calls_to("views.update"), what="update")
    assert "is revoked" in str(update.args["view"]["blocks"])
    assert SPIKE.user_id in bot.simulator.revoked
    deletes = [r for r in bot.simulator.requests if r.method == "DELETE"]
    assert [r.path for r in deletes] == [
        f"/v1/projects/{SPIKE.project_id}/api-keys/{SPIKE.api_key_id}"
    ]
    [reply] = await bot.wait_for(lambda: bot.slack.replies(CHANNEL, message.ts), what="reply")
    assert reply.text.startswith(f"🔒 <@{ADMIN}> revoked the API key 🔑 CI pipeline")
    [status] = status_lines(message, STATUS_BLOCK)
    assert status.startswith(f"🔒 Key revoked by <@{ADMIN}>")
    assert ACTION_REVOKE not in [e["action_id"] for e in message.blocks[-1]["elements"]]
    [change] = [e for e in audit.history(bot.db, TEAM_ID) if e.action == "watch.revoke_key"]
    assert change.actor == ADMIN and change.after["project"] == "Game Art"

    # The same form again: Scenario has no such key any more; nothing else happens.
    await submit_form(bot, form)
    updates = await bot.wait_for(
        lambda: bot.slack.calls_to("views.update")[1:], what="second update"
    )
    assert "already revoked" in str(updates[0].args["view"]["blocks"])
    assert len([r for r in bot.simulator.requests if r.method == "DELETE"]) == 1


async def test_a_team_key_is_not_revoked_from_slack_and_the_person_is_told_where(
    bot: Bot,
) -> None:
    batch = next(u for u in TEAM.users if u.is_api_key and u.key_scope == "team")
    bot.clock.set(SPIKE.end + timedelta(hours=3))
    await turn_on(bot)
    watch = watch_store.get_watch(bot.db, TEAM_ID)
    assert watch is not None
    now = bot.clock()
    finding = EpisodeFinding(
        f"key:{batch.id}", "off-hours", 0.0, 300.0, now, now, name=f"🔑 {batch.key_name}"
    )
    with immediate(bot.db):
        watch_store.open_episode(bot.db, watch, finding, spend_cu=300.0, attribution=None, now=now)
    await bot.deps.deliver_now(TEAM_ID)
    [message] = await bot.wait_for(lambda: watch_messages(bot), what="episode")
    payload, hook = press(bot, message, ACTION_REVOKE, ADMIN)
    await bot.interact(payload)
    told = (await bot.response(hook))["text"]
    assert "is a team key" in told and "https://app.example/settings/api" in told
    assert bot.slack.calls_to("views.open") == [] and bot.simulator.revoked == {}


async def test_an_episode_whose_message_could_not_be_posted_is_told_where_the_watch_moves(
    bot: Bot,
) -> None:
    """The bot was removed from the watch's channel: the episode's post failed, and the
    channel problem shows in `/budget list`. The watch moved to a channel it is in, the
    episode — still going on — is told there, with everything so far, at the next check."""
    bot.clock.set(SPIKE.start - timedelta(minutes=30))
    await turn_on(bot)
    bot.slack.channel_errors[CHANNEL] = "not_in_channel"
    await checks(bot, SPIKE.start - timedelta(minutes=30), SPIKE.start + timedelta(minutes=15))
    assert watch_messages(bot) == []
    _, hook = await bot.command("/budget", "list")
    listed = str((await bot.response(hook))["blocks"])
    assert "delivery problem: `not_in_channel`" in listed

    await turn_on(bot, "watch <#COTHER1|other>")
    await checks(bot, SPIKE.start + timedelta(minutes=20), SPIKE.start + timedelta(minutes=30))
    [message] = bot.slack.top_level("COTHER1")
    assert "🔑 CI pipeline is spending" in message.text
    assert watch_messages(bot) == []


async def test_the_watch_is_not_turned_on_where_the_bot_cannot_post(bot: Bot) -> None:
    bot.slack.channel_errors["COTHER1"] = "is_archived"
    _, hook = await bot.command("/budget", "watch <#COTHER1|other>")
    told = (await bot.response(hook))["text"]
    assert "Nothing can be posted to <#COTHER1>: it is archived" in told
    assert watch_store.get_watch(bot.db, TEAM_ID) is None


async def test_watch_off_names_the_channel_it_was_in_or_refuses_another(bot: Bot) -> None:
    await turn_on(bot)
    _, hook = await bot.command("/budget", "watch off <#COTHER1|other>")
    assert f"alerts in <#{CHANNEL}>, not <#COTHER1>" in (await bot.response(hook))["text"]
    assert watch_store.get_watch(bot.db, TEAM_ID) is not None
    _, hook = await bot.command("/budget", f"watch off <#{CHANNEL}|spend>")
    assert "Watch turned off" in (await bot.response(hook))["text"]


async def test_the_digest_lists_the_days_episodes_with_its_alerts(bot: Bot) -> None:
    await episode(bot)
    deps = bot.deps
    day_after = SPIKE.start.replace(hour=12) + timedelta(days=1)
    set_digest(deps.db, TEAM_ID, "CDIGEST1", time(9), actor=ADMIN, now=day_after)
    [digest] = list_digests(deps.db)
    tz = deps.timezone_of(TEAM_ID)
    bot.clock.set(day_after)
    client = await deps.scenario_for(TEAM_ID)
    await run_digest(deps.db, client, digest, tz, day_after, "https://app.example")
    await drain(deps.db, lambda team: deps.runtime.slack_for(team), deps.clock)
    [posted] = bot.slack.top_level("CDIGEST1")
    body = str(posted.blocks)
    assert "Watch: 🔑 CI pipeline: spending far above its usual rate at" in body


async def test_another_workspace_cannot_press_an_episodes_buttons(bot: Bot) -> None:
    message = await episode(bot)
    for action in (ACTION_EXPECTED, ACTION_WATCH_SNOOZE, ACTION_REVOKE):
        payload, hook = press(bot, message, action, ADMIN)
        payload["team"] = {"id": "T_OTHER", "domain": "other"}
        payload["user"]["team_id"] = "T_OTHER"
        await bot.interact(payload)
        told = (await bot.response(hook))["text"]
        # Refused either way: not an admin of this workspace, or no such alert in it.
        assert "no longer exists" in told or "only workspace admins" in told, action
    watch = watch_store.get_watch(bot.db, TEAM_ID)
    assert watch is not None and snoozes.snoozed_until(bot.db, watch.id) is None
    assert not [e for e in audit.history(bot.db, TEAM_ID) if e.action.startswith("watch.")][1:]
    assert bot.slack.calls_to("views.open") == [] and bot.simulator.revoked == {}
