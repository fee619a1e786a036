"""The App Home tab end to end: published on app_home_opened, and its buttons."""

from __future__ import annotations

import json
import re
from datetime import time
from typing import Any

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import run_check
from bot.messages import home
from bot.slack.views.budget_modal import BLOCK_CHANNEL, BLOCK_LIMIT
from bot.store import audit
from bot.store.budgets import Budget, NewBudget, create_budget, list_budgets
from bot.store.digests import list_digests, set_digest
from tests.e2e.conftest import ADMIN, ANCHOR, MEMBER, TEAM, TEAM_ID, Bot
from tests.e2e.test_modal import submit

Json = dict[str, Any]


def add_budget(
    bot: Bot, limit: float, scope: Scope | None = None, name: str | None = None
) -> Budget:
    new = NewBudget(TEAM_ID, PeriodKind.ROLLING_24H, limit, "C_SPEND", ADMIN)
    if scope is not None:
        new = NewBudget(
            TEAM_ID, PeriodKind.ROLLING_24H, limit, "C_SPEND", ADMIN, scope=scope, scope_name=name
        )
    return create_budget(bot.db, new, now=ANCHOR)


async def open_home(bot: Bot, user: str = ADMIN, tab: str = "home") -> Json:
    """Send app_home_opened; returns the view published for ``user``."""
    before = len(bot.slack.calls_to("views.publish"))
    answer = await bot.event(
        {"type": "app_home_opened", "user": user, "channel": "D_HOME", "tab": tab}
    )
    assert answer.status_code == 200
    [call] = await bot.wait_for(
        lambda: bot.slack.calls_to("views.publish")[before:], what="views.publish"
    )
    assert call.args["user_id"] == user
    return call.args["view"]


def all_text(view: Json) -> str:
    return json.dumps(view, ensure_ascii=False)


def button(view: Json, action_id: str) -> Json:
    for block in view["blocks"]:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id", "b")}
    raise AssertionError(f"no {action_id} button")


def press_in_home(
    bot: Bot, view: Json, action_id: str, user: str, value: str | None = None
) -> Json:
    found = button(view, action_id)
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user, "team_id": TEAM_ID, "username": user.lower()},
        "api_app_id": "A_BOT",
        "token": "legacy-token-unused",
        "trigger_id": f"trigger-{bot.new_hook()}",
        "container": {"type": "view", "view_id": "V_HOME"},
        "view": {**view, "id": "V_HOME", "team_id": TEAM_ID},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": found["block_id"],
                "value": value if value is not None else found.get("value"),
                "action_ts": "1700000100.000001",
            }
        ],
    }


async def opened(bot: Bot, payload: Json) -> Json:
    before = len(bot.slack.calls_to("views.open"))
    answer = await bot.interact(payload)
    assert answer.status_code == 200
    [call] = await bot.wait_for(
        lambda: bot.slack.calls_to("views.open")[before:], what="views.open"
    )
    assert call.args["trigger_id"] == payload["trigger_id"]
    return call.args["view"]


async def test_opening_home_publishes_budgets_with_spend_last_alerts_and_buttons(bot: Bot) -> None:
    team = add_budget(bot, 10**9)
    spike = add_budget(bot, 100, Scope(ScopeKind.KEY, TEAM.spike.user_id), "Runaway key")
    deps = bot.deps
    await run_check(
        deps.db, lambda ws: deps.scenario_for(ws.team_id), deps.runtime.check_settings, ANCHOR
    )
    set_digest(bot.db, TEAM_ID, "C_DIGEST", time(9, 0), actor=ADMIN, now=ANCHOR)

    view = await open_home(bot)
    assert view["type"] == "home"
    shown = all_text(view)
    assert f"*#{team.id} Team 24h*" in shown
    assert f"*#{spike.id} Runaway key 24h*" in shown
    assert re.search(r"`█{12}` ⚠️ \*[\d,.]+ CU\* of 100 CU · \*\d+ %\*", shown)  # spend
    assert "🔔 alerted at 100 %" in shown
    assert f"🔴 *#{spike.id} Runaway key 24h* reached 100 %" in shown  # the last alerts
    assert "09:00 in <#C_DIGEST>" in shown
    for action_id in (home.ACTION_ADD, home.ACTION_DIGEST, home.ACTION_REFRESH):
        button(view, action_id)
    assert button(view, home.ACTION_EDIT)["value"] == str(team.id)
    assert "couldn't read Scenario" not in shown
    assert len(view["blocks"]) <= 100


async def test_when_scenario_cannot_be_read_home_says_so_and_still_lists(bot: Bot) -> None:
    budget = add_budget(bot, 5000)
    bot.simulator.faults.outage = True
    bot.simulator.faults.outage_status = 401  # bad credentials: not retried
    view = await open_home(bot, MEMBER)
    shown = all_text(view)
    assert "couldn't read Scenario just now" in shown
    assert f"*#{budget.id} Team 24h*" in shown and "spend unavailable" in shown


