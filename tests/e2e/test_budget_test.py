"""`/budget test <id>` (SPEC §4): a sample of the budget's alert with today's real figures and
culprits, posted to its channel and marked as a test; it changes no alert state, so the real
alert still comes when the check finds the level crossed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import run_check
from bot.jobs.delivery import drain
from bot.messages.alerts import ACTION_OPEN
from bot.sim.slack_api import Fault
from bot.store.budgets import Budget, NewBudget, create_budget
from tests.e2e.conftest import ADMIN, ANCHOR, MEMBER, TEAM, TEAM_ID, Bot, running_bot
from tests.e2e.test_actions import CHANNEL
from tests.e2e.test_budget import ask, everything

TABLES = ("alerts", "alert_events", "outbox", "audit_log", "snoozes")


def key_budget(bot: Bot) -> Budget:
    key = TEAM.spike.user_id
    return create_budget(
        bot.db,
        NewBudget(TEAM_ID, PeriodKind.ROLLING_24H, 100, CHANNEL, ADMIN, Scope(ScopeKind.KEY, key)),
        now=ANCHOR,
    )


def counts(bot: Bot) -> dict[str, int]:
    return {t: bot.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


async def test_a_test_alert_shows_todays_figures_and_changes_nothing(bot: Bot) -> None:
    budget = key_budget(bot)
    before = counts(bot)
    answer = everything(await ask(bot, f"test {budget.id}"))
    assert "Posted a test alert" in answer and f"<#{CHANNEL}>" in answer
    [sample] = bot.slack.top_level(CHANNEL)
    spend = TEAM.cu_between(ANCHOR - timedelta(hours=24), ANCHOR, user_ids=[TEAM.spike.user_id])
    assert sample.text.startswith("🧪 Test · 🔴 Budget #1")
    assert f"{spend:,.0f} CU of 100 CU" in sample.text
    said = everything({"text": sample.text, "blocks": sample.blocks})
    assert "This is a test" in said and "Nothing was changed" in said
    assert "Kling" in said  # the culprits, read from Scenario like a check does
    [actions] = [b for b in sample.blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == [ACTION_OPEN]
    assert sample.metadata is None  # never taken for a real alert's message
    [posted] = bot.slack.calls_to("chat.postMessage")
    assert (posted.args["unfurl_links"], posted.args["unfurl_media"]) == (False, False)
    assert counts(bot) == before

    # The real alert still comes, as its own message.
    deps = bot.deps
    await run_check(
        deps.db, lambda ws: deps.scenario_for(ws.team_id), deps.runtime.check_settings, ANCHOR
    )
    await drain(deps.db, lambda team: deps.runtime.slack_for(team), deps.clock)
    first, real = bot.slack.top_level(CHANNEL)
    assert first is sample and real.text.startswith("🔴 Budget #1")


async def test_under_every_level_the_test_says_how_far_along_it_is(bot: Bot) -> None:
    budget = key_budget(bot)
    await ask(bot, f"edit {budget.id} 1m")
    await ask(bot, f"test {budget.id}")
    [sample] = bot.slack.top_level(CHANNEL)
    assert sample.text.startswith("🧪 Test · 🧪 Budget #1")
    spend = TEAM.cu_between(ANCHOR - timedelta(hours=24), ANCHOR, user_ids=[TEAM.spike.user_id])
    assert f"{spend / 1e6 * 100:.0f} % used" in sample.text


async def test_members_cannot_post_tests(bot: Bot) -> None:
    budget = key_budget(bot)
    answer = everything(await ask(bot, f"test {budget.id}", user=MEMBER))
    assert "admins" in answer
    assert bot.slack.top_level(CHANNEL) == []


async def test_a_channel_the_bot_cannot_post_to_is_said_with_the_fix(bot: Bot) -> None:
    budget = key_budget(bot)
    bot.slack.fail_next("chat.postMessage", Fault(status=200, error="not_in_channel"))
    answer = everything(await ask(bot, f"test {budget.id}"))
    assert "couldn't be posted" in answer and "/invite @Budget Bot" in answer
    assert bot.slack.top_level(CHANNEL) == []


async def test_an_unknown_budget_is_said(bot: Bot) -> None:
    answer = everything(await ask(bot, "test 9"))
    assert "There is no budget #9" in answer


async def test_without_scenario_credentials_the_test_is_refused_politely(tmp_path: Path) -> None:
    async with running_bot(
        tmp_path, scenario_sdk_api_key=None, scenario_sdk_api_secret=None
    ) as bot:
        budget = key_budget(bot)
        before = counts(bot)
        answer = everything(await ask(bot, f"test {budget.id}"))
        assert "I can't read Scenario for the test" in answer and "SCENARIO" in answer
        assert bot.slack.top_level(CHANNEL) == []
        assert counts(bot) == before
