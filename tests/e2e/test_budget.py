"""`/budget` over real HTTP: every subcommand, the removal buttons, who may change what, and
the audit trail each change leaves."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.budgets.types import PeriodKind
from bot.jobs.check import run_check
from bot.sim import slack_api
from bot.slack.admins import REFUSAL
from bot.store import outbox
from bot.store.budgets import NewBudget, create_budget
from bot.store.db import from_text
from tests.e2e.conftest import ADMIN, ANCHOR, CONFIGURED_ADMIN, MEMBER, TEAM, TEAM_ID, Bot

Json = dict[str, Any]
MARKETING = next(p for p in TEAM.projects if p.name == "Marketing")
CI_KEY = next(u for u in TEAM.users if u.key_name == "CI pipeline")
SPEC_EXAMPLE = "add 12k monthly project:Marketing <#C123ABC|gen-ai-spend> at 50,90,100 forecast"


async def ask(bot: Bot, text: str, *, user: str = ADMIN, channel: str = "C_GENERAL") -> Json:
    """Send `/budget <text>` and return its response_url answer."""
    answer, hook = await bot.command("/budget", text, user=user, channel=channel)
    assert answer.status_code == 200
    return await bot.response(hook)


def everything(message: Json) -> str:
    """All the words of a message: its text and every text in its blocks."""
    found: list[str] = [message.get("text") or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks") or [])
    return "\n".join(found)


def assert_slack_accepts(message: Json) -> None:
    assert message["text"]
    assert 0 < len(message["blocks"]) <= 50
    for raw in message["blocks"]:
        block = Block.parse(raw)
        assert block is not None
        block.to_dict()  # slack_sdk's validators: section ≤ 3,000, header ≤ 150, …


async def press(bot: Bot, action_id: str, budget_id: int | str, *, user: str = ADMIN) -> Json:
    """Press a button of the removal question; returns the response_url answer."""
    hook = bot.new_hook()
    value = str(budget_id)
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user, "team_id": TEAM_ID, "name": user.lower()},
        "api_app_id": "A_BOT",
        "trigger_id": f"trigger-{hook}",
        "container": {"type": "message", "channel_id": "C_GENERAL", "is_ephemeral": True},
        "channel": {"id": "C_GENERAL", "name": "general"},
        "response_url": f"{bot.slack_origin}/response/{hook}",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": f"budget_remove:{value}",
                "value": value,
                "action_ts": "1700000000.000100",
            }
        ],
    }
    answer = await bot.interact(payload)
    assert answer.status_code == 200
    return await bot.response(hook)


def audit_rows(bot: Bot) -> list[Json]:
    return list(bot.db.query("SELECT * FROM audit_log ORDER BY id"))


def budget_rows(bot: Bot) -> list[Json]:
    return list(bot.db.query("SELECT * FROM budgets ORDER BY id"))


def seed(bot: Bot, limit: float = 5_000.0, *, period: str = "monthly") -> int:
    """A team budget made directly in the store (its audit entry counts as seeded)."""
    new = NewBudget(TEAM_ID, PeriodKind(period), limit, "C_GENERAL", ADMIN)
    return create_budget(bot.db, new, now=ANCHOR).id


async def check_cycle(bot: Bot) -> None:
    deps = bot.deps
    await run_check(
        deps.db, lambda ws: deps.scenario_for(ws.team_id), deps.runtime.check_settings, bot.clock()
    )


# ---------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------


async def test_an_empty_list_shows_anyone_how_to_add_a_budget(bot: Bot) -> None:
    answer = await ask(bot, "", user=MEMBER)
    assert answer["response_type"] == "ephemeral"
    assert "No budgets yet" in everything(answer)
    assert "/budget add 12k monthly" in everything(answer)


async def test_list_shows_states_after_a_check_a_snooze_and_a_delivery_problem(bot: Bot) -> None:
    for _ in range(3):
        await ask(bot, 'add 1000 24h key:"CI pipeline"')
    await ask(bot, "add 100k monthly forecast")
    await check_cycle(bot)
    # Slack refused the alert of budget 3 for good: a content error, which no later
    # delivery (the snooze below edits budget 2's message) can fix.
    [failed] = [i for i in outbox.due_items(bot.db, bot.clock()) if i.budget_id == 3]
    outbox.mark_failed(bot.db, failed.id, error="invalid_blocks")
    await ask(bot, "snooze 2 4h")

    answer = await ask(bot, "list", user=MEMBER)
    assert_slack_accepts(answer)
    sections = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section"]
    first, second, third, team = sections
    assert "*#1 CI pipeline 24h*" in first
    assert "🔔 alerted at 100 %" in first
    spike_day = TEAM.cu_between(ANCHOR - timedelta(hours=24), ANCHOR, user_ids=[CI_KEY.id])
    assert f"*{spike_day:,.0f} CU* of 1,000 CU" in first
    assert f"*{spike_day / 10:.0f} %* used" in first
    assert "`████████████` ⚠️" in first  # over the limit
    assert "💤 snoozed until Thu 26 Nov 17:00" in second
    assert "⚠️ delivery problem: `invalid_blocks`" in third
    assert "*#4 Team monthly*" in team
    assert "📈 Forecast: likely" in team
    assert "alerts at 50, 80, 100 % + forecast" in team and "<#C_GENERAL>" in team


async def test_list_still_shows_budgets_when_scenario_cannot_be_read(bot: Bot) -> None:
    seed(bot, 5_000)
    bot.simulator.api_secret = "rotated"  # the bot's credentials no longer work
    answer = await ask(bot, "list")
    text = everything(answer)
    assert "*#1 Team monthly*" in text
    assert "spend unavailable" in text
    assert "Spend is unavailable right now" in text
    assert "Scenario refused the API key and secret (HTTP 401)" in text  # and why
    assert "test-secret" not in text


async def test_a_long_list_stays_within_fifty_blocks(bot: Bot) -> None:
    for i in range(150):
        seed(bot, 1_000 + i)
    answer = await ask(bot, "list")
    assert_slack_accepts(answer)
    assert len(json.dumps(answer["blocks"], ensure_ascii=False)) < 13_000
    text = everything(answer)
    assert "*#1 Team monthly*" in text
    assert "more." in text  # "…and N more."


async def test_public_answers_go_to_the_channel(bot: Bot) -> None:
    assert (await ask(bot, "list public", user=MEMBER))["response_type"] == "in_channel"
    assert (await ask(bot, "help public"))["response_type"] == "in_channel"


# ---------------------------------------------------------------------------------------------
# add
# ---------------------------------------------------------------------------------------------


async def test_the_spec_example_saves_the_budget_and_answers_with_its_spend(bot: Bot) -> None:
    answer = await ask(bot, SPEC_EXAMPLE)
    assert answer["response_type"] == "ephemeral"
    assert_slack_accepts(answer)
    [row] = budget_rows(bot)
    assert (row["scope_kind"], row["scope_ref"], row["scope_name"]) == (
        "project",
        MARKETING.id,
        "Marketing",
    )
    assert (row["period"], row["limit_cu"], row["channel_id"]) == ("monthly", 12_000, "C123ABC")
    assert json.loads(row["thresholds"]) == [50, 90, 100]
    assert row["forecast"] == 1 and row["created_by"] == ADMIN
    text = everything(answer)
    assert "Budget #1 Marketing monthly added" in text
    assert "12,000 CU monthly · project Marketing · alerts at 50, 90, 100 % + forecast" in text
    assert "<#C123ABC>" in text
    # November in Paris started on Oct 31st, 23:00 UTC.
    month_start = ANCHOR.replace(day=1, hour=0) - timedelta(hours=1)
    spend = TEAM.cu_between(month_start, ANCHOR, project_ids=[MARKETING.id])
    assert f"*{spend:,.0f} CU* of 12,000 CU" in text
    [entry] = audit_rows(bot)
    assert (entry["actor"], entry["action"], entry["target"]) == (ADMIN, "budget.add", "budget:1")
    assert json.loads(entry["after"])["scope"] == f"project:{MARKETING.id}"


async def test_add_defaults_to_the_channel_it_was_typed_in(bot: Bot) -> None:
    await ask(bot, "add 500 daily", channel="C_OPS")
    [row] = budget_rows(bot)
    assert (row["channel_id"], row["scope_kind"], row["period"]) == ("C_OPS", "team", "daily")
    assert json.loads(row["thresholds"]) == [50, 80, 100] and row["forecast"] == 0


async def test_a_configured_admin_may_change_budgets(bot: Bot) -> None:
    answer = await ask(bot, "add 2k weekly", user=CONFIGURED_ADMIN)
    assert "added" in everything(answer)
    [row] = budget_rows(bot)
    assert row["created_by"] == CONFIGURED_ADMIN
    assert audit_rows(bot)[-1]["actor"] == CONFIGURED_ADMIN


async def test_an_unknown_project_is_answered_with_candidates_and_nothing_saved(bot: Bot) -> None:
    answer = await ask(bot, "add 1k monthly project:Marketting")
    assert answer["response_type"] == "ephemeral"
    assert "I don't know a project called “Marketting”. Did you mean `Marketing`" in everything(
        answer
    )
    assert budget_rows(bot) == [] and audit_rows(bot) == []


async def test_an_ambiguous_prefix_lists_the_matches(bot: Bot) -> None:
    answer = await ask(bot, "add 1k monthly model:flux")
    text = everything(answer)
    assert "matches several models" in text
    assert "`Flux Dev`" in text and "`Flux Pro Ultra`" in text
    assert budget_rows(bot) == [] and audit_rows(bot) == []


async def test_a_user_mention_resolves_through_the_slack_profile_email(bot: Bot) -> None:
    maya = next(u for u in TEAM.users if u.email == "maya.chen@example.com")
    bot.slack.users["UMAYA01"] = {"name": "maya", "profile": {"email": maya.email}}
    answer = await ask(bot, "add 2k weekly user:<@UMAYA01|maya>")
    [row] = budget_rows(bot)
    assert (row["scope_kind"], row["scope_ref"], row["scope_name"]) == ("user", maya.id, maya.email)
    assert f"user {maya.email}" in everything(answer)


async def test_a_plain_channel_name_is_refused_with_how_to_pick_it(bot: Bot) -> None:
    answer = await ask(bot, "add 1k monthly #gen-ai-spend")
    assert "Pick it from Slack's autocomplete" in everything(answer)
    assert budget_rows(bot) == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("add 5k", "`/budget add` needs a PERIOD"),
        ("frobnicate", "There is no `/budget` subcommand"),
        ("snooze 1 forever", "isn't a duration"),
        ("add 5k monthly public nonsense", "I don't understand"),
    ],
)
async def test_bad_input_is_explained_privately_with_the_right_form(
    bot: Bot, text: str, says: str
) -> None:
    answer = await ask(bot, text)
    assert answer["response_type"] == "ephemeral"
    assert says in everything(answer)
    assert "*Usage:*" in everything(answer)
    assert budget_rows(bot) == [] and audit_rows(bot) == []


# ---------------------------------------------------------------------------------------------
# admins only
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "add 5k monthly",
        "add",
        "edit 1",
        "edit 1 6k",
        "remove 1",
        "snooze 1 4h",
        "unsnooze 1",
        "digest 09:00",
        "digest 09:00 weekly fri",
        "digest 09:00 monthly",
        "digest off",
        "timezone America/New_York",
        "add 5k monthly public",
    ],
)
async def test_members_are_refused_every_change_and_nothing_changes(bot: Bot, text: str) -> None:
    seed(bot)
    bot.db.execute("INSERT INTO snoozes VALUES (1, '2026-11-27T00:00:00.000000Z', 'U', 'x')")
    bot.db.execute(
        "INSERT INTO digests (workspace_id, channel_id, local_time) VALUES (?, ?, ?)",
        [TEAM_ID, "C_GENERAL", "08:00"],
    )
    before = (budget_rows(bot), audit_rows(bot), list(bot.db.query("SELECT * FROM snoozes")))
    digests_before = list(bot.db.query("SELECT * FROM digests"))
    timezone_before = list(bot.db.query("SELECT timezone FROM workspaces"))
    answer = await ask(bot, text, user=MEMBER)
    assert answer["response_type"] == "ephemeral"  # even when `public` was asked
    assert REFUSAL in everything(answer)
    assert (
        budget_rows(bot),
        audit_rows(bot),
        list(bot.db.query("SELECT * FROM snoozes")),
    ) == before
    assert list(bot.db.query("SELECT * FROM digests")) == digests_before
    assert list(bot.db.query("SELECT timezone FROM workspaces")) == timezone_before
    assert bot.slack.calls_to("views.open") == []


# ---------------------------------------------------------------------------------------------
# edit
# ---------------------------------------------------------------------------------------------


async def test_edit_changes_only_what_was_given_and_says_before_and_after(bot: Bot) -> None:
    await ask(bot, SPEC_EXAMPLE)
    answer = await ask(bot, "edit 1 15k at 80,100 no-forecast")
    assert_slack_accepts(answer)
    text = everything(answer)
    assert "Budget #1 Marketing monthly updated" in text
    assert "limit: 12,000 CU → 15,000 CU" in text
    assert "thresholds: 50, 90, 100 % → 80, 100 %" in text
    assert "forecast alert: on → off" in text
    assert "of 15,000 CU" in text  # the current spend against the new limit
    [row] = budget_rows(bot)
    assert (row["limit_cu"], row["forecast"], row["channel_id"]) == (15_000, 0, "C123ABC")
    assert json.loads(row["thresholds"]) == [80, 100]
    entry = audit_rows(bot)[-1]
    assert (entry["actor"], entry["action"], entry["target"]) == (ADMIN, "budget.edit", "budget:1")
    assert json.loads(entry["before"])["limit_cu"] == 12_000
    assert json.loads(entry["after"])["limit_cu"] == 15_000


async def test_edit_of_an_unknown_budget_says_so_and_changes_nothing(bot: Bot) -> None:
    answer = await ask(bot, "edit 9 15k")
    assert "There is no budget #9" in everything(answer)
    assert audit_rows(bot) == []


async def test_add_or_edit_alone_opens_the_form_with_the_commands_trigger(bot: Bot) -> None:
    seed(bot)
    for text in ("add", "edit 1"):
        answer, hook = await bot.command("/budget", text)
        assert answer.status_code == 200
        await bot.wait_for(
            lambda hook=hook: any(
                c.args.get("trigger_id") == f"trigger-{hook}"
                for c in bot.slack.calls_to("views.open")
            ),
            what=f"the form for `{text}`",
        )
        assert bot.responses(hook) == []  # the form is the answer
    assert len(budget_rows(bot)) == 1


async def test_when_slack_refuses_the_form_the_answer_says_why_and_the_way_around(
    bot: Bot,
) -> None:
    bot.slack.fail_next("views.open", slack_api.Fault(error="expired_trigger_id"))
    answer = await ask(bot, "add")
    text = everything(answer)
    assert "I couldn't open the form — Slack said `expired_trigger_id`" in text
    assert "/budget add 12k monthly" in text


async def test_edit_alone_of_an_unknown_budget_says_so_instead_of_a_form(bot: Bot) -> None:
    answer = await ask(bot, "edit 9")
    assert "There is no budget #9" in everything(answer)
    assert bot.slack.calls_to("views.open") == []


# ---------------------------------------------------------------------------------------------
# remove and its buttons
# ---------------------------------------------------------------------------------------------


async def test_remove_asks_first_then_the_remove_button_deletes_once(bot: Bot) -> None:
    seed(bot)
    question = await ask(bot, "remove 1")
    assert_slack_accepts(question)
    assert "Remove budget *#1 Team monthly*?" in everything(question)
    remove, keep = question["blocks"][-1]["elements"]
    assert (remove["action_id"], remove["value"], remove["style"]) == (
        "budget_remove_confirm",
        "1",
        "danger",
    )
    assert (keep["action_id"], keep["text"]["text"]) == ("budget_remove_cancel", "Keep it")
    assert len(budget_rows(bot)) == 1  # asking changes nothing

    done = await press(bot, "budget_remove_confirm", 1)
    assert done["replace_original"] is True
    assert "Removed budget *#1 Team monthly*" in everything(done)
    assert budget_rows(bot) == []
    entry = audit_rows(bot)[-1]
    assert (entry["actor"], entry["action"], entry["target"]) == (
        ADMIN,
        "budget.remove",
        "budget:1",
    )
    audited = len(audit_rows(bot))

    again = await press(bot, "budget_remove_confirm", 1)
    assert again["replace_original"] is True
    assert "already gone" in everything(again)
    assert len(audit_rows(bot)) == audited


async def test_the_remove_button_refuses_members(bot: Bot) -> None:
    seed(bot)
    answer = await press(bot, "budget_remove_confirm", 1, user=MEMBER)
    assert REFUSAL in everything(answer)
    assert answer["replace_original"] is False  # the question stays for an admin
    assert len(budget_rows(bot)) == 1
    assert [r["action"] for r in audit_rows(bot)] == ["budget.add"]


async def test_keep_it_keeps_the_budget(bot: Bot) -> None:
    seed(bot)
    answer = await press(bot, "budget_remove_cancel", 1)
    assert answer["replace_original"] is True
    assert everything(answer).startswith("Kept.")
    assert len(budget_rows(bot)) == 1
    assert [r["action"] for r in audit_rows(bot)] == ["budget.add"]


async def test_the_keep_it_button_refuses_members_too(bot: Bot) -> None:
    seed(bot)
    answer = await press(bot, "budget_remove_cancel", 1, user=MEMBER)
    assert REFUSAL in everything(answer)
    assert answer["response_type"] == "ephemeral"
    assert answer["replace_original"] is False  # the question stays for an admin
    assert len(budget_rows(bot)) == 1
    assert [r["action"] for r in audit_rows(bot)] == ["budget.add"]
    # An admin can still answer it afterwards.
    done = await press(bot, "budget_remove_confirm", 1)
    assert "Removed budget *#1 Team monthly*" in everything(done)


async def test_remove_of_an_unknown_budget_says_so(bot: Bot) -> None:
    answer = await ask(bot, "remove 4")
    assert "There is no budget #4" in everything(answer)
    assert "actions" not in [b["type"] for b in answer["blocks"]]


# ---------------------------------------------------------------------------------------------
# snooze
# ---------------------------------------------------------------------------------------------


async def test_snooze_for_a_duration_then_unsnooze(bot: Bot) -> None:
    seed(bot)
    answer = await ask(bot, "snooze 1 4h")
    assert "snoozed until *Thu 26 Nov 17:00* Europe/Paris" in everything(answer)
    [row] = bot.db.query("SELECT * FROM snoozes")
    assert from_text(row["until"]) == ANCHOR + timedelta(hours=4)
    assert (row["created_by"], audit_rows(bot)[-1]["action"]) == (ADMIN, "budget.snooze")

    answer = await ask(bot, "unsnooze 1")
    assert "no longer snoozed" in everything(answer)
    assert bot.db["snoozes"].count == 0
    assert audit_rows(bot)[-1]["action"] == "budget.unsnooze"
    audited = len(audit_rows(bot))
    answer = await ask(bot, "unsnooze 1")
    assert "wasn't snoozed" in everything(answer)
    assert len(audit_rows(bot)) == audited


async def test_snooze_until_reset_ends_with_the_period(bot: Bot) -> None:
    seed(bot, period="monthly")
    seed(bot, period="24h")
    monthly = await ask(bot, "snooze 1 until-reset")
    # The end of November in Paris: December 1st, 00:00 local.
    assert "until *Tue 01 Dec 00:00* Europe/Paris, when its current period ends" in everything(
        monthly
    )
    rolling = await ask(bot, "snooze 2 until-reset")
    assert "until *Fri 27 Nov 13:00*" in everything(rolling)  # a rolling window: now + 24 h
    until = {r["budget_id"]: from_text(r["until"]) for r in bot.db.query("SELECT * FROM snoozes")}
    assert until == {1: ANCHOR.replace(day=30, hour=23), 2: ANCHOR + timedelta(hours=24)}


async def test_snoozing_another_workspaces_budget_is_refused(bot: Bot) -> None:
    new = NewBudget("T_OTHER", PeriodKind.MONTHLY, 100.0, "C1", "U_OTHER")
    other = create_budget(bot.db, new, now=ANCHOR)
    answer = await ask(bot, f"snooze {other.id} 1h")
    assert f"There is no budget #{other.id}" in everything(answer)
    assert bot.db["snoozes"].count == 0


# ---------------------------------------------------------------------------------------------
# digest and timezone
# ---------------------------------------------------------------------------------------------


async def test_digest_settings_are_stored_per_channel_and_audited(bot: Bot) -> None:
    answer = await ask(bot, "digest 09:00")
    assert "every day at *09:00* (Europe/Paris) in <#C_GENERAL>" in everything(answer)
    answer = await ask(bot, "digest 17:30 <#CDIGEST1|digest>")
    assert "*17:30* (Europe/Paris) in <#CDIGEST1>" in everything(answer)
    answer = await ask(bot, "digest 08:15")
    assert "(was 09:00)" in everything(answer)
    rows = {r["channel_id"]: r["local_time"] for r in bot.db.query("SELECT * FROM digests")}
    assert rows == {"C_GENERAL": "08:15", "CDIGEST1": "17:30"}

    answer = await ask(bot, "digest off")
    assert "turned off" in everything(answer)
    rows = {r["channel_id"]: r["local_time"] for r in bot.db.query("SELECT * FROM digests")}
    assert rows == {"CDIGEST1": "17:30"}
    assert [(r["action"], r["target"]) for r in audit_rows(bot)] == [
        ("digest.set", "digest:C_GENERAL"),
        ("digest.set", "digest:CDIGEST1"),
        ("digest.set", "digest:C_GENERAL"),
        ("digest.off", "digest:C_GENERAL"),
    ]
    answer = await ask(bot, "digest off")
    assert "no digest" in everything(answer)
    assert len(audit_rows(bot)) == 4


async def test_weekly_and_monthly_digests_are_set_listed_and_audited(bot: Bot) -> None:
    answer = await ask(bot, "digest 09:00 <#CWEEK|week> weekly")
    assert "Weekly digest set: every Monday at *09:00* (Europe/Paris) in <#CWEEK>" in everything(
        answer
    )
    answer = await ask(bot, "digest 08:30 <#CMONTH|month> monthly quiet")
    said = everything(answer)
    assert "Monthly digest set: on the 1st of every month at *08:30*, quiet" in said
    answer = await ask(bot, "digest 09:00 <#CWEEK|week> weekly FRIDAY")
    assert "(was every Monday at 09:00)" in everything(answer)
    answer = await ask(bot, "digest 17:00")
    rows = {
        r["channel_id"]: (r["local_time"], r["cadence"], r["weekday"], r["when_empty"])
        for r in bot.db.query("SELECT * FROM digests")
    }
    assert rows == {
        "CWEEK": ("09:00", "weekly", 4, "line"),
        "CMONTH": ("08:30", "monthly", None, "skip"),
        "C_GENERAL": ("17:00", "daily", None, "line"),
    }

    listed = everything(await ask(bot, "list"))
    assert (
        "*Digests*: on the 1st of every month at 08:30 in <#CMONTH>,"
        " every Friday at 09:00 in <#CWEEK>, every day at 17:00 in <#C_GENERAL>"
        " (Europe/Paris time)."
    ) in listed

    history = everything(await ask(bot, "history"))
    assert "changed the digest in <#CWEEK>: every Monday at 09:00 → every Friday at 09:00" in (
        history
    )
    assert "set a digest in <#CMONTH>: on the 1st of every month at 08:30, quiet" in history
    [entry] = [
        json.loads(r["after"])
        for r in audit_rows(bot)
        if r["target"] == "digest:CWEEK" and r["before"] is not None
    ]
    assert (entry["cadence"], entry["weekday"]) == ("weekly", 4)

    answer = await ask(bot, "digest off <#CWEEK|week>")
    assert "Weekly digest in <#CWEEK> turned off (it went out every Friday at 09:00" in (
        everything(answer)
    )


async def test_a_digest_with_a_day_but_no_week_changes_nothing(bot: Bot) -> None:
    answer = await ask(bot, "digest 09:00 monthly mon")
    assert answer["response_type"] == "ephemeral"
    assert "goes out on the 1st" in everything(answer)
    assert bot.db["digests"].count == 0 and audit_rows(bot) == []


async def test_a_digest_channel_must_be_picked_not_typed(bot: Bot) -> None:
    answer = await ask(bot, "digest 09:00 #gen-ai-spend")
    assert answer["response_type"] == "ephemeral"
    assert "I can't tell which channel “#gen-ai-spend” is" in everything(answer)
    assert bot.db["digests"].count == 0


async def test_timezone_is_stored_audited_and_used_for_local_times(bot: Bot) -> None:
    answer = await ask(bot, "timezone america/new_york")
    text = everything(answer)
    assert "Timezone set to *America/New_York* (was Europe/Paris)" in text
    assert "Thu 26 Nov 07:00" in text  # noon UTC in New York
    [row] = bot.db.query("SELECT timezone FROM workspaces WHERE team_id = ?", [TEAM_ID])
    assert row["timezone"] == "America/New_York"
    entry = audit_rows(bot)[-1]
    assert (entry["action"], json.loads(entry["after"])) == (
        "timezone",
        {"timezone": "America/New_York"},
    )
    seed(bot)
    answer = await ask(bot, "snooze 1 4h")
    assert "Thu 26 Nov 11:00* America/New_York" in everything(answer)
    answer = await ask(bot, "digest 09:00")
    assert "(America/New_York)" in everything(answer)
    audited = len(audit_rows(bot))
    answer = await ask(bot, "timezone America/New_York")
    assert "nothing changed" in everything(answer)
    assert len(audit_rows(bot)) == audited


async def test_an_unknown_timezone_is_a_grammar_error(bot: Bot) -> None:
    answer = await ask(bot, "timezone Europe/Pariss")
    assert "isn't a timezone I know" in everything(answer)
    assert "Europe/Paris" in everything(answer)
    assert audit_rows(bot) == []


# ---------------------------------------------------------------------------------------------
# history and help
# ---------------------------------------------------------------------------------------------


async def test_history_shows_alerts_and_changes_newest_first_in_local_time(bot: Bot) -> None:
    await ask(bot, 'add 1000 24h key:"CI pipeline"')
    await ask(bot, "add 100k monthly")
    bot.clock.advance(timedelta(minutes=5))
    await ask(bot, "edit 1 2k")
    await check_cycle(bot)
    bot.clock.advance(timedelta(minutes=5))
    await ask(bot, "snooze 1 1h")

    answer = await ask(bot, "history", user=MEMBER)
    assert_slack_accepts(answer)
    text = everything(answer)
    assert "• Thu 26 Nov 13:05 — *#1 CI pipeline 24h*: 🔴 100 %" in text
    changes = [line for line in text.split("\n") if "<@U_ADMIN>" in line]
    assert (
        changes[0]
        == "• Thu 26 Nov 13:10 — <@U_ADMIN> snoozed *#1 CI pipeline 24h* until Thu 26 Nov 14:10"
    )
    assert changes[1] == (
        "• Thu 26 Nov 13:05 — <@U_ADMIN> changed *#1 CI pipeline 24h*: limit: 1,000 CU → 2,000 CU"
    )
    assert "added *#2 Team monthly*" in changes[2]
    assert "added *#1 CI pipeline 24h*" in changes[3]

    only_two = everything(await ask(bot, "history 2"))
    assert "History of budget #2" in only_two
    assert "#1 CI pipeline" not in only_two
    assert "added *#2 Team monthly*" in only_two


async def test_history_of_a_removed_budget_keeps_its_trail(bot: Bot) -> None:
    seed(bot)
    await press(bot, "budget_remove_confirm", 1)
    text = everything(await ask(bot, "history 1"))
    assert "removed *#1 Team monthly*" in text


async def test_history_of_a_budget_that_never_existed(bot: Bot) -> None:
    answer = await ask(bot, "history 42")
    assert "There is no budget #42" in everything(answer)


@pytest.mark.parametrize(("text", "says"), [("help", "*Budgets*"), ("help snooze", "until-reset")])
async def test_help_shows_the_grammar(bot: Bot, text: str, says: str) -> None:
    answer = await ask(bot, text, user=MEMBER)
    assert says in everything(answer)
    assert_slack_accepts(answer)


@pytest.mark.parametrize("subcommand", ["connect", "disconnect"])
async def test_connect_in_single_workspace_mode_names_the_environment(
    bot: Bot, subcommand: str
) -> None:
    _, hook = await bot.command("/budget", subcommand)
    answer = await bot.response(hook)
    assert "SCENARIO_SDK_API_KEY" in answer["text"] and answer["response_type"] == "ephemeral"
    assert bot.slack.calls_to("views.open") == []
