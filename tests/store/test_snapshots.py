"""What the latest check saw, read back for Home: shown only while its period runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from bot.budgets.periods import period_at
from bot.budgets.types import PeriodKind
from bot.reports.status import NEW_PERIOD, statuses_from_snapshots
from bot.store.budgets import NewBudget, create_budget, list_budgets
from bot.store.db import migrate, open_db
from bot.store.snapshots import record_snapshot, snapshots_of

ZONES = ("Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "UTC")
# Month ends, an ISO-week end, DST changes in Paris and New York, a leap day.
NEAR = [
    datetime(2026, 11, 30, 22, 50, tzinfo=UTC),
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
    datetime(2028, 2, 29, 23, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
]


def same_period(kind: PeriodKind, first: datetime, second: datetime, tz: str) -> bool:
    """The calendar says so, read straight from the local dates."""
    a, b = first.astimezone(ZoneInfo(tz)).date(), second.astimezone(ZoneInfo(tz)).date()
    if kind is PeriodKind.DAILY:
        return a == b
    if kind is PeriodKind.WEEKLY:
        return a.isocalendar()[:2] == b.isocalendar()[:2]
    return (a.year, a.month) == (b.year, b.month)


def fresh_db() -> Database:
    db = open_db(":memory:")
    migrate(db)
    return db


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from([PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY]),
    tz=st.sampled_from(ZONES),
    near=st.sampled_from(NEAR),
    before=st.integers(min_value=-36 * 60, max_value=36 * 60),
    later=st.integers(min_value=0, max_value=40 * 24 * 60),
)
def test_a_snapshot_is_shown_exactly_while_its_calendar_period_runs(
    kind: PeriodKind, tz: str, near: datetime, before: int, later: int
) -> None:
    checked = near + timedelta(minutes=before)
    opened = checked + timedelta(minutes=later)
    db = fresh_db()
    created = checked - timedelta(hours=1)
    budget = create_budget(db, NewBudget("T1", kind, 1_000, "C1", "U1"), now=created)
    record_snapshot(db, budget, period_at(kind, checked, tz), 123.5, None, now=checked)

    [status] = statuses_from_snapshots(db, list_budgets(db, "T1"), tz, opened)
    if same_period(kind, checked, opened, tz):
        assert (status.spend, status.as_of, status.pending) == (123.5, checked, None)
    else:
        assert (status.spend, status.as_of, status.pending) == (None, None, NEW_PERIOD)


def test_a_billing_snapshot_is_shown_until_its_period_ends_and_a_timezone_change_hides_it(
    db: Database,
) -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    billing = create_budget(db, NewBudget("T1", PeriodKind.BILLING, 1_000, "C1", "U1"), now=now)
    daily = create_budget(db, NewBudget("T1", PeriodKind.DAILY, 1_000, "C1", "U1"), now=now)
    plan = (datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 12, 10, tzinfo=UTC))
    period = period_at(PeriodKind.BILLING, now, "UTC", billing=plan)
    record_snapshot(db, billing, period, 10.0, None, now=now)
    record_snapshot(db, daily, period_at(PeriodKind.DAILY, now, "UTC"), 20.0, None, now=now)

    def spends(at: datetime, tz: str = "UTC") -> list[float | None]:
        return [s.spend for s in statuses_from_snapshots(db, list_budgets(db, "T1"), tz, at)]

    assert spends(now + timedelta(hours=1)) == [10.0, 20.0]
    assert spends(plan[1] - timedelta(seconds=1)) == [10.0, None]  # the day ended
    assert spends(plan[1]) == [None, None]
    # Another timezone is another day: not this day's figure, though the instant is close.
    assert spends(now + timedelta(hours=1), "Asia/Tokyo") == [10.0, None]


def test_snapshots_belong_to_their_workspace_and_budget(db: Database) -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    one = create_budget(db, NewBudget("T1", PeriodKind.ROLLING_24H, 100, "C1", "U1"), now=now)
    two = create_budget(db, NewBudget("T2", PeriodKind.ROLLING_24H, 100, "C2", "U2"), now=now)
    for budget, spend in ((one, 1.0), (two, 2.0)):
        record_snapshot(db, budget, period_at(budget.period, now, "UTC"), spend, None, now=now)
    assert {b: s.spend_cu for b, s in snapshots_of(db, "T1").items()} == {one.id: 1.0}
    assert {b: s.spend_cu for b, s in snapshots_of(db, "T2").items()} == {two.id: 2.0}
    [status] = statuses_from_snapshots(db, list_budgets(db, "T2"), "UTC", now)
    assert status.spend == 2.0
