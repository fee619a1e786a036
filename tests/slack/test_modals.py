"""The budget form: the view it opens, how a submission is read and checked, what it saves."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from slack_sdk.models.views import View

from bot.budgets.types import TEAM, PeriodKind, Scope, ScopeKind
from bot.commands.budget import parse_limit
from bot.commands.requests import ChannelRef, ScopeRef
from bot.messages import modals
from bot.slack.changes import Draft
from bot.slack.views.budget_modal import (
    BLOCK_CHANNEL,
    BLOCK_FORECAST,
    BLOCK_LIMIT,
    BLOCK_PERIOD,
    BLOCK_SCOPE_KIND,
    BLOCK_SCOPE_NAME,
    BLOCK_THRESHOLDS,
    Checked,
    Form,
    Metadata,
    budget_modal_view,
    check_form,
    draft_for,
    read_form,
    typed_name,
)
from bot.store.budgets import Budget

Json = dict[str, Any]
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def budget(**changes: Any) -> Budget:
    fields: dict[str, Any] = {
        "id": 3,
        "workspace_id": "T1",
        "scope": Scope(ScopeKind.PROJECT, "proj_1"),
        "scope_name": "Marketing",
        "period": PeriodKind.WEEKLY,
        "limit_cu": 12500.0,
        "thresholds": (50, 90, 100),
        "forecast": True,
        "channel_id": "C_SPEND",
        "created_by": "U1",
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(changes)
    return Budget(**fields)


def valid_view(view: Json) -> Json:
    """Slack's own model accepts it (limits included) and knows every field we set."""
    parsed = View(**view)
    parsed.validate_json()
    assert parsed.to_dict() == view, "a field slack_sdk does not know would be dropped here"
    assert len(view["title"]["text"]) <= 24
    assert len(view.get("private_metadata", "")) <= 3000
    assert len(view["blocks"]) <= 100
    return view


def block(view: Json, block_id: str) -> Json:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def element(view: Json, block_id: str) -> Json:
    return block(view, block_id)["element"]


def test_the_add_form_has_every_field_with_defaults_and_remembers_where_it_came_from() -> None:
    view = valid_view(budget_modal_view(team_id="T1", channel_id="C_HERE", budget=None))
    assert view["callback_id"] == "budget_modal"
    assert view["title"]["text"] == "New budget"
    assert json.loads(view["private_metadata"]) == {
        "team": "T1",
        "channel": "C_HERE",
        "budget": None,
    }
    kinds = [o["value"] for o in element(view, BLOCK_SCOPE_KIND)["options"]]
    assert kinds == ["team", "project", "user", "key", "model"]
    assert element(view, BLOCK_SCOPE_KIND)["initial_option"]["value"] == "team"
    periods = [o["value"] for o in element(view, BLOCK_PERIOD)["options"]]
    assert periods == [p.value for p in PeriodKind]
    assert "initial_value" not in element(view, BLOCK_SCOPE_NAME)
    assert block(view, BLOCK_SCOPE_NAME)["optional"] is True
    assert "initial_value" not in element(view, BLOCK_LIMIT)
    assert element(view, BLOCK_THRESHOLDS)["initial_value"] == "50,80,100"
    assert "initial_options" not in element(view, BLOCK_FORECAST)
    channel = element(view, BLOCK_CHANNEL)
    assert channel["type"] == "conversations_select"
    assert channel["initial_conversation"] == "C_HERE"


def test_the_edit_form_is_filled_from_the_budget() -> None:
    view = valid_view(budget_modal_view(team_id="T1", channel_id="C_HERE", budget=budget()))
    assert view["title"]["text"] == "Edit budget #3"
    assert json.loads(view["private_metadata"])["budget"] == 3
    assert element(view, BLOCK_SCOPE_KIND)["initial_option"]["value"] == "project"
    assert element(view, BLOCK_SCOPE_NAME)["initial_value"] == "Marketing"
    assert element(view, BLOCK_PERIOD)["initial_option"]["value"] == "weekly"
    assert element(view, BLOCK_LIMIT)["initial_value"] == "12500"
    assert element(view, BLOCK_THRESHOLDS)["initial_value"] == "50,90,100"
    assert [o["value"] for o in element(view, BLOCK_FORECAST)["initial_options"]] == ["forecast"]
    # The budget's own channel, not the one the command was typed in.
    assert element(view, BLOCK_CHANNEL)["initial_conversation"] == "C_SPEND"
    assert "#3 Marketing weekly" in view["blocks"][0]["elements"][0]["text"]