async def test_only_the_home_tab_is_published(bot: Bot) -> None:
    await bot.event({"type": "app_home_opened", "user": ADMIN, "channel": "D1", "tab": "messages"})
    await open_home(bot, MEMBER)  # processed after the first: only this one publishes
    assert [c.args["user_id"] for c in bot.slack.calls_to("views.publish")] == [MEMBER]


async def test_add_budget_opens_the_form_and_saving_refreshes_home(bot: Bot) -> None:
    view = await open_home(bot)
    form = await opened(bot, press_in_home(bot, view, home.ACTION_ADD, ADMIN))
    assert form["callback_id"] == "budget_modal"
    assert json.loads(form["private_metadata"])["home"] is True
    assert field_of(form, BLOCK_CHANNEL).get("default_to_current_conversation") is True

    publishes = len(bot.slack.calls_to("views.publish"))
    answer = await submit(bot, form, limit="2k", period="daily", channel="C_SPEND")
    assert answer["response_action"] == "update"
    [saved] = list_budgets(bot.db, TEAM_ID)
    refreshed = await bot.wait_for(
        lambda: bot.slack.calls_to("views.publish")[publishes:], what="home refresh"
    )
    assert f"*#{saved.id} Team daily*" in all_text(refreshed[0].args["view"])


async def test_edit_opens_the_form_filled_in(bot: Bot) -> None:
    budget = add_budget(bot, 1234)
    view = await open_home(bot)
    form = await opened(bot, press_in_home(bot, view, home.ACTION_EDIT, ADMIN))
    assert json.loads(form["private_metadata"])["budget"] == budget.id
    assert field_of(form, BLOCK_LIMIT)["initial_value"] == "1234"


async def test_a_member_pressing_add_or_edit_is_told_only_admins_can(bot: Bot) -> None:
    add_budget(bot, 1234)
    view = await open_home(bot, MEMBER)
    for action_id in (home.ACTION_ADD, home.ACTION_EDIT, home.ACTION_DIGEST):
        shown = await opened(bot, press_in_home(bot, view, action_id, MEMBER))
        assert shown.get("callback_id") is None  # an explanation, not a form
        assert shown["title"]["text"] == "Admins only"
        assert "only workspace admins" in all_text(shown)


async def test_digest_settings_set_and_turn_off_the_digest(bot: Bot) -> None:
    view = await open_home(bot)
    form = await opened(bot, press_in_home(bot, view, home.ACTION_DIGEST, ADMIN))
    assert form["callback_id"] == home.DIGEST_CALLBACK

    async def save(
        channel: str | None, at: str | None, off: bool = False, user: str = ADMIN
    ) -> Json:
        values = {
            home.BLOCK_DIGEST_CHANNEL: {"channel": {"selected_conversation": channel}},
            home.BLOCK_DIGEST_TIME: {"time": {"type": "timepicker", "selected_time": at}},
            home.BLOCK_DIGEST_OFF: {"off": {"selected_options": [{"value": "off"}] if off else []}},
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": "A_BOT",
            "view": {**form, "id": "V_DIGEST", "team_id": TEAM_ID, "state": {"values": values}},
        }
        answer = await bot.interact(payload)
        assert answer.status_code == 200
        return answer.json() if answer.content else {}

    refused = await save("C_DIGEST", "08:30", user=MEMBER)
    assert refused["response_action"] == "errors" and list_digests(bot.db, TEAM_ID) == []
    missing = await save(None, "08:30")
    assert list(missing["errors"]) == [home.BLOCK_DIGEST_CHANNEL]

    publishes = len(bot.slack.calls_to("views.publish"))
    answer = await save("C_DIGEST", "08:30")
    assert answer["response_action"] == "update"
    [digest] = list_digests(bot.db, TEAM_ID)
    assert (digest.channel_id, digest.at) == ("C_DIGEST", "08:30")
    await bot.wait_for(lambda: bot.slack.calls_to("views.publish")[publishes:], what="refresh")

    nothing = await save("C_ELSEWHERE", "08:30", off=True)
    assert list(nothing["errors"]) == [home.BLOCK_DIGEST_OFF]
    answer = await save("C_DIGEST", None, off=True)
    assert answer["response_action"] == "update"
    assert list_digests(bot.db, TEAM_ID) == []
    actions = [e.action for e in audit.history(bot.db, TEAM_ID)]
    assert actions == ["digest.off", "digest.set"]

    # The form has only the time: a weekly, quiet digest stays weekly and quiet.
    weekly = PeriodKind.WEEKLY
    set_digest(
        bot.db,
        TEAM_ID,
        "C_DIGEST",
        time(9),
        actor=ADMIN,
        now=ANCHOR,
        when_empty="skip",
        cadence=weekly,
        weekday=4,
    )
    answer = await save("C_DIGEST", "07:15")
    assert "The weekly digest goes to <#C_DIGEST> every Friday at 07:15" in all_text(answer["view"])
    [digest] = list_digests(bot.db, TEAM_ID)
    assert (digest.at, digest.cadence, digest.weekday, digest.when_empty) == (
        "07:15",
        weekly,
        4,
        "skip",
    )


def field_of(view: Json, block_id: str) -> Json:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]
