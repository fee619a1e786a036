"""Store repositories against a real temporary SQLite file: budgets and their audit trail,
snoozes, and the outbox (expiry, revisions, pruning). Alerts and their events, and the
migration that introduced them: test_alert_store.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlite_utils import Database

from bot.budgets.evaluate import AlertChange, AlertState, Event, EventKind
from bot.budgets.periods import period_at
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.store import alerts, audit, outbox, snoozes
from bot.store.budgets import (
    Budget,
    BudgetNotFound,
    NewBudget,
    create_budget,
    delete_budget,
    find_budget,
    get_budget,
    list_budgets,
    update_budget,
)
from bot.store.db import from_text, immediate, to_text
from bot.store.outbox import OutboxAction, OutboxStatus

T0 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
WS = "T1"
OTHER_WS = "T2"


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


def test_delete_budget_removes_it_its_alerts_and_its_unsent_messages(db: Database) -> None:
    budget = create_budget(db, new_budget(), now=T0)
    other = create_budget(db, new_budget(), now=T0)
    alert_id = open_alert(db, budget)
    open_alert(db, other)
    alerts.acknowledge(db, WS, alert_id, actor="UADMIN", now=T0)
    snoozes.snooze(db, WS, budget.id, T0 + timedelta(hours=4), actor="UADMIN", now=T0)
    for key, budget_id in [("post", budget.id), ("failed", budget.id), ("sent", budget.id)]:
        enqueue(db, key, budget_id=budget_id)
    enqueue(db, "theirs", budget_id=other.id)
    enqueue(db, "digest")
    outbox.mark_failed(db, item(db, "failed").id, error="not_in_channel")
    outbox.mark_sent(db, item(db, "sent"), ts="1.1", now=T0)
    assert db["alert_events"].count == 4  # two LEVEL, ACKNOWLEDGED, SNOOZED

    removed = delete_budget(db, WS, budget.id, actor="UADMIN", now=T0 + timedelta(days=1))

    assert removed == budget
    with pytest.raises(BudgetNotFound):
        get_budget(db, WS, budget.id)
    assert find_budget(db, budget.id) is None
    assert [b.id for b in list_budgets(db, WS)] == [other.id]
    # Cascaded: the alert, its events and its history; the other budget's stay.
    assert [row["budget_id"] for row in db["alerts"].rows] == [other.id]
    assert [row["kind"] for row in db["alert_events"].rows] == ["level"]
    assert [row["budget_id"] for row in db["alert_state"].rows] == [other.id]
    assert snoozes.snoozed_until(db, budget.id) is None
    assert statuses(db) == {
        "post": OutboxStatus.DROPPED,
        "failed": OutboxStatus.DROPPED,
        "sent": OutboxStatus.SENT,
        "theirs": OutboxStatus.PENDING,
        "digest": OutboxStatus.PENDING,
    }
    assert {item(db, key).last_error for key in ("post", "failed")} == {"budget removed"}
    assert {key: done_at(db, key) for key in ("post", "failed", "sent", "theirs")} == {
        "post": T0 + timedelta(days=1),
        "failed": T0 + timedelta(days=1),
        "sent": T0,  # settled when it was sent
        "theirs": None,
    }
    assert [i.dedup_key for i in outbox.due_items(db, T0 + timedelta(days=1))] == [
        "theirs",
        "digest",
    ]
    latest = audit.history(db, WS)[0]
    assert (latest.action, latest.after) == ("budget.remove", None)
    assert latest.before["id"] == budget.id


def test_find_budget_is_for_the_bots_own_ids_across_workspaces(db: Database) -> None:
    theirs = create_budget(db, new_budget(OTHER_WS), now=T0)

    assert find_budget(db, theirs.id) == theirs
    assert find_budget(db, theirs.id + 1) is None


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


# --- snoozes (the alerts they touch: test_alert_store.py) ------------------------------


@pytest.fixture
def budget(db: Database) -> Budget:
    return create_budget(db, new_budget(), now=T0)


def open_alert(db: Database, budget: Budget, *, now: datetime = T0) -> int:
    """The budget's alert of this month, passed 50 %, as a check writes it."""
    period = period_at(budget.period, now, "UTC")
    change = AlertChange(
        AlertState(period.key, frozenset({50})), (Event(EventKind.LEVEL, 50),), True
    )
    with immediate(db):
        return alerts.apply_change(
            db,
            budget_id=budget.id,
            channel_id=budget.channel_id,
            change=change,
            period=period,
            spend_cu=6_100.0,
            limit_cu=budget.limit_cu,
            projection=None,
            attribution=None,
            now=now,
        )


