"""The check cycle against the simulator (in-process ASGI), with the clock injected."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.announce import announce
from bot.jobs.check import CheckSettings, run_check
from bot.scenario.client import ScenarioClient
from bot.sim.scenario import ManualClock, Simulator
from bot.sim.team import SyntheticTeam
from bot.store import alerts, outbox
from bot.store.budgets import NewBudget, create_budget, delete_budget, update_budget
from bot.store.db import migrate, open_db
from bot.store.health import health_of
from bot.store.workspaces import Workspace, set_timezone
from tests.simulated import simulator_client

ANCHOR = datetime(2026, 11, 26, 12, tzinfo=UTC)
SETTINGS = CheckSettings(default_tz="Europe/Paris", app_url="https://app.example")
TEAM = SyntheticTeam.build(7, ANCHOR)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_db(tmp_path / "bot.db")
    migrate(database)
    yield database
    database.close()


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(TEAM, clock=ManualClock(ANCHOR))


def scenario_for(simulator: Simulator):
    async def get(workspace: Workspace) -> ScenarioClient:
        return simulator_client(simulator)

    return get


def add(db: Database, period: PeriodKind, limit: float, scope: Scope | None = None) -> int:
    new = NewBudget("T1", period, limit, "C1", "U1", **({"scope": scope} if scope else {}))
    return create_budget(db, new, now=ANCHOR).id


async def test_a_crossed_budget_alerts_once_and_a_second_cycle_adds_nothing(
    db: Database, simulator: Simulator
) -> None:
    spike = TEAM.spike
    add(db, PeriodKind.ROLLING_24H, 1000, Scope(ScopeKind.KEY, spike.user_id))
    first = await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    keys = [row["key"] for row in first[0].enqueued]
    assert keys == ["alert:1"]
    assert "Budget #1" in first[0].enqueued[0]["text"]
    second = await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    assert second[0].enqueued == []
    assert [item.dedup_key for item in outbox.due_items(db, ANCHOR)] == keys


async def test_usage_calls_are_one_per_window_and_project_filter(
    db: Database, simulator: Simulator
) -> None:
    project = TEAM.projects[0].id
    add(db, PeriodKind.MONTHLY, 10**9)
    add(db, PeriodKind.MONTHLY, 10**9, Scope(ScopeKind.USER, TEAM.users[0].id))
    add(db, PeriodKind.MONTHLY, 10**9, Scope(ScopeKind.MODEL, TEAM.models[0].id))
    add(db, PeriodKind.MONTHLY, 10**9, Scope(ScopeKind.PROJECT, project))
    add(db, PeriodKind.DAILY, 10**9, Scope(ScopeKind.PROJECT, project))
    results = await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    assert results[0].usage_calls == 3
    assert simulator.count("/v1/usages") == 3


async def test_dry_run_reports_the_alerts_but_writes_nothing(
    db: Database, simulator: Simulator
) -> None:
    add(db, PeriodKind.MONTHLY, 100)
    dry = await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR, dry_run=True)
    assert [row["key"] for row in dry[0].enqueued] == ["alert:1"]
    assert db["alert_state"].count == 0
    assert db["alerts"].count == 0
    assert db["outbox"].count == 0
    real = await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    assert len(real[0].enqueued) == 1


async def test_scenario_failures_alert_nothing_and_tell_admins_once_then_on_recovery(
    db: Database, simulator: Simulator
) -> None:
    add(db, PeriodKind.MONTHLY, 100)
    simulator.faults.outage = True
    simulator.faults.outage_status = 401
    told = []
    for cycle in range(5):
        now = ANCHOR + timedelta(minutes=5 * cycle)
        result = (await run_check(db, scenario_for(simulator), SETTINGS, now))[0]
        assert result.error is not None and "bad credentials" in result.error
        told += result.enqueued
    assert [row["key"].split(":")[3] for row in told] == ["down"]
    assert "bad credentials" in told[0]["text"]
    assert db["alert_state"].count == 0
    assert health_of(db, "T1")["consecutive_failures"] == 5

    simulator.faults.outage = False
    after = [(await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR))[0] for _ in range(4)]
    kinds = [[row["key"].split(":")[0] for row in r.enqueued] for r in after]
    # The alert at once; "it works again" after RECOVERED_AFTER good cycles, once.
    assert kinds == [["alert"], [], ["health"], []]


async def test_one_workspace_failing_does_not_stop_another(
    db: Database, simulator: Simulator
) -> None:
    add(db, PeriodKind.MONTHLY, 100)
    create_budget(db, NewBudget("T2", PeriodKind.MONTHLY, 100, "C2", "U1"), now=ANCHOR)
    healthy = scenario_for(simulator)

    async def broken_for_t1(workspace: Workspace) -> ScenarioClient:
        if workspace.team_id == "T1":
            raise RuntimeError("boom")
        return await healthy(workspace)

    results = {r.workspace_id: r for r in await run_check(db, broken_for_t1, SETTINGS, ANCHOR)}
    assert results["T1"].error == "RuntimeError: boom"
    assert len(results["T2"].enqueued) == 1


async def test_two_cycles_racing_on_one_database_alert_once(
    db: Database, simulator: Simulator, tmp_path: Path
) -> None:
    add(db, PeriodKind.MONTHLY, 100)
    add(db, PeriodKind.ROLLING_24H, 1000, Scope(ScopeKind.KEY, TEAM.spike.user_id))
    other = open_db(tmp_path / "bot.db")  # a second process on the same file
    try:
        first, second = await asyncio.gather(
            run_check(db, scenario_for(simulator), SETTINGS, ANCHOR),
            run_check(other, scenario_for(simulator), SETTINGS, ANCHOR),
        )
    finally:
        other.close()
    keys = [row["key"] for row in first[0].enqueued + second[0].enqueued]
    assert sorted(keys) == sorted(row["dedup_key"] for row in db.query("SELECT * FROM outbox"))
    assert len(keys) == 2
    assert db["alert_state"].count == 3 + 3  # 50/80/100 of each budget, once


async def test_a_re_created_budget_gets_a_new_id_and_alerts_again(
    db: Database, simulator: Simulator
) -> None:
    first = add(db, PeriodKind.MONTHLY, 100)
    await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    delete_budget(db, "T1", first, actor="U1", now=ANCHOR)
    second = add(db, PeriodKind.MONTHLY, 100)
    assert second != first
    again = await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    [post] = again[0].enqueued
    assert post["action"] == "post"
    assert outbox.get_item(db, post["key"]).budget_id == second  # type: ignore[union-attr]


async def test_a_higher_level_after_a_channel_change_is_a_new_message_there(
    db: Database, simulator: Simulator
) -> None:
    month_start = datetime(2026, 10, 31, 23, tzinfo=UTC)  # 1 November in Paris
    later = ANCHOR + timedelta(days=3)
    spent, spent_later = (TEAM.cu_between(month_start, t) for t in (ANCHOR, later))
    limit = spent / 0.55
    second = int(spent_later / limit * 100)
    assert second > 55
    budget = create_budget(
        db,
        NewBudget("T1", PeriodKind.MONTHLY, limit, "C1", "U1", thresholds=(50, second)),
        now=ANCHOR,
    ).id
    first = await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    assert [row["channel"] for row in first[0].enqueued] == ["C1"]
    update_budget(db, "T1", budget, {"channel_id": "C_NEW"}, actor="U1", now=ANCHOR)
    simulator.clock.set(later)  # type: ignore[attr-defined]
    moved = await run_check(db, scenario_for(simulator), SETTINGS, later)
    [posted] = moved[0].enqueued
    assert (posted["channel"], posted["action"]) == ("C_NEW", "post")
    assert outbox.get_item(db, posted["key"]).thread_key is None  # type: ignore[union-attr]


async def test_a_billing_budget_whose_period_is_unreadable_affects_that_budget_only(
    db: Database, simulator: Simulator
) -> None:
    """Finding 5: the other budgets are still checked, and Scenario is not "down"."""
    add(db, PeriodKind.BILLING, 100)
    add(db, PeriodKind.MONTHLY, 100)
    for _ in range(4):
        result = (await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR))[0]
        assert result.error is None
        assert result.skipped is not None
        assert result.skipped.startswith("billing period unavailable: ")
        assert "SCENARIO_TEAM_ID" in result.skipped
    assert health_of(db, "T1")["consecutive_failures"] == 0
    assert [row["budget_id"] for row in db.query("SELECT * FROM outbox")] == [2]


async def test_a_budget_removed_while_scenario_is_read_does_not_stop_the_others(
    db: Database, simulator: Simulator
) -> None:
    """Review: the cycle wrote an alert for a budget gone since it was read; the foreign key
    failed and rolled back the whole workspace, so the other budget alerted nothing."""
    gone = add(db, PeriodKind.MONTHLY, 100)
    kept = add(db, PeriodKind.MONTHLY, 100)
    read = scenario_for(simulator)

    async def removing(workspace: Workspace) -> ScenarioClient:
        delete_budget(db, "T1", gone, actor="U1", now=ANCHOR)
        return await read(workspace)

    [result] = await run_check(db, removing, SETTINGS, ANCHOR)
    assert result.error is None
    assert [outbox.get_item(db, row["key"]).budget_id for row in result.enqueued] == [kept]  # type: ignore[union-attr]


async def test_a_limit_raised_while_scenario_is_read_is_decided_with_the_new_limit(
    db: Database, simulator: Simulator
) -> None:
    """Review: the cycle posted "crossed 50 %" of the old limit after the raise, and kept
    the old levels as passed, so 50 % of the new limit never alerted (finding 4 again)."""
    month_start = datetime(2026, 10, 31, 23, tzinfo=UTC)  # 1 November in Paris
    spent = TEAM.cu_between(month_start, ANCHOR)
    budget = add(db, PeriodKind.MONTHLY, spent / 0.55)
    read = scenario_for(simulator)

    async def raising(workspace: Workspace) -> ScenarioClient:
        update_budget(db, "T1", budget, {"limit_cu": spent / 0.3}, actor="U1", now=ANCHOR)
        return await read(workspace)

    [result] = await run_check(db, raising, SETTINGS, ANCHOR)
    assert result.enqueued == []
    assert db["alerts"].count == 0
    update_budget(db, "T1", budget, {"limit_cu": spent / 0.6}, actor="U1", now=ANCHOR)
    [again] = await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    assert "50 % of budget reached" in again.enqueued[0]["text"]


async def test_a_first_message_that_never_reached_slack_is_replaced_by_the_next_level(
    db: Database, simulator: Simulator
) -> None:
    """Review: every later event threaded under a failed or dropped first post, and was
    dropped with it: the 80 % crossing was never announced."""
    month_start = datetime(2026, 10, 31, 23, tzinfo=UTC)
    later = ANCHOR + timedelta(days=3)
    spent, spent_later = (TEAM.cu_between(month_start, t) for t in (ANCHOR, later))
    limit = spent / 0.55
    second = int(spent_later / limit * 100)
    assert second > 55
    create_budget(
        db,
        NewBudget("T1", PeriodKind.MONTHLY, limit, "C1", "U1", thresholds=(50, second)),
        now=ANCHOR,
    )
    await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    [first] = outbox.due_items(db, ANCHOR)
    outbox.mark_failed(db, first.id, error="not_in_channel")  # the bot was not invited
    simulator.clock.set(later)  # type: ignore[attr-defined]
    [result] = await run_check(db, scenario_for(simulator), SETTINGS, later)
    [post] = result.enqueued
    assert post["action"] == "post" and f"{second} % of budget reached" in post["text"]
    assert outbox.get_item(db, post["key"]).thread_key is None  # type: ignore[union-attr]
    # The old post is dropped: sent late, it would say 50 % when the budget is past that.
    assert outbox.get_item(db, first.dedup_key).status is outbox.OutboxStatus.DROPPED  # type: ignore[union-attr]


async def test_an_acknowledgement_after_the_budget_moved_edits_the_message_where_it_is(
    db: Database, simulator: Simulator
) -> None:
    """Review: pressing Acknowledge on an alert after its budget moved to another channel
    posted the whole alert again, as a new message, in the new channel."""
    budget = add(db, PeriodKind.MONTHLY, 100)
    await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    [root] = outbox.due_items(db, ANCHOR)
    outbox.mark_sent(db, root, ts="1700000000.000001", now=ANCHOR)
    update_budget(db, "T1", budget, {"channel_id": "C_NEW"}, actor="U1", now=ANCHOR)
    [alert_id] = [row["id"] for row in db.query("SELECT id FROM alerts")]
    alerts.acknowledge(db, "T1", alert_id, actor="U2", now=ANCHOR)
    written = announce(db, app_url="https://app.example", default_tz="UTC", now=ANCHOR)
    assert [(row["channel"], row["action"]) for row in written] == [
        ("C1", "update"),
        ("C1", "post"),
    ]
    assert all(outbox.get_item(db, r["key"]).thread_key == root.dedup_key for r in written)  # type: ignore[union-attr]


async def test_a_timezone_change_in_mid_period_goes_on_with_the_same_message(
    db: Database, simulator: Simulator
) -> None:
    """Review: period keys hold the zone, so `/budget timezone` in mid-month made the next
    check post a second top-level message for the same budget and month."""
    month_start = datetime(2026, 10, 31, 23, tzinfo=UTC)  # 1 November in Paris
    later = ANCHOR + timedelta(days=3)
    spent, spent_later = (TEAM.cu_between(month_start, t) for t in (ANCHOR, later))
    limit = spent / 0.55
    second = int(spent_later / limit * 100)
    create_budget(
        db,
        NewBudget("T1", PeriodKind.MONTHLY, limit, "C1", "U1", thresholds=(50, second)),
        now=ANCHOR,
    )
    await run_check(db, scenario_for(simulator), SETTINGS, ANCHOR)
    set_timezone(db, "T1", "America/New_York", actor="U1", now=ANCHOR)
    simulator.clock.set(later)  # type: ignore[attr-defined]
    [result] = await run_check(db, scenario_for(simulator), SETTINGS, later)
    # The next level is one reply in the same message's thread: no second top-level post.
    [reply] = result.enqueued
    assert f"crossed {second} %" in reply["text"]
    assert outbox.get_item(db, reply["key"]).thread_key == "alert:1"  # type: ignore[union-attr]
    [key] = [row["period_key"] for row in db.query("SELECT period_key FROM alerts")]
    assert key == "monthly:2026-11@America/New_York"
