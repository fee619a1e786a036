"""Before a budget is saved, the bot asks Slack whether it can post to the chosen channel
(SPEC §4): each way it cannot is said at once with how to fix it, and nothing is saved. A
Slack that does not say (an old installation without `channels:read`, a rate limit) saves."""

from __future__ import annotations

import pytest

from bot.messages import modals
from bot.messages.modals import BLOCK_CHANNEL, FIRST_BLOCK
from bot.sim.slack_api import Fault
from bot.slack.views import budget_modal
from bot.store.budgets import list_budgets
from tests.e2e.conftest import TEAM_ID, Bot
from tests.e2e.test_budget import ask, audit_rows, everything
from tests.e2e.test_modal import opened_view, submit

ANSWERS = {
    "not_in_channel": ("I'm not a member of <#CSPEND1>", "/invite @Budget Bot"),
    "channel_not_found": ("I can't see <#CSPEND1>: it is private", "/invite @Budget Bot"),
    "is_archived": ("Nothing can be posted to <#CSPEND1>: it is archived", "another channel"),
}


@pytest.mark.parametrize("error", sorted(ANSWERS))
async def test_add_refuses_a_channel_the_bot_cannot_post_to(bot: Bot, error: str) -> None:
    bot.slack.channel_errors["CSPEND1"] = error
    answer = everything(await ask(bot, "add 5k monthly <#CSPEND1|spend>"))
    why, fix = ANSWERS[error]
    assert why in answer and fix in answer and "Nothing was saved" in answer
    assert list_budgets(bot.db, TEAM_ID) == []
    assert audit_rows(bot) == []
    [asked] = bot.slack.calls_to("conversations.info")
    assert asked.args["channel"] == "CSPEND1"


async def test_the_channel_the_command_was_typed_in_is_checked_too(bot: Bot) -> None:
    bot.slack.channel_errors["C_GENERAL"] = "not_in_channel"
    answer = everything(await ask(bot, "add 5k monthly", channel="C_GENERAL"))
    assert "I'm not a member of <#C_GENERAL>" in answer
    assert list_budgets(bot.db, TEAM_ID) == []


@pytest.mark.parametrize("error", sorted(ANSWERS))
async def test_edit_to_such_a_channel_changes_nothing(bot: Bot, error: str) -> None:
    await ask(bot, "add 5k monthly")
    bot.slack.channel_errors["CSPEND1"] = error
    answer = everything(await ask(bot, "edit 1 6k <#CSPEND1|spend>"))
    assert ANSWERS[error][0] in answer and "Nothing was saved" in answer
    [budget] = list_budgets(bot.db, TEAM_ID)
    assert (budget.channel_id, budget.limit_cu) == ("C_GENERAL", 5_000)
    assert [row["action"] for row in audit_rows(bot)] == ["budget.add"]


async def test_an_edit_that_keeps_the_channel_does_not_ask(bot: Bot) -> None:
    await ask(bot, "add 5k monthly")
    bot.slack.channel_errors["C_GENERAL"] = "not_in_channel"  # e.g. removed since
    calls = len(bot.slack.calls_to("conversations.info"))
    answer = everything(await ask(bot, "edit 1 6k"))
    assert "updated" in answer
    assert len(bot.slack.calls_to("conversations.info")) == calls


async def test_the_form_shows_the_problem_next_to_the_channel_picker(bot: Bot) -> None:
    bot.slack.channel_errors["CSPEND1"] = "not_in_channel"
    view = await opened_view(bot, "add")
    answer = await submit(bot, view, limit="5k", period="monthly", channel="CSPEND1")
    assert answer["response_action"] == "errors"
    error = answer["errors"][BLOCK_CHANNEL]
    assert error.startswith("I'm not a member of this channel") and "“/invite" in error
    assert list_budgets(bot.db, TEAM_ID) == []


@pytest.mark.parametrize("refusal", ["missing_scope", "ratelimited", "internal_error"])
async def test_when_slack_does_not_say_the_budget_is_saved(bot: Bot, refusal: str) -> None:
    bot.slack.fail_next("conversations.info", Fault(status=200, error=refusal))
    answer = everything(await ask(bot, "add 5k monthly <#CSPEND1|spend>"))
    assert "added" in answer
    [budget] = list_budgets(bot.db, TEAM_ID)
    assert budget.channel_id == "CSPEND1"


async def test_a_slow_channel_check_in_the_form_does_not_blame_scenario(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budget_modal, "SUBMIT_WITHIN", 0.3)
    bot.slack.fail_next("conversations.info", Fault(slow=0.8))
    view = modals.budget_modal_view(team_id=TEAM_ID, channel_id="C_GENERAL", budget=None)
    answer = await submit(bot, view, limit="5k", period="monthly", channel="CSPEND1")
    assert answer == {"response_action": "errors", "errors": {FIRST_BLOCK: budget_modal.SAVE_SLOW}}
    assert "Scenario" not in budget_modal.SAVE_SLOW
    assert list_budgets(bot.db, TEAM_ID) == []

    answer = await submit(bot, view, limit="5k", period="monthly", channel="CSPEND1")
    assert answer["response_action"] == "update"
    [budget] = list_budgets(bot.db, TEAM_ID)
    assert budget.channel_id == "CSPEND1"