def test_snooze_and_unsnooze_are_audited(db: Database, budget: Budget) -> None:
    until = T0 + timedelta(hours=24)
    audits = audit_count(db)

    snoozes.snooze(db, WS, budget.id, until, actor="U1", now=T0)
    assert snoozes.snoozed_until(db, budget.id) == until
    longer = until + timedelta(days=1)
    snoozes.snooze(db, WS, budget.id, longer, actor="U2", now=T0 + timedelta(minutes=1))
    assert snoozes.snoozed_until(db, budget.id) == longer
    snooze = snoozes.get_snooze(db, budget.id)
    assert snooze == snoozes.Snooze(budget.id, longer, "U2", T0 + timedelta(minutes=1))

    assert snoozes.unsnooze(db, WS, budget.id, actor="U3", now=T0 + timedelta(minutes=2))
    assert snoozes.snoozed_until(db, budget.id) is None
    assert snoozes.get_snooze(db, budget.id) is None
    assert not snoozes.unsnooze(db, WS, budget.id, actor="U3", now=T0 + timedelta(minutes=3))

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
    assert db["alert_events"].count == 0  # no alert to tell


# --- outbox ----------------------------------------------------------------------------

DAY = timedelta(days=1)


def enqueue(
    db: Database,
    key: str,
    *,
    now: datetime = T0,
    expires_at: datetime = T0 + DAY,
    workspace: str = WS,
    budget_id: int | None = None,
    text: str = "hello",
    thread_key: str | None = None,
) -> bool:
    return outbox.enqueue(
        db,
        dedup_key=key,
        workspace_id=workspace,
        channel_id="C1",
        action=OutboxAction.POST,
        payload={"text": text, "blocks": [{"type": "divider"}]},
        now=now,
        expires_at=expires_at,
        budget_id=budget_id,
        thread_key=thread_key,
    )


def item(db: Database, key: str) -> outbox.OutboxItem:
    found = outbox.get_item(db, key)
    assert found is not None, key
    return found


def statuses(db: Database) -> dict[str, OutboxStatus]:
    return {row["dedup_key"]: OutboxStatus(row["status"]) for row in db["outbox"].rows}


def done_at(db: Database, key: str) -> datetime | None:
    """When the row was settled (sent or dropped)."""
    text = db.execute("SELECT done_at FROM outbox WHERE dedup_key = ?", [key]).fetchone()[0]
    return from_text(text) if text else None


def revise(
    db: Database, key: str, text: str, *, now: datetime = T0, expires_at: datetime = T0 + DAY
) -> None:
    outbox.revise(
        db,
        dedup_key=key,
        workspace_id=WS,
        channel_id="C1",
        payload={"text": text},
        now=now,
        expires_at=expires_at,
        budget_id=1,
        thread_key="alert:1",
    )


def test_enqueue_deduplicates_on_the_key(db: Database) -> None:
    assert enqueue(db, "alert:1:80", text="first", thread_key="alert:1") is True
    assert enqueue(db, "alert:1:80", text="second", now=T0 + timedelta(minutes=5)) is False

    assert db["outbox"].count == 1
    first = item(db, "alert:1:80")
    assert first.payload == {"text": "first", "blocks": [{"type": "divider"}]}
    assert (first.status, first.attempts, first.next_attempt_at, first.created_at) == (
        OutboxStatus.PENDING,
        0,
        T0,
        T0,
    )
    assert (first.action, first.thread_key, first.expires_at, first.revision) == (
        OutboxAction.POST,
        "alert:1",
        T0 + DAY,
        0,
    )
    assert outbox.get_item(db, "nope") is None


