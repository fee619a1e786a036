"""Store repositories against a real temporary SQLite file: budgets, audit, alert state,
snoozes, acknowledgements and the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlite_utils import Database

from bot.budgets.evaluate import AlertKind, FiredAlert
from bot.budgets.periods import period_at
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.store import alerts, audit, outbox
from bot.store.budgets import (
    Budget,
    BudgetNotFound,
    NewBudget,
    create_budget,
    delete_budget,
    get_budget,
    list_budgets,
    update_budget,
)
from bot.store.db import from_text, migrate, open_db, to_text
from bot.store.outbox import OutboxAction, OutboxStatus

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
WS = "T1"
OTHER_WS = "T2"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_db(tmp_path / "store.db")
    migrate(database)
    yield database
    database.conn.close()


def new_budget(workspace: str = WS, **overrides: object) -> NewBudget:
    fields: dict[str, object] = {
        "workspace_id": workspace,
        "period": PeriodKind.MONTHLY,
        "limit_cu": 12_000.0,
        "channel_id": "C1",
        "created_by": "UADMIN",
        "scope": Scope(ScopeKind.PROJECT, "proj_mkt"),
        "scope_name": "Marketing",
        "thresholds": (100, 50, 80, 50),
        "forecast": True,
    }
    fields.update(overrides)
    return NewBudget(**fields)  # type: ignore[arg-type]


def audit_count(db: Database) -> int:
    return db["audit_log"].count


# --- db helpers ------------------------------------------------------------------------


def test_instants_are_stored_as_fixed_width_utc_text_that_sorts() -> None:
    paris = datetime(2026, 3, 29, 3, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    text = to_text(paris)

    assert text == "2026-03-29T03:00:00.000000Z"
    assert from_text(text) == paris
    assert to_text(T0) < to_text(T0 + timedelta(microseconds=1)) < to_text(T0 + timedelta(days=1))
    with pytest.raises(ValueError, match="naive"):
        to_text(datetime(2026, 1, 1))


# --- budgets and their audit trail ------------------------------------------------------


def test_create_budget_stores_it_and_audits_the_creation(db: Database) -> None:
    budget = create_budget(db, new_budget(), now=T0)

    assert budget == get_budget(db, WS, budget.id)
    assert budget.thresholds == (50, 80, 100)  # sorted, without duplicates
    assert (budget.scope, budget.scope_name, budget.forecast) == (
        Scope(ScopeKind.PROJECT, "proj_mkt"),
        "Marketing",
        True,
    )
    assert budget.created_at == budget.updated_at == T0
    assert budget.label == f"#{budget.id} Marketing monthly"
    [entry] = audit.history(db, WS)
    assert (entry.actor, entry.action, entry.target, entry.at) == (
        "UADMIN",
        "budget.add",
        f"budget:{budget.id}",
        T0,
    )
    assert entry.before is None
    assert entry.after["limit_cu"] == 12_000.0
    assert entry.after["scope"] == "project:proj_mkt"
    assert entry.after["thresholds"] == [50, 80, 100]


def test_update_budget_audits_before_and_after(db: Database) -> None:
    budget = create_budget(db, new_budget(), now=T0)
    later = T0 + timedelta(hours=1)

    updated = update_budget(
        db,
        WS,
        budget.id,
        {"limit_cu": 20_000.0, "thresholds": (90,), "channel_id": "C2"},
        actor="UEDITOR",
        now=later,
    )

    assert (updated.limit_cu, updated.thresholds, updated.channel_id) == (20_000.0, (90,), "C2")
    assert (updated.created_at, updated.updated_at) == (T0, later)
    assert get_budget(db, WS, budget.id) == updated
    latest = audit.history(db, WS)[0]
    assert (latest.action, latest.actor, latest.at) == ("budget.edit", "UEDITOR", later)
    assert (latest.before["limit_cu"], latest.after["limit_cu"]) == (12_000.0, 20_000.0)
    assert (latest.before["channel_id"], latest.after["channel_id"]) == ("C1", "C2")
    assert (latest.before["thresholds"], latest.after["thresholds"]) == ([50, 80, 100], [90])


def test_update_refuses_fields_that_are_not_editable(db: Database) -> None:
    budget = create_budget(db, new_budget(), now=T0)

    with pytest.raises(ValueError, match="created_by"):
        update_budget(db, WS, budget.id, {"created_by": "UX"}, actor="UX", now=T0)

    assert get_budget(db, WS, budget.id) == budget
    assert audit_count(db) == 1


def test_delete_budget_removes_it_its_state_and_audits(db: Database) -> None:
    budget = create_budget(db, new_budget(), now=T0)
    alert_id = alerts.record_alert(
        db,
        budget_id=budget.id,
        period_key="monthly:2026-11@UTC",
        kind=AlertKind.THRESHOLD,
        level=50,
        spend_cu=6_100,
        limit_cu=12_000,
        now=T0,
    )
    assert alert_id is not None
    alerts.snooze(db, WS, budget.id, T0 + timedelta(hours=4), actor="UADMIN", now=T0)

    removed = delete_budget(db, WS, budget.id, actor="UADMIN", now=T0 + timedelta(days=1))

    assert removed == budget
    with pytest.raises(BudgetNotFound):
        get_budget(db, WS, budget.id)
    assert list_budgets(db, WS) == []
    assert db["alert_state"].count == 0  # cascaded
    assert alerts.snoozed_until(db, budget.id) is None
    latest = audit.history(db, WS)[0]
    assert (latest.action, latest.after) == ("budget.remove", None)
    assert latest.before["id"] == budget.id


def test_budget_ids_are_scoped_to_their_workspace(db: Database) -> None:
    mine = create_budget(db, new_budget(WS), now=T0)
    theirs = create_budget(db, new_budget(OTHER_WS, channel_id="CX"), now=T0)
    audits = audit_count(db)

    with pytest.raises(BudgetNotFound) as caught:
        get_budget(db, WS, theirs.id)
    with pytest.raises(BudgetNotFound):
        update_budget(db, WS, theirs.id, {"limit_cu": 1.0}, actor="UEVIL", now=T0)
    with pytest.raises(BudgetNotFound):
        delete_budget(db, WS, theirs.id, actor="UEVIL", now=T0)

    assert caught.value.budget_id == theirs.id
    assert f"#{theirs.id}" in str(caught.value)
    assert get_budget(db, OTHER_WS, theirs.id) == theirs  # untouched
    assert audit_count(db) == audits
    assert [b.id for b in list_budgets(db, WS)] == [mine.id]
    assert [b.id for b in list_budgets(db, OTHER_WS)] == [theirs.id]
    assert [e.target for e in audit.history(db, WS)] == [f"budget:{mine.id}"]


def test_audit_history_is_newest_first_and_filters_by_target(db: Database) -> None:
    first = create_budget(db, new_budget(), now=T0)
    second = create_budget(db, new_budget(), now=T0 + timedelta(minutes=1))
    update_budget(db, WS, first.id, {"limit_cu": 5.0}, actor="U2", now=T0 + timedelta(minutes=2))

    everything = audit.history(db, WS)
    about_first = audit.history(db, WS, target=f"budget:{first.id}")

    assert [e.action for e in everything] == ["budget.edit", "budget.add", "budget.add"]
    assert everything[1].target == f"budget:{second.id}"
    assert [e.action for e in about_first] == ["budget.edit", "budget.add"]
    assert len(audit.history(db, WS, limit=1)) == 1


# --- alert state -----------------------------------------------------------------------


@pytest.fixture
def budget(db: Database) -> Budget:
    return create_budget(db, new_budget(), now=T0)


def record(
    db: Database,
    budget_id: int,
    period_key: str,
    level: int = 50,
    kind: AlertKind = AlertKind.THRESHOLD,
    now: datetime = T0,
) -> int | None:
    return alerts.record_alert(
        db,
        budget_id=budget_id,
        period_key=period_key,
        kind=kind,
        level=level,
        spend_cu=6_000.0,
        limit_cu=12_000.0,
        now=now,
    )


def test_record_alert_happens_once_per_budget_period_kind_and_level(
    db: Database, budget: Budget
) -> None:
    first = record(db, budget.id, "monthly:2026-11@UTC", 50)
    again = record(db, budget.id, "monthly:2026-11@UTC", 50, now=T0 + timedelta(minutes=5))

    assert isinstance(first, int)
    assert again is None
    assert db["alert_state"].count == 1
    assert record(db, budget.id, "monthly:2026-11@UTC", 80) is not None
    assert record(db, budget.id, "monthly:2026-12@UTC", 50) is not None
    assert record(db, budget.id, "monthly:2026-11@UTC", 50, AlertKind.FORECAST) is not None
    assert db["alert_state"].count == 4


def test_alerts_in_period_are_its_key_and_its_episodes_only(db: Database, budget: Budget) -> None:
    other = create_budget(db, new_budget(), now=T0)
    rolling = period_at(PeriodKind.ROLLING_24H, T0, "UTC")
    daily = period_at(PeriodKind.DAILY, T0, "Etc/GMT+1")
    assert (rolling.key, daily.key) == ("rolling:24h", "daily:2026-11-26@Etc/GMT+1")
    wanted = [
        record(db, budget.id, "rolling:24h#1", 50),
        record(db, budget.id, "rolling:24h#2", 50),
        record(db, budget.id, "rolling:24h#1", 80),
    ]
    record(db, budget.id, "rolling:7d#1", 50)
    record(db, other.id, "rolling:24h#1", 50)
    wanted_daily = [record(db, budget.id, "daily:2026-11-26@Etc/GMT+1", 50)]
    record(db, budget.id, "daily:2026-11-25@Etc/GMT+1", 50)  # the day before
    record(db, budget.id, "daily:2026-11-26@Etc/GMT+10", 50)  # its key starts with ours
    record(db, budget.id, "daily:2026-11-26@Etc/GMT+1x", 80)

    assert [a.id for a in alerts.alerts_in_period(db, budget.id, rolling)] == wanted
    assert [a.id for a in alerts.alerts_in_period(db, budget.id, daily)] == wanted_daily
    [row] = alerts.alerts_in_period(db, budget.id, daily)
    assert row.as_fired() == FiredAlert("daily:2026-11-26@Etc/GMT+1", AlertKind.THRESHOLD, 50)


def test_resolve_alert_closes_the_open_threshold_alert_once(db: Database, budget: Budget) -> None:
    record(db, budget.id, "rolling:24h#1", 50)
    record(db, budget.id, "rolling:24h#1", 80)
    later = T0 + timedelta(hours=2)

    assert alerts.resolve_alert(
        db, budget_id=budget.id, period_key="rolling:24h#1", level=50, now=later
    )
    assert not alerts.resolve_alert(
        db, budget_id=budget.id, period_key="rolling:24h#1", level=50, now=later
    )
    assert not alerts.resolve_alert(
        db, budget_id=budget.id, period_key="rolling:24h#9", level=50, now=later
    )

    by_level = {
        a.level: a for a in alerts.alerts_in_period(db, budget.id, period_at("24h", T0, "UTC"))
    }
    assert by_level[50].resolved_at == later
    assert by_level[50].as_fired().resolved is True
    assert by_level[80].resolved_at is None


def test_recent_alerts_are_newest_first_within_the_workspace(db: Database, budget: Budget) -> None:
    theirs = create_budget(db, new_budget(OTHER_WS), now=T0)
    older = record(db, budget.id, "monthly:2026-11@UTC", 50, now=T0)
    newer = record(db, budget.id, "monthly:2026-11@UTC", 80, now=T0 + timedelta(hours=1))
    record(db, theirs.id, "monthly:2026-11@UTC", 50, now=T0 + timedelta(hours=2))
    second = create_budget(db, new_budget(), now=T0)
    elsewhere = record(db, second.id, "monthly:2026-11@UTC", 50, now=T0 + timedelta(minutes=30))

    assert [a.id for a in alerts.recent_alerts(db, WS)] == [newer, elsewhere, older]
    assert [a.id for a in alerts.recent_alerts(db, WS, budget_id=budget.id)] == [newer, older]
    assert [a.id for a in alerts.recent_alerts(db, WS, limit=1)] == [newer]
    assert alerts.recent_alerts(db, WS, budget_id=theirs.id) == []


def test_snooze_and_unsnooze_are_audited(db: Database, budget: Budget) -> None:
    until = T0 + timedelta(hours=24)
    audits = audit_count(db)

    alerts.snooze(db, WS, budget.id, until, actor="U1", now=T0)
    assert alerts.snoozed_until(db, budget.id) == until
    longer = until + timedelta(days=1)
    alerts.snooze(db, WS, budget.id, longer, actor="U2", now=T0 + timedelta(minutes=1))
    assert alerts.snoozed_until(db, budget.id) == longer

    assert alerts.unsnooze(db, WS, budget.id, actor="U3", now=T0 + timedelta(minutes=2))
    assert alerts.snoozed_until(db, budget.id) is None
    assert not alerts.unsnooze(db, WS, budget.id, actor="U3", now=T0 + timedelta(minutes=3))

    entries = audit.history(db, WS, target=f"budget:{budget.id}")[:3]
    assert audit_count(db) == audits + 3
    assert [(e.action, e.actor) for e in entries] == [
        ("budget.unsnooze", "U3"),
        ("budget.snooze", "U2"),
        ("budget.snooze", "U1"),
    ]
    assert entries[2].before == {"snoozed_until": None}
    assert entries[2].after == {"snoozed_until": str(until)}
    assert entries[1].before == {"snoozed_until": str(until)}
    assert entries[0].before == {"snoozed_until": str(longer)}
    assert entries[0].after == {"snoozed_until": None}


def test_acknowledging_twice_changes_nothing_the_second_time(db: Database, budget: Budget) -> None:
    alert_id = record(db, budget.id, "monthly:2026-11@UTC", 80)
    assert alert_id is not None
    audits = audit_count(db)

    assert alerts.acknowledge(db, WS, alert_id, actor="U1", now=T0) is True
    assert alerts.acknowledge(db, WS, alert_id, actor="U2", now=T0 + timedelta(seconds=1)) is False

    assert db["acknowledgements"].count == 1
    assert next(db["acknowledgements"].rows)["user_id"] == "U1"
    assert audit_count(db) == audits + 1
    latest = audit.history(db, WS)[0]
    assert (latest.action, latest.target, latest.actor) == (
        "alert.acknowledge",
        f"alert:{alert_id}",
        "U1",
    )
    assert latest.after == {"acknowledged_by": "U1"}


# --- outbox ----------------------------------------------------------------------------


def enqueue(
    db: Database,
    key: str,
    *,
    now: datetime = T0,
    workspace: str = WS,
    budget_id: int | None = None,
    text: str = "hello",
) -> bool:
    return outbox.enqueue(
        db,
        dedup_key=key,
        workspace_id=workspace,
        channel_id="C1",
        action=OutboxAction.POST,
        payload={"text": text, "blocks": [{"type": "divider"}]},
        now=now,
        budget_id=budget_id,
    )


def test_enqueue_deduplicates_on_the_key(db: Database) -> None:
    assert enqueue(db, "alert:1:80", text="first") is True
    assert enqueue(db, "alert:1:80", text="second", now=T0 + timedelta(minutes=5)) is False

    assert db["outbox"].count == 1
    item = outbox.get_item(db, "alert:1:80")
    assert item is not None
    assert item.payload == {"text": "first", "blocks": [{"type": "divider"}]}
    assert (item.status, item.attempts, item.next_attempt_at, item.created_at) == (
        OutboxStatus.PENDING,
        0,
        T0,
        T0,
    )
    assert outbox.get_item(db, "nope") is None


def test_due_items_are_pending_due_rows_oldest_first(db: Database) -> None:
    for key in ("a", "b", "c", "d", "e", "f"):
        enqueue(db, key)
    ids = {key: outbox.get_item(db, key).id for key in "abcdef"}  # type: ignore[union-attr]
    outbox.reschedule(db, ids["a"], error="ratelimited", at=T0 + timedelta(seconds=30))
    outbox.reschedule(db, ids["b"], error="500 fatal", at=T0 + timedelta(seconds=10))
    outbox.mark_sent(db, ids["c"], ts="1.000001", now=T0)
    outbox.mark_failed(db, ids["d"], error="is_archived")

    assert [i.dedup_key for i in outbox.due_items(db, T0)] == ["e", "f"]
    assert [i.dedup_key for i in outbox.due_items(db, T0, limit=1)] == ["e"]
    assert [i.dedup_key for i in outbox.due_items(db, T0 + timedelta(seconds=10))] == [
        "b",
        "e",
        "f",
    ]
    late = outbox.due_items(db, T0 + timedelta(seconds=30))
    assert [i.dedup_key for i in late] == ["a", "b", "e", "f"]
    assert late[0].last_error == "ratelimited"


def test_mark_sent_records_the_ts_and_clears_the_error(db: Database) -> None:
    enqueue(db, "k")
    item = outbox.get_item(db, "k")
    assert item is not None
    outbox.reschedule(db, item.id, error="500 fatal", at=T0)

    outbox.mark_sent(db, item.id, ts="1700000000.000001", now=T0)

    sent = outbox.get_item(db, "k")
    assert sent is not None
    assert (sent.status, sent.ts, sent.last_error) == (OutboxStatus.SENT, "1700000000.000001", None)
    assert db.execute("SELECT sent_at FROM outbox").fetchone()[0] == to_text(T0)


def test_claim_counts_the_attempt_and_hides_the_row_until_the_lease_ends(db: Database) -> None:
    enqueue(db, "k")
    item = outbox.get_item(db, "k")
    assert item is not None
    lease_end = T0 + timedelta(minutes=2)

    assert outbox.claim(db, item, lease_until=lease_end) is True
    assert outbox.claim(db, item, lease_until=lease_end) is False  # a stale read loses

    claimed = outbox.get_item(db, "k")
    assert claimed is not None
    assert (claimed.attempts, claimed.next_attempt_at) == (1, lease_end)
    assert outbox.due_items(db, lease_end - timedelta(microseconds=1)) == []
    assert [i.id for i in outbox.due_items(db, lease_end)] == [item.id]
    outbox.mark_sent(db, item.id, ts="1.1", now=T0)
    assert outbox.claim(db, claimed, lease_until=lease_end) is False  # sent rows stay sent


def test_delivery_problems_show_the_latest_failure_per_budget(db: Database) -> None:
    for key, budget_id, workspace in [
        ("a", 1, WS),
        ("b", 1, WS),
        ("c", 2, WS),
        ("d", None, WS),
        ("e", 3, WS),
        ("f", 4, OTHER_WS),
    ]:
        enqueue(db, key, budget_id=budget_id, workspace=workspace)
    rows = {i.dedup_key: i.id for i in outbox.due_items(db, T0)}
    outbox.mark_failed(db, rows["a"], error="not_in_channel")
    outbox.mark_failed(db, rows["b"], error="is_archived")
    outbox.reschedule(db, rows["c"], error="500 fatal", at=T0 + timedelta(minutes=1))
    outbox.mark_failed(db, rows["d"], error="invalid_auth")
    outbox.mark_sent(db, rows["e"], ts="1.1", now=T0)
    outbox.mark_failed(db, rows["f"], error="channel_not_found")

    assert outbox.delivery_problems(db, WS) == {1: "is_archived", None: "invalid_auth"}
    assert outbox.delivery_problems(db, OTHER_WS) == {4: "channel_not_found"}
    assert outbox.delivery_problems(db, "T-NOBODY") == {}


def test_a_delivery_problem_clears_once_a_later_message_gets_through(db: Database) -> None:
    for key in ("first", "second"):
        enqueue(db, key, budget_id=1)
    rows = {i.dedup_key: i.id for i in outbox.due_items(db, T0)}
    outbox.mark_failed(db, rows["first"], error="not_in_channel")
    assert outbox.delivery_problems(db, WS) == {1: "not_in_channel"}
    outbox.mark_sent(db, rows["second"], ts="1.2", now=T0)
    assert outbox.delivery_problems(db, WS) == {}
