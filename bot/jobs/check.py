"""One budget-check cycle: read spend, decide, record alerts and their messages at once.

Per workspace (several at a time, bounded): the fewest /usages calls that cover all its
budgets — one per distinct window × project filter — then, in one write transaction that
re-reads the alert state, the decisions, the alert rows and the outbox rows. Delivery is a
separate step (`bot.jobs.delivery.drain`), so a Slack outage never loses a decision and a
crash never leaves an alert recorded but unannounced. A workspace whose usage cannot be
read alerts nothing; one workspace's failure never stops another's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.budgets.attribution import Attribution, attribute
from bot.budgets.evaluate import (
    FORECAST_LEVEL,
    AlertKind,
    BudgetRule,
    Crossing,
    Decisions,
    ForecastAlert,
    evaluate,
)
from bot.budgets.forecast import forecast
from bot.budgets.periods import Period, period_at
from bot.budgets.spend import (
    Window,
    plan_windows,
    scope_series,
    scope_spend,
    types_needed,
    window_for,
)
from bot.budgets.types import PeriodKind
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import ScenarioError
from bot.scenario.links import team_url
from bot.scenario.models import UsagesResponse, UsageType
from bot.slack import blocks
from bot.store import alerts, health, outbox
from bot.store.budgets import Budget, list_budgets
from bot.store.db import immediate
from bot.store.outbox import OutboxAction
from bot.store.workspaces import Workspace, list_workspaces

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckSettings:
    default_tz: str
    app_url: str
    admin_ids: frozenset[str] = frozenset()
    concurrency: int = 8


@dataclass
class WorkspaceResult:
    workspace_id: str
    usage_calls: int = 0
    enqueued: list[dict[str, Any]] = field(default_factory=list)  # outbox rows, as written
    error: str | None = None


ScenarioFor = Callable[[Workspace], Awaitable[ScenarioClient]]


class _DryRun(Exception):
    """Raised inside the transaction to roll back everything a dry run wrote."""


async def run_check(
    db: Database,
    scenario_for: ScenarioFor,
    settings: CheckSettings,
    now: datetime,
    *,
    dry_run: bool = False,
) -> list[WorkspaceResult]:
    limit = asyncio.Semaphore(settings.concurrency)

    async def one(workspace: Workspace) -> WorkspaceResult:
        async with limit:
            try:
                return await check_workspace(
                    db, workspace, scenario_for, settings, now, dry_run=dry_run
                )
            except Exception as exc:  # one workspace's bug must not stop the others
                log.exception("check of workspace %s failed", workspace.team_id)
                return WorkspaceResult(workspace.team_id, error=f"{type(exc).__name__}: {exc}")

    return list(await asyncio.gather(*(one(ws) for ws in list_workspaces(db))))


async def check_workspace(
    db: Database,
    workspace: Workspace,
    scenario_for: ScenarioFor,
    settings: CheckSettings,
    now: datetime,
    *,
    dry_run: bool = False,
) -> WorkspaceResult:
    result = WorkspaceResult(workspace.team_id)
    budgets = list_budgets(db, workspace.team_id)
    if not budgets:
        return result
    tz = workspace.timezone_or(settings.default_tz)
    client = await scenario_for(workspace)
    try:
        periods = await _periods(client, budgets, tz, now)
        responses = await _read_windows(client, budgets, periods, now)
    except ScenarioError as exc:
        failure = exc
        result.error = f"{exc.cause}: {exc.message}"
        _record(
            db,
            dry_run,
            lambda: _scenario_failed(db, workspace, budgets, failure, settings, now, result),
        )
        return result
    result.usage_calls = len(responses)

    # Attribution needs more reads; only for budgets that look like they will alert.
    likely = [b for b in budgets if _decide(db, b, periods[b.id], responses, now)]
    activity = await _read_activity(client, likely, periods, now)

    def write() -> None:
        change = health.record_success(db, workspace.team_id, now=now)
        if change.tell:
            _tell_admins(db, workspace, budgets, settings, change, None, now, result)
        for budget in budgets:
            period = periods[budget.id]
            decisions = _decide(db, budget, period, responses, now)
            if decisions:
                window = responses[window_for(budget.scope, period, now)]
                found = activity.get(window_for(budget.scope, period, now))
                attribution = attribute(budget.scope, window, found, settings.app_url)
                _apply(db, budget, period, tz, decisions, attribution, settings, now, result)

    _record(db, dry_run, write)
    return result


def _record(db: Database, dry_run: bool, write: Callable[[], None]) -> None:
    """Run `write` in one transaction; a dry run rolls it back and keeps what it would post."""
    try:
        with immediate(db):
            write()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass


async def _periods(
    client: ScenarioClient, budgets: list[Budget], tz: str, now: datetime
) -> dict[int, Period]:
    billing = None
    if any(b.period is PeriodKind.BILLING for b in budgets):
        limits = await client.team_limits()
        if limits.period and limits.period.start and limits.period.end:
            billing = (limits.period.start, limits.period.end)
    return {b.id: period_at(b.period, now, tz, billing=billing) for b in budgets}


async def _read_windows(
    client: ScenarioClient, budgets: list[Budget], periods: dict[int, Period], now: datetime
) -> dict[Window, UsagesResponse]:
    windows = plan_windows(((b.scope, periods[b.id]) for b in budgets), now)
    with_forecast = {window_for(b.scope, periods[b.id], now) for b in budgets if b.forecast}

    async def read(window: Window) -> UsagesResponse:
        return await client.usages(
            start=window.start,
            end=window.end,
            project_ids=(window.project_id,) if window.project_id else (),
            types=types_needed(forecast=window in with_forecast),
        )

    found = await asyncio.gather(*(read(w) for w in windows))
    return dict(zip(windows, found, strict=True))


async def _read_activity(
    client: ScenarioClient, budgets: list[Budget], periods: dict[int, Period], now: datetime
) -> dict[Window, UsagesResponse]:
    windows = plan_windows(((b.scope, periods[b.id]) for b in budgets), now)
    found: dict[Window, UsagesResponse] = {}
    for window in windows:
        try:
            found[window] = await client.usages_with_all_activity(
                start=window.start,
                end=window.end,
                project_ids=(window.project_id,) if window.project_id else (),
                types=(UsageType.ACTIVITY,),
            )
        except ScenarioError as exc:  # the alert still goes out, with less detail
            log.warning("activity for attribution unavailable: %s", exc.cause)
    return found


def _decide(
    db: Database,
    budget: Budget,
    period: Period,
    responses: dict[Window, UsagesResponse],
    now: datetime,
) -> Decisions:
    response = responses[window_for(budget.scope, period, now)]
    spend = scope_spend(budget.scope, response)
    projection = None
    if budget.forecast:
        series = scope_series(budget.scope, response)
        projection = forecast(
            spend=spend, limit=budget.limit_cu, period=period, now=now, series=series
        )
    fired = [row.as_fired() for row in alerts.alerts_in_period(db, budget.id, period)]
    return evaluate(
        BudgetRule(budget.limit_cu, budget.thresholds, budget.forecast),
        spend,
        period,
        now,
        fired,
        snoozed_until=alerts.snoozed_until(db, budget.id),
        projection=projection,
    )


def alert_key(budget_id: int, period_key: str, kind: AlertKind, level: int) -> str:
    return f"alert:{budget_id}:{period_key}:{kind.value}:{level}"


def _apply(
    db: Database,
    budget: Budget,
    period: Period,
    tz: str,
    decisions: Decisions,
    attribution: Attribution,
    settings: CheckSettings,
    now: datetime,
    result: WorkspaceResult,
) -> None:
    if decisions.crossing is not None:
        _alert_crossing(db, budget, period, tz, decisions, attribution, settings, now, result)
    if decisions.forecast is not None:
        _alert_forecast(
            db, budget, period, tz, decisions.forecast, attribution, settings, now, result
        )
    for resolution in decisions.resolutions:
        alerts.resolve_alert(
            db,
            budget_id=budget.id,
            period_key=resolution.period_key,
            level=resolution.level,
            now=now,
        )
        root = _thread_root(
            db, alert_key(budget.id, resolution.period_key, AlertKind.THRESHOLD, resolution.level)
        )
        if root:
            payload = blocks.resolved_reply(
                resolution.level, resolution.spend_cu, resolution.limit_cu
            )
            _enqueue(
                db,
                result,
                budget,
                f"resolve:{budget.id}:{resolution.period_key}:{resolution.level}",
                OutboxAction.POST,
                payload,
                now,
                thread_key=root,
            )


def _alert_crossing(
    db: Database,
    budget: Budget,
    period: Period,
    tz: str,
    decisions: Decisions,
    attribution: Attribution,
    settings: CheckSettings,
    now: datetime,
    result: WorkspaceResult,
) -> None:
    crossing: Crossing = decisions.crossing  # type: ignore[assignment]
    # The thread this period's alerts already started, if any (found before adding rows).
    earlier = [
        row
        for row in alerts.alerts_in_period(db, budget.id, period)
        if row.kind is AlertKind.THRESHOLD and row.resolved_at is None
    ]
    alert_id = None
    for level, key in crossing.passed:
        alert_id = (
            alerts.record_alert(
                db,
                budget_id=budget.id,
                period_key=key,
                kind=AlertKind.THRESHOLD,
                level=level,
                spend_cu=crossing.spend_cu,
                limit_cu=crossing.limit_cu,
                now=now,
            )
            or alert_id
        )
    if alert_id is None:
        return  # another cycle recorded these first: it owns the message
    view = _view(
        budget,
        period,
        tz,
        "threshold",
        crossing.level,
        crossing.levels,
        crossing.spend_cu,
        alert_id,
        decisions,
        attribution,
        settings,
        now,
    )
    message = blocks.alert_message(view)
    key = alert_key(budget.id, crossing.period_key, AlertKind.THRESHOLD, crossing.level)
    root = (
        _thread_root(
            db, alert_key(budget.id, earlier[0].period_key, AlertKind.THRESHOLD, earlier[0].level)
        )
        if earlier
        else None
    )
    if root is None:
        _enqueue(db, result, budget, key, OutboxAction.POST, message, now)
        return
    _enqueue(
        db, result, budget, key + ":update", OutboxAction.UPDATE, message, now, thread_key=root
    )
    _enqueue(
        db,
        result,
        budget,
        key,
        OutboxAction.POST,
        blocks.higher_level_reply(view),
        now,
        thread_key=root,
    )


def _alert_forecast(
    db: Database,
    budget: Budget,
    period: Period,
    tz: str,
    alert: ForecastAlert,
    attribution: Attribution,
    settings: CheckSettings,
    now: datetime,
    result: WorkspaceResult,
) -> None:
    alert_id = alerts.record_alert(
        db,
        budget_id=budget.id,
        period_key=alert.period_key,
        kind=AlertKind.FORECAST,
        level=FORECAST_LEVEL,
        spend_cu=alert.spend_cu,
        limit_cu=alert.limit_cu,
        now=now,
    )
    if alert_id is None:
        return
    view = _view(
        budget,
        period,
        tz,
        "forecast",
        FORECAST_LEVEL,
        (),
        alert.spend_cu,
        alert_id,
        Decisions(forecast=alert),
        attribution,
        settings,
        now,
    )
    key = alert_key(budget.id, alert.period_key, AlertKind.FORECAST, FORECAST_LEVEL)
    _enqueue(db, result, budget, key, OutboxAction.POST, blocks.alert_message(view), now)


def _view(
    budget: Budget,
    period: Period,
    tz: str,
    kind: str,
    level: int,
    passed: tuple[int, ...],
    spend: float,
    alert_id: int,
    decisions: Decisions,
    attribution: Attribution,
    settings: CheckSettings,
    now: datetime,
) -> blocks.AlertView:
    return blocks.AlertView(
        alert_id=alert_id,
        budget_id=budget.id,
        budget_label=f"Budget {budget.label}",
        period_label=_period_label(period, tz),
        tz=tz,
        kind=kind,
        level=level,
        passed=passed,
        spend_cu=spend,
        limit_cu=budget.limit_cu,
        time_left=None if period.kind.is_rolling else period.time_left(now),
        forecast=decisions.forecast.forecast if decisions.forecast else None,
        attribution=attribution,
        open_url=team_url(settings.app_url),
    )


def _period_label(period: Period, tz: str) -> str:
    if period.kind.is_rolling:
        return f"the rolling {period.kind.value} window"
    local = period.start.astimezone(blocks.ZoneInfo(tz))
    names = {
        PeriodKind.DAILY: local.strftime("%a %d %b"),
        PeriodKind.WEEKLY: f"the week of {local.strftime('%d %b')}",
        PeriodKind.MONTHLY: local.strftime("%B %Y"),
        PeriodKind.BILLING: "this billing period",
    }
    return f"{names[period.kind]} ({tz})"


def _thread_root(db: Database, key: str) -> str | None:
    """The key of the top-level message a thread hangs from (the alert's own post or its parent)."""
    item = outbox.get_item(db, key)
    if item is None:
        return None
    return item.thread_key or item.dedup_key


def _enqueue(
    db: Database,
    result: WorkspaceResult,
    budget: Budget,
    key: str,
    action: OutboxAction,
    payload: dict[str, Any],
    now: datetime,
    *,
    thread_key: str | None = None,
) -> None:
    if outbox.enqueue(
        db,
        dedup_key=key,
        workspace_id=budget.workspace_id,
        channel_id=budget.channel_id,
        action=action,
        payload=payload,
        now=now,
        budget_id=budget.id,
        thread_key=thread_key,
    ):
        result.enqueued.append(
            {"key": key, "channel": budget.channel_id, "action": action.value, **payload}
        )


def _scenario_failed(
    db: Database,
    workspace: Workspace,
    budgets: list[Budget],
    exc: ScenarioError,
    settings: CheckSettings,
    now: datetime,
    result: WorkspaceResult,
) -> None:
    change = health.record_failure(
        db, workspace.team_id, cause=exc.cause, detail=exc.message, now=now
    )
    log.warning(
        "workspace %s: Scenario unreadable (%s), %d failed cycles in a row",
        workspace.team_id,
        exc.cause,
        change.failures,
    )
    if change.tell:
        _tell_admins(db, workspace, budgets, settings, change, exc, now, result)


def _tell_admins(
    db: Database,
    workspace: Workspace,
    budgets: list[Budget],
    settings: CheckSettings,
    change: health.HealthChange,
    exc: ScenarioError | None,
    now: datetime,
    result: WorkspaceResult,
) -> None:
    """Admins configured by ID hear it directly; otherwise the budgets' channels do."""
    payload = blocks.scenario_health_message(
        failing=change.tell == "down",
        cause=exc.cause if exc else "",
        detail=exc.message if exc else "",
        checks=change.failures,
    )
    targets = sorted(settings.admin_ids) or sorted({b.channel_id for b in budgets})
    for target in targets:
        key = f"health:{workspace.team_id}:{change.episode}:{change.tell}:{target}"
        if outbox.enqueue(
            db,
            dedup_key=key,
            workspace_id=workspace.team_id,
            channel_id=target,
            action=OutboxAction.POST,
            payload=payload,
            now=now,
        ):
            result.enqueued.append({"key": key, "channel": target, "action": "post", **payload})