def test_due_items_are_pending_due_rows_oldest_first(db: Database) -> None:
    for key in ("a", "b", "c", "d", "e", "f"):
        enqueue(db, key, workspace=OTHER_WS if key == "f" else WS)
    ids = {key: item(db, key).id for key in "abcdef"}
    outbox.reschedule(db, ids["a"], error="ratelimited", at=T0 + timedelta(seconds=30))
    outbox.reschedule(db, ids["b"], error="500 fatal", at=T0 + timedelta(seconds=10))
    assert outbox.mark_sent(db, item(db, "c"), ts="1.000001", now=T0)
    outbox.mark_failed(db, ids["d"], error="is_archived")

    assert [i.dedup_key for i in outbox.due_items(db, T0)] == ["e", "f"]
    assert [i.dedup_key for i in outbox.due_items(db, T0, limit=1)] == ["e"]
    assert [i.dedup_key for i in outbox.due_items(db, T0, workspace_id=WS)] == ["e"]
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
    outbox.reschedule(db, item(db, "k").id, error="500 fatal", at=T0)

    assert outbox.mark_sent(db, item(db, "k"), ts="1700000000.000001", now=T0) is True

    sent = item(db, "k")
    assert (sent.status, sent.ts, sent.last_error) == (OutboxStatus.SENT, "1700000000.000001", None)
    assert db.execute("SELECT sent_at FROM outbox").fetchone()[0] == to_text(T0)
    assert done_at(db, "k") == T0


def test_claim_counts_the_attempt_and_hides_the_row_until_the_lease_ends(db: Database) -> None:
    enqueue(db, "k")
    read = item(db, "k")
    lease_end = T0 + timedelta(minutes=2)

    assert outbox.claim(db, read, lease_until=lease_end) is True
    assert outbox.claim(db, read, lease_until=lease_end) is False  # a stale read loses

    claimed = item(db, "k")
    assert (claimed.attempts, claimed.next_attempt_at) == (1, lease_end)
    assert outbox.due_items(db, lease_end - timedelta(microseconds=1)) == []
    assert [i.id for i in outbox.due_items(db, lease_end)] == [read.id]
    assert outbox.mark_sent(db, claimed, ts="1.1", now=T0)
    assert outbox.claim(db, claimed, lease_until=lease_end) is False  # sent rows stay sent


def test_revise_creates_the_edit_row_then_replaces_its_content(db: Database) -> None:
    revise(db, "alert:1:edit", "first", expires_at=T0 + DAY)

    created = item(db, "alert:1:edit")
    assert (created.action, created.thread_key, created.budget_id) == (
        OutboxAction.UPDATE,
        "alert:1",
        1,
    )
    assert (created.status, created.revision, created.payload) == (
        OutboxStatus.PENDING,
        0,
        {"text": "first"},
    )
    assert outbox.mark_sent(db, created, ts="1.1", now=T0)
    outbox.reschedule(db, created.id, error="old error", at=T0)
    later = T0 + timedelta(minutes=5)

    revise(db, "alert:1:edit", "second", now=later, expires_at=T0 + timedelta(hours=1))

    revised = item(db, "alert:1:edit")
    assert db["outbox"].count == 1
    assert (revised.id, revised.status, revised.revision) == (created.id, OutboxStatus.PENDING, 1)
    assert (revised.payload, revised.last_error, revised.next_attempt_at) == (
        {"text": "second"},
        None,
        later,
    )
    assert revised.expires_at == T0 + DAY  # the later of the two expiries
    assert [i.id for i in outbox.due_items(db, later)] == [revised.id]
    revise(db, "alert:1:edit", "third", now=later, expires_at=T0 + 2 * DAY)
    assert (item(db, "alert:1:edit").revision, item(db, "alert:1:edit").expires_at) == (
        2,
        T0 + 2 * DAY,
    )


