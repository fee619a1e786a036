"""What the daily digest says, gathered from Scenario and the store: yesterday (local) against
the week before, the channel's budgets, the top projects, people and models, the alerts of the
day and 14 days per model for the chart. Rendering needs nothing else."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from bot.budgets.culprits import Culprit, Names, top_n
from bot.budgets.periods import day_start
from bot.budgets.types import PeriodKind, ScopeKind
from bot.reports.status import BudgetStatus, read_statuses
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import ScenarioError
from bot.scenario.models import UsageType, cu_per_model, total_cu, totals_per_user
from bot.scenario.names import Directory, load_directory
from bot.store.alerts import EpisodeFinding
from bot.store.budgets import Budget, list_budgets
from bot.store.db import from_text, to_text
from bot.store.digests import Digest

CHART_DAYS = 14


CHART_SERIES = 5  # top models drawn; the rest is "Other"


TOP = 5


@dataclass(frozen=True, slots=True)
class DayAlert:
    budget_label: str
    level: int
    kind: str
    at: datetime


@dataclass
class DigestData:
    """Everything the digest says, gathered; rendering needs nothing else."""

    day: date
    tz: str
    spend: float
    week_average: float
    budgets: list[BudgetStatus]
    projects: list[Culprit]
    users: list[Culprit]
    models: list[Culprit]
    alerts: list[DayAlert]
    chart_days: list[date]
    chart: dict[str, list[float]]
    limit_per_day: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.spend == 0 and not self.alerts


async def gather(
    db: Database,
    client: ScenarioClient,
    digest: Digest,
    tz: str,
    now: datetime,
    app_url: str,
) -> DigestData:
    """Read yesterday (local), the 7 days before it, and 14 days for the chart.

    Yesterday's total is essential (ScenarioError propagates: nothing is sent, the next
    run retries); the rest degrades into a note.
    """
    today = now.astimezone(ZoneInfo(tz)).date()
    day = today - timedelta(days=1)
    start, end = day_start(day, tz), day_start(today, tz)
    types = (UsageType.CONSUMPTION, UsageType.MODEL_USAGES)
    yesterday = await client.usages(start=start, end=end, types=types)
    week = await client.usages(
        start=day_start(day - timedelta(days=7), tz), end=start, types=(UsageType.CONSUMPTION,)
    )
    notes: list[str] = []
    directory = await _directory(client, notes)
    chart_days, chart = await _chart(client, today, tz, directory, notes)
    budgets = [
        b for b in list_budgets(db, digest.workspace_id) if b.channel_id == digest.channel_id
    ]
    statuses: list[BudgetStatus] = []
    if budgets:
        statuses, error = await read_statuses(db, client, budgets, tz, now)
        if error is not None:
            notes.append(f"Budget spend unavailable: {error.message}")
    spend = total_cu(yesterday)
    names = Names(app_url, yesterday.entities, directory)
    per_user = {user: totals.spend for user, totals in totals_per_user(yesterday).items()}
    return DigestData(
        day=day,
        tz=tz,
        spend=spend,
        week_average=total_cu(week) / 7,
        budgets=statuses,
        projects=await _top_projects(client, names, start, end, notes),
        users=list(names.top(names.user, per_user, TOP)),
        models=list(names.top(names.model, cu_per_model(yesterday), TOP)),
        alerts=_alerts_of_day(db, digest.workspace_id, start, end),
        chart_days=chart_days,
        chart=chart,
        limit_per_day=_daily_limit(budgets),
        notes=notes,
    )


async def _directory(client: ScenarioClient, notes: list[str]) -> Directory:
    try:
        return await load_directory(client)
    except ScenarioError as exc:
        notes.append(f"Names unavailable ({exc.cause}); IDs shown instead.")
        return Directory()


async def _top_projects(
    client: ScenarioClient,
    names: Names,
    start: datetime,
    end: datetime,
    notes: list[str],
) -> list[Culprit]:
    """One filtered read per project (the API gives no per-project totals), concurrently."""

    async def spend_of(project_id: str) -> float:
        response = await client.usages(
            start=start, end=end, project_ids=(project_id,), types=(UsageType.CONSUMPTION,)
        )
        return total_cu(response)

    projects = [p.id for p in names.directory.projects]
    try:
        totals = await asyncio.gather(*(spend_of(p) for p in projects))
    except ScenarioError as exc:
        notes.append(f"Per-project totals unavailable ({exc.cause}).")
        return []
    return list(names.top(names.project, dict(zip(projects, totals, strict=True)), TOP))


async def _chart(
    client: ScenarioClient, today: date, tz: str, directory: Directory, notes: list[str]
) -> tuple[list[date], dict[str, list[float]]]:
    """CU per local day per model over the last 14 days: one read per day, because the
    API's daily buckets are UTC days, not the workspace's."""
    days = [today - timedelta(days=n) for n in range(CHART_DAYS, 0, -1)]

    async def per_model(day: date) -> dict[str, float]:
        response = await client.usages(
            start=day_start(day, tz),
            end=day_start(day + timedelta(days=1), tz),
            types=(UsageType.MODEL_USAGES,),
        )
        return cu_per_model(response)

    try:
        daily = await asyncio.gather(*(per_model(d) for d in days))
    except ScenarioError as exc:
        notes.append(f"Chart unavailable ({exc.cause}).")
        return days, {}
    totals: dict[str, float] = {}
    for sums in daily:
        for model, cu in sums.items():
            totals[model] = totals.get(model, 0.0) + cu
    top = [m for m, _ in top_n(totals, CHART_SERIES)]
    stacks = {directory.name_of(m) or m: [sums.get(m, 0.0) for sums in daily] for m in top}
    other = [sum(cu for m, cu in sums.items() if m not in top) for sums in daily]
    if any(other):
        stacks["Other"] = other
    return days, stacks


def _alerts_of_day(
    db: Database, workspace_id: str, start: datetime, end: datetime
) -> list[DayAlert]:
    rows = db.query(
        "SELECT a.*, b.scope_name, b.scope_kind, b.scope_ref, b.period FROM alert_state a"
        " JOIN budgets b ON b.id = a.budget_id"
        " WHERE b.workspace_id = ? AND a.fired_at >= ? AND a.fired_at < ? ORDER BY a.fired_at",
        [workspace_id, to_text(start), to_text(end)],
    )
    alerts = []
    for row in rows:
        scope = row["scope_name"] or row["scope_ref"] or "Team"
        label = f"#{row['budget_id']} {scope} {row['period']}"
        alerts.append(DayAlert(label, row["level"], row["kind"], from_text(row["fired_at"])))
    # The watch's episodes that began that day (SPEC §6: "the alerts and anomalies").
    episodes = db.query(
        "SELECT a.opened_at, a.finding FROM alerts a JOIN budgets b ON b.id = a.budget_id"
        " WHERE b.workspace_id = ? AND b.watch IS NOT NULL AND a.opened_at >= ?"
        " AND a.opened_at < ?",
        [workspace_id, to_text(start), to_text(end)],
    )
    for row in episodes:
        finding = EpisodeFinding.from_json(row["finding"])
        if finding is not None:
            label = f"Watch: {finding.name or finding.entity}"
            alerts.append(
                DayAlert(label, 0, f"anomaly:{finding.rule}", from_text(row["opened_at"]))
            )
    return sorted(alerts, key=lambda a: a.at)


def _daily_limit(budgets: list[Budget]) -> float | None:
    """The line on the chart: a team-wide daily budget of this channel, if there is one."""
    for budget in budgets:
        if budget.period is PeriodKind.DAILY and budget.scope.kind is ScopeKind.TEAM:
            return budget.limit_cu
    return None
