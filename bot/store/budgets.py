"""Budgets: create, read, change and remove, each change audited in the same transaction."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.budgets.evaluate import BudgetRule
from bot.budgets.types import DEFAULT_THRESHOLDS, TEAM, PeriodKind, Scope, ScopeKind
from bot.store.alerts import rearm_on_edit
from bot.store.audit import record_change
from bot.store.db import from_text, immediate, to_text
from bot.store.outbox import drop_for_budget
from bot.store.workspaces import ensure_workspace


@dataclass(frozen=True, slots=True)
class Budget:
    id: int
    workspace_id: str
    scope: Scope
    scope_name: str | None  # what people call the scope ("Marketing"); the ID is in scope
    period: PeriodKind
    limit_cu: float
    thresholds: tuple[int, ...]
    forecast: bool
    channel_id: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    # A workspace's watch (SPEC §5b) is stored as a budget: its sensitivity, else None.
    watch: str | None = None

    @property
    def label(self) -> str:
        """How messages name the budget: `#3 Marketing monthly`."""
        scope = self.scope_name or (self.scope.ref if self.scope.ref else "Team")
        return f"#{self.id} {scope} {self.period.value}"

    def as_audit(self) -> dict[str, Any]:
        data = asdict(self)
        data["scope"] = str(self.scope)
        if self.watch is None:
            del data["watch"]
        return {k: v for k, v in data.items() if k not in ("created_at", "updated_at")}


@dataclass(frozen=True, slots=True)
class NewBudget:
    workspace_id: str
    period: PeriodKind
    limit_cu: float
    channel_id: str
    created_by: str
    scope: Scope = TEAM
    scope_name: str | None = None
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    forecast: bool = False


class BudgetNotFound(LookupError):
    def __init__(self, budget_id: int) -> None:
        super().__init__(f"there is no budget #{budget_id} in this workspace")
        self.budget_id = budget_id


def create_budget(db: Database, new: NewBudget, *, now: datetime) -> Budget:
    with immediate(db):
        ensure_workspace(db, new.workspace_id, now=now)
        cursor = db.execute(
            "INSERT INTO budgets (workspace_id, scope_kind, scope_ref, scope_name, period,"
            " limit_cu, thresholds, forecast, channel_id, created_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                new.workspace_id,
                new.scope.kind.value,
                new.scope.ref,
                new.scope_name,
                new.period.value,
                new.limit_cu,
                json.dumps(sorted(set(new.thresholds))),
                int(new.forecast),
                new.channel_id,
                new.created_by,
                to_text(now),
                to_text(now),
            ],
        )
        budget = _get(db, new.workspace_id, int(cursor.lastrowid or 0))
        record_change(
            db,
            workspace_id=new.workspace_id,
            actor=new.created_by,
            action="budget.add",
            target=f"budget:{budget.id}",
            before=None,
            after=budget.as_audit(),
            now=now,
        )
    return budget


# The fields `/budget edit` may change; anything else is identity or history.
EDITABLE = frozenset(
    {"scope", "scope_name", "period", "limit_cu", "thresholds", "forecast", "channel_id"}
)


def update_budget(
    db: Database,
    workspace_id: str,
    budget_id: int,
    changes: dict[str, Any],
    *,
    actor: str,
    now: datetime,
) -> Budget:
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    with immediate(db):
        before = _get(db, workspace_id, budget_id)
        after = replace(before, **changes, updated_at=now)
        db.execute(
            "UPDATE budgets SET scope_kind = ?, scope_ref = ?, scope_name = ?, period = ?,"
            " limit_cu = ?, thresholds = ?, forecast = ?, channel_id = ?, updated_at = ?"
            " WHERE id = ?",
            [
                after.scope.kind.value,
                after.scope.ref,
                after.scope_name,
                after.period.value,
                after.limit_cu,
                json.dumps(sorted(set(after.thresholds))),
                int(after.forecast),
                after.channel_id,
                to_text(now),
                budget_id,
            ],
        )
        rearm_on_edit(
            db,
            budget_id=budget_id,
            old_limit=before.limit_cu,
            rule=BudgetRule(after.limit_cu, after.thresholds, after.forecast),
            rolling=after.period.is_rolling,
            changed={
                name: getattr(after, name)
                for name in ("limit_cu", "thresholds")
                if _comparable(getattr(after, name)) != _comparable(getattr(before, name))
            },
            actor=actor,
            now=now,
            new_period=(after.period, after.scope) != (before.period, before.scope),
        )
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="budget.edit",
            target=f"budget:{budget_id}",
            before=before.as_audit(),
            after=after.as_audit(),
            now=now,
        )
    return _get(db, workspace_id, budget_id)


def _comparable(value: Any) -> Any:
    """Thresholds are a set of levels, whatever order they were given in."""
    return tuple(sorted(set(value))) if isinstance(value, tuple) else value


def delete_budget(
    db: Database, workspace_id: str, budget_id: int, *, actor: str, now: datetime
) -> Budget:
    with immediate(db):
        before = _get(db, workspace_id, budget_id)
        db.execute("DELETE FROM budgets WHERE id = ?", [budget_id])
        # Its messages not yet sent would come out of context.
        drop_for_budget(db, budget_id, now=now)
        record_change(
            db,
            workspace_id=workspace_id,
            actor=actor,
            action="budget.remove",
            target=f"budget:{budget_id}",
            before=before.as_audit(),
            after=None,
            now=now,
        )
    return before


def get_budget(db: Database, workspace_id: str, budget_id: int) -> Budget:
    """The budget, only if it belongs to this workspace (IDs are never trusted across teams)."""
    return _get(db, workspace_id, budget_id)


def find_budget(db: Database, budget_id: int) -> Budget | None:
    """For the bot's own jobs, which carry IDs they wrote (never for IDs from requests)."""
    rows = list(db.query("SELECT * FROM budgets WHERE id = ?", [budget_id]))
    return budget_from_row(rows[0]) if rows else None


def list_budgets(db: Database, workspace_id: str) -> list[Budget]:
    """The workspace's budgets (not its watch, which has commands of its own)."""
    rows = db.query(
        "SELECT * FROM budgets WHERE workspace_id = ? AND watch IS NULL ORDER BY id",
        [workspace_id],
    )
    return [budget_from_row(row) for row in rows]


def _get(db: Database, workspace_id: str, budget_id: int) -> Budget:
    rows = list(
        db.query(
            "SELECT * FROM budgets WHERE id = ? AND workspace_id = ? AND watch IS NULL",
            [budget_id, workspace_id],
        )
    )
    if not rows:
        raise BudgetNotFound(budget_id)
    return budget_from_row(rows[0])


def budget_from_row(row: dict[str, Any]) -> Budget:
    kind = ScopeKind(row["scope_kind"])
    return Budget(
        id=row["id"],
        workspace_id=row["workspace_id"],
        scope=Scope(kind, row["scope_ref"]),
        scope_name=row["scope_name"],
        period=PeriodKind(row["period"]),
        limit_cu=row["limit_cu"],
        thresholds=tuple(json.loads(row["thresholds"])),
        forecast=bool(row["forecast"]),
        channel_id=row["channel_id"],
        created_by=row["created_by"],
        created_at=from_text(row["created_at"]),
        updated_at=from_text(row["updated_at"]),
        watch=row.get("watch"),
    )
