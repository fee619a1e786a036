"""The `/usage` renderer: data in, Block Kit out, within Slack's limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.budgets.culprits import Culprit
from bot.commands.requests import DateRange, RangePreset
from bot.messages.usage import (
    Filter,
    UsageView,
    change_text,
    range_label,
    span_words,
    sparkline,
    usage_message,
)

END = datetime(2026, 11, 26, 12, tzinfo=UTC)
KEYS_URL = "https://app.example/settings/api"


def view(**changes: Any) -> UsageView:
    fields: dict[str, Any] = {
        "range": RangePreset.LAST_24H,
        "start": END - timedelta(hours=24),
        "end": END,
        "tz": "Europe/Paris",
        "total_cu": 1_500.0,
        "previous_cu": 1_000.0,
        "projects": (
            Culprit("proj_1", "Game Art", 1_200.0),
            Culprit("proj_2", "Marketing", 300.0),
        ),
        "users": (
            Culprit("apiu_1", "API key CI pipeline", 900.0, KEYS_URL, is_api_key=True),
            Culprit("u_1", "Maya Chen", 600.0),
        ),
        "models": (Culprit("model_1", "Kling Video", 1_500.0, "https://app.example/models/m1"),),
        "series": (0.0, 5.0, 40.0, 80.0),
    }
    fields.update(changes)
    return UsageView(**fields)


def texts(message: dict[str, Any]) -> str:
    parts = []
    for block in message["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [element["text"] for element in block.get("elements", [])]
    return "\n".join(parts)


def assert_within_limits(message: dict[str, Any]) -> None:
    assert message["text"]
    assert len(message["blocks"]) <= 50
    for block in message["blocks"]:
        Block.parse(block).validate_json()  # raises past Slack's limits
        for element in block.get("elements", []):
            assert len(element["text"]) <= 3000


def test_the_report_names_total_change_top_lists_and_trend() -> None:
    message = usage_message(view())
    assert_within_limits(message)
    assert message["text"] == (
        "📊 CU usage — the last 24 hours: 1,500 CU · ▲ +50 % vs the previous 24 hours (1,000 CU)"
    )
    assert message["blocks"][0]["text"]["text"] == "📊 CU usage — the last 24 hours"
    assert texts(message).splitlines() == [
        "📊 CU usage — the last 24 hours",
        "*1,500 CU*",
        "▲ +50 % vs the previous 24 hours (1,000 CU)",
        "*Top projects*",
        "• Game Art — 1,200 CU (80 %)",
        "• Marketing — 300 CU (20 %)",
        "*Top users and API keys*",
        f"• 🔑 <{KEYS_URL}|API key CI pipeline> — 900 CU (60 %)",
        "• Maya Chen — 600 CU (40 %)",
        "*Top models*",
        "• <https://app.example/models/m1|Kling Video> — 1,500 CU (100 %)",
        "*Trend*  `▁▂▅█`",
        "Wed 25 Nov 13:00 → Thu 26 Nov 13:00",
        "Times in Europe/Paris.",
    ]


@pytest.mark.parametrize(
    ("total", "previous", "expected"),
    [
        (150, 100, "▲ +50 % vs the previous day (100 CU)"),
        (40, 100, "▼ −60 % vs the previous day (100 CU)"),
        (0, 100, "▼ −100 % vs the previous day (100 CU)"),
        (100.2, 100, "▶ no change vs the previous day (100 CU)"),
        (2_500, 100, "▲ +2,400 % vs the previous day (100 CU)"),
        (10, 0, "🆕 no spend before (0 CU in the previous day)"),
        (0, 0, "no spend in the previous day either"),
    ],
)
def test_change_against_the_range_before(total: float, previous: float, expected: str) -> None:
    assert change_text(total, previous, "the previous day") == expected


@pytest.mark.parametrize(
    ("length", "words"),
    [
        (timedelta(hours=1), "hour"),
        (timedelta(hours=13), "13 hours"),
        (timedelta(hours=23), "23 hours"),  # a local day across a DST change
        (timedelta(hours=24), "24 hours"),
        (timedelta(days=3), "3 days"),
        (timedelta(days=31), "31 days"),
        (timedelta(days=25, hours=13), "25 d 13 h"),
        (timedelta(hours=2, minutes=30), "2 h 30 min"),
    ],
)
def test_span_words(length: timedelta, words: str) -> None:
    assert span_words(length) == words


def test_range_labels() -> None:
    assert range_label(RangePreset.LAST_1H) == "the last hour"
    assert range_label(RangePreset.THIS_MONTH) == "this month"
    assert range_label(DateRange(date(2026, 11, 1), date(2026, 11, 30))) == (
        "2026-11-01 – 2026-11-30"
    )
    assert range_label(DateRange(date(2026, 11, 5), date(2026, 11, 5))) == "2026-11-05"


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ([], ""),
        ([0, 0, 0], "▁▁▁"),
        ([0, 1, 2, 3, 4, 5, 6], "▁▃▄▅▆▇█"),
        ([0, 1, 2, 3, 4, 5, 6, 7], "▁▃▄▅▅▆▇█"),
        ([5, 5], "██"),
        ([0.01, 100], "▂█"),  # a little is not nothing
        ([-3, 6], "▁█"),  # negative buckets count as nothing
    ],
)
def test_sparkline(values: list[float], line: str) -> None:
    assert sparkline(values) == line


def test_a_long_series_is_summed_into_at_most_32_cells() -> None:
    hours = [1.0] * 95 + [50.0]  # 24 h at 15 min; the spike lands in the last cell
    line = sparkline(hours)
    assert len(line) == 32
    assert line == "▂" * 31 + "█"
    assert len(sparkline([1.0] * 120)) == 30  # runs of 4


def test_filters_are_named_and_linked_and_the_text_says_so() -> None:
    message = usage_message(
        view(
            projects=(),
            filters=(
                Filter("project", "Game Art"),
                Filter("model", "Kling Video", "https://app.example/models/m1"),
            ),
            by_model=True,
            users_partial=True,
        )
    )
    assert_within_limits(message)
    body = texts(message)
    summary = (
        "*1,500 CU* · project *Game Art* · model *<https://app.example/models/m1|Kling Video>*"
    )
    assert summary in body
    assert "Top projects" not in body
    assert "Scenario can't filter usage by model" in body
    assert "most recent activity only" in body
    assert message["text"].startswith(
        "📊 CU usage — the last 24 hours: 1,500 CU for project Game Art, model Kling Video · ▲"
    )


def test_nothing_spent_says_so_without_empty_lists_or_trend() -> None:
    message = usage_message(
        view(
            range=RangePreset.YESTERDAY,
            total_cu=0.0,
            previous_cu=0.0,
            projects=(),
            users=(),
            models=(),
            series=(0.0, 0.0),
        )
    )
    body = texts(message)
    assert "Nothing was spent yesterday." in body
    assert "no spend in the previous 24 hours either" in body
    assert "Top " not in body and "Trend" not in body


def test_names_are_escaped_for_mrkdwn() -> None:
    message = usage_message(
        view(
            projects=(Culprit("p", "R&D <beta>", 1_500.0),),
            filters=(Filter("user", "a|b <c>"),),
        )
    )
    body = texts(message)
    assert "• R&amp;D &lt;beta&gt; — 1,500 CU (100 %)" in body
    assert "user *a¦b &lt;c&gt;*" in body
    assert "<c>" not in message["text"]


def test_huge_lists_and_names_stay_within_slack_limits() -> None:
    many = tuple(Culprit(f"id{i}", "n" * 2_000, 1.0) for i in range(200))
    message = usage_message(
        view(
            projects=many,
            users=many,
            models=many,
            series=tuple(float(i % 7) for i in range(10_000)),
            filters=(Filter("project", "p" * 5_000),),
        )
    )
    assert_within_limits(message)


def test_projects_left_unmeasured_are_owned_up_to() -> None:
    assert "left out" not in texts(usage_message(view()))
    body = texts(usage_message(view(projects_left_out=12)))
    assert "Top projects leave out 12 more projects, not measured" in body
