"""What Scenario says about a set of budgets: their current periods, and the spend (and, for an
alert, the activity) in the fewest /usages windows that cover them. Shared by the check, the
statuses of `/budget list`, and the digest; and the per-project reads of `/usage`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.budgets.periods import Period, period_at
from bot.budgets.spend import Window, plan_windows, scope_spend, types_needed, window_for
from bot.budgets.types import TEAM, PeriodKind, Scope
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import BillingPeriodUnavailable, ScenarioError
from bot.scenario.models import UsagesResponse, UsageType
from bot.store.budgets import Budget

log = logging.getLogger(__name__)

# The API gives no per-project totals: one filtered read each. Bounded both ways, so that a
# team with hundreds of projects neither floods Scenario nor makes `/usage` wait for ever.
PROJECT_READS_AT_ONCE = 10
MAX_PROJECT_READS = 30


# The widest range Scenario answers hour by hour (a longer one comes back by the day).
HOURLY_SPAN = timedelta(days=3)


def split_range(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) as ranges of at most `size`, newest first."""
    found = []
    hi = end
    while hi > start:
        lo = max(start, hi - size)
        found.append((lo, hi))
        hi = lo
    return found


async def periods_for(
    client: ScenarioClient, budgets: list[Budget], tz: str, now: datetime
) -> tuple[dict[int, Period], BillingPeriodUnavailable | None]:
    """Each budget's current period. Billing budgets need the plan period from Scenario;
    when it cannot be read they are left out, with the reason — the other budgets of the
    workspace are still checked (a failure that concerns one budget stays its own)."""
    billing: tuple[datetime, datetime] | None = None
    problem: BillingPeriodUnavailable | None = None
    if any(b.period is PeriodKind.BILLING for b in budgets):
        if not client.team_id:
            problem = BillingPeriodUnavailable(
                "billing budgets need SCENARIO_TEAM_ID, to read the plan period"
            )
        else:
            try:
                limits = await client.team_limits()
            except ScenarioError as exc:
                problem = BillingPeriodUnavailable(f"the plan period is unreadable: {exc.message}")
            else:
                if limits.period and limits.period.start and limits.period.end:
                    billing = (limits.period.start, limits.period.end)
    periods: dict[int, Period] = {}
    for budget in budgets:
        if budget.period is PeriodKind.BILLING and problem is not None:
            continue
        try:
            periods[budget.id] = period_at(budget.period, now, tz, billing=billing)
        except ValueError as exc:  # the plan period is missing or stale
            problem = BillingPeriodUnavailable(str(exc))
    return periods, problem


async def read_windows(
    client: ScenarioClient, budgets: list[Budget], periods: dict[int, Period], now: datetime
) -> dict[Window, UsagesResponse]:
    windows = plan_windows(((b.scope, periods[b.id]) for b in budgets), now)
    by_window: dict[Window, list[Budget]] = {w: [] for w in windows}
    for budget in budgets:
        by_window[window_for(budget.scope, periods[budget.id], now)].append(budget)

    async def read(window: Window) -> UsagesResponse:
        if window.end <= window.start:  # a period that starts this very instant: nothing yet
            return UsagesResponse()
        return await client.usages(
            start=window.start,
            end=window.end,
            project_ids=(window.project_id,) if window.project_id else (),
            types=types_needed(
                (b.scope for b in by_window[window]),
                forecast=any(b.forecast for b in by_window[window]),
            ),
        )

    found = await asyncio.gather(*(read(w) for w in windows))
    return dict(zip(windows, found, strict=True))


async def read_activity(
    client: ScenarioClient, budgets: list[Budget], periods: dict[int, Period], now: datetime
) -> dict[Window, UsagesResponse]:
    windows = plan_windows(((b.scope, periods[b.id]) for b in budgets), now)

    async def read(window: Window) -> UsagesResponse | None:
        try:
            return await client.usages_with_all_activity(
                start=window.start,
                end=window.end,
                project_ids=(window.project_id,) if window.project_id else (),
                # The first page also brings the per-model totals the alert ranks.
                types=(UsageType.ACTIVITY, UsageType.MODEL_USAGES),
            )
        except ScenarioError as exc:  # the alert still goes out, with less detail
            log.warning("activity for attribution unavailable: %s", exc.cause)
            return None

    found = await asyncio.gather(*(read(w) for w in windows))
    return {w: r for w, r in zip(windows, found, strict=True) if r is not None}


async def spend_per_project(
    client: ScenarioClient,
    project_ids: Sequence[str],
    *,
    start: datetime,
    end: datetime,
    user_ids: Sequence[str] = (),
    scope: Scope = TEAM,
) -> dict[str, float]:
    """The spend of `scope` in `[start, end)` in each project: one filtered read per project,
    at most PROJECT_READS_AT_ONCE at a time (the caller keeps to MAX_PROJECT_READS)."""
    limit = asyncio.Semaphore(PROJECT_READS_AT_ONCE)
    types = types_needed([scope], forecast=False)

    async def read(project_id: str) -> float:
        async with limit:
            response = await client.usages(
                start=start, end=end, project_ids=(project_id,), user_ids=user_ids, types=types
            )
        return scope_spend(scope, response)

    found = await asyncio.gather(*(read(p) for p in project_ids))
    return dict(zip(project_ids, found, strict=True))