def test_a_row_revised_after_it_was_read_cannot_be_claimed_or_marked_sent(db: Database) -> None:
    revise(db, "alert:1:edit", "old")
    read = item(db, "alert:1:edit")
    revise(db, "alert:1:edit", "new", now=T0 + timedelta(seconds=1))

    assert outbox.claim(db, read, lease_until=T0 + timedelta(minutes=2)) is False
    assert item(db, "alert:1:edit").attempts == 0

    fresh = item(db, "alert:1:edit")
    assert outbox.claim(db, fresh, lease_until=T0 + timedelta(minutes=2)) is True
    revise(db, "alert:1:edit", "newer", now=T0 + timedelta(seconds=2))  # during the attempt

    assert outbox.mark_sent(db, fresh, ts="1.5", now=T0 + timedelta(seconds=3)) is False

    row = item(db, "alert:1:edit")
    assert (row.status, row.payload, row.revision) == (
        OutboxStatus.PENDING,
        {"text": "newer"},
        2,
    )
    assert row.ts == "1.5"  # still known, for the thread that hangs from it
    assert db.execute("SELECT sent_at FROM outbox").fetchone()[0] is None
    assert done_at(db, "alert:1:edit") is None
    assert outbox.mark_sent(db, row, ts="1.5", now=T0 + timedelta(seconds=4)) is True
    assert done_at(db, "alert:1:edit") == T0 + timedelta(seconds=4)


def test_rewrite_unsent_only_replaces_a_post_nobody_tried_to_send(db: Database) -> None:
    enqueue(db, "alert:1")
    enqueue(db, "failed")
    outbox.mark_failed(db, item(db, "failed").id, error="not_in_channel")
    enqueue(db, "sent")
    outbox.mark_sent(db, item(db, "sent"), ts="1.1", now=T0)

    assert outbox.rewrite_unsent(db, "alert:1", {"text": "latest"}) is True
    rewritten = item(db, "alert:1")
    assert (rewritten.payload, rewritten.revision, rewritten.attempts) == ({"text": "latest"}, 1, 0)
    assert outbox.rewrite_unsent(db, "failed", {"text": "x"}) is False
    assert outbox.rewrite_unsent(db, "sent", {"text": "x"}) is False
    assert outbox.rewrite_unsent(db, "nope", {"text": "x"}) is False

    assert outbox.claim(db, rewritten, lease_until=T0 + timedelta(minutes=2))
    assert outbox.rewrite_unsent(db, "alert:1", {"text": "too late"}) is False
    assert item(db, "alert:1").payload == {"text": "latest"}
    assert item(db, "failed").payload["text"] == "hello"


def test_drop_expired_drops_unsent_rows_at_their_expiry_and_no_others(db: Database) -> None:
    enqueue(db, "pending-past", expires_at=T0 - timedelta(hours=1))
    enqueue(db, "pending-now", expires_at=T0)
    enqueue(db, "pending-later", expires_at=T0 + timedelta(microseconds=1))
    enqueue(db, "failed-past", expires_at=T0 - timedelta(hours=1))
    outbox.mark_failed(db, item(db, "failed-past").id, error="not_in_channel")
    enqueue(db, "sent-past", expires_at=T0 - timedelta(hours=1))
    outbox.mark_sent(db, item(db, "sent-past"), ts="1.1", now=T0)
    enqueue(db, "never")  # a row written before expiries existed
    db.execute("UPDATE outbox SET expires_at = NULL WHERE dedup_key = 'never'")

    assert outbox.drop_expired(db, T0) == 3

    assert statuses(db) == {
        "pending-past": OutboxStatus.DROPPED,
        "pending-now": OutboxStatus.DROPPED,
        "pending-later": OutboxStatus.PENDING,
        "failed-past": OutboxStatus.DROPPED,
        "sent-past": OutboxStatus.SENT,
        "never": OutboxStatus.PENDING,
    }
    assert item(db, "pending-now").last_error == "expired"
    assert item(db, "failed-past").last_error == "not_in_channel"  # why it never went out
    assert {key: done_at(db, key) for key in statuses(db)} == {
        "pending-past": T0,
        "pending-now": T0,
        "pending-later": None,
        "failed-past": T0,
        "sent-past": T0,  # when it was sent
        "never": None,
    }
    assert outbox.due_items(db, T0 + DAY) == [item(db, "pending-later"), item(db, "never")]
    assert outbox.drop_expired(db, T0) == 0


def test_mark_dropped_keeps_the_row_with_its_reason(db: Database) -> None:
    enqueue(db, "k")

    outbox.mark_dropped(db, item(db, "k").id, reason="message_not_found", now=T0 + DAY)

    dropped = item(db, "k")
    assert (dropped.status, dropped.last_error) == (OutboxStatus.DROPPED, "message_not_found")
    assert done_at(db, "k") == T0 + DAY
    assert outbox.due_items(db, T0 + DAY) == []


