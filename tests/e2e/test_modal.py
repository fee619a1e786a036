"""The budget form end to end: opened by `/budget add|edit`, submitted with signed
view_submission payloads built from the view the bot really opened."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.messages import modals
from bot.sim.slack_api import Fault
from bot.slack import admins
from bot.slack.views import budget_modal
from bot.slack.views.budget_modal import (
    BLOCK_CHANNEL,
    BLOCK_FORECAST,
    BLOCK_LIMIT,
    BLOCK_PERIOD,
    BLOCK_SCOPE_KIND,
    BLOCK_SCOPE_NAME,
    BLOCK_THRESHOLDS,
)
from bot.store import audit
from bot.store.budgets import Budget, NewBudget, create_budget, get_budget, list_budgets
from tests.e2e.conftest import ADMIN, ANCHOR, CONFIGURED_ADMIN, MEMBER, TEAM, TEAM_ID, Bot

Json = dict[str, Any]
MARKETING = next(p for p in TEAM.projects if p.name == "Marketing")
GAME_ART = next(p for p in TEAM.projects if p.name == "Game Art")


def existing_budget(bot: Bot) -> Budget:
    return create_budget(
        bot.db,
        NewBudget(
            workspace_id=TEAM_ID,
            period=PeriodKind.WEEKLY,
            limit_cu=12500,
            channel_id="C_SPEND",
            created_by=ADMIN,
            scope=Scope(ScopeKind.PROJECT, MARKETING.id),
            scope_name="Marketing",
            thresholds=(50, 90, 100),
            forecast=True,
        ),
        now=ANCHOR,
    )


async def opened_view(bot: Bot, text: str, *, user: str = ADMIN) -> Json:
    """Run `/budget <text>` and return the view it opened."""
    before = len(bot.slack.calls_to("views.open"))
    await bot.command("/budget", text, user=user)
    calls = await bot.wait_for(lambda: bot.slack.calls_to("views.open")[before:], what="views.open")
    return calls[0].args["view"]


def field(view: Json, block_id: str) -> Json:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]


def state_of(view: Json, **changes: Any) -> Json:
    """`view.state.values` as Slack would send it: the initial values, then ``changes``
    (kind, name, period, limit, at, forecast, channel)."""
    initial: dict[str, Any] = {
        "kind": field(view, BLOCK_SCOPE_KIND)["initial_option"]["value"],
        "name": field(view, BLOCK_SCOPE_NAME).get("initial_value"),
        "period": field(view, BLOCK_PERIOD)["initial_option"]["value"],
        "limit": field(view, BLOCK_LIMIT).get("initial_value"),
        "at": field(view, BLOCK_THRESHOLDS).get("initial_value"),
        "forecast": bool(field(view, BLOCK_FORECAST).get("initial_options")),
        "channel": field(view, BLOCK_CHANNEL).get("initial_conversation"),
    }
    v = {**initial, **changes}
    return {
        BLOCK_SCOPE_KIND: {
            "kind": {"type": "static_select", "selected_option": {"value": v["kind"]}}
        },
        BLOCK_SCOPE_NAME: {"name": {"type": "plain_text_input", "value": v["name"]}},
        BLOCK_PERIOD: {
            "period": {"type": "static_select", "selected_option": {"value": v["period"]}}
        },
        BLOCK_LIMIT: {"limit": {"type": "plain_text_input", "value": v["limit"]}},
        BLOCK_THRESHOLDS: {"thresholds": {"type": "plain_text_input", "value": v["at"]}},
        BLOCK_FORECAST: {
            "forecast": {
                "type": "checkboxes",
                "selected_options": [{"value": "forecast"}] if v["forecast"] else [],
            }
        },
        BLOCK_CHANNEL: {
            "channel": {"type": "conversations_select", "selected_conversation": v["channel"]}
        },
    }


async def submit(bot: Bot, view: Json, *, user: str = ADMIN, **changes: Any) -> Json:
    """Submit the form; returns the bot's answer (`{}` when it just closes the modal)."""
    return await bot.submit_view(view, state_of(view, **changes), user=user, view_id="V_FORM")


def audit_actions(bot: Bot) -> list[str]:
    return [e.action for e in audit.history(bot.db, TEAM_ID)]


