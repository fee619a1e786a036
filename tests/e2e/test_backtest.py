"""`/budget add` and `edit` answer how the budget would have behaved over the last 30 days
(SPEC §4), checked against a brute-force reading of the rules over the simulator's jobs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.e2e.conftest import ANCHOR, TEAM, Bot
from tests.e2e.test_budget import ask, everything

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
