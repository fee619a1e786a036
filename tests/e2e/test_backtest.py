"""`/budget add` and `edit` answer how the budget would have behaved over the last 30 days
(SPEC §4), checked against a brute-force reading of the rules over the simulator's jobs."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.messages.modals import (
    BLOCK_FORECAST,
    BLOCK_LIMIT,
    BLOCK_PERIOD,
    BLOCK_PREVIEW,
    BLOCK_SCOPE_KIND,
    BLOCK_SCOPE_NAME,
    BLOCK_THRESHOLDS,
)
from bot.sim.slack_api import Fault
from bot.slack.views import budget_modal
from tests.e2e.conftest import ADMIN, ANCHOR, TEAM, TEAM_ID, Bot, running_bot
from tests.e2e.test_budget import ask, everything
from tests.e2e.test_modal import opened_view, state_of

TZ = ZoneInfo("Europe/Paris")


def month_start(at: datetime) -> datetime:
    local = at.astimezone(TZ)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def by_hand(limit: float, thresholds: tuple[int, ...]) -> list[tuple[int, str]]:
    """Each hour of the last 30 days, the month's spend so far from every job: the highest
    level newly reached, and the local day."""
    at = (ANCHOR - timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    passed: dict[datetime, set[int]] = {}
    found = []
    while at < ANCHOR:
        at += timedelta(hours=1)
        start = month_start(at)
        spend = TEAM.cu_between(start, at)
        done = passed.setdefault(start, set())
        new = {t for t in thresholds if spend / limit * 100 >= t} - done
        if new:
            done |= new
            found.append((max(new), f"{at.astimezone(TZ).day} {at.astimezone(TZ):%b}"))
    return found


async def test_add_says_when_a_monthly_budget_would_have_alerted(bot: Bot) -> None:
    november = TEAM.cu_between(month_start(ANCHOR), ANCHOR)
    limit = round(november / 0.85)  # 50 % and 80 % of it were crossed this month
    expected = by_hand(limit, (50, 80, 100))
    assert len(expected) >= 2
    answer = everything(await ask(bot, f"add {limit} monthly"))
    listed = ", ".join(f"{level} % on {day}" for level, day in expected)
    times = "once" if len(expected) == 1 else f"{len(expected)} times"
    assert f"would have alerted {times}: {listed}." in answer, answer
    # 30 days in 3-day hourly reads, and one for October's and November's start before.
    assert re.search(r"from 1[12] Scenario reads", answer)


async def test_a_limit_no_month_reached_says_so_with_the_highest(bot: Bot) -> None:
    answer = everything(await ask(bot, "add 100m monthly"))
    assert "this budget would not have alerted (at most 0 % on" in answer


async def test_an_edit_of_the_channel_only_does_not_look_back(bot: Bot) -> None:
    await ask(bot, "add 100m monthly")
    answer = everything(await ask(bot, "edit 1 <#CSPEND1|spend>"))
    assert "updated" in answer and "Over the last 30 days" not in answer
    answer = everything(await ask(bot, "edit 1 50k"))
    assert "Over the last 30 days" in answer


async def test_billing_budgets_say_why_they_are_not_looked_back_at(bot: Bot) -> None:
    answer = everything(await ask(bot, "add 5k billing"))
    assert "added" in answer and "No look back for `billing` budgets" in answer


OPENED_HASH = "1700000000.abc"  # the form's hash until the bot first updates it


async def send_change(
    bot: Bot,
    view: dict,
    block_id: str,
    action_id: str,
    *,
    seen: str | None = None,
    **values: object,
) -> str:
    """Slack's block_actions for a dispatching input of the open form (acknowledged), with
    the hash of the form as it is now — or as ``seen`` before an update landed; that hash."""
    seen = seen or bot.slack.view_hashes.get("V_FORM", OPENED_HASH)
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": ADMIN, "team_id": TEAM_ID},
        "api_app_id": "A_BOT",
        "trigger_id": "trigger-preview",
        "container": {"type": "view", "view_id": "V_FORM"},
        "view": {
            **view,
            "id": "V_FORM",
            "team_id": TEAM_ID,
            "state": {"values": state_of(view, **values)},
            "hash": seen,
        },
        "actions": [{"type": "plain_text_input", "block_id": block_id, "action_id": action_id}],
    }
    answer = await bot.interact(payload)
    assert answer.status_code == 200
    return seen


async def change_in_form(
    bot: Bot, view: dict, block_id: str, action_id: str, **values: object
) -> dict:
    """A change of a dispatching input of the open form; the view it shows after the bot's
    views.update."""
    before = len(bot.slack.calls_to("views.update"))
    seen = await send_change(bot, view, block_id, action_id, **values)
    calls = await bot.wait_for(
        lambda: bot.slack.calls_to("views.update")[before:], what="views.update"
    )
    assert calls[0].args["view_id"] == "V_FORM" and calls[0].args["hash"] == seen
    return calls[0].args["view"]


def preview_of(view: dict) -> str:
    [block] = [b for b in view["blocks"] if b.get("block_id") == BLOCK_PREVIEW]
    return block["elements"][0]["text"]


async def test_the_form_shows_the_backtest_as_the_limit_changes(bot: Bot) -> None:
    november = TEAM.cu_between(month_start(ANCHOR), ANCHOR)
    limit = round(november / 0.85)
    view = await opened_view(bot, "add")
    assert preview_of(view).startswith("📊 Type a limit")
    shown = await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit=str(limit))
    listed = ", ".join(f"{level} % on {day}" for level, day in by_hand(limit, (50, 80, 100)))
    assert "would have alerted" in preview_of(shown) and listed in preview_of(shown)
    # The form itself is as it was: the same fields, the same metadata.
    assert [b.get("block_id") for b in shown["blocks"]] == [
        b.get("block_id") for b in view["blocks"]
    ]
    assert shown["private_metadata"] == view["private_metadata"]
    # Another limit on the same history: a new answer, and no Scenario read.
    usages = bot.simulator.count("/v1/usages")
    shown = await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit="100m")
    assert "would not have alerted" in preview_of(shown)
    assert bot.simulator.count("/v1/usages") == usages > 0


async def test_the_preview_says_what_it_still_needs(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    shown = await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit="lots")
    assert preview_of(shown).startswith("📊 Type a limit")
    shown = await change_in_form(bot, view, BLOCK_PERIOD, "period", limit="5k", period="billing")
    assert "No look back for billing budgets" in preview_of(shown)
    shown = await change_in_form(
        bot, view, BLOCK_LIMIT, "limit", limit="5k", kind="project", name="Nope"
    )
    assert "Nope" in preview_of(shown)


async def settled(bot: Bot) -> None:
    """Until the form's background work is done: previews, history reads, name lookups."""
    await bot.wait_for(lambda: not budget_modal._background, what="the background work")


