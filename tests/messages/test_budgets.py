"""The `/budget` renderers: what they say, and that Slack would accept every message."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.budgets.evaluate import AlertKind
from bot.budgets.forecast import Forecast
from bot.budgets.periods import period_at
from bot.budgets.types import TEAM, PeriodKind, Scope, ScopeKind
from bot.commands.help import HELP_TEXT, help_text
from bot.messages import budgets as budget_messages
from bot.messages.history import history_message
from bot.reports.status import BudgetStatus
from bot.store.alerts import AlertRow
from bot.store.audit import AuditEntry
from bot.store.budgets import Budget
from bot.store.digests import Digest, Held

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)  # 13:00 in Paris
TZ = "Europe/Paris"
Json = dict[str, Any]


def make_budget(budget_id: int = 1, **changes: Any) -> Budget:
    budget = Budget(
        id=budget_id,
        workspace_id="T1",
        scope=Scope(ScopeKind.PROJECT, "proj_mkt"),
        scope_name="Marketing",
        period=PeriodKind.MONTHLY,
        limit_cu=12_000.0,
        thresholds=(50, 90, 100),
        forecast=True,
        channel_id="C123ABC",
        created_by="U_ADMIN",
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(budget, **changes)


def make_status(
    budget: Budget | None = None,
    *,
    spend: float | None = 6_000.0,
    forecast: Forecast | None = None,
    alerted: int | None = None,
    snoozed: datetime | None = None,
    problem: str | None = None,
) -> BudgetStatus:
    budget = budget or make_budget()
    return BudgetStatus(
        budget=budget,
        period=period_at(budget.period, NOW, TZ) if spend is not None else None,
        spend=spend,
        forecast=forecast,
        alerted_level=alerted,
        snoozed_until=snoozed,
        delivery_problem=problem,
    )


def assert_valid(message: Json, *, max_blocks: int = 50) -> str:
    """Slack's limits, checked by slack_sdk's own models; returns all the message's text."""
    assert isinstance(message["text"], str) and 0 < len(message["text"]) <= 3000
    blocks = message["blocks"]
    assert 0 < len(blocks) <= max_blocks
    # Slack refuses messages with much more than ~13k characters of blocks.
    assert len(json.dumps(blocks, ensure_ascii=False)) < 13_000
    texts = [message["text"]]
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        assert block.to_dict() == raw  # to_dict() runs slack_sdk's validators
        if raw["type"] == "section":
            assert len(raw["text"]["text"]) <= 3000
            texts.append(raw["text"]["text"])
        elif raw["type"] == "header":
            assert len(raw["text"]["text"]) <= 150
            texts.append(raw["text"]["text"])
        elif raw["type"] == "context":
            texts += [e["text"] for e in raw["elements"]]
        elif raw["type"] == "actions":
            for element in raw["elements"]:
                assert len(element["text"]["text"]) <= 75
                texts.append(element["text"]["text"])
    return "\n".join(texts)


# ---------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------


def test_an_empty_list_hints_how_to_add_one() -> None:
    text = assert_valid(budget_messages.budget_list([], tz=TZ, now=NOW))
    assert "No budgets yet" in text
    assert "`/budget add 12k monthly project:Marketing #gen-ai-spend" in text


def test_each_budget_shows_spend_bar_percent_forecast_state_channel_thresholds_period() -> None:
    forecast = Forecast(
        14_000.0, 15_500.0, 120.0, exhaustion_at=datetime(2026, 11, 28, 13, tzinfo=UTC)
    )
    statuses = [
        make_status(spend=6_000.0, forecast=forecast, alerted=50),
        make_status(
            make_budget(2, scope=TEAM, scope_name=None, period=PeriodKind.ROLLING_24H),
            spend=300.0,
            snoozed=NOW + timedelta(hours=4),
        ),
        make_status(make_budget(3, channel_id="C_GONE"), spend=100.0, problem="channel_not_found"),
        make_status(make_budget(4, period=PeriodKind.WEEKLY, forecast=False), spend=10.0),
    ]
    message = budget_messages.budget_list(statuses, tz=TZ, now=NOW)
    text = assert_valid(message)
    first = message["blocks"][1]["text"]["text"]
    assert "*#1 Marketing monthly*" in first
    assert "6,000 CU* of 12,000 CU" in first
    assert "`██████░░░░░░`" in first  # 50 % of 12 cells
    assert "*50 %* used" in first
    assert "📈 Forecast: likely 14,000–15,500 CU by 30 Nov" in first
    assert "the limit is reached around Sat 28 Nov 14:00" in first
    assert "🔔 alerted at 50 %" in first
    assert "<#C123ABC>" in first and "alerts at 50, 90, 100 % + forecast" in first
    assert "4 d 11 h left" in first  # until Dec 1st, 00:00 in Paris
    assert "project Marketing" in first
    second = message["blocks"][2]["text"]["text"]
    assert "per rolling 24 h" in second and "the whole team" in second
    assert "💤 snoozed until Thu 26 Nov 17:00" in second
    assert "Forecast" not in second  # a rolling window has no end to project to
    assert "⚠️ delivery problem: `channel_not_found`" in text
    assert "Forecast: too early in the period to say" in message["blocks"][4]["text"]["text"]
    assert "✅ ok" in message["blocks"][4]["text"]["text"]
    assert message["text"].startswith("4 budgets: #1 Marketing monthly 50 %")
    assert "Times in Europe/Paris" in text


