"""The Home tab and the digest settings form, rendered from plain data."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from slack_sdk.models.views import View

from bot.budgets.evaluate import AlertKind
from bot.budgets.forecast import Forecast
from bot.budgets.types import TEAM, PeriodKind, Scope, ScopeKind
from bot.messages import home
from bot.reports.status import BudgetStatus
from bot.slack.views.digest_settings import read_digest_form
from bot.store.alerts import AlertRow
from bot.store.budgets import Budget
from bot.store.digests import Digest

Json = dict[str, Any]
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
TZ = "Europe/Paris"


def budget(budget_id: int = 1, **changes: Any) -> Budget:
    fields: dict[str, Any] = {
        "id": budget_id,
        "workspace_id": "T1",
        "scope": Scope(ScopeKind.PROJECT, "proj_1"),
        "scope_name": "Marketing",
        "period": PeriodKind.MONTHLY,
        "limit_cu": 12000.0,
        "thresholds": (50, 80, 100),
        "forecast": False,
        "channel_id": "C_SPEND",
        "created_by": "U1",
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(changes)
    return Budget(**fields)


def status(b: Budget, spend: float | None = 6000.0, **changes: Any) -> BudgetStatus:
    fields: dict[str, Any] = {
        "budget": b,
        "period": None,
        "spend": spend,
        "forecast": None,
        "alerted_level": None,
        "snoozed_until": None,
        "delivery_problem": None,
    }
    fields.update(changes)
    return BudgetStatus(**fields)


def alert(alert_id: int, budget_id: int = 1, **changes: Any) -> AlertRow:
    fields: dict[str, Any] = {
        "id": alert_id,
        "budget_id": budget_id,
        "period_key": "2026-11",
        "kind": AlertKind.THRESHOLD,
        "level": 80,
        "spend_cu": 9600.0,
        "limit_cu": 12000.0,
        "fired_at": NOW - timedelta(hours=1),
        "resolved_at": None,
    }
    fields.update(changes)
    return AlertRow(**fields)


def render(**given: Any) -> Json:
    args: dict[str, Any] = {
        "statuses": [],
        "scenario_error": None,
        "recent": [],
        "labels": {},
        "digests": [],
        "tz": TZ,
        "now": NOW,
    }
    args.update(given)
    view = home.home_view(**args)
    parsed = View(**view)
    parsed.validate_json()  # Slack's limits: ≤ 100 blocks, text lengths, …
    assert parsed.to_dict() == view, "a field slack_sdk does not know would be dropped here"
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    return view


def texts(view: Json) -> str:
    out = []
    for block in view["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        for element in block.get("elements", []):
            text = element.get("text")
            out.append(text["text"] if isinstance(text, dict) else text or "")
    return "\n".join(str(t) for t in out)


def buttons(view: Json) -> dict[str, Json]:
    found = {}
    for block in view["blocks"]:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("type") == "button":
                found.setdefault(element["action_id"], element)
    return found


def test_an_empty_workspace_gets_the_buttons_and_a_way_to_start() -> None:
    view = render()
    assert view["type"] == "home"
    assert view["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Scenario budgets"},
    }
    assert {"home_add_budget", "home_digest_settings", "home_refresh"} <= set(buttons(view))
    shown = texts(view)
    assert "No budgets yet" in shown and "No alerts yet" in shown
    assert "*Digests*: none yet." in shown


def test_budgets_show_spend_bar_percent_forecast_state_and_an_edit_button() -> None:
    first = budget(1, forecast=True)
    second = budget(2, scope=TEAM, scope_name=None, period=PeriodKind.DAILY, limit_cu=1000)
    view = render(
        statuses=[
            status(
                first,
                6000.0,
                forecast=Forecast(13000.0, 14000.0, 10.0, None),
                alerted_level=50,
            ),
            status(second, 250.0, snoozed_until=NOW + timedelta(hours=3)),
        ],
        labels={1: first.label, 2: second.label},
    )
    sections = [b for b in view["blocks"] if b.get("accessory")]
    assert [b["accessory"]["value"] for b in sections] == ["1", "2"]
    one, two = (b["text"]["text"] for b in sections)
    assert "*#1 Marketing monthly*" in one and "<#C_SPEND>" in one
    assert "`██████░░░░░░`" in one and "*6,000 CU* of 12,000 CU" in one and "*50 %*" in one
    assert "📈 likely 13,000–14,000 CU" in one
    assert "🔔 alerted at 50 %" in one and "and on forecast" in one
    assert "*#2 Team daily*" in two and "*25 %*" in two
    assert "💤 snoozed until Thu 26 Nov 16:00" in two


def test_when_scenario_is_unreadable_it_says_so_and_still_lists_the_budgets() -> None:
    b = budget(1)
    view = render(
        statuses=[status(b, None)], scenario_error="Scenario is down", labels={1: b.label}
    )
    shown = texts(view)
    assert "couldn't read Scenario just now (Scenario is down)" in shown
    assert "*#1 Marketing monthly*" in shown and "spend unavailable" in shown
    assert "limit 12,000 CU" in shown


def test_the_last_alerts_are_listed_newest_first_as_given() -> None:
    b = budget(1)
    view = render(
        statuses=[status(b)],
        labels={1: b.label},
        recent=[
            alert(3, level=100, spend_cu=12100.0),
            alert(2, kind=AlertKind.FORECAST, level=0),
            alert(1, level=50, resolved_at=NOW),
            alert(9, budget_id=99),  # a budget that is gone: not listed
        ],
    )
    block = next(
        b for b in view["blocks"] if "Marketing monthly* reached" in texts({"blocks": [b]})
    )
    lines = block["text"]["text"].splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("• 🔴 *#1 Marketing monthly* reached 100 % — 12,100 CU of 12,000")
    assert lines[1].startswith("• 🔮 *#1 Marketing monthly* on track to exceed its limit")
    assert lines[2].startswith("• 🟡") and "since back under" in lines[2]
    assert lines[0].endswith("Thu 26 Nov 12:00")  # in the workspace's timezone


def test_digests_are_listed_with_their_cadence_and_local_time() -> None:
    digests = [
        Digest(1, "T1", "C_A", time(9, 0), "line", None),
        Digest(2, "T1", "C_B", time(17, 30), "line", None, PeriodKind.WEEKLY, 6),
        Digest(3, "T1", "C_C", time(8, 0), "skip", None, PeriodKind.MONTHLY),
    ]
    shown = texts(render(digests=digests))
    assert (
        "*Digests*: every day at 09:00 in <#C_A>, every Sunday at 17:30 in <#C_B>,"
        " on the 1st of every month at 08:00 in <#C_C> (Europe/Paris time)."
    ) in shown


@pytest.mark.parametrize("count", [1, 89, 90, 250])
def test_many_budgets_stay_within_100_blocks_and_say_how_many_more(count: int) -> None:
    budgets = [budget(i) for i in range(1, count + 1)]
    view = render(
        statuses=[status(b) for b in budgets],
        labels={b.id: b.label for b in budgets},
        recent=[alert(i) for i in range(1, 30)],
        scenario_error="slow",
    )
    assert len(view["blocks"]) <= 100
    edits = [b["accessory"]["value"] for b in view["blocks"] if b.get("accessory")]
    assert edits == [str(i) for i in range(1, len(edits) + 1)]  # the first ones, in order
    more = [t for t in texts(view).splitlines() if t.startswith("…and")]
    hidden = int(more[0].split()[1]) if more else 0
    assert len(edits) + hidden == count
    if hidden:
        assert more == [f"…and {hidden} more: `/budget list` shows every budget."]
        assert len(view["blocks"]) == 100  # cut only when there is no room left
    assert (hidden > 0) == (count > 89)


def test_the_digest_form_starts_from_the_current_digest_and_reads_back() -> None:
    empty = home.digest_modal_view([], TZ)
    View(**empty).validate_json()
    assert View(**empty).to_dict() == empty
    time_element = next(b for b in empty["blocks"] if b.get("block_id") == "digest_time")
    assert time_element["element"]["initial_time"] == "09:00"
    assert time_element["label"]["text"] == "Time (Europe/Paris)"

    filled = home.digest_modal_view([Digest(1, "T1", "C_A", time(17, 30), "line", None)], TZ)
    View(**filled).validate_json()
    by_id = {b.get("block_id"): b for b in filled["blocks"]}
    assert by_id["digest_time"]["element"]["initial_time"] == "17:30"
    assert by_id["digest_channel"]["element"]["initial_conversation"] == "C_A"

    values = {
        "digest_channel": {"channel": {"selected_conversation": "C_B"}},
        "digest_time": {"time": {"selected_time": "08:15"}},
        "digest_off": {"off": {"selected_options": [{"value": "off"}]}},
    }
    assert read_digest_form(values) == ("C_B", "08:15", True)
    assert read_digest_form({}) == (None, None, False)
