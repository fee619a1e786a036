"""The alert message (SPEC §5): what it says, and Slack's limits for any data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.budgets.culprits import Attribution, Culprit, JobCulprit
from bot.budgets.forecast import Forecast
from bot.messages.alerts import (
    ACTION_ACKNOWLEDGE,
    ACTION_OPEN,
    ACTION_RAISE,
    ACTION_SNOOZE,
    STATUS_ACK,
    STATUS_SNOOZE,
    AlertView,
    LimitChange,
    acknowledged_reply,
    alert_message,
    back_under_reply,
    edited_reply,
    level_reply,
    scenario_health_message,
)
from bot.messages.mrkdwn import progress_bar

MODEL = Culprit("model_k", "Kling Video", 5200.0, "https://app.example/models/model_k")
KEY = Culprit("apiu_ci", "API key CI", 5100.0, "https://app.example/settings/api", True)
JOB = JobCulprit(
    "job_1", 72.0, "txt2video", MODEL, KEY, ("https://app.example/assets?openAssetId=a1",)
)


def view(**changes: object) -> AlertView:
    base = {
        "alert_id": 7,
        "budget_id": 3,
        "budget_label": "Budget #3 CI key 24h",
        "period_label": "the rolling 24h window",
        "tz": "Europe/Paris",
        "top_level": 100,
        "forecast_announced": False,
        "spend_cu": 5388.0,
        "limit_cu": 1000.0,
        "time_left": None,
        "forecast": None,
        "period_end": None,
        "attribution": Attribution(models=(MODEL,), users=(KEY,), jobs=(JOB,)),
        "open_url": "https://app.example/team",
    }
    return AlertView(**(base | changes))  # type: ignore[arg-type]


def texts(message: dict) -> str:
    parts = [message["text"]]
    for block in message["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        for element in block.get("elements", []):
            parts.append(str(element.get("text")))
    return "\n".join(parts)


def valid(message: dict) -> None:
    assert message["text"]
    assert len(message["blocks"]) <= 50
    for block in message["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()  # raises SlackObjectFormationError past Slack's limits


def test_the_alert_names_spend_limit_levels_culprits_and_offers_the_buttons() -> None:
    message = alert_message(view())
    valid(message)
    said = texts(message)
    assert "🔴 Budget #3 CI key 24h: 100 % of budget reached" in message["text"]
    assert "5,388 CU" in said and "1,000 CU" in said and "539 %" in said
    assert "<https://app.example/models/model_k|Kling Video>" in said
    assert "🔑 <https://app.example/settings/api|API key CI>" in said
    assert "`job_1` txt2video on <https://app.example/models/model_k|Kling Video>" in said
    assert "<https://app.example/assets?openAssetId=a1|asset 1>" in said
    actions = message["blocks"][-1]
    assert actions["block_id"] == "alert:7"
    ids = [(e["action_id"], e.get("value"), e.get("url")) for e in actions["elements"]]
    assert ids == [
        (ACTION_SNOOZE, "3", None),
        (ACTION_ACKNOWLEDGE, "7", None),
        (ACTION_RAISE, "7", None),
        (ACTION_OPEN, None, "https://app.example/team"),
    ]


def test_time_left_and_the_forecast_with_its_exhaustion_date() -> None:
    exhausted = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    message = alert_message(
        view(
            top_level=80,
            spend_cu=800,
            limit_cu=1000,
            time_left=timedelta(days=4, hours=2),
            period_label="November 2026 (Europe/Paris)",
            period_end=datetime(2026, 11, 30, 23, tzinfo=UTC),
            forecast=Forecast(
                projected_cu=1430, high_cu=1650, rate_cu_per_hour=5, exhaustion_at=exhausted
            ),
        )
    )
    said = texts(message)
    assert message["text"].startswith("🟠")
    assert "4 d 2 h left in November 2026 (Europe/Paris)" in said
    # A range, by the period's last day in Paris; 13:00 UTC is 14:00 in Paris.
    assert "Forecast: likely 1,430–1,650 CU by 30 Nov" in said
    assert "Sat 28 Nov 14:00" in said


def test_a_forecast_alert_says_so() -> None:
    message = alert_message(view(top_level=None, forecast_announced=True, spend_cu=300))
    assert "on track to exceed its limit" in message["text"]


def test_who_snoozed_and_acknowledged_stays_on_the_message() -> None:
    """Finding 9: the message is rendered from the alert's state, so an escalation after an
    acknowledgement still says who acknowledged it."""
    at = datetime(2026, 11, 26, 9, tzinfo=UTC)
    message = alert_message(view(acknowledged=("U_ANA", at), snoozed=("U_BO", at)))
    valid(message)
    ids = [b.get("block_id") for b in message["blocks"]]
    assert STATUS_ACK in ids and STATUS_SNOOZE in ids
    said = texts(message)
    assert "Acknowledged by <@U_ANA>" in said and "Snoozed by <@U_BO>" in said


def test_the_top_level_text_escapes_the_budget_label() -> None:
    """Finding 8: the notification text is mrkdwn too."""
    message = alert_message(view(budget_label="Budget #3 <!channel> <https://evil|Marketing>"))
    assert "<!channel>" not in message["text"] and "<https://evil" not in message["text"]
    assert "&lt;!channel&gt;" in message["text"]


@settings(max_examples=40, deadline=None)
@example(names=["n" * 400] * 30, spend=1e12)  # the worst case, always tried
@given(
    names=st.lists(st.text(min_size=1, max_size=400), min_size=0, max_size=30),
    spend=st.floats(min_value=0, max_value=1e12, allow_nan=False),
)
def test_any_data_stays_within_slacks_limits(names: list[str], spend: float) -> None:
    culprits = tuple(
        Culprit(f"id{i}", n, spend / 3, "https://a.example/" + n[:50]) for i, n in enumerate(names)
    )
    jobs = tuple(
        JobCulprit(
            n, spend, n, culprits[0] if culprits else None, None, ("https://a.example/x",) * 3
        )
        for n in names
    )
    message = alert_message(
        view(
            budget_label="Budget #1 " + "".join(names)[:500],
            spend_cu=spend,
            attribution=Attribution(models=culprits, users=culprits, jobs=jobs, partial=True),
        )
    )
    valid(message)
    assert len(message["blocks"][0]["text"]["text"]) <= 150


def test_replies_and_health_notices() -> None:
    assert "⬆️ Now at 90 %: crossed 80 %" in level_reply(80, 900, 1000)["text"]
    assert (
        back_under_reply(80, 500, 1000)["text"]
        == "✅ Back under 80 %: 500 CU of 1,000 CU in the window."
    )
    assert "<@U1> acknowledged" in acknowledged_reply("U1")["text"]
    assert (
        "limit 2,000 CU, alerts at 50 %, 100 %" in edited_reply("U1", 2000, [50, 100], 900)["text"]
    )
    down = scenario_health_message(failing=True, cause="bad credentials", detail="401", checks=3)
    assert "3 times in a row (bad credentials)" in down["text"]
    up = scenario_health_message(failing=False, cause="", detail="", checks=0)
    assert "resumed" in up["text"]


def test_the_progress_bar_is_full_and_flagged_past_the_limit() -> None:
    assert progress_bar(50, 100) == "`██████░░░░░░`"
    assert progress_bar(250, 100) == "`████████████` ⚠️"
    assert progress_bar(0, 100) == "`░░░░░░░░░░░░`"


def test_names_from_scenario_cannot_ping_or_break_links() -> None:
    sneaky = Culprit("u1", "<!channel> & co", 1.0)
    job = JobCulprit("job_<x>", 9.0, "<!here>", None, sneaky, ())
    said = texts(alert_message(view(attribution=Attribution(users=(sneaky,), jobs=(job,)))))
    assert "<!channel>" not in said and "<!here>" not in said
    assert "&lt;!channel&gt; &amp; co" in said


@pytest.mark.parametrize(
    ("top_level", "forecast_announced", "offered"),
    [(100, False, True), (None, True, True), (50, True, True), (None, False, False)],
)
def test_raise_is_offered_over_a_level_or_a_forecast_not_back_under(
    top_level: int | None, forecast_announced: bool, offered: bool
) -> None:
    message = alert_message(view(top_level=top_level, forecast_announced=forecast_announced))
    ids = [e["action_id"] for e in message["blocks"][-1]["elements"]]
    assert (ACTION_RAISE in ids) is offered


def test_a_changed_limit_is_shown_with_who_and_from_what() -> None:
    at = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    lowered = alert_message(view(limit_changed=LimitChange("U_ANA", 1000.0, 800.0, at)))
    raised = alert_message(view(limit_changed=LimitChange("U_ANA", 1000.0, 1500.0, at)))
    assert "✏️ Limit lowered to 800 CU (from 1,000 CU) by <@U_ANA>" in texts(lowered)
    assert "✏️ Limit raised to 1,500 CU (from 1,000 CU) by <@U_ANA>" in texts(raised)
    valid(raised)