def test_without_spend_the_budgets_are_still_listed_with_the_reason() -> None:
    statuses = [make_status(spend=None), make_status(make_budget(2), spend=None, alerted=None)]
    message = budget_messages.budget_list(
        statuses, tz=TZ, now=NOW, error="Scenario refused the API key and secret."
    )
    text = assert_valid(message)
    assert "Spend is unavailable right now" in text
    assert "Scenario refused the API key and secret." in text
    assert text.count("spend unavailable") == 2
    assert "#1 Marketing monthly" in text and "#2 Marketing monthly" in text
    assert "Forecast" not in text


def test_more_than_ten_budgets_become_compact_lines_all_shown() -> None:
    statuses = [make_status(make_budget(i), spend=i * 100.0, alerted=80) for i in range(1, 12)]
    message = budget_messages.budget_list(statuses, tz=TZ, now=NOW)
    text = assert_valid(message)
    assert all(f"*#{i} Marketing monthly*" in text for i in range(1, 12))
    assert "more" not in text
    assert (
        "• *#3 Marketing monthly* 300 / 12,000 CU (2 %) · 🔔 alerted at 80 % · <#C123ABC>" in text
    )
    # Several budgets share a section: far fewer blocks than budgets.
    assert len(message["blocks"]) < 11


def test_hundreds_of_budgets_stay_within_slack_limits_and_say_how_many_are_left_out() -> None:
    long_name = "A very long project name " * 8
    statuses = [
        make_status(make_budget(i, scope_name=long_name), spend=float(i), problem="x" * 300)
        for i in range(1, 501)
    ]
    message = budget_messages.budget_list(statuses, tz=TZ, now=NOW)
    text = assert_valid(message)
    shown = sum(f"*#{i} " in text for i in range(1, 501))
    assert 10 < shown < 500
    assert f"…and {500 - shown} more." in text
    assert message["text"].endswith(", …")


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=120),
    name=st.text(min_size=1, max_size=300),
    spend=st.one_of(st.none(), st.floats(min_value=0, max_value=1e9)),
    problem=st.one_of(st.none(), st.text(max_size=500)),
)
def test_any_list_is_a_valid_message(
    count: int, name: str, spend: float | None, problem: str | None
) -> None:
    statuses = [
        make_status(make_budget(i, scope_name=name), spend=spend, problem=problem or None)
        for i in range(1, count + 1)
    ]
    text = assert_valid(budget_messages.budget_list(statuses, tz=TZ, now=NOW, error="down" * 100))
    if count:
        assert "#1 " in text


# ---------------------------------------------------------------------------------------------
# add / edit
# ---------------------------------------------------------------------------------------------


def test_a_saved_budget_shows_what_it_is_and_its_current_spend() -> None:
    message = budget_messages.saved_budget(make_status(spend=3_000.0), tz=TZ, now=NOW)
    text = assert_valid(message)
    assert "✅ Budget #1 Marketing monthly added" in text
    assert "12,000 CU monthly · project Marketing · alerts at 50, 90, 100 % + forecast" in text
    assert "*3,000 CU* of 12,000 CU · *25 %* used" in text
    assert "Changed" not in text