async def test_budget_add_alone_opens_the_empty_form_for_this_channel(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    assert view["callback_id"] == "budget_modal"
    assert json.loads(view["private_metadata"]) == {
        "team": TEAM_ID,
        "channel": "C_GENERAL",
        "budget": None,
    }
    assert field(view, BLOCK_CHANNEL)["initial_conversation"] == "C_GENERAL"
    assert "initial_value" not in field(view, BLOCK_LIMIT)
    [call] = bot.slack.calls_to("views.open")
    assert call.args["trigger_id"].startswith("trigger-hook")


async def test_budget_edit_with_only_an_id_opens_the_form_filled_in(bot: Bot) -> None:
    budget = existing_budget(bot)
    view = await opened_view(bot, f"edit {budget.id}")
    assert json.loads(view["private_metadata"])["budget"] == budget.id
    assert field(view, BLOCK_SCOPE_KIND)["initial_option"]["value"] == "project"
    assert field(view, BLOCK_SCOPE_NAME)["initial_value"] == "Marketing"
    assert field(view, BLOCK_PERIOD)["initial_option"]["value"] == "weekly"
    assert field(view, BLOCK_LIMIT)["initial_value"] == "12500"
    assert field(view, BLOCK_THRESHOLDS)["initial_value"] == "50,90,100"
    assert field(view, BLOCK_FORECAST)["initial_options"][0]["value"] == "forecast"
    assert field(view, BLOCK_CHANNEL)["initial_conversation"] == "C_SPEND"


async def test_a_valid_form_saves_the_budget_with_its_audit_and_confirms(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    answer = await submit(
        bot,
        view,
        kind="project",
        name="game art",
        period="7d",
        limit="12.5k",
        at="90, 50,100",
        forecast=True,
        channel="C_SPEND",
    )
    [saved] = list_budgets(bot.db, TEAM_ID)
    assert saved.scope == Scope(ScopeKind.PROJECT, GAME_ART.id)
    assert saved.scope_name == "Game Art"
    assert saved.period is PeriodKind.ROLLING_7D
    assert saved.limit_cu == 12500
    assert saved.thresholds == (50, 90, 100)
    assert saved.forecast is True
    assert saved.channel_id == "C_SPEND"
    assert saved.created_by == ADMIN
    [change] = audit.history(bot.db, TEAM_ID)
    assert change.action == "budget.add" and change.actor == ADMIN
    assert change.after["scope"] == f"project:{GAME_ART.id}"
    # The form turns into a confirmation.
    assert answer["response_action"] == "update"
    text = answer["view"]["blocks"][0]["text"]["text"]
    assert f"#{saved.id} Game Art 7d" in text and "added" in text and "<#C_SPEND>" in text


async def test_a_configured_admin_may_save_a_team_budget(bot: Bot) -> None:
    view = await opened_view(bot, "add", user=CONFIGURED_ADMIN)
    answer = await submit(bot, view, user=CONFIGURED_ADMIN, limit="1,500", period="daily")
    assert answer["response_action"] == "update"
    [saved] = list_budgets(bot.db, TEAM_ID)
    assert (saved.scope.kind, saved.limit_cu, saved.channel_id) == (
        ScopeKind.TEAM,
        1500,
        "C_GENERAL",
    )
    assert saved.created_by == CONFIGURED_ADMIN


async def test_editing_saves_only_what_changed(bot: Bot) -> None:
    budget = existing_budget(bot)
    view = await opened_view(bot, f"edit {budget.id}")
    answer = await submit(bot, view, limit="15k", forecast=False)
    assert answer["response_action"] == "update"
    after = get_budget(bot.db, TEAM_ID, budget.id)
    assert (after.limit_cu, after.forecast) == (15000, False)
    assert (after.scope, after.period, after.thresholds, after.channel_id) == (
        budget.scope,
        budget.period,
        budget.thresholds,
        budget.channel_id,
    )
    [edit] = [e for e in audit.history(bot.db, TEAM_ID) if e.action == "budget.edit"]
    assert (edit.before["limit_cu"], edit.after["limit_cu"]) == (12500, 15000)
    assert edit.actor == ADMIN


async def test_an_untouched_edit_form_writes_nothing(bot: Bot) -> None:
    budget = existing_budget(bot)
    view = await opened_view(bot, f"edit {budget.id}")
    answer = await submit(bot, view)
    assert answer["response_action"] == "update"
    assert answer["view"]["title"]["text"] == "Nothing changed"
    assert "budget.edit" not in audit_actions(bot)


async def test_a_bad_limit_and_bad_thresholds_are_shown_next_to_their_fields(bot: Bot) -> None:
    view = await opened_view(bot, "add")
    answer = await submit(bot, view, limit="12x", at="50,eighty")
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {BLOCK_LIMIT, BLOCK_THRESHOLDS}
    assert "isn't a CU limit" in answer["errors"][BLOCK_LIMIT]
    assert "“eighty” isn't a threshold" in answer["errors"][BLOCK_THRESHOLDS]
    assert list_budgets(bot.db, TEAM_ID) == []
    assert audit_actions(bot) == []


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Nope", "I don't know a project called “Nope”"),
        ("proj_does_not_exist", "I don't know a project called"),
    ],
)
async def test_an_unknown_project_is_answered_next_to_the_name(
    bot: Bot, name: str, words: str
) -> None:
    view = await opened_view(bot, "add")
    answer = await submit(bot, view, kind="project", name=name, limit="100")
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == [BLOCK_SCOPE_NAME]
    assert words in answer["errors"][BLOCK_SCOPE_NAME]
    assert list_budgets(bot.db, TEAM_ID) == []
    assert audit_actions(bot) == []


