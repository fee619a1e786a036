"""The daily digest: what yesterday cost, against the week before, with a 14-day chart.

Gathering reads Scenario (`gather`), rendering is pure (`bot.slack.digest_blocks`), and
sending goes through the outbox with the key `digest:<id>:<local day>` — written in the
same transaction as the digest's `last_sent_day` — so a digest goes out once per local
day, across restarts and racing processes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from bot.budgets.attribution import Culprit, top_n
from bot.budgets.periods import day_start
from bot.budgets.types import PeriodKind, ScopeKind
from bot.jobs.charts import daily_chart
from bot.jobs.status import BudgetStatus, read_statuses
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import ScenarioError
from bot.scenario.links import api_keys_url, model_url
from bot.scenario.models import UsageType, cu_per_model, total_cu, totals_per_user
from bot.slack.digest_blocks import digest_message
from bot.slack.directory import Directory, load_directory
from bot.store import outbox
from bot.store.budgets import Budget, list_budgets
from bot.store.db import from_text, immediate, to_text
from bot.store.digests import Digest
from bot.store.outbox import OutboxAction

log = logging.getLogger(__name__)
# Yesterday's digest, posted in the evening after an outage, is news nobody needs.
DIGEST_TTL = timedelta(hours=6)

CHART_DAYS = 14
CHART_SERIES = 5  # top models drawn; the rest is "Other"
TOP = 5
CATCH_UP = timedelta(hours=1)  # a digest missed by less than this is still sent


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


def due_at(digest: Digest, day: date, tz: str) -> datetime:
    return datetime.combine(day, digest.local_time, tzinfo=ZoneInfo(tz))


def is_due(digest: Digest, tz: str, now: datetime) -> bool:
    """Due today, not sent today, and not missed by more than `CATCH_UP` (a bot that was
    down all morning does not post yesterday's news at noon)."""
    today = now.astimezone(ZoneInfo(tz)).date()
    at = due_at(digest, today, tz)
    return digest.last_sent_day != today.isoformat() and at <= now < at + CATCH_UP


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
    return DigestData(
        day=day,
        tz=tz,
        spend=spend,
        week_average=total_cu(week) / 7,
        budgets=statuses,
        projects=await _top_projects(client, directory, start, end, notes),
        users=_top_users(yesterday, directory, app_url),
        models=[
            Culprit(m, directory.name_of(m) or m, cu, model_url(app_url, m))
            for m, cu in top_n(cu_per_model(yesterday), TOP)
        ],
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


def _top_users(response: Any, directory: Directory, app_url: str) -> list[Culprit]:
    keys = {k.id for k in directory.keys}
    return [
        Culprit(
            user,
            directory.name_of(user) or user,
            cu,
            api_keys_url(app_url) if user in keys else None,
            is_api_key=user in keys,
        )
        for user, cu in top_n({u: t.spend for u, t in totals_per_user(response).items()}, TOP)
    ]


async def _top_projects(
    client: ScenarioClient,
    directory: Directory,
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

    projects = list(directory.projects)
    try:
        totals = await asyncio.gather(*(spend_of(p.id) for p in projects))
    except ScenarioError as exc:
        notes.append(f"Per-project totals unavailable ({exc.cause}).")
        return []
    return [
        Culprit(p.id, p.name, cu)
        for p, cu in sorted(zip(projects, totals, strict=True), key=lambda pc: -pc[1])
        if cu > 0
    ][:TOP]


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
    return alerts


def _daily_limit(budgets: list[Budget]) -> float | None:
    """The line on the chart: a team-wide daily budget of this channel, if there is one."""
    for budget in budgets:
        if budget.period is PeriodKind.DAILY and budget.scope.kind is ScopeKind.TEAM:
            return budget.limit_cu
    return None


def digest_key(digest: Digest, today: date) -> str:
    return f"digest:{digest.id}:{today.isoformat()}"


def enqueue_digest(
    db: Database, digest: Digest, data: DigestData, now: datetime
) -> list[dict[str, Any]]:
    """The message and its chart into the outbox, and the day marked sent — atomically.

    Returns what was queued (empty when this day's digest was already queued)."""
    today = data.day + timedelta(days=1)
    key = digest_key(digest, today)
    message = digest_message(data, when_empty=digest.when_empty)
    # Rendered before the write lock is taken: 0.2 s of matplotlib must not hold it.
    png = None
    if data.chart and not data.empty and message is not None:
        png = daily_chart(
            data.chart_days,
            data.chart,
            title=f"CU per day, last {CHART_DAYS} days ({data.tz})",
            limit_per_day=data.limit_per_day,
        )
    queued: list[dict[str, Any]] = []
    with immediate(db):
        current = db.execute(
            "SELECT last_sent_day FROM digests WHERE id = ?", [digest.id]
        ).fetchone()
        if current is None or current[0] == today.isoformat():
            return queued  # turned off meanwhile, or another process sent it
        db.execute(
            "UPDATE digests SET last_sent_day = ? WHERE id = ?", [today.isoformat(), digest.id]
        )
        if message is None:
            return queued  # nothing spent, and this digest says nothing then
        if outbox.enqueue(
            db,
            dedup_key=key,
            workspace_id=digest.workspace_id,
            channel_id=digest.channel_id,
            action=OutboxAction.POST,
            payload=message,
            now=now,
            expires_at=now + DIGEST_TTL,
        ):
            queued.append({"key": key, "channel": digest.channel_id, **message})
        if png is not None:
            upload = {
                "filename": f"cu-{data.day.isoformat()}.png",
                "title": f"CU per day to {data.day.isoformat()}",
                "alt_text": _alt_text(data),
                "png_base64": base64.b64encode(png).decode(),
            }
            if outbox.enqueue(
                db,
                dedup_key=key + ":chart",
                workspace_id=digest.workspace_id,
                channel_id=digest.channel_id,
                action=OutboxAction.UPLOAD,
                payload=upload,
                now=now,
                expires_at=now + DIGEST_TTL,
                thread_key=key,
            ):
                queued.append({"key": key + ":chart", "channel": digest.channel_id, **upload})
    return queued


def _alt_text(data: DigestData) -> str:
    first, last = data.chart_days[0], data.chart_days[-1]
    totals = [sum(values[i] for values in data.chart.values()) for i in range(len(data.chart_days))]
    peak = max(range(len(totals)), key=totals.__getitem__)
    return (
        f"Bar chart of Compute Units per day from {first:%d %b} to {last:%d %b}, stacked by "
        f"model ({', '.join(data.chart)}); highest {totals[peak]:,.0f} CU on "
        f"{data.chart_days[peak]:%d %b}."
    )[:1000]


async def run_digest(
    db: Database,
    client: ScenarioClient,
    digest: Digest,
    tz: str,
    now: datetime,
    app_url: str,
    *,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    """Gather and queue one digest (or, dry, only render it); returns what was queued."""
    data = await gather(db, client, digest, tz, now, app_url)
    if dry_run:
        message = digest_message(data, when_empty=digest.when_empty)
        return (
            [] if message is None else [{"key": "dry-run", "channel": digest.channel_id, **message}]
        )
    return enqueue_digest(db, digest, data, now)