def test_an_edited_budget_says_what_changed_before_and_after() -> None:
    before = make_budget()
    after = replace(
        before,
        limit_cu=15_000.0,
        thresholds=(80, 100),
        forecast=False,
        channel_id="C_NEW",
        scope=Scope(ScopeKind.MODEL, "model_1"),
        scope_name="Flux Dev",
        period=PeriodKind.ROLLING_7D,
    )
    message = budget_messages.saved_budget(make_status(after), tz=TZ, now=NOW, before=before)
    text = assert_valid(message)
    assert "updated" in text
    assert "• limit: 12,000 CU → 15,000 CU" in text
    assert "• thresholds: 50, 90, 100 % → 80, 100 %" in text
    assert "• forecast alert: on → off" in text
    assert "• channel: <#C123ABC> → <#C_NEW>" in text
    assert "• scope: project Marketing → model Flux Dev" in text
    assert "• period: monthly → per rolling 7 days" in text


def test_an_edit_that_changes_nothing_says_so() -> None:
    budget = make_budget()
    text = assert_valid(
        budget_messages.saved_budget(make_status(budget), tz=TZ, now=NOW, before=budget)
    )
    assert "nothing changed" in text
    assert "Changed" not in text


def test_a_saved_budget_without_spend_says_why() -> None:
    message = budget_messages.saved_budget(
        make_status(spend=None), tz=TZ, now=NOW, error="Scenario is down"
    )
    text = assert_valid(message)
    assert "spend unavailable" in text
    assert "Current spend is unavailable: Scenario is down" in text


def test_changes_ignore_unknown_and_missing_fields() -> None:
    assert budget_messages.changes({"color": "red"}, {"color": "blue"}) == []
    assert budget_messages.changes({}, {"limit_cu": 5.5}) == ["limit: – → 5.5 CU"]
    assert budget_messages.changes({"thresholds": [100, 50]}, {"thresholds": [50, 100]}) == []


# ---------------------------------------------------------------------------------------------
# remove
# ---------------------------------------------------------------------------------------------


def test_the_removal_question_has_a_danger_remove_button_and_keep_it() -> None:
    message = budget_messages.remove_confirmation(make_budget(7))
    text = assert_valid(message)
    assert "Remove budget *#7 Marketing monthly*?" in text
    actions = message["blocks"][-1]
    assert actions["type"] == "actions"
    remove, keep = actions["elements"]
    assert (remove["action_id"], remove["value"], remove["style"]) == (
        "budget_remove_confirm",
        "7",
        "danger",
    )
    assert "confirm" not in remove  # the message itself is the confirmation
    assert (keep["action_id"], keep["value"], keep["text"]["text"]) == (
        "budget_remove_cancel",
        "7",
        "Keep it",
    )


def test_the_answers_to_the_removal_buttons() -> None:
    removed = assert_valid(budget_messages.removed(make_budget(7), "U_ADMIN"))
    assert "Removed budget *#7 Marketing monthly*" in removed and "<@U_ADMIN>" in removed
    assert "already gone" in assert_valid(budget_messages.already_removed(7))
    assert assert_valid(budget_messages.kept(make_budget(7), 7)).startswith("Kept.")
    assert "#7" in assert_valid(budget_messages.kept(None, 7))


def test_a_refused_form_suggests_typing_the_command() -> None:
    add = assert_valid(budget_messages.form_refused("expired_trigger_id", None))
    assert "`expired_trigger_id`" in add and "`/budget add 12k monthly" in add
    assert "`/budget edit 3 " in assert_valid(budget_messages.form_refused(None, 3))


# ---------------------------------------------------------------------------------------------
# snooze, digest, timezone
# ---------------------------------------------------------------------------------------------


def test_snooze_answers_give_the_local_end_time() -> None:
    text = assert_valid(
        budget_messages.snoozed(make_budget(), NOW + timedelta(hours=4), TZ, until_reset=False)
    )
    assert "snoozed until *Thu 26 Nov 17:00* Europe/Paris." in text
    reset = assert_valid(budget_messages.snoozed(make_budget(), NOW, "UTC", until_reset=True))
    assert "when its current period ends" in reset
    assert "no longer snoozed" in assert_valid(
        budget_messages.unsnoozed(make_budget(), was_snoozed=True)
    )
    assert "wasn't snoozed" in assert_valid(
        budget_messages.unsnoozed(make_budget(), was_snoozed=False)
    )


