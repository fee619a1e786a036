"""The watch's history: usage answers per entity, and buckets into the detector's hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.budgets.types import TEAM, Scope, ScopeKind
from bot.budgets.watch_history import (
    HOURS_KEPT,
    QUARTER,
    entity_totals,
    hourly_spend,
    quarter_start,
)
from bot.scenario.models import parse_usages

NOW = datetime(2026, 11, 26, 10, 7, 30, tzinfo=UTC)


def answer(consumption: list[tuple[str, float]], users: list[dict[str, object]]) -> object:
    return parse_usages(
        {
            "consumption": [
                {"userId": u, "value": v, "discount": 0, "total": v} for u, v in consumption
            ],
            "modelUsages": [
                {
                    "modelId": "m1",
                    "points": [
                        {"time": "2026-11-26T10:00:00Z", "jobs": 1, "cost": 4.0, "discount": 0},
                        {"time": "2026-11-26T10:01:00Z", "jobs": 1, "cost": 2.5, "discount": 0},
                    ],
                }
            ],
            "entities": {"users": users},
        }
    )


def test_members_are_keys_when_the_answer_or_the_history_says_so() -> None:
    response = answer(
        [("u1", 10.0), ("k1", 30.0), ("k2", 5.0), ("idle", 0.0)],
        [{"id": "k1", "isApiKey": True}, {"id": "u1", "isApiKey": False}],
    )
    totals = entity_totals(response, keys=frozenset({"k2"}))  # type: ignore[arg-type]
    assert totals == {
        "user:u1": 10.0,
        "key:k1": 30.0,
        "key:k2": 5.0,  # unnamed in this answer, known as a key from the history
        "model:m1": 6.5,
        "team": 45.0,
    }


def test_quarters_end_with_the_current_one() -> None:
    assert quarter_start(NOW) == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert quarter_start(datetime(2026, 11, 26, 10, 15, tzinfo=UTC)).minute == 15


def test_the_hour_judged_is_the_latest_four_quarters_and_the_half_its_last_two() -> None:
    current = quarter_start(NOW)
    rows = [
        (current, "key:k1", 8.0),  # the current quarter (partial)
        (current - QUARTER, "key:k1", 4.0),
        (current - 2 * QUARTER, "key:k1", 2.0),
        (current - 3 * QUARTER, "key:k1", 1.0),
        (current - 4 * QUARTER, "key:k1", 100.0),  # the hour before
        (current + QUARTER, "key:k1", 999.0),  # the future: ignored
        (current - timedelta(days=40), "key:k1", 999.0),  # older than kept: ignored
        (current, "team", 8.0),
    ]
    spend = hourly_spend(rows, NOW)
    key = Scope(ScopeKind.KEY, "k1")
    series = spend.series(key)
    assert spend.hours == HOURS_KEPT and len(series) == HOURS_KEPT
    assert series[-1] == 15.0 and series[-2] == 100.0
    assert sum(series) == 115.0
    assert spend.last_half[key] == 12.0
    assert spend.series(TEAM)[-1] == 8.0
    assert spend.start == current + QUARTER - HOURS_KEPT * timedelta(hours=1)


def test_a_history_without_team_spend_still_has_the_team_series() -> None:
    spend = hourly_spend([], NOW)
    assert list(spend.series(TEAM)) == pytest.approx([0.0] * HOURS_KEPT)
