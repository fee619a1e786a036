"""The Raise budget button (SPEC §5): admins only; it opens the budget's edit form with a
higher limit filled in; saving edits the alert in place, says who raised it to what, adds one
reply, is audited, and re-arms the levels above the spend (a later crossing is told in the
same thread, never as a second message)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import run_check
from bot.messages.alerts import ACTION_RAISE, STATUS_LIMIT
from bot.messages.modals import BLOCK_LIMIT
from bot.messages.mrkdwn import Json
from bot.sim.slack_api import Fault, Message
from bot.slack import admins
from bot.slack.actions.alerts import STALE_ALERT
from bot.store.budgets import NewBudget, create_budget, get_budget
from tests.e2e.conftest import ADMIN, ANCHOR, MEMBER, TEAM, TEAM_ID, Bot
from tests.e2e.test_actions import CHANNEL, changes, fire_alert, press, status_lines
from tests.e2e.test_budget import ask, everything
from tests.e2e.test_modal import field, submit


def two_figures_up(value: float) -> float:
    """Rounded up to two significant figures, computed another way than the bot does."""
    step = 10 ** (math.floor(math.log10(value)) - 1)
    return math.ceil(round(value / step, 9)) * step


async def check_and_deliver(bot: Bot, now: datetime) -> None:
    deps = bot.deps
    bot.clock.set(now)
    await run_check(
        deps.db, lambda ws: deps.scenario_for(ws.team_id), deps.runtime.check_settings, now
    )
    await deps.runtime.deliver(deps.clock)


async def test_an_admin_raises_the_limit_and_the_alert_says_so_in_place(bot: Bot) -> None:
    key = TEAM.spike.user_id
    early = TEAM.spike.start + (TEAM.spike.end - TEAM.spike.start) * 0.3
    spend = TEAM.cu_between(early - timedelta(hours=24), early, user_ids=[key])
    budget = create_budget(
        bot.db,
        NewBudget(TEAM_ID, PeriodKind.ROLLING_24H, 1000, CHANNEL, ADMIN, Scope(ScopeKind.KEY, key)),
        now=early,
    )
    await check_and_deliver(bot, early)
    [message] = bot.slack.top_level(CHANNEL)
    assert spend > 1000 and "100 % of budget reached" in message.text
    payload, hook = press(bot, message, ACTION_RAISE, ADMIN)
    await bot.interact(payload)
    [opened] = await bot.wait_for(lambda: bot.slack.calls_to("views.open"), what="views.open")
    view = opened.args["view"]
    assert opened.args["trigger_id"] == payload["trigger_id"]
    proposed = two_figures_up(spend * 1.25)  # no forecast on a rolling window: +25 %
    assert float(field(view, BLOCK_LIMIT)["initial_value"]) == proposed
    assert view["title"]["text"] == f"Raise budget #{budget.id}"

    answer = await submit(bot, view)
    assert answer["response_action"] == "update"
    assert get_budget(bot.db, TEAM_ID, budget.id).limit_cu == proposed
    [edit] = changes(bot, "budget.edit")
    assert edit.actor == ADMIN
    assert (edit.before["limit_cu"], edit.after["limit_cu"]) == (1000, proposed)

    # The alert message itself, edited in place: the new limit, who raised it, the level
    # the spend is at now; one reply in its thread.
    await bot.wait_for(lambda: status_lines(message, STATUS_LIMIT), what="the limit line")
    [line] = status_lines(message, STATUS_LIMIT)
    assert line.startswith(f"✏️ Limit raised to {proposed:,.0f} CU (from 1,000 CU) by <@{ADMIN}>")
    level_now = max(t for t in (50, 80, 100) if spend / proposed * 100 >= t)
    assert f"{level_now} % of budget reached" in message.text
    [reply] = await bot.wait_for(lambda: bot.slack.replies(CHANNEL, message.ts), what="reply")
    assert reply.text.startswith(f"✏️ <@{ADMIN}> raised the limit to {proposed:,.0f} CU")

    # Re-armed: the key goes on and crosses the new limit: told in the same thread.
    spent_later = TEAM.cu_between(ANCHOR - timedelta(hours=24), ANCHOR, user_ids=[key])
    assert spent_later > proposed
    await check_and_deliver(bot, ANCHOR)
    replies = [r.text for r in bot.slack.replies(CHANNEL, message.ts)]
    assert len(replies) == 2 and "crossed 100 %" in replies[1], replies
    assert "100 % of budget reached" in message.text
    assert bot.slack.top_level(CHANNEL) == [message]
    assert bot.responses(hook) == []


async def test_a_member_cannot_raise_and_no_form_opens(bot: Bot) -> None:
    budget, message = await fire_alert(bot)
    payload, hook = press(bot, message, ACTION_RAISE, MEMBER)
    await bot.interact(payload)
    refusal = await bot.response(hook)
    assert "only workspace admins" in refusal["text"] and "Nothing was changed" in refusal["text"]
    assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
    assert bot.slack.calls_to("views.open") == []
    assert get_budget(bot.db, TEAM_ID, budget.id).limit_cu == 100


async def test_raise_on_a_removed_budget_says_so(bot: Bot) -> None:
    budget, message = await fire_alert(bot)
    bot.db.execute("DELETE FROM budgets WHERE id = ?", [budget.id])
    payload, hook = press(bot, message, ACTION_RAISE, ADMIN)
    await bot.interact(payload)
    assert "no longer exists" in (await bot.response(hook))["text"]
    assert bot.slack.calls_to("views.open") == []


def form_note(view: Json) -> str:
    return view["blocks"][0]["elements"][0]["text"]


async def raise_form(bot: Bot, message: Message, user: str = ADMIN) -> Json:
    payload, _ = press(bot, message, ACTION_RAISE, user)
    await bot.interact(payload)
    [opened] = await bot.wait_for(lambda: bot.slack.calls_to("views.open"), what="views.open")
    return opened.args["view"]


async def test_raise_after_the_period_changed_proposes_nothing_from_old_figures(
    bot: Bot,
) -> None:
    budget, message = await fire_alert(bot)
    assert "updated" in everything(await ask(bot, f"edit {budget.id} weekly"))
    before = message.text
    view = await raise_form(bot, message)
    assert float(field(view, BLOCK_LIMIT)["initial_value"]) == 100  # the limit it has now
    assert form_note(view).startswith(STALE_ALERT)
    assert view["title"]["text"] == f"Edit budget #{budget.id}"
    answer = await submit(bot, view, limit="5k")
    assert answer["response_action"] == "update"
    assert get_budget(bot.db, TEAM_ID, budget.id).limit_cu == 5_000
    await bot.deps.runtime.deliver(bot.deps.clock)
    # The old alert is another story: its message is left as it was, with no reply.
    assert message.text == before and bot.slack.replies(CHANNEL, message.ts) == []


async def test_raise_after_the_period_ended_proposes_nothing_from_old_figures(bot: Bot) -> None:
    month_start = datetime(ANCHOR.year, ANCHOR.month, 1, tzinfo=UTC)
    budget = create_budget(
        bot.db,
        NewBudget(TEAM_ID, PeriodKind.MONTHLY, 100, CHANNEL, ADMIN),
        now=month_start,
    )
    await check_and_deliver(bot, ANCHOR)
    [message] = bot.slack.top_level(CHANNEL)
    bot.clock.set(ANCHOR + timedelta(days=40))  # next month, whatever ANCHOR's day
    view = await raise_form(bot, message)
    assert float(field(view, BLOCK_LIMIT)["initial_value"]) == budget.limit_cu
    assert form_note(view).startswith(STALE_ALERT)


async def test_a_slow_admin_check_still_opens_the_form_and_its_save_checks_rights(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget, message = await fire_alert(bot)
    monkeypatch.setattr(admins, "OPEN_WITHIN", 0.1)
    bot.slack.fail_next("users.info", Fault(slow=1.0))
    # Opened before Slack answers whether the member is an admin (the trigger lasts 3 s) …
    view = await raise_form(bot, message, user=MEMBER)
    assert bot.slack.calls_to("views.open")
    # … and the Save waits for the same answer (asked once) and refuses.
    answer = await submit(bot, view, user=MEMBER)
    assert answer["response_action"] == "errors"
    assert "Only workspace admins" in next(iter(answer["errors"].values()))
    assert len(bot.slack.calls_to("users.info")) == 1
    assert get_budget(bot.db, TEAM_ID, budget.id).limit_cu == 100


async def test_a_raise_saved_while_slack_is_slow_to_edit_the_alert_says_saved(
    bot: Bot,
) -> None:
    """Editing the alert's message comes after the answer: a slow Slack there cannot make
    the form say "nothing was saved" of an edit that was."""
    budget, message = await fire_alert(bot)
    view = await raise_form(bot, message)
    bot.slack.fail_next("chat.update", Fault(slow=3.0))
    answer = await submit(bot, view, limit="5k")
    assert answer["response_action"] == "update"
    assert get_budget(bot.db, TEAM_ID, budget.id).limit_cu == 5_000
    await bot.wait_for(lambda: status_lines(message, STATUS_LIMIT), within=15, what="the edit")