def test_prune_deletes_sent_and_dropped_rows_two_days_after_they_were_settled(
    db: Database, budget: Budget
) -> None:
    alert_id = open_alert(db, budget)
    root_key = f"alert:{alert_id}"
    long_ago = T0 - outbox.KEEP_AFTER_EXPIRY - timedelta(microseconds=1)
    queued = long_ago - DAY
    enqueue(db, "expired-old", now=queued, expires_at=long_ago)
    assert outbox.drop_expired(db, long_ago) == 1
    for key in ("sent-old", "dropped-old", "pending-old", "failed-old", root_key):
        enqueue(db, key, now=queued)
    enqueue(db, "budget-removed-old", now=queued, budget_id=budget.id)
    # Kept: settled recently, though they were queued, and expired, long ago.
    enqueue(db, "sent-just-kept", now=queued, expires_at=long_ago)
    enqueue(db, "sent-recent", now=queued, expires_at=long_ago)
    enqueue(db, "sent-no-expiry", now=queued)
    db.execute("UPDATE outbox SET expires_at = NULL WHERE dedup_key = 'sent-no-expiry'")
    for key in ("sent-old", root_key):
        outbox.mark_sent(db, item(db, key), ts="1.1", now=long_ago)
    outbox.mark_dropped(db, item(db, "dropped-old").id, reason="message_not_found", now=long_ago)
    assert outbox.drop_for_budget(db, budget.id, now=long_ago) == 1
    outbox.mark_sent(db, item(db, "sent-just-kept"), ts="1.2", now=T0 - outbox.KEEP_AFTER_EXPIRY)
    outbox.mark_sent(db, item(db, "sent-recent"), ts="1.3", now=T0 - timedelta(hours=1))
    outbox.mark_sent(db, item(db, "sent-no-expiry"), ts="1.4", now=T0)
    outbox.mark_failed(db, item(db, "failed-old").id, error="is_archived")

    assert outbox.prune(db, T0) == 4

    assert statuses(db) == {
        "pending-old": OutboxStatus.PENDING,  # never settled: never pruned
        "failed-old": OutboxStatus.FAILED,  # an admin may still get it sent
        root_key: OutboxStatus.SENT,  # the alert's message: a late Acknowledge threads under it
        "sent-just-kept": OutboxStatus.SENT,
        "sent-recent": OutboxStatus.SENT,
        "sent-no-expiry": OutboxStatus.SENT,
    }
    assert outbox.prune(db, T0) == 0
    alerts.new_message(db, alert_id, "C2", "alert:new")  # no longer the alert's message
    assert outbox.prune(db, T0) == 1
    assert root_key not in statuses(db)


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
    rows = {i.dedup_key: i for i in outbox.due_items(db, T0)}
    outbox.mark_failed(db, rows["a"].id, error="not_in_channel")
    outbox.mark_failed(db, rows["b"].id, error="is_archived")
    outbox.reschedule(db, rows["c"].id, error="500 fatal", at=T0 + timedelta(minutes=1))
    outbox.mark_failed(db, rows["d"].id, error="invalid_auth")
    outbox.mark_sent(db, rows["e"], ts="1.1", now=T0)
    outbox.mark_failed(db, rows["f"].id, error="channel_not_found")

    assert outbox.delivery_problems(db, WS) == {1: "is_archived", None: "invalid_auth"}
    assert outbox.delivery_problems(db, OTHER_WS) == {4: "channel_not_found"}
    assert outbox.delivery_problems(db, "T-NOBODY") == {}


def test_a_delivery_problem_clears_once_a_later_message_gets_through(db: Database) -> None:
    for key in ("first", "second"):
        enqueue(db, key, budget_id=1)
    rows = {i.dedup_key: i for i in outbox.due_items(db, T0)}
    outbox.mark_failed(db, rows["first"].id, error="not_in_channel")
    assert outbox.delivery_problems(db, WS) == {1: "not_in_channel"}
    outbox.mark_sent(db, rows["second"], ts="1.2", now=T0)
    assert outbox.delivery_problems(db, WS) == {}
