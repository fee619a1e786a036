"""What the digest says, gathered from Scenario and the store: its span (yesterday, last week or
last month, local) against the spans before, the channel's budgets, the top projects, people and
models, the alerts of the span and, for the chart, 14 days (12 weeks, 12 months) per model.
Rendering needs nothing else."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from bot.budgets.culprits import Culprit, Names, top_n
from bot.budgets.periods import DigestSpan, digest_span
from bot.budgets.types import PeriodKind, ScopeKind
from bot.reports.reads import MAX_PROJECT_READS, spend_per_project
from bot.reports.status import BudgetStatus, read_statuses
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import ScenarioError
from bot.scenario.models import UsageType, cu_per_model, total_cu, totals_per_user
from bot.scenario.names import Directory, load_directory
from bot.store.alerts import EpisodeFinding
from bot.store.budgets import Budget, list_budgets
from bot.store.db import from_text, to_text
from bot.store.digests import Digest

# Bars on the chart, and the spans before the digest's that its spend is compared with.
CHART_SPANS = {PeriodKind.DAILY: 14, PeriodKind.WEEKLY: 12, PeriodKind.MONTHLY: 12}
AVERAGE_OVER = {PeriodKind.DAILY: 7, PeriodKind.WEEKLY: 4, PeriodKind.MONTHLY: 3}


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

    span: DigestSpan
    tz: str
    spend: float
    average: float  # per span, over the `AVERAGE_OVER` spans before this one
    budgets: list[BudgetStatus]
    projects: list[Culprit]
    users: list[Culprit]
    models: list[Culprit]
    alerts: list[DayAlert]
    chart_days: list[date]  # the first day of each bar's span, oldest first
    chart: dict[str, list[float]]
    limit: float | None  # a team budget of the digest's cadence, drawn as a line
    notes: list[str] = field(default_factory=list)

    @property
    def day(self) -> date:
        """The last day the digest covers."""
        return self.span.last

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
    """Read the span the digest covers (yesterday, last week, last month: local), the spans
    before it for the average, and the chart's spans.

    The span's total and the average are essential (ScenarioError propagates: nothing is
    sent, the next run retries); the rest degrades into a note.
    """
    today = now.astimezone(ZoneInfo(tz)).date()
    span = digest_span(digest.cadence, digest.weekday, today)
    start, end = span.bounds(tz)
    types = (UsageType.CONSUMPTION, UsageType.MODEL_USAGES)
    covered = await client.usages(start=start, end=end, types=types)
    before = span.previous(AVERAGE_OVER[span.cadence])
    # At most 3 months or 4 weeks before: one read, within the API's 120 days.
    earlier = await client.usages(
        start=before[0].bounds(tz)[0], end=start, types=(UsageType.CONSUMPTION,)
    )
    notes: list[str] = []
    directory = await _directory(client, notes)
    chart_days, chart = await _chart(client, span, tz, directory, notes)
    budgets = [
        b for b in list_budgets(db, digest.workspace_id) if b.channel_id == digest.channel_id
    ]
    statuses: list[BudgetStatus] = []
    if budgets:
        statuses, error = await read_statuses(db, client, budgets, tz, now)
        if error is not None:
            notes.append(f"Budget spend unavailable: {error.message}")
    spend = total_cu(covered)
    names = Names(app_url, covered.entities, directory)
    per_user = {user: totals.spend for user, totals in totals_per_user(covered).items()}
    return DigestData(
        span=span,
        tz=tz,
        spend=spend,
        average=total_cu(earlier) / len(before),
        budgets=statuses,
        projects=await _top_projects(client, names, start, end, notes),
        users=list(names.top(names.user, per_user, TOP)),
        models=list(names.top(names.model, cu_per_model(covered), TOP)),
        alerts=_alerts_between(db, digest.workspace_id, start, end),
        chart_days=chart_days,
        chart=chart,
        limit=_limit_line(budgets, span.cadence),
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
    """One filtered read per project (the API gives no per-project totals), bounded like
    `/usage`'s: at most MAX_PROJECT_READS projects, a few at a time."""
    projects = [p.id for p in names.directory.projects]
    measured = projects[:MAX_PROJECT_READS]
    try:
        totals = await spend_per_project(client, measured, start=start, end=end)
    except ScenarioError as exc:
        notes.append(f"Per-project totals unavailable ({exc.cause}).")
        return []
    if len(projects) > len(measured):
        notes.append(f"Top projects leave out {len(projects) - len(measured)} more, not measured.")
    return list(names.top(names.project, totals, TOP))


async def _chart(
    client: ScenarioClient, span: DigestSpan, tz: str, directory: Directory, notes: list[str]
) -> tuple[list[date], dict[str, list[float]]]:
    """CU per model per local day (week, month) over the last 14 days (12 weeks, 12
    months): one read per bar, because the API's buckets are UTC days, not the
    workspace's — and a month is well within the 120 days one read may span."""
    spans = [*span.previous(CHART_SPANS[span.cadence] - 1), span]
    days = [s.first for s in spans]

    async def per_model(bar: DigestSpan) -> dict[str, float]:
        start, end = bar.bounds(tz)
        response = await client.usages(start=start, end=end, types=(UsageType.MODEL_USAGES,))
        return cu_per_model(response)

    try:
        daily = await asyncio.gather(*(per_model(s) for s in spans))
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


def _alerts_between(
    db: Database, workspace_id: str, start: datetime, end: datetime
) -> list[DayAlert]:
    """The levels fired and the watch's episodes begun in ``[start, end)``, in order."""
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
    # The watch's episodes that began in the span (SPEC §6: "the alerts and anomalies").
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


def _limit_line(budgets: list[Budget], cadence: PeriodKind) -> float | None:
    """The line on the chart: a team-wide budget of this channel with the digest's cadence
    (daily for a daily digest, …), if there is one."""
    for budget in budgets:
        if budget.period is cadence and budget.scope.kind is ScopeKind.TEAM:
            return budget.limit_cu
    return None
