"""The backtest (SPEC §4) is what the check cycle would have done: the same history, once
replayed from a few bounded reads, once lived through by the real cycle — a check every
hour against the simulator, its alert events read back from the store — must announce the
same things at the same instants, in zones whose days are not UTC's."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlite_utils import Database

from bot.budgets.evaluate import BudgetRule, EventKind
from bot.budgets.periods import period_at
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import run_check
from bot.reports.backtest import backtest
from bot.scenario.client import ScenarioClient
from bot.sim.scenario import ManualClock, Simulator, create_app
from bot.store.budgets import NewBudget, create_budget
from bot.store.db import migrate, open_db
from bot.store.workspaces import Workspace, set_timezone
from tests.jobs.test_check import ANCHOR, SETTINGS, TEAM
from tests.jobs.test_watch_check import client_of

HOUR = timedelta(hours=1)
NOW = ANCHOR + timedelta(hours=5, minutes=37)  # not on the hour, like any real answer
HORIZON = timedelta(days=4)
KEY = TEAM.spike.user_id
PROJECT = TEAM.projects[0].id
MODEL = TEAM.models[0].id
USER = next(u.id for u in TEAM.users if not u.is_api_key)


class Counting(httpx.AsyncBaseTransport):
    def __init__(self, simulator: Simulator) -> None:
        self.inner = httpx.ASGITransport(create_app(simulator))
        self.usages = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.usages += request.url.path.endswith("/usages")
        return await self.inner.handle_async_request(request)


def spent(scope: Scope, start: datetime, end: datetime) -> float:
    filters = {
        ScopeKind.TEAM: {},
        ScopeKind.PROJECT: {"project_ids": [PROJECT]},
        ScopeKind.KEY: {"user_ids": [KEY]},
        ScopeKind.USER: {"user_ids": [USER]},
        ScopeKind.MODEL: {"model_ids": [MODEL]},
    }[scope.kind]
    return TEAM.cu_between(start, end, **filters)


def budgets(tz: str) -> list[tuple[Scope, PeriodKind, BudgetRule]]:
    """Limits from the data, so that each budget crosses something in the window."""
    team, project = Scope(ScopeKind.TEAM), Scope(ScopeKind.PROJECT, PROJECT)
    key, model = Scope(ScopeKind.KEY, KEY), Scope(ScopeKind.MODEL, MODEL)
    user = Scope(ScopeKind.USER, USER)
    month = period_at(PeriodKind.MONTHLY, NOW, tz)
    week = period_at(PeriodKind.WEEKLY, NOW, tz)
    days = HORIZON / timedelta(days=1)
    return [
        (
            team,
            PeriodKind.MONTHLY,
            BudgetRule(spent(team, month.start, NOW) / 0.9, (50, 80, 100), True),
        ),
        (
            project,
            PeriodKind.DAILY,
            BudgetRule(spent(project, NOW - HORIZON, NOW) / days, (50, 100)),
        ),
        (key, PeriodKind.ROLLING_24H, BudgetRule(1000, (50, 80, 100))),
        (
            model,
            PeriodKind.WEEKLY,
            BudgetRule(spent(model, week.start, NOW) / 0.7, (25, 50, 100), True),
        ),
        (
            user,
            PeriodKind.ROLLING_7D,
            BudgetRule(spent(user, NOW - timedelta(days=7), NOW) / 1.1, (80, 95)),
        ),
    ]


ANNOUNCED = (EventKind.LEVEL, EventKind.FORECAST, EventKind.BACK_UNDER)
LAST_CHECK = timedelta(milliseconds=1)  # the cycle's last check of a period, as told


def checks(kind: PeriodKind, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """Every hour after `start`, `end`, and for a calendar budget the last instant of each
    of its periods that ends in between (found by walking local dates, not by the code)."""
    hourly = [start + timedelta(hours=i) for i in range(1, int((end - start) / HOUR) + 1)]
    instants = set(hourly) | {end}
    if not kind.is_rolling:
        zone = ZoneInfo(tz)
        day = start.astimezone(zone).date()
        while (midnight := datetime.combine(day, time(), zone).astimezone(UTC)) <= end:
            starts = {
                PeriodKind.DAILY: True,
                PeriodKind.WEEKLY: day.isoweekday() == 1,
                PeriodKind.MONTHLY: day.day == 1,
            }[kind]
            if starts and midnight > start:
                instants.add(midnight - LAST_CHECK)
            day += timedelta(days=1)
    return sorted(instants)


@pytest.mark.parametrize(
    "tz", ["Europe/Paris", "America/New_York", "Pacific/Auckland", "Asia/Kolkata"]
)
async def test_the_backtest_announces_what_the_check_cycle_announces(
    tmp_path: Path, tz: str
) -> None:
    simulator = Simulator(TEAM, clock=ManualClock(NOW))
    transport = Counting(simulator)
    client = client_of(transport)
    wanted = budgets(tz)
    replayed = []
    for scope, kind, rule in wanted:
        before = transport.usages
        found = await backtest(client, scope, rule, kind, tz, NOW, horizon=HORIZON)
        assert found.reads == transport.usages - before  # it says how many reads it made
        replayed.append(found)

    # The cycle itself, for each budget alone: a check every hour over the same window,
    # one just before each of its periods ends, and one at NOW.
    start = replayed[0].start
    total = 0
    for found, (scope, kind, rule) in zip(replayed, wanted, strict=True):
        db: Database = open_db(tmp_path / f"{kind.value}-{scope.kind.value}.db")
        migrate(db)
        set_timezone(db, "T1", tz, actor="U1", now=start)
        budget = create_budget(
            db,
            NewBudget(
                "T1",
                kind,
                rule.limit_cu,
                "C1",
                "U1",
                scope=scope,
                thresholds=rule.thresholds,
                forecast=rule.forecast,
            ),
            now=start,
        )

        async def scenario_for(workspace: Workspace) -> ScenarioClient:
            return client

        for at in checks(kind, tz, start, NOW):
            [result] = await run_check(db, scenario_for, SETTINGS, at)
            assert result.error is None, result.error
        lived = [
            (row["at"], EventKind(row["kind"]), row["level"])
            for row in db.query(
                "SELECT e.* FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
                " WHERE a.budget_id = ? ORDER BY e.id",
                [budget.id],
            )
            if EventKind(row["kind"]) in ANNOUNCED
        ]
        told = [(a.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), a.kind, a.level) for a in found.announced]
        assert told == lived, (scope, kind)
        total += len(told)
        db.close()
    assert total >= 5  # the limits make something happen: the comparison is not empty


async def test_a_monthly_budget_takes_twelve_reads_and_a_rolling_30d_one_at_most_21() -> None:
    transport = Counting(Simulator(TEAM, clock=ManualClock(NOW)))
    client = client_of(transport)
    rule = BudgetRule(10_000, (50, 80, 100))
    monthly = await backtest(client, Scope(ScopeKind.TEAM), rule, PeriodKind.MONTHLY, "UTC", NOW)
    rolling = await backtest(
        client, Scope(ScopeKind.TEAM), rule, PeriodKind.ROLLING_30D, "UTC", NOW
    )
    assert monthly.reads == 12 and rolling.reads <= 21
    assert transport.usages == monthly.reads + rolling.reads