def test_digest_and_timezone_answers() -> None:
    def digest(at: time, cadence: PeriodKind = PeriodKind.DAILY, weekday: int | None = None):
        return Digest(1, "T1", "C1", at, "line", None, cadence, weekday)

    assert "every day at *09:00* (Europe/Paris) in <#C1>" in assert_valid(
        budget_messages.digest_set(digest(time(9)), TZ, before=None)
    )
    assert "(was 08:00)" in assert_valid(
        budget_messages.digest_set(digest(time(9)), TZ, before=digest(time(8)))
    )
    assert (
        "nothing changed"
        in assert_valid(
            budget_messages.digest_set(digest(time(9)), TZ, before=digest(time(9)))
        ).casefold()
    )
    weekly = assert_valid(
        budget_messages.digest_set(
            digest(time(9), PeriodKind.WEEKLY, 4), TZ, before=digest(time(9))
        )
    )
    assert "Weekly digest moved: every Friday at *09:00*" in weekly
    assert "(was every day at 09:00)" in weekly
    monthly = assert_valid(
        budget_messages.digest_set(digest(time(8), PeriodKind.MONTHLY), TZ, before=None)
    )
    assert "Monthly digest set: on the 1st of every month at *08:00*" in monthly
    # One already went to the channel today: the answer names the day of the next.
    held = assert_valid(
        budget_messages.digest_set(
            digest(time(9), PeriodKind.WEEKLY, 3),
            TZ,
            before=digest(time(9)),
            held=(date(2026, 12, 10), Held.CHANNEL_GIVEN),
        )
    )
    assert "Next digest: *Thu 10 Dec at 09:00* (<#C1> already had today's" in held
    quiet = assert_valid(
        budget_messages.digest_set(
            digest(time(17)),
            TZ,
            before=digest(time(9)),
            held=(date(2026, 11, 27), Held.SPAN_DONE),
        )
    )
    assert "Next digest: *Fri 27 Nov at 17:00* (today's was already handled)" in quiet
    assert "already had" not in quiet
    unchanged = budget_messages.digest_set(
        digest(time(9)), TZ, before=digest(time(9)), held=(date(2026, 12, 4), Held.CHANNEL_GIVEN)
    )
    assert "Next digest" not in assert_valid(unchanged)
    assert "turned off (it went out every day at 09:00 Europe/Paris)" in assert_valid(
        budget_messages.digest_off("C1", before=digest(time(9)), tz=TZ)
    )
    assert "every Monday at 09:00" in assert_valid(
        budget_messages.digest_off("C1", before=digest(time(9), PeriodKind.WEEKLY, 0), tz=TZ)
    )
    assert "no digest" in assert_valid(budget_messages.digest_off("C1", before=None, tz=TZ))
    changed = assert_valid(
        budget_messages.timezone_set("America/New_York", was=TZ, now=NOW, changed=True)
    )
    assert "*America/New_York* (was Europe/Paris)" in changed
    assert "Thu 26 Nov 07:00" in changed
    assert "nothing changed" in assert_valid(
        budget_messages.timezone_set(TZ, was=TZ, now=NOW, changed=False)
    )


# ---------------------------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------------------------


def entry(action: str, before: Any, after: Any, *, target: str = "budget:1", minutes: int = 0):
    return AuditEntry(
        id=minutes,
        workspace_id="T1",
        actor="U_ADMIN",
        at=NOW + timedelta(minutes=minutes),
        action=action,
        target=target,
        before=before,
        after=after,
    )


