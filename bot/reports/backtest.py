"""The history a backtest replays (`bot.budgets.backtest`), read from Scenario in a bounded
number of calls: the window hour by hour in 3-day reads (the widest range Scenario answers
by the hour), plus — for a calendar budget — one read of the first period's spend before
the window. A monthly budget takes 12 reads; a rolling 30d one, whose every step looks a
whole window back, at most 21."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.budgets.backtest import HORIZON, Backtest, history_start, replay
from bot.budgets.evaluate import BudgetRule
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.reports.reads import HOURLY_SPAN, split_range
from bot.scenario.client import ScenarioClient
from bot.scenario.models import UsagesResponse, UsageType, cu_series, granularity_of

CONCURRENCY = 6


@dataclass(frozen=True, slots=True)
class History:
    """A scope's spend over a backtest window and the first period before it."""

    start: datetime  # the window's first check (on the hour)
    end: datetime
    buckets: tuple[tuple[datetime, datetime, float], ...]
    reads: int


async def read_history(
    client: ScenarioClient,
    scope: Scope,
    kind: PeriodKind,
    tz: str,
    now: datetime,
    *,
    horizon: timedelta = HORIZON,
) -> History:
    """ScenarioError when Scenario cannot be read, ValueError for a billing budget."""
    if kind is PeriodKind.BILLING:
        raise ValueError("past billing periods are not known")
    start = (now - horizon).replace(minute=0, second=0, microsecond=0)  # checks on the hour
    lead = history_start(kind, start, tz)
    hourly_from = lead if kind.is_rolling else start
    pieces = split_range(hourly_from, now, HOURLY_SPAN)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def read(lo: datetime, hi: datetime) -> list[tuple[datetime, datetime, float]]:
        async with limit:
            answer = await client.usages(
                start=lo,
                end=hi,
                project_ids=(scope.ref,) if scope.kind is ScopeKind.PROJECT and scope.ref else (),
                user_ids=(scope.ref,)
                if scope.kind in (ScopeKind.USER, ScopeKind.KEY) and scope.ref
                else (),
                # The CU series for model scopes too: it says the points' granularity.
                types=(UsageType.USAGES, UsageType.MODEL_USAGES)
                if scope.kind is ScopeKind.MODEL
                else (UsageType.USAGES,),
            )
        return _buckets(scope, answer, lo, hi)

    reads = [read(lo, hi) for lo, hi in pieces]
    before = lead < hourly_from
    if before:
        reads.append(read(lead, hourly_from))
    found = await asyncio.gather(*reads)
    buckets = [b for chunk in found[: len(pieces)] for b in chunk]
    if before:  # only its total matters: the window's steps all come after it
        total = math.fsum(cu for _, _, cu in found[-1])
        buckets.append((lead, hourly_from, total))
    return History(start, now, tuple(buckets), len(reads))


def replay_history(history: History, rule: BudgetRule, kind: PeriodKind, tz: str) -> Backtest:
    """The pure part, again for every limit or threshold tried on the same history."""
    found = replay(rule, kind, history.buckets, tz, history.start, history.end)
    return replace(found, reads=history.reads)


async def backtest(
    client: ScenarioClient,
    scope: Scope,
    rule: BudgetRule,
    kind: PeriodKind,
    tz: str,
    now: datetime,
    *,
    horizon: timedelta = HORIZON,
) -> Backtest:
    """How a budget of this scope and rule would have done over `horizon` up to `now`."""
    history = await read_history(client, scope, kind, tz, now, horizon=horizon)
    return replay_history(history, rule, kind, tz)


def _buckets(
    scope: Scope, answer: UsagesResponse, lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime, float]]:
    """The answer's points as buckets clipped to the range read (its first and last points
    hold only what lies inside it)."""
    if scope.kind is ScopeKind.MODEL:
        points = [
            (p.time, p.cost)
            for usage in answer.model_usages
            if usage.model_id == scope.ref
            for p in usage.points
        ]
    else:
        points = cu_series(answer)
    width = granularity_of(answer)
    return [(max(at, lo), min(at + width, hi), cu) for at, cu in points]
