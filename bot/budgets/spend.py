"""Spend of a budget's scope, from one /usages response for its window. Pure.

A scope is measured from the response of the call that covers its window:
- team: every user's consumption; project: the same call filtered with `projectIds`;
- user and API key: the consumption row of that user ID (an API key is a user with
  `isApiKey`), so they share the team's call;
- model: the model's `cost` points.
Spend is `value` (see `bot.scenario.models.spend_of`), which is what Scenario bills.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.budgets.periods import Period
from bot.budgets.types import Scope, ScopeKind
from bot.scenario.models import UsagesResponse, UsageType, cu_series, total_cu, totals_per_user


@dataclass(frozen=True, slots=True)
class Window:
    """One /usages call: a time range and an optional project filter."""

    start: datetime
    end: datetime
    project_id: str | None = None


def window_for(scope: Scope, period: Period, now: datetime) -> Window:
    """The period so far: spend after `now` cannot exist yet."""
    project = scope.ref if scope.kind is ScopeKind.PROJECT else None
    return Window(period.start, now, project)


def plan_windows(needs: Iterable[tuple[Scope, Period]], now: datetime) -> list[Window]:
    """The distinct calls that cover every budget: one per window × project filter."""
    windows = {window_for(scope, period, now) for scope, period in needs}
    return sorted(windows, key=lambda w: (w.start, w.end, w.project_id or ""))


def types_needed(scopes: Iterable[Scope], *, forecast: bool) -> tuple[UsageType, ...]:
    """The smallest answer that measures these scopes: consumption, plus the per-model
    series for model scopes and the CU time series for forecasts (fewer sections are a
    smaller, faster answer)."""
    types = [UsageType.CONSUMPTION]
    if any(scope.kind is ScopeKind.MODEL for scope in scopes):
        types.append(UsageType.MODEL_USAGES)
    if forecast:
        types.append(UsageType.USAGES)
    return tuple(types)


def scope_spend(scope: Scope, response: UsagesResponse) -> float:
    if scope.kind in (ScopeKind.TEAM, ScopeKind.PROJECT):
        return total_cu(response)
    if scope.kind in (ScopeKind.USER, ScopeKind.KEY):
        totals = totals_per_user(response).get(scope.ref or "")
        return totals.spend if totals else 0.0
    return math.fsum(
        point.cost
        for usage in response.model_usages
        if usage.model_id == scope.ref
        for point in usage.points
    )


def scope_series(scope: Scope, response: UsagesResponse) -> list[tuple[datetime, float]]:
    """CU per time bucket for the scope, where the API has a series for it (else empty)."""
    if scope.kind in (ScopeKind.TEAM, ScopeKind.PROJECT):
        return cu_series(response)
    if scope.kind is ScopeKind.MODEL:
        return sorted(
            (point.time, point.cost)
            for usage in response.model_usages
            if usage.model_id == scope.ref
            for point in usage.points
        )
    return []
