"""Replay: 35 simulated days, a check every 5 minutes, the clock injected.

The alerts the bot records must equal the crossings an independent oracle computes from
the simulator's job list — across a DST change (Europe/Paris, 25 October 2026), a month
boundary and a snooze: zero duplicates, zero misses. Every message is then delivered to
the fake Slack, once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.asgi_server import serve_app
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import CheckSettings, run_check
from bot.jobs.delivery import drain
from bot.scenario.client import ScenarioClient
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator
from bot.sim.team import Job, Model, Project, SyntheticTeam, User
from bot.store import snoozes
from bot.store.budgets import NewBudget, create_budget
from bot.store.db import from_text, migrate, open_db
from bot.store.outbox import OutboxStatus
from bot.store.workspaces import Workspace
from tests.simulated import simulator_client

TZ = "Europe/Paris"
ZONE = ZoneInfo(TZ)
START = datetime(2026, 10, 15, tzinfo=UTC)
DAYS = 35
STEP = timedelta(minutes=5)
SNOOZE = (datetime(2026, 10, 22, 9, tzinfo=UTC), datetime(2026, 10, 22, 15, tzinfo=UTC))

PROJECTS = [Project("proj_art", "Game Art"), Project("proj_mkt", "Marketing")]
USERS = [
    User("u_ana", email="ana@example.test", full_name="Ana"),
    User("u_bo", email="bo@example.test", full_name="Bo"),
    User("apiu_batch", is_api_key=True, api_key_id="api_batch", api_key_status="active"),
]
MODELS = [Model("model_flux", "Flux"), Model("model_video", "Video")]


def timeline() -> list[Job]:
    """Working-hours traffic on weekdays, plus the API key's bursts every few days."""
    rng = random.Random(20261015)
    jobs: list[Job] = []
    hour = datetime(2026, 10, 1, tzinfo=UTC)
    end = START + timedelta(days=DAYS + 1)
    while hour < end:
        busy = hour.weekday() < 5 and 7 <= hour.hour < 19
        for _ in range(rng.randint(2, 6) if busy else rng.randint(0, 1)):
            jobs.append(
                Job(
                    id=f"job_{len(jobs)}",
                    time=hour + timedelta(seconds=rng.randrange(3600)),
                    user_id=rng.choice(["u_ana", "u_bo"]),
                    project_id=rng.choice(["proj_art", "proj_mkt"]),
                    model_id="model_flux",
                    cu_cost=rng.randint(4, 24) * 0.25,
                    asset_ids=(f"asset_{len(jobs)}",),
                )
            )
        if hour.day % 4 == 1 and 2 <= hour.hour < 5:  # a runaway batch, 3 h every 4 days
            for minute in range(0, 60, 3):
                jobs.append(
                    Job(
                        id=f"job_{len(jobs)}",
                        time=hour + timedelta(minutes=minute),
                        user_id="apiu_batch",
                        project_id="proj_art",
                        model_id="model_video",
                        cu_cost=rng.randint(8, 16) * 0.25,
                        job_type="video",
                        action="txt2video",
                    )
                )
        hour += timedelta(hours=1)
    return sorted(jobs, key=lambda job: job.time)


Budget = tuple[PeriodKind, float, Scope, tuple[int, ...]]  # period, limit, scope, thresholds
SNOOZED_BUDGET = 1


@dataclass(frozen=True)
class Replay:
    team: SyntheticTeam
    budgets: list[Budget]


def custom_replay() -> Replay:
    """A small hand-made team whose crossings are easy to reason about."""
    team = SyntheticTeam(projects=PROJECTS, users=USERS, models=MODELS, jobs=timeline())
    return Replay(
        team,
        [
            (PeriodKind.DAILY, 120.0, Scope(ScopeKind.TEAM), (50, 80, 100)),
            (PeriodKind.MONTHLY, 2400.0, Scope(ScopeKind.TEAM), (25, 50, 75, 100)),
            (PeriodKind.ROLLING_24H, 80.0, Scope(ScopeKind.KEY, "apiu_batch"), (50, 100)),
            (PeriodKind.WEEKLY, 300.0, Scope(ScopeKind.PROJECT, "proj_mkt"), (50, 100)),
        ],
    )


def synthetic_replay() -> Replay:
    """The simulator's own seeded team, with limits scaled to what it spends."""
    team = SyntheticTeam.build(7, datetime(2026, 11, 1, 12, tzinfo=UTC))
    end = START + timedelta(days=DAYS)
    per_day = team.cu_between(START, end) / DAYS
    project = team.projects[0].id
    per_week = team.cu_between(START, end, project_ids=[project]) / DAYS * 7
    return Replay(
        team,
        [
            # Half an average day: weekends (25 October is a Sunday) cross it too.
            (PeriodKind.DAILY, round(per_day / 2), Scope(ScopeKind.TEAM), (50, 80, 100)),
            (PeriodKind.MONTHLY, round(per_day * 25), Scope(ScopeKind.TEAM), (50, 80, 100)),
            (
                PeriodKind.ROLLING_24H,
                round(team.spike.extra_cu * 0.6),
                Scope(ScopeKind.KEY, team.spike.user_id),
                (50, 100),
            ),
            (PeriodKind.WEEKLY, round(per_week), Scope(ScopeKind.PROJECT, project), (50, 100)),
        ],
    )


def local_midnight(day) -> datetime:  # type: ignore[no-untyped-def]
    return datetime.combine(day, time(0), tzinfo=ZONE).astimezone(UTC)