def test_the_edit_form_of_a_team_budget_has_no_name_and_a_long_id_fits_the_title() -> None:
    view = valid_view(
        budget_modal_view(
            team_id="T1", channel_id="", budget=budget(id=10**15, scope=TEAM, scope_name=None)
        )
    )
    assert view["title"]["text"] == "Edit budget"
    assert "initial_value" not in element(view, BLOCK_SCOPE_NAME)


def test_from_home_there_is_no_channel_so_slack_picks_the_current_one_if_any() -> None:
    view = valid_view(budget_modal_view(team_id="T1", channel_id="", budget=None, from_home=True))
    channel = element(view, BLOCK_CHANNEL)
    assert "initial_conversation" not in channel
    assert channel["default_to_current_conversation"] is True
    assert Metadata.load(view["private_metadata"]).from_home is True


@pytest.mark.parametrize("limit", [12000.0, 12.5, 0.01, 1500.25, 1e12])
def test_the_limit_shown_reads_back_as_the_same_limit(limit: float) -> None:
    view = budget_modal_view(team_id="T1", channel_id="C", budget=budget(limit_cu=limit))
    assert float(parse_limit(element(view, BLOCK_LIMIT)["initial_value"])) == limit  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", [None, "", "not json", "[1]", '{"budget": "3"}', '{"budget": true}']
)
def test_metadata_that_is_not_ours_reads_as_empty(text: str | None) -> None:
    meta = Metadata.load(text)
    assert meta.budget_id is None and meta.from_home is False


def state(**values: Any) -> Json:
    """A `view.state.values` as Slack sends it for the given fields."""
    out: Json = {}
    if "kind" in values:
        out[BLOCK_SCOPE_KIND] = {
            "kind": {"type": "static_select", "selected_option": {"value": values["kind"]}}
        }
    out[BLOCK_SCOPE_NAME] = {"name": {"type": "plain_text_input", "value": values.get("name")}}
    if "period" in values:
        out[BLOCK_PERIOD] = {
            "period": {"type": "static_select", "selected_option": {"value": values["period"]}}
        }
    out[BLOCK_LIMIT] = {"limit": {"type": "plain_text_input", "value": values.get("limit")}}
    out[BLOCK_THRESHOLDS] = {
        "thresholds": {"type": "plain_text_input", "value": values.get("at", "50,80,100")}
    }
    out[BLOCK_FORECAST] = {
        "forecast": {
            "type": "checkboxes",
            "selected_options": [{"value": "forecast"}] if values.get("forecast") else [],
        }
    }
    out[BLOCK_CHANNEL] = {
        "channel": {
            "type": "conversations_select",
            "selected_conversation": values.get("channel", "C_SPEND"),
        }
    }
    return out


def test_a_valid_form_is_read_and_checked() -> None:
    form = read_form(
        state(kind="project", name=" Game Art ", period="monthly", limit="12.5k", forecast=True)
    )
    assert form == Form("project", "Game Art", "monthly", "12.5k", "50,80,100", True, "C_SPEND")
    assert check_form(form) == Checked(
        ScopeRef(ScopeKind.PROJECT, "Game Art"),
        PeriodKind.MONTHLY,
        Decimal(12500),
        (50, 80, 100),
        True,
        "C_SPEND",
    )


def test_a_member_may_be_typed_with_an_at_sign() -> None:
    checked = check_form(read_form(state(kind="user", name="@ana", period="daily", limit="5")))
    assert isinstance(checked, Checked)
    assert checked.scope == ScopeRef(ScopeKind.USER, "ana")
    # Only a member's name loses it (the preview reads it the same way): a project may be
    # called "@ops".
    assert typed_name(ScopeKind.USER, "@ana") == "ana"
    assert typed_name(ScopeKind.PROJECT, "@ops") == "@ops"


def test_an_empty_form_reads_without_errors_and_is_refused_field_by_field() -> None:
    assert read_form({}) == Form(None, "", None, "", "", False, None)
    errors = check_form(read_form({}))
    assert isinstance(errors, dict)
    assert set(errors) == {
        BLOCK_SCOPE_KIND,
        BLOCK_PERIOD,
        BLOCK_LIMIT,
        BLOCK_THRESHOLDS,
        BLOCK_CHANNEL,
    }