def test_history_lists_alerts_and_changes_readably_in_local_time() -> None:
    snapshot = make_budget().as_audit()
    edited = {**snapshot, "limit_cu": 15_000.0}
    alert_rows = [
        AlertRow(
            2, 1, "monthly:2026-11@Europe/Paris", AlertKind.THRESHOLD, 90, 11_000, 12_000, NOW, None
        ),
        AlertRow(
            1,
            1,
            "monthly:2026-11@Europe/Paris",
            AlertKind.FORECAST,
            0,
            5_000,
            12_000,
            NOW - timedelta(hours=1),
            None,
        ),
    ]
    entries = [
        entry(
            "digest.off",
            {"channel_id": "C9", "local_time": "09:00"},
            None,
            target="digest:C9",
            minutes=9,
        ),
        entry(
            "digest.set",
            None,
            {"channel_id": "C9", "local_time": "09:00"},
            target="digest:C9",
            minutes=8,
        ),
        entry(
            "timezone",
            {"timezone": None},
            {"timezone": "Europe/Paris"},
            target="workspace",
            minutes=7,
        ),
        entry(
            "alert.acknowledge", None, {"acknowledged_by": "U_ADMIN"}, target="alert:2", minutes=6
        ),
        entry("budget.unsnooze", {"snoozed_until": "x"}, {"snoozed_until": None}, minutes=5),
        entry(
            "budget.snooze",
            {"snoozed_until": None},
            {"snoozed_until": "2026-11-26 16:00:00+00:00"},
            minutes=4,
        ),
        entry("budget.remove", edited, None, minutes=3),
        entry("budget.edit", snapshot, edited, minutes=2),
        entry("budget.add", None, snapshot, minutes=1),
        entry("budget.paint", {"color": "red"}, {"color": "blue"}, minutes=0),
    ]
    message = history_message(
        alert_rows, entries, labels={1: "#1 Marketing monthly"}, tz=TZ, budget_id=1
    )
    text = assert_valid(message)
    assert "History of budget #1" in text
    assert "• Thu 26 Nov 13:00 — *#1 Marketing monthly*: 🟠 90 % (11,000 CU of 12,000 CU)" in text
    assert "🔮 forecast over the limit (5,000 CU of 12,000 CU so far)" in text
    lines = [line for line in text.split("\n") if line.startswith("• ")]
    changes = [line for line in lines if "<@U_ADMIN>" in line]
    assert changes == [
        "• Thu 26 Nov 13:09 — <@U_ADMIN> turned off the digest in <#C9> (was every day at 09:00)",
        "• Thu 26 Nov 13:08 — <@U_ADMIN> set a digest in <#C9>: every day at 09:00",
        "• Thu 26 Nov 13:07 — <@U_ADMIN> set the timezone: the default → Europe/Paris",
        "• Thu 26 Nov 13:06 — <@U_ADMIN> acknowledged alert 2",
        "• Thu 26 Nov 13:05 — <@U_ADMIN> unsnoozed *#1 Marketing monthly*",
        "• Thu 26 Nov 13:04 — <@U_ADMIN> snoozed *#1 Marketing monthly* until Thu 26 Nov 17:00",
        "• Thu 26 Nov 13:03 — <@U_ADMIN> removed *#1 Marketing monthly* (15,000 CU monthly ·"
        " project Marketing · alerts at 50, 90, 100 % + forecast · <#C123ABC>)",
        "• Thu 26 Nov 13:02 — <@U_ADMIN> changed *#1 Marketing monthly*: limit: 12,000 CU →"
        " 15,000 CU",
        "• Thu 26 Nov 13:01 — <@U_ADMIN> added *#1 Marketing monthly*: 12,000 CU monthly ·"
        " project Marketing · alerts at 50, 90, 100 % + forecast · <#C123ABC>",
        "• Thu 26 Nov 13:00 — <@U_ADMIN> `budget.paint` budget:1",
    ]


def test_history_names_budgets_by_their_current_label_when_the_entry_does_not() -> None:
    entries = [entry("budget.unsnooze", {}, {}, target="budget:4")]
    text = assert_valid(history_message([], entries, labels={4: "#4 Team daily"}, tz="UTC"))
    assert "unsnoozed *#4 Team daily*" in text
    assert "No alerts yet." in text
    assert "History of this workspace" in text


def test_an_empty_history_says_so() -> None:
    text = assert_valid(history_message([], [], labels={}, tz=TZ))
    assert "No alerts yet." in text and "No changes recorded yet." in text


def test_a_long_history_stays_within_limits() -> None:
    snapshot = make_budget(scope_name="N" * 2000).as_audit()
    entries = [entry("budget.add", None, snapshot, minutes=-i) for i in range(20)]
    alert_rows = [
        AlertRow(i, 1, "k", AlertKind.THRESHOLD, 100, 1e12, 1.0, NOW, NOW) for i in range(10)
    ]
    text = assert_valid(history_message(alert_rows, entries, labels={1: "L" * 3000}, tz=TZ))
    assert text.count("added") == 20
    assert "back under since" in text


# ---------------------------------------------------------------------------------------------
# help
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", [None, "add", "snooze", "usage"])
def test_help_is_the_grammar(topic: str | None) -> None:
    text = assert_valid(budget_messages.help_message(help_text(topic)))
    if topic is None:
        assert all(line in text for line in HELP_TEXT.split("\n") if line)
    else:
        assert help_text(topic) in text


def test_notice_splits_a_long_text_over_sections() -> None:
    message = budget_messages.notice("\n".join(["word " * 100] * 12))
    assert_valid(message)
    assert len(message["blocks"]) > 1