def reads_of(text: str) -> int:
    """The Scenario reads a preview says it replayed."""
    found = re.search(r"from (\d+) Scenario reads", text)
    assert found, text
    return int(found[1])


async def test_a_limit_typed_key_by_key_is_previewed_once_from_one_read(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = await opened_view(bot, "add")
    await settled(bot)  # the names loaded as the form opens
    usages = bot.simulator.count("/v1/usages")
    updates = len(bot.slack.calls_to("views.update"))
    # Typed faster than the pause a preview waits for: each key supersedes the one before.
    monkeypatch.setattr(budget_modal, "PREVIEW_AFTER", 600.0)
    for typed in ("1", "12", "120", "1200"):
        await send_change(bot, view, BLOCK_LIMIT, "limit", limit=typed)
    # The pause after the last key (none here, so that the test need not wait for it).
    monkeypatch.setattr(budget_modal, "PREVIEW_AFTER", 0.0)
    await send_change(bot, view, BLOCK_LIMIT, "limit", limit="12000")
    await settled(bot)
    [shown] = [c.args["view"] for c in bot.slack.calls_to("views.update")[updates:]]
    text = preview_of(shown)
    assert text.startswith(
        "📊 *12,000 CU monthly, the whole team* (alerts at 50, 80, 100 %) — over"
    )
    # Only the history of the last value was read: none for the keys typed past.
    assert bot.simulator.count("/v1/usages") - usages == reads_of(text) > 0


async def test_a_newer_change_shares_the_history_read_already_under_way(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    await settled(bot)
    usages = bot.simulator.count("/v1/usages")
    updates = len(bot.slack.calls_to("views.update"))
    gate = asyncio.Event()
    bot.simulator.faults.hold = gate
    await send_change(bot, view, BLOCK_LIMIT, "limit", limit="12000")
    await bot.wait_for(lambda: bot.simulator.held, what="the history read under way")
    # Typed on while Scenario answers: this preview cancels the first, not its read.
    await send_change(bot, view, BLOCK_LIMIT, "limit", limit="100m")
    gate.set()
    await settled(bot)
    [shown] = [c.args["view"] for c in bot.slack.calls_to("views.update")[updates:]]
    text = preview_of(shown)
    assert text.startswith("📊 *100,000,000 CU monthly, the whole team* (alerts at"), text
    assert "would not have alerted" in text
    assert bot.simulator.count("/v1/usages") - usages == reads_of(text) > 0


async def test_a_failed_read_is_not_kept_and_the_next_preview_reads_again(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    await settled(bot)
    bot.simulator.faults.outage, bot.simulator.faults.outage_status = True, 403  # no retries
    shown = await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit="12000")
    assert "I couldn't look back at the last 30 days" in preview_of(shown)
    await settled(bot)
    bot.simulator.faults.outage = False
    shown = await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit="12000")
    assert "— over the last 30 days it would" in preview_of(shown)


async def test_the_preview_names_the_scope_and_period_it_replayed(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    shown = await change_in_form(
        bot,
        view,
        BLOCK_PERIOD,
        "period",
        limit="12.5k",
        period="weekly",
        kind="project",
        name="marketing",
    )
    assert preview_of(shown).startswith("📊 *12,500 CU weekly, project Marketing* (alerts at")


async def test_a_member_named_with_an_at_sign_is_previewed_as_without(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    member = TEAM.humans[0].email
    bare = await change_in_form(
        bot, view, BLOCK_LIMIT, "limit", limit="500", kind="user", name=member
    )
    assert preview_of(bare).startswith(f"📊 *500 CU monthly, user {member}* (alerts at")
    at = await change_in_form(
        bot, view, BLOCK_LIMIT, "limit", limit="500", kind="user", name=f"@{member}"
    )
    assert preview_of(at) == preview_of(bare)


async def test_a_history_serves_for_five_minutes_then_is_read_again(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    await change_in_form(bot, view, BLOCK_PERIOD, "period", limit="12000", period="weekly")
    await change_in_form(bot, view, BLOCK_PERIOD, "period", limit="12000", period="monthly")
    await settled(bot)
    usages = bot.simulator.count("/v1/usages")
    await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit="15000")
    assert bot.simulator.count("/v1/usages") == usages
    bot.clock.advance(budget_modal.HISTORY_FOR + timedelta(seconds=1))
    shown = await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit="16000")
    assert bot.simulator.count("/v1/usages") - usages == reads_of(preview_of(shown))
    # The weekly history went stale too, and is gone rather than kept.
    assert len(budget_modal._histories) == 1


async def test_every_field_the_replay_depends_on_previews_again(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    dispatching = {b["block_id"] for b in view["blocks"] if b.get("dispatch_action")}
    assert dispatching == {
        BLOCK_SCOPE_KIND,
        BLOCK_SCOPE_NAME,
        BLOCK_PERIOD,
        BLOCK_LIMIT,
        BLOCK_THRESHOLDS,
        BLOCK_FORECAST,
    }
    values = {"limit": "12k", "at": "50,100", "forecast": False}
    levels = await change_in_form(bot, view, BLOCK_THRESHOLDS, "thresholds", **values)
    assert "(alerts at 50, 100 %)" in preview_of(levels)
    values["forecast"] = True
    forecast = await change_in_form(bot, view, BLOCK_FORECAST, "forecast", **values)
    assert "(alerts at 50, 100 % + forecast)" in preview_of(forecast)
    values |= {"kind": "project", "name": "marketing"}
    scope = await change_in_form(bot, view, BLOCK_SCOPE_NAME, "name", **values)
    assert preview_of(scope).startswith("📊 *12,000 CU monthly, project Marketing*")
    values |= {"kind": "team", "name": ""}
    team = await change_in_form(bot, view, BLOCK_SCOPE_KIND, "kind", **values)
    assert preview_of(team).startswith("📊 *12,000 CU monthly, the whole team*")


async def test_a_change_made_before_the_last_preview_landed_is_previewed_too(bot: Bot) -> None:
    """The person typed on while the bot's update of the form was on its way: their change
    carries the hash that update replaced, which Slack would refuse as it stands."""
    view = await opened_view(bot, "add")
    await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit="12k")
    assert bot.slack.view_hashes["V_FORM"] != OPENED_HASH
    shown = await change_in_form_seen_before(bot, view, limit="100m")
    assert preview_of(shown).startswith("📊 *100,000,000 CU monthly")
    assert bot.slack.views[-1]["view"]["blocks"] == shown["blocks"]  # Slack took it


async def change_in_form_seen_before(bot: Bot, view: dict, **values: object) -> dict:
    updates = len(bot.slack.views)
    await send_change(bot, view, BLOCK_LIMIT, "limit", seen=OPENED_HASH, **values)
    await bot.wait_for(lambda: len(bot.slack.views) > updates, what="the update Slack took")
    return bot.slack.views[-1]["view"]


async def test_saving_the_form_cancels_a_preview_still_to_come(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preview landing after Save would re-render the form and wipe the errors shown."""
    view = await opened_view(bot, "add")
    await settled(bot)
    monkeypatch.setattr(budget_modal, "PREVIEW_AFTER", 600.0)
    await send_change(bot, view, BLOCK_LIMIT, "limit", limit="12k")
    await bot.wait_for(lambda: budget_modal._previews, what="the preview waiting")
    answer = await bot.submit_view(
        view, state_of(view, limit="12k", kind="project", name="Nope"), view_id="V_FORM"
    )
    assert answer["response_action"] == "errors"
    await settled(bot)  # the waiting preview is gone, not sleeping for 600 s
    assert bot.slack.calls_to("views.update") == []


async def test_without_scenario_credentials_the_preview_says_so(tmp_path: Path) -> None:
    async with running_bot(
        tmp_path, scenario_sdk_api_key=None, scenario_sdk_api_secret=None
    ) as bot:
        view = await opened_view(bot, "add")
        shown = await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit="12k")
        assert preview_of(shown).startswith("📊 I can't look back without Scenario:")


async def test_a_preview_cancelled_while_its_update_is_on_its_way_still_learns_its_hash(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Update A is on its way when the person types on (their change carries the hash A
    will replace): the newer preview B is sent after A lands, with the hash A got."""
    view = await opened_view(bot, "add")
    await change_in_form(bot, view, BLOCK_LIMIT, "limit", limit="12k")
    await settled(bot)
    before_a = bot.slack.view_hashes["V_FORM"]
    monkeypatch.setattr(budget_modal, "PREVIEW_AFTER", 0.8)
    bot.slack.fail_next("views.update", Fault(slow=0.3))
    sent = len(bot.slack.calls_to("views.update"))
    await send_change(bot, view, BLOCK_LIMIT, "limit", limit="13k")
    await bot.wait_for(lambda: bot.slack.calls_to("views.update")[sent:], what="update A sent")
    await send_change(bot, view, BLOCK_LIMIT, "limit", seen=before_a, limit="100m")
    await bot.wait_for(
        lambda: len(bot.slack.calls_to("views.update")) >= sent + 2, what="update B sent"
    )
    await settled(bot)
    assert preview_of(bot.slack.views[-1]["view"]).startswith("📊 *100,000,000 CU monthly")