@pytest.mark.parametrize(
    ("values", "block_id", "words"),
    [
        ({"limit": "12x"}, BLOCK_LIMIT, "“12x” isn't a CU limit"),
        ({"limit": "-5"}, BLOCK_LIMIT, "more than 0"),
        ({"limit": "1.234"}, BLOCK_LIMIT, "two decimals"),
        ({"at": "50,eighty"}, BLOCK_THRESHOLDS, "“eighty” isn't a threshold"),
        ({"at": "0,50"}, BLOCK_THRESHOLDS, "from 1 to 1000"),
        ({"at": ""}, BLOCK_THRESHOLDS, "at least one"),
        ({"kind": "team", "name": "Marketing"}, BLOCK_SCOPE_NAME, "needs no name"),
        ({"kind": "model", "name": ""}, BLOCK_SCOPE_NAME, "model's name or ID"),
        ({"kind": "galaxy"}, BLOCK_SCOPE_KIND, "Pick what"),
        ({"period": "fortnightly"}, BLOCK_PERIOD, "Pick a period"),
        ({"channel": None}, BLOCK_CHANNEL, "channel"),
    ],
)
def test_each_bad_field_gets_its_own_plain_error(
    values: dict[str, Any], block_id: str, words: str
) -> None:
    given = {"kind": "team", "period": "daily", "limit": "100", **values}
    errors = check_form(read_form(state(**given)))
    assert isinstance(errors, dict)
    assert list(errors) == [block_id]
    assert words in errors[block_id]
    assert "`" not in errors[block_id]  # field errors are plain text


def checked(**changes: Any) -> Checked:
    fields: dict[str, Any] = {
        "scope": ScopeRef(ScopeKind.PROJECT, "Marketing"),
        "period": PeriodKind.WEEKLY,
        "limit": Decimal(12500),
        "thresholds": (50, 90, 100),
        "forecast": True,
        "channel": "C_SPEND",
    }
    fields.update(changes)
    return Checked(**fields)


def test_a_new_budget_gets_every_field() -> None:
    assert draft_for(checked(), None) == Draft(
        limit=Decimal(12500),
        period=PeriodKind.WEEKLY,
        scope=ScopeRef(ScopeKind.PROJECT, "Marketing"),
        channel=ChannelRef(id="C_SPEND"),
        thresholds=(50, 90, 100),
        forecast=True,
    )


def test_an_untouched_edit_form_changes_nothing() -> None:
    assert draft_for(checked(), budget()) == Draft()
    # The scope named by its ID or in another case is the same scope: no lookup.
    assert draft_for(checked(scope=ScopeRef(ScopeKind.PROJECT, "proj_1")), budget()) == Draft()
    assert draft_for(checked(scope=ScopeRef(ScopeKind.PROJECT, "MARKETING")), budget()) == Draft()


def test_an_edit_carries_only_what_changed() -> None:
    changed = checked(
        limit=Decimal(15000),
        scope=ScopeRef(ScopeKind.PROJECT, "Game Art"),
        channel="C_OTHER",
        forecast=False,
    )
    assert draft_for(changed, budget()) == Draft(
        limit=Decimal(15000),
        scope=ScopeRef(ScopeKind.PROJECT, "Game Art"),
        channel=ChannelRef(id="C_OTHER"),
        forecast=False,
    )
    assert draft_for(checked(scope=ScopeRef(ScopeKind.TEAM)), budget()).scope == ScopeRef(
        ScopeKind.TEAM
    )
    assert draft_for(checked(period=PeriodKind.DAILY, thresholds=(80,)), budget()) == Draft(
        period=PeriodKind.DAILY, thresholds=(80,)
    )


def test_the_confirmations_are_valid_modals() -> None:
    added = valid_view(modals.saved_view(budget(), added=True))
    text = added["blocks"][0]["text"]["text"]
    assert "#3 Marketing weekly" in text and "added" in text and "<#C_SPEND>" in text
    assert "12,500 CU" in text and "50 %, 90 %, 100 %" in text
    valid_view(modals.saved_view(budget(forecast=False), added=False))
    valid_view(modals.unchanged_view(budget()))
    valid_view(modals.message_view("A title much longer than twenty-four", "x" * 5000))


def test_plain_turns_mrkdwn_into_readable_plain_text() -> None:
    assert modals.field_error(
        "I don't know a project called “Mrkting”. Did you mean `Marketing`?"
    ) == ("I don't know a project called “Mrkting”. Did you mean “Marketing”?")
    assert modals.field_error("*bold* and `code`") == "bold and “code”"
    assert len(modals.field_error("x" * 5000)) <= 500