def oracle_start(kind: PeriodKind, now: datetime) -> datetime:
    local = now.astimezone(ZONE).date()
    if kind is PeriodKind.DAILY:
        return local_midnight(local)
    if kind is PeriodKind.WEEKLY:
        return local_midnight(local - timedelta(days=local.weekday()))
    if kind is PeriodKind.MONTHLY:
        return local_midnight(local.replace(day=1))
    return now - timedelta(hours=24)


def oracle_spend(team: SyntheticTeam, scope: Scope, start: datetime, end: datetime) -> float:
    if scope.kind is ScopeKind.PROJECT:
        return team.cu_between(start, end, project_ids=[scope.ref])
    if scope.kind is ScopeKind.KEY:
        return team.cu_between(start, end, user_ids=[scope.ref])
    return team.cu_between(start, end)


def check_times() -> Iterator[datetime]:
    for step in range(DAYS * 24 * 12):
        yield START + step * STEP


def oracle_crossings(replay: Replay) -> list[tuple[datetime, int, int]]:
    """(time, budget, level) of every alert the spec requires, computed from the job list."""
    expected = []
    fired: dict[tuple[int, datetime], set[int]] = {}  # calendar: (budget, period start)
    open_levels: dict[int, set[int]] = {}  # rolling: levels above which spend still is
    for now in check_times():
        for budget_id, (kind, limit, scope, levels) in enumerate(replay.budgets, start=1):
            start = oracle_start(kind, now)
            used = oracle_spend(replay.team, scope, start, now) / limit * 100
            snoozed = budget_id == SNOOZED_BUDGET and SNOOZE[0] <= now < SNOOZE[1]
            if kind.is_rolling:
                is_open = open_levels.setdefault(budget_id, set())
                # Re-armed only under 90 % of the level (hysteresis, SPEC §5).
                is_open -= {level for level in is_open if used < level * 0.9}
                done = is_open
            else:
                done = fired.setdefault((budget_id, start), set())
            new = [level for level in levels if used >= level and level not in done]
            if new and not snoozed:
                done.update(new)
                expected += [(now, budget_id, level) for level in new]
    return expected


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_db(tmp_path / "replay.db")
    migrate(database)
    yield database
    database.close()


@pytest.mark.parametrize("make", [custom_replay, synthetic_replay], ids=["custom", "synthetic"])
async def test_35_days_of_checks_alert_exactly_the_oracles_crossings(
    db: Database, make: Callable[[], Replay]
) -> None:
    replay = make()
    clock = ManualClock(START)
    simulator = Simulator(replay.team, clock=clock)

    scenario = simulator_client(simulator)

    async def scenario_for(workspace: Workspace) -> ScenarioClient:
        return scenario

    for period, limit, scope, levels in replay.budgets:
        create_budget(
            db,
            NewBudget("T1", period, limit, "C_ALERTS", "U_ADMIN", scope, thresholds=levels),
            now=START,
        )
    settings = CheckSettings(default_tz=TZ, app_url="https://app.example")

    slack = slack_api.FakeSlack()
    async with serve_app(slack_api.create_app(slack)) as origin:
        slack.origin = origin
        web = AsyncWebClient(token="xoxb-test", base_url=f"{origin}/api/", retry_handlers=[])

        async def client_for(workspace_id: str) -> AsyncWebClient:
            return web

        for now in check_times():
            clock.set(now)
            if now == SNOOZE[0]:
                snoozes.snooze(db, "T1", SNOOZED_BUDGET, SNOOZE[1], actor="U_ADMIN", now=now)
            results = await run_check(db, scenario_for, settings, now)
            assert results[0].error is None, results[0].error
            await drain(db, client_for, clock)
    await scenario.aclose()

    recorded = sorted(
        (from_text(row["fired_at"]), row["budget_id"], row["level"])
        for row in db.query("SELECT * FROM alert_state WHERE kind = 'threshold'")
    )
    expected = sorted(oracle_crossings(replay))
    assert recorded == expected
    # Each replay exercises what it claims to: every budget alerts, the monthly one in
    # both months, the daily one on the 25-hour day, the key's window more than once.
    assert {budget for _, budget, _ in expected} == {1, 2, 3, 4}
    assert {at.astimezone(ZONE).date().isoformat() for at, b, _ in expected if b == 1} >= {
        "2026-10-25"
    }
    months = {at.astimezone(ZONE).month for at, budget, _ in expected if budget == 2}
    assert months == {10, 11}
    assert sum(1 for _, budget, _ in expected if budget == 3) >= 2
    if make is custom_replay:
        assert any(budget == SNOOZED_BUDGET and at == SNOOZE[1] for at, budget, _ in expected)

    rows = list(db.query("SELECT * FROM outbox"))
    assert all(row["status"] == OutboxStatus.SENT.value for row in rows)
    posted = [m for m in slack.all_messages()]
    keys = [m.metadata["event_payload"]["dedup_key"] for m in posted if m.metadata]
    assert len(keys) == len(set(keys))  # no message twice
    # Rows still in the outbox (sent ones are pruned days after they stop mattering) were
    # each posted once.
    posts = {r["dedup_key"] for r in rows if r["action"] == "post"}
    assert posts <= set(keys)
    # One top-level message per alert (per budget and period, or episode): the rest are
    # replies in its thread.
    roots = [m for m in posted if m.thread_ts is None]
    assert len(roots) == db["alerts"].count
