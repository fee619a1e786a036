"""Where each budget stands now — for `/budget list` and the Home tab."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlite_utils import Database

from bot.budgets.forecast import Forecast, forecast
from bot.budgets.periods import Period, period_at
from bot.budgets.spend import scope_series, scope_spend, window_for
from bot.budgets.types import PeriodKind
from bot.reports.reads import periods_for, read_windows
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import ScenarioError
from bot.store import alerts, outbox, snoozes
from bot.store.budgets import Budget
from bot.store.snapshots import snapshots_of
from bot.store.watch import get_watch

# Why a budget has no figures yet (BudgetStatus.pending), when Scenario was not the problem.
NOT_CHECKED = "not checked yet"
CHANGED = "changed since the last check"
NEW_PERIOD = "new period since the last check"


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: Budget
    period: Period | None  # None when Scenario could not be read
    spend: float | None
    forecast: Forecast | None
    alerted_level: int | None  # the highest threshold alerted in this period, still open
    snoozed_until: datetime | None
    delivery_problem: str | None
    # From a check's snapshot (Home): when it read the figures; a live read leaves it None.
    as_of: datetime | None = None
    # Why there are no figures although Scenario was not the problem (Home): NOT_CHECKED…
    pending: str | None = None

    @property
    def percent(self) -> float | None:
        return None if self.spend is None else self.spend / self.budget.limit_cu * 100


async def read_statuses(
    db: Database, client: ScenarioClient, budgets: list[Budget], tz: str, now: datetime
) -> tuple[list[BudgetStatus], ScenarioError | None]:
    """Spend, forecast and alert state of every budget, with the same reads as a check.

    When Scenario cannot be read the statuses still come back, without spend, with the error.
    """
    problems = outbox.delivery_problems(db, budgets[0].workspace_id) if budgets else {}
    try:
        periods, unreadable = await periods_for(client, budgets, tz, now)
        readable = [b for b in budgets if b.id in periods]
        responses = await read_windows(client, readable, periods, now)
    except ScenarioError as exc:
        return [_status(db, b, None, None, None, problems) for b in budgets], exc
    statuses = []
    for budget in budgets:
        if budget.id not in periods:
            statuses.append(_status(db, budget, None, None, None, problems))
            continue
        period = periods[budget.id]
        response = responses[window_for(budget.scope, period, now)]
        spend = scope_spend(budget.scope, response)
        projection = forecast(
            spend=spend,
            limit=budget.limit_cu,
            period=period,
            now=now,
            series=scope_series(budget.scope, response),
        )
        statuses.append(_status(db, budget, period, spend, projection, problems))
    return statuses, unreadable


def statuses_from_snapshots(
    db: Database, budgets: list[Budget], tz: str, now: datetime
) -> list[BudgetStatus]:
    """Where each budget stood at the latest check that read it, without asking Scenario.

    A figure is shown only while it is still this period's: a snapshot taken before the
    budget was edited, or in a period that has ended since (a new day, a new billing
    period, another timezone), gives no spend but the reason (`pending`), never the old
    figure as the current one. A rolling window's figure is the window up to `as_of`.
    """
    problems = outbox.delivery_problems(db, budgets[0].workspace_id) if budgets else {}
    snapshots = snapshots_of(db, budgets[0].workspace_id) if budgets else {}
    statuses = []
    for budget in budgets:
        snapshot = snapshots.get(budget.id)
        # Periods that need no Scenario to be known (billing ones do) find their alert.
        period = None if budget.period is PeriodKind.BILLING else period_at(budget.period, now, tz)
        if snapshot is None:
            pending = NOT_CHECKED
        elif snapshot.budget_updated_at != budget.updated_at:
            pending = CHANGED
        elif not _still_current(snapshot.period, period, now):
            pending = NEW_PERIOD
        else:
            status = _status(
                db, budget, snapshot.period, snapshot.spend_cu, snapshot.projection, problems
            )
            statuses.append(replace(status, as_of=snapshot.checked_at))
            continue
        statuses.append(replace(_status(db, budget, period, None, None, problems), pending=pending))
    return statuses


def _still_current(seen: Period, current: Period | None, now: datetime) -> bool:
    """Whether a snapshot's period is the one running at `now` (`current`: None for billing
    periods, which only Scenario knows; the one seen is current until its end). A rolling
    window's key never changes: its figure is always the latest window's."""
    if current is None:
        return seen.contains(now)
    return seen.key == current.key


def statuses_without_spend(db: Database, budgets: list[Budget]) -> list[BudgetStatus]:
    """What is known of the budgets when Scenario cannot be asked (e.g. no credentials):
    their snoozes and delivery problems, no spend."""
    problems = outbox.delivery_problems(db, budgets[0].workspace_id) if budgets else {}
    return [_status(db, b, None, None, None, problems) for b in budgets]


def _status(
    db: Database,
    budget: Budget,
    period: Period | None,
    spend: float | None,
    projection: Forecast | None,
    problems: dict[int | None, str],
) -> BudgetStatus:
    level = None
    if period is not None:
        current, _ = alerts.current_alert(db, budget.id, period)
        level = current.state.top_level if current and not current.state.closed else None
    return BudgetStatus(
        budget=budget,
        period=period,
        spend=spend,
        forecast=projection,
        alerted_level=level,
        snoozed_until=snoozes.snoozed_until(db, budget.id),
        delivery_problem=problems.get(budget.id),
    )


def watch_status(db: Database, workspace_id: str) -> tuple[str | None, str | None, int, str | None]:
    """The watch's channel and sensitivity (None: off), how many episodes are open, and the
    channel's delivery problem (the bot cannot post there), if any."""
    watch = get_watch(db, workspace_id)
    if watch is None:
        return None, None, 0, None
    problem = outbox.delivery_problems(db, workspace_id).get(watch.id)
    return watch.channel_id, watch.watch, len(alerts.open_alerts(db, watch.id)), problem
