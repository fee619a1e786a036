"""What the latest check saw of each budget: its period, spend, limit and forecast, and when.

The Home tab opens from these rows instead of reading Scenario (SPEC §7). The check writes
them in the transaction that records its decisions, so a row is always what was decided
on; a dry run rolls them back with everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from bot.budgets.forecast import Forecast
from bot.budgets.periods import Period
from bot.budgets.types import PeriodKind
from bot.store.alerts import forecast_json, forecast_of
from bot.store.budgets import Budget
from bot.store.db import from_text, to_text


@dataclass(frozen=True, slots=True)
class Snapshot:
    budget_id: int
    period: Period  # as the check measured it (a rolling window: the one ending then)
    spend_cu: float
    limit_cu: float  # the limit it was decided against
    projection: Forecast | None
    budget_updated_at: datetime  # the budget as it was read; an edit since makes this stale
    checked_at: datetime


def record_snapshot(
    db: Database,
    budget: Budget,
    period: Period,
    spend: float,
    projection: Forecast | None,
    *,
    now: datetime,
) -> None:
    """Replace the budget's snapshot (in the caller's transaction)."""
    db.execute(
        "INSERT OR REPLACE INTO budget_snapshots (budget_id, workspace_id, period_kind,"
        " period_key, period_start, period_end, period_tz, spend_cu, limit_cu, projection,"
        " budget_updated_at, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            budget.id,
            budget.workspace_id,
            period.kind.value,
            period.key,
            to_text(period.start),
            to_text(period.end),
            period.tz,
            spend,
            budget.limit_cu,
            forecast_json(projection),
            to_text(budget.updated_at),
            to_text(now),
        ],
    )


def snapshots_of(db: Database, workspace_id: str) -> dict[int, Snapshot]:
    """The workspace's snapshots by budget ID (never another workspace's)."""
    rows = db.query("SELECT * FROM budget_snapshots WHERE workspace_id = ?", [workspace_id])
    return {
        row["budget_id"]: Snapshot(
            budget_id=row["budget_id"],
            period=Period(
                PeriodKind(row["period_kind"]),
                from_text(row["period_start"]),
                from_text(row["period_end"]),
                row["period_tz"],
                row["period_key"],
            ),
            spend_cu=row["spend_cu"],
            limit_cu=row["limit_cu"],
            projection=forecast_of(row["projection"]),
            budget_updated_at=from_text(row["budget_updated_at"]),
            checked_at=from_text(row["checked_at"]),
        )
        for row in rows
    }
