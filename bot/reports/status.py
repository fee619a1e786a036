"""Where each budget stands now — for `/budget list` and the Home tab."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from bot.budgets.forecast import Forecast, forecast
from bot.budgets.periods import Period
from bot.budgets.spend import scope_series, scope_spend, window_for
from bot.reports.reads import periods_for, read_windows
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import ScenarioError
from bot.store import alerts, outbox, snoozes
from bot.store.budgets import Budget
from bot.store.watch import get_watch


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: Budget
    period: Period | None  # None when Scenario could not be read
    spend: float | None
    forecast: Forecast | None
    alerted_level: int | None  # the highest threshold alerted in this period, still open
    snoozed_until: datetime | None
    delivery_problem: str | None

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