async def test_a_member_cannot_save_and_nothing_changes(bot: Bot) -> None:
    budget = existing_budget(bot)
    add_form = modals.budget_modal_view(team_id=TEAM_ID, channel_id="C_GENERAL", budget=None)
    answer = await submit(bot, add_form, user=MEMBER, limit="100")
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == [BLOCK_SCOPE_KIND]  # the first field
    assert "Only workspace admins" in answer["errors"][BLOCK_SCOPE_KIND]

    edit_form = modals.budget_modal_view(team_id=TEAM_ID, channel_id="C_GENERAL", budget=budget)
    answer = await submit(bot, edit_form, user=MEMBER, limit="1")
    assert list(answer["errors"]) == [BLOCK_SCOPE_KIND]
    assert list_budgets(bot.db, TEAM_ID) == [budget]
    assert audit_actions(bot) == ["budget.add"]  # only the one made above


async def test_editing_a_budget_removed_meanwhile_saves_nothing(bot: Bot) -> None:
    budget = existing_budget(bot)
    view = await opened_view(bot, f"edit {budget.id}")
    bot.db.execute("DELETE FROM budgets WHERE id = ?", [budget.id])
    answer = await submit(bot, view, limit="1k")
    assert answer["response_action"] == "errors"
    assert "no longer exists" in answer["errors"][BLOCK_SCOPE_KIND]
    assert list_budgets(bot.db, TEAM_ID) == []


async def test_when_scenario_is_slow_the_answer_is_on_time_and_save_again_works(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budget_modal, "RESOLVE_WITHIN", 0.2)
    bot.simulator.faults.latency = 0.4
    # Built directly, not opened: opening would start loading Scenario's names already.
    view = modals.budget_modal_view(team_id=TEAM_ID, channel_id="C_GENERAL", budget=None)
    started = time.monotonic()
    answer = await submit(bot, view, kind="project", name="Marketing", limit="5k")
    assert time.monotonic() - started < 1.5  # not the ~1.2 s+ a full lookup takes
    assert answer == {
        "response_action": "errors",
        "errors": {BLOCK_SCOPE_NAME: budget_modal.SCENARIO_SLOW},
    }
    assert list_budgets(bot.db, TEAM_ID) == []

    # The lookup went on in the background and filled the cache: Save again succeeds.
    await bot.wait_for(lambda: not budget_modal._background, what="the background lookup")
    answer = await submit(bot, view, kind="project", name="Marketing", limit="5k")
    assert answer["response_action"] == "update"
    [saved] = list_budgets(bot.db, TEAM_ID)
    assert saved.scope == Scope(ScopeKind.PROJECT, MARKETING.id)
    assert audit_actions(bot) == ["budget.add"]


@pytest.mark.parametrize("text", ["add", "edit 1"])
async def test_a_slow_admin_check_does_not_outwait_the_forms_trigger(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    existing_budget(bot)
    monkeypatch.setattr(admins, "OPEN_WITHIN", 0.1)
    bot.slack.fail_next("users.info", Fault(slow=1.5))
    await bot.command("/budget", text, user=MEMBER)
    # Opened while Slack still ponders (a trigger lasts 3 s) …
    [opened] = await bot.wait_for(
        lambda: bot.slack.calls_to("views.open"), within=1.0, what="views.open"
    )
    # … and its Save, once Slack has answered, refuses the member.
    answer = await submit(bot, opened.args["view"], user=MEMBER, limit="9k")
    assert "Only workspace admins" in next(iter(answer["errors"].values()))
    assert len(bot.slack.calls_to("users.info")) == 1
    assert [b.limit_cu for b in list_budgets(bot.db, TEAM_ID)] == [12_500]
