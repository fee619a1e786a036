"""The watch's part of the check cycle against the simulator: what it reads, what it stores,
and that late data neither creates nor doubles anything."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlite_utils import Database

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.budgets.watch import Finding, Rule, Sensitivity
from bot.budgets.watch_history import QUARTER, entity_of, hourly_spend, quarter_start
from bot.jobs import watch as watching
from bot.jobs.check import run_check
from bot.scenario.client import ScenarioClient
from bot.sim.scenario import ManualClock, Simulator, create_app
from bot.store import alerts
from bot.store import watch as watch_store
from bot.store.alerts import EpisodeFinding
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


async def test_checks_half_an_hour_apart_still_confirm_and_catch_the_runaway_key(
    db: Database,
) -> None:
    turned_on(db)
    spike = TEAM.spike
    clock = ManualClock(spike.start)
    transport = Revising(Simulator(TEAM, clock=clock), spike.start, 0.0, False)
    settings = replace(SETTINGS, interval=timedelta(minutes=30))

    async def scenario_for(workspace: Workspace) -> ScenarioClient:
        return client_of(transport)

    at = spike.start - timedelta(minutes=30)
    while at <= spike.start + timedelta(hours=1, minutes=30):
        clock.set(at)
        await run_check(db, scenario_for, settings, at)
        at += timedelta(minutes=30)
    [watch] = [w for w in [watch_store.get_watch(db, "T1")] if w]
    [episode] = alerts.open_alerts(db, watch.id)
    assert episode.finding is not None and episode.finding.entity == f"key:{spike.user_id}"


async def test_the_quarters_missed_after_a_failed_read_are_filled_whole(db: Database) -> None:
    """The back-fill, then a check whose own reads fail, then checks again: the quarter
    hours between are read whole, not left out nor kept half-read."""
    turned_on(db)
    clock = ManualClock(CALM)
    simulator = Simulator(TEAM, clock=clock)
    failing = FailingWatchReads(simulator)
    working = Revising(simulator, CALM, 0.0, False)

    async def run_at(at: datetime, transport: httpx.AsyncBaseTransport) -> None:
        async def scenario_for(workspace: Workspace) -> ScenarioClient:
            return client_of(transport)

        clock.set(at)
        await run_check(db, scenario_for, SETTINGS, at)

    await run_at(CALM, failing)  # back-filled, then its quarter-hour reads failed
    await run_at(CALM + timedelta(minutes=7), working)  # a partial read of a quarter
    for minutes in (75, 80):
        await run_at(CALM + timedelta(minutes=minutes), working)  # after an hour away
    first = quarter_start(CALM) - QUARTER
    for i in range(6):  # to the last quarter hour over before the latest check
        lo = first + i * QUARTER
        [stored] = db.execute(
            "SELECT COALESCE(SUM(cu), 0) FROM watch_spend WHERE entity = 'team' AND bucket = ?",
            [to_text(lo)],
        ).fetchone()
        assert stored == pytest.approx(TEAM.cu_between(lo, lo + QUARTER)), lo


def test_a_gap_longer_than_the_history_is_read_as_the_history_only(db: Database) -> None:
    turned_on(db)
    long_ago = CALM - timedelta(days=130)
    watch_store.add_backfill(
        db, "T1", {}, start=long_ago - timedelta(days=1), end=long_ago, now=long_ago
    )
    gap = watching.history_gap(db, "T1", CALM)
    assert gap is not None
    start, end = gap
    assert end - start <= timedelta(days=32)
    assert end == quarter_start(CALM) - QUARTER


class NewKey(httpx.AsyncBaseTransport):
    """The simulator, plus a brand-new API key that spends `cu` in each quarter hour of
    [start, end) — and never again."""

    def __init__(self, simulator: Simulator, start: datetime, end: datetime, cu: float) -> None:
        self.inner = httpx.ASGITransport(create_app(simulator))
        self.start, self.end, self.cu = start, end, cu

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        params = request.url.params
        if not request.url.path.endswith("/usages") or "consumption" not in params.get("type", ""):
            return response
        body = json.loads(await response.aread())
        lo, hi = from_text(params["startDate"]), from_text(params["endDate"])
        quarters = sum(
            1
            for i in range(int((hi - lo) / QUARTER) + 1)
            if self.start <= quarter_start(lo) + i * QUARTER < min(hi, self.end)
        )
        if quarters:
            cu = self.cu * quarters
            body.setdefault("consumption", []).append(
                {"userId": "apiu_new", "value": cu, "discount": 0, "total": cu}
            )
            body.setdefault("entities", {}).setdefault("users", []).append(
                {"id": "apiu_new", "isApiKey": True, "apiKeyId": "api_new"}
            )
        return httpx.Response(response.status_code, json=body)


async def test_a_new_key_that_stops_spending_ends_its_episode_within_the_hour(
    db: Database,
) -> None:
    watch_id = turned_on(db)
    clock = ManualClock(CALM)
    start = quarter_start(CALM) + QUARTER
    transport = NewKey(Simulator(TEAM, clock=clock), start, start + 2 * QUARTER, 400.0)

    async def scenario_for(workspace: Workspace) -> ScenarioClient:
        return client_of(transport)

    at, ended_at = CALM, None
    while at <= CALM + timedelta(hours=3) and ended_at is None:
        clock.set(at)
        await run_check(db, scenario_for, SETTINGS, at)
        rows = list(db.query("SELECT * FROM alerts WHERE budget_id = ?", [watch_id]))
        if rows and rows[0]["closed_at"]:
            ended_at = from_text(rows[0]["closed_at"])
        at += timedelta(minutes=5)
    [row] = db.query("SELECT finding FROM alerts WHERE budget_id = ?", [watch_id])
    assert json.loads(row["finding"])["rule"] == "new"
    assert ended_at is not None and ended_at - (start + 2 * QUARTER) <= timedelta(hours=1)


async def test_members_past_the_read_limit_keep_their_month_shaped_like_the_team() -> None:
    simulator = Simulator(TEAM, clock=ManualClock(CALM))
    start, end = quarter_start(CALM) - timedelta(days=6), quarter_start(CALM)
    client = client_of(httpx.ASGITransport(create_app(simulator)))
    chunks = 2  # six days in 3-day chunks
    buckets, reads = await watching.backfill(client, start, end, max_reads=1 + 2 * chunks)
    assert reads == 1 + 2 * chunks  # the members' totals, the team's chunks, one member
    team = {b: e["team"] for b, e in buckets.items() if "team" in e}
    members = {
        e for entities in buckets.values() for e in entities if e.startswith(("key:", "user:"))
    }
    read_whole = [m for m in members if len({b for b in buckets if m in buckets[b]}) < len(team)]
    shaped = [m for m in members if m not in read_whole]
    assert shaped  # most members were not read one by one
    for member in shaped:
        total = sum(e.get(member, 0.0) for e in buckets.values())
        expected = TEAM.cu_between(start, end, user_ids=[entity_of(member).ref])
        assert total == pytest.approx(expected)
        some = next(iter(team))
        assert buckets[some][member] / total == pytest.approx(team[some] / sum(team.values()))


class Nameless(httpx.AsyncBaseTransport):
    """The simulator, plus a consumption row and a model row that name no one."""

    def __init__(self, simulator: Simulator) -> None:
        self.inner = httpx.ASGITransport(create_app(simulator))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/usages"):
            return response
        body = json.loads(await response.aread())
        if "consumption" in body:
            body["consumption"].append({"userId": "", "value": 7.0, "discount": 0, "total": 7})
        if "modelUsages" in body:
            point = {"time": "2026-11-26T00:00:00Z", "jobs": 1, "cost": 3.0}
            body["modelUsages"].append({"modelId": "", "points": [point]})
        return httpx.Response(response.status_code, json=body)


async def test_rows_that_name_no_one_count_for_the_team_and_break_nothing(db: Database) -> None:
    turned_on(db)
    create_budget(db, NewBudget("T1", PeriodKind.MONTHLY, 10.0, "C1", "U1"), now=CALM)
    transport = Nameless(Simulator(TEAM, clock=ManualClock(CALM)))

    async def scenario_for(workspace: Workspace) -> ScenarioClient:
        return client_of(transport)

    for at in (CALM, CALM + timedelta(minutes=5)):
        [result] = await run_check(db, scenario_for, SETTINGS, at)
        assert result.error is None, result.error
    assert db.execute("SELECT COUNT(*) FROM alerts WHERE budget_id != 1").fetchone()[0] == 1
    names = {row[0] for row in db.execute("SELECT DISTINCT entity FROM watch_spend")}
    assert "user:" not in names and "model:" not in names and "team" in names


def test_another_scenario_team_is_learnt_afresh(db: Database) -> None:
    turned_on(db)

    def history() -> int:
        return db.execute("SELECT COUNT(*) FROM watch_spend").fetchone()[0]

    def follow(team: str | None, key: str) -> bool:
        return watch_store.follow_team(db, "T1", team, key, now=CALM)

    assert not follow(None, "key-a")
    with immediate(db):
        watch_store.replace_buckets(db, "T1", {CALM: {"team": 5.0}}, filled_until=CALM)
    assert not follow(None, "key-a")
    assert not follow("team_a", "key-a")  # the same key, its team ID given: learnt, kept
    assert not follow("team_a", "key-b")  # a key rotated within the team: kept
    assert history() == 1
    assert follow("team_b", "key-b")  # another team ID: forgotten
    assert history() == 0 and watch_store.progress(db, "T1").backfilled_at is None
    with immediate(db):
        watch_store.replace_buckets(db, "T1", {CALM: {"team": 5.0}}, filled_until=CALM)
    assert not follow(None, "key-b")
    assert follow(None, "key-c")  # no team ID: another key may be another team
    assert history() == 0


async def test_reconnected_to_another_team_the_old_episodes_end_without_a_word(
    db: Database,
) -> None:
    watch_id = turned_on(db)
    watch = watch_store.get_watch(db, "T1")
    assert watch is not None
    key = EpisodeFinding(f"key:{KEY.id}", "velocity", 5.0, 400.0, CALM, CALM)
    with immediate(db):
        watch_store.open_episode(db, watch, key, spend_cu=400.0, attribution=None, now=CALM)
    assert watch_store.follow_team(db, "T1", None, "key-a", now=CALM) is False
    assert len(alerts.open_alerts(db, watch_id)) == 1
    assert watch_store.follow_team(db, "T1", "other", "key-b", now=CALM)
    assert alerts.open_alerts(db, watch_id) == []
    kinds = [row[0] for row in db.execute("SELECT kind FROM alert_events")]
    assert "anomaly_ended" not in kinds  # no "back to usual" about a team no longer read


@pytest.mark.parametrize(
    ("column", "garbage"), [("filled_until", "not a time"), ("pending", "{not json")]
)
async def test_a_broken_watch_holds_up_no_budget(db: Database, column: str, garbage: str) -> None:
    """Whatever goes wrong in the watch — here its stored progress made unreadable — the
    budgets are checked and alert as if it weren't there."""
    turned_on(db)
    create_budget(db, NewBudget("T1", PeriodKind.MONTHLY, 10.0, "C1", "U1"), now=CALM)
    transport = Revising(Simulator(TEAM, clock=ManualClock(CALM)), CALM, 0.0, stays=False)
    await watch_through(db, transport, [CALM - timedelta(minutes=5)])
    db.execute(f"UPDATE watch_progress SET {column} = ?", [garbage])
    db.execute("DELETE FROM outbox")
    db.execute("DELETE FROM alert_events")
    db.execute("DELETE FROM alerts")

    async def scenario_for(workspace: Workspace) -> ScenarioClient:
        return client_of(transport)

    [result] = await run_check(db, scenario_for, SETTINGS, CALM)
    assert result.error is None, result.error
    [post] = result.enqueued
    assert post["text"].startswith("🔴 Budget #")


def test_what_an_open_episode_explains_opens_no_episode_of_its_own(db: Database) -> None:
    """A key's episode that lifted a new model: judged later without the activity that
    links them, the model is its own finding — still part of the key's episode."""
    turned_on(db)
    watch = watch_store.get_watch(db, "T1")
    assert watch is not None
    key = EpisodeFinding("key:k1", "velocity", 5.0, 400.0, CALM, CALM, covers=("model:m9",))
    with immediate(db):
        watch_store.open_episode(db, watch, key, spend_cu=400.0, attribution=None, now=CALM)
    model = Finding(Scope(ScopeKind.MODEL, "m9"), Rule.NEW_ENTITY, 380.0, 0.0, CALM)
    other = Finding(Scope(ScopeKind.MODEL, "m2"), Rule.NEW_ENTITY, 380.0, 0.0, CALM)
    assert watching.candidates(db, watch, [model, other], CALM) == [other]
