"""The watch's part of the check cycle against the simulator: what it reads, what it stores,
and that late data neither creates nor doubles anything."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlite_utils import Database

from bot.budgets.types import PeriodKind
from bot.budgets.watch import Sensitivity
from bot.budgets.watch_history import QUARTER, hourly_spend, quarter_start
from bot.jobs import watch as watching
from bot.jobs.check import run_check
from bot.scenario.client import ScenarioClient
from bot.sim.scenario import ManualClock, Simulator, create_app
from bot.store import alerts
from bot.store import watch as watch_store
from bot.store.budgets import NewBudget, create_budget
from bot.store.db import from_text, immediate, migrate, open_db, to_text
from bot.store.workspaces import Workspace
from tests.jobs.test_check import SETTINGS, TEAM

CALM = TEAM.spike.end + timedelta(hours=4, minutes=3)  # nothing unusual going on
KEY = next(u for u in TEAM.users if u.is_api_key and u.key_name == "Batch exporter")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_db(tmp_path / "bot.db")
    migrate(database)
    yield database
    database.close()


class Revising(httpx.AsyncBaseTransport):
    """The simulator, except that the consumption of the quarter hour starting at `quarter`
    shows `extra` CU more for the key — the first time it is read only, unless `stays`:
    what an API whose latest bucket is revised after the fact does."""

    def __init__(self, simulator: Simulator, quarter: datetime, extra: float, stays: bool) -> None:
        self.inner = httpx.ASGITransport(create_app(simulator))
        self.quarter, self.extra, self.stays = quarter, extra, stays
        self.inflated = 0
        self.usages: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/usages"):
            return response
        self.usages.append(request.url)
        body = json.loads(await response.aread())
        start = request.url.params.get("startDate")
        if start and from_text(start) == self.quarter and (self.stays or not self.inflated):
            self.inflated += 1
            body.setdefault("consumption", []).append(
                {"userId": KEY.id, "value": self.extra, "discount": 0, "total": self.extra}
            )
        return httpx.Response(response.status_code, json=body)


def client_of(transport: httpx.AsyncBaseTransport) -> ScenarioClient:
    async def no_wait(seconds: float) -> None:
        return None

    return ScenarioClient(
        base_url="http://simulator/v1",
        api_key="test-key",
        api_secret="test-secret",
        transport=transport,
        sleep=no_wait,
    )


async def watch_through(db: Database, transport: Revising, times: list[datetime]) -> None:
    async def scenario_for(workspace: Workspace) -> ScenarioClient:
        return client_of(transport)

    for at in times:
        await run_check(db, scenario_for, SETTINGS, at)


def turned_on(db: Database) -> int:
    before = CALM - timedelta(minutes=30)
    _, watch = watch_store.set_watch(db, "T1", "C1", Sensitivity.NORMAL, actor="U1", now=before)
    return watch.id


@pytest.mark.parametrize("stays", [False, True])
async def test_a_bucket_revised_down_after_the_fact_opens_no_episode(
    db: Database, stays: bool
) -> None:
    watch_id = turned_on(db)
    simulator = Simulator(TEAM, clock=ManualClock(CALM))
    quarter = quarter_start(CALM)
    transport = Revising(simulator, quarter, extra=5000.0, stays=stays)
    times = [CALM - timedelta(minutes=10), CALM, CALM + timedelta(minutes=5)]
    await watch_through(db, transport, times)
    assert transport.inflated >= 1
    opened = db.execute("SELECT COUNT(*) FROM alerts WHERE budget_id = ?", [watch_id]).fetchone()
    # Seen once and then revised away: nothing. Still there at the next check: an episode
    # (the same reads, so the test would notice a watch that never opens anything).
    assert opened[0] == (1 if stays else 0)
    if stays:
        [episode] = alerts.open_alerts(db, watch_id)
        assert episode.finding is not None and episode.finding.entity == f"key:{KEY.id}"
    # What is stored for that quarter is the latest read, not the sum of both reads.
    [stored] = db.execute(
        "SELECT cu FROM watch_spend WHERE bucket = ? AND entity = ?",
        [to_text(quarter), f"key:{KEY.id}"],
    ).fetchone() or [0.0]
    assert (stored >= 5000.0) == stays


async def test_each_check_reads_two_quarter_hours_after_one_bounded_back_fill(
    db: Database,
) -> None:
    turned_on(db)
    simulator = Simulator(TEAM, clock=ManualClock(CALM))
    transport = Revising(simulator, CALM, extra=0.0, stays=False)
    await watch_through(db, transport, [CALM])
    back_fill = len(transport.usages) - 2
    assert 0 < back_fill <= watching.BACKFILL_READS
    for url in transport.usages[:back_fill]:
        start, end = (from_text(url.params[k]) for k in ("startDate", "endDate"))
        assert end - start <= timedelta(days=120)
    transport.usages.clear()
    await watch_through(db, transport, [CALM + timedelta(minutes=5)])
    windows = sorted(
        (from_text(u.params["startDate"]), from_text(u.params["endDate"])) for u in transport.usages
    )
    now = CALM + timedelta(minutes=5)
    current = quarter_start(now)
    assert windows == [(current - QUARTER, current), (current, now)]
    assert all(u.params["type"] == "consumption,model-usages" for u in transport.usages)


async def test_the_back_fill_matches_what_the_check_cycle_would_have_stored(db: Database) -> None:
    """The team's hourly spend from the back-fill equals the simulator's own figures."""
    turned_on(db)
    simulator = Simulator(TEAM, clock=ManualClock(CALM))
    await watch_through(db, Revising(simulator, CALM, 0.0, False), [CALM])
    day = quarter_start(CALM) - timedelta(days=2, hours=5)
    for hour in range(0, 24, 5):
        start = day + timedelta(hours=hour)
        [stored] = db.execute(
            "SELECT COALESCE(SUM(cu), 0) FROM watch_spend WHERE entity = 'team'"
            " AND bucket >= ? AND bucket < ?",
            [to_text(start), to_text(start + timedelta(hours=1))],
        ).fetchone()
        assert stored == pytest.approx(TEAM.cu_between(start, start + timedelta(hours=1)))


def test_the_history_added_up_by_sqlite_is_the_history_added_up_by_hand(db: Database) -> None:
    """`history_rows` groups a month of quarter hours into hours in SQL; grouping the raw rows
    in Python (`hourly_spend` takes both) must give the same detector input."""
    rng = random.Random(5)
    now = datetime.fromisoformat("2026-11-26T10:07:00+00:00")
    first = quarter_start(now) - timedelta(days=32)
    raw: dict[datetime, dict[str, float]] = {}
    for _ in range(3000):
        bucket = first + rng.randrange(32 * 96 + 1) * QUARTER
        entity = rng.choice(["team", "key:k1", "user:u1", "model:m1"])
        raw.setdefault(bucket, {})[entity] = round(rng.uniform(0, 50), 2)
    with immediate(db):
        watch_store.replace_buckets(db, "T1", raw, filled_until=quarter_start(now))
    rows = [(b, e, cu) for b, entities in raw.items() for e, cu in entities.items()]
    by_hand = hourly_spend(rows, now)
    by_sql = hourly_spend(watch_store.history_rows(db, "T1", now), now)
    assert by_sql.start == by_hand.start
    for entity, values in by_hand.values.items():
        assert list(by_sql.values[entity]) == pytest.approx(list(values)), entity
    assert by_sql.last_half == pytest.approx(by_hand.last_half)


class FailingWatchReads(httpx.AsyncBaseTransport):
    """The simulator, except that the watch's quarter-hour reads get a 500."""

    def __init__(self, simulator: Simulator) -> None:
        self.inner = httpx.ASGITransport(create_app(simulator))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("type") == "consumption,model-usages":
            return httpx.Response(500, json={"message": "boom"})
        return await self.inner.handle_async_request(request)


async def test_a_failing_watch_read_holds_up_no_budget(db: Database) -> None:
    turned_on(db)
    create_budget(db, NewBudget("T1", PeriodKind.MONTHLY, 10.0, "C1", "U1"), now=CALM)
    transport = FailingWatchReads(Simulator(TEAM, clock=ManualClock(CALM)))

    async def scenario_for(workspace: Workspace) -> ScenarioClient:
        return client_of(transport)

    [result] = await run_check(db, scenario_for, SETTINGS, CALM)
    assert result.error is None and result.skipped and result.skipped.startswith("watch:")
    [post] = result.enqueued
    assert post["text"].startswith("🔴 Budget #")
