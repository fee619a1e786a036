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
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from bot.budgets.attribution import Attribution, attribute
from bot.budgets.evaluate import (
    FORECAST_LEVEL,
    AlertKind,
    BudgetRule,
    Crossing,
    Decisions,
    ForecastAlert,
    Resolution,
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
from bot.scenario.errors import BillingPeriodUnavailable, ScenarioError
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
        periods = await periods_for(client, budgets, tz, now)
        responses = await read_windows(client, budgets, periods, now)
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
                _BudgetWrite(db, budget, period, tz, attribution, settings, now, result).apply(
                    decisions
                )

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


async def periods_for(
    client: ScenarioClient, budgets: list[Budget], tz: str, now: datetime
) -> dict[int, Period]:
    billing = None
    if any(b.period is PeriodKind.BILLING for b in budgets):
        if not client.team_id:
            raise BillingPeriodUnavailable(
                "billing budgets need SCENARIO_TEAM_ID, to read the plan period"
            )
        limits = await client.team_limits()
        if limits.period and limits.period.start and limits.period.end:
            billing = (limits.period.start, limits.period.end)
    try:
        return {b.id: period_at(b.period, now, tz, billing=billing) for b in budgets}
    except ValueError as exc:  # the plan period is missing or stale
        raise BillingPeriodUnavailable(str(exc)) from None


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


async def _read_activity(
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


@dataclass
class _BudgetWrite:
    """What one budget's decisions write, inside the cycle's transaction."""

    db: Database
    budget: Budget
    period: Period
    tz: str
    attribution: Attribution
    settings: CheckSettings
    now: datetime
    result: WorkspaceResult

    def apply(self, decisions: Decisions) -> None:
        if decisions.crossing is not None:
            self.crossing(decisions.crossing, decisions.forecast)
        if decisions.forecast is not None:
            self.forecast(decisions.forecast)
        for resolution in decisions.resolutions:
            self.resolve(resolution)

    def crossing(self, crossing: Crossing, projected: ForecastAlert | None) -> None:
        # The thread this period's alerts already started, if any (found before adding rows).
        earlier = [
            row
            for row in alerts.alerts_in_period(self.db, self.budget.id, self.period)
            if row.kind is AlertKind.THRESHOLD and row.resolved_at is None
        ]
        alert_id = None
        for level, key in crossing.passed:
            recorded = self._record(AlertKind.THRESHOLD, key, level, crossing.spend_cu)
            alert_id = recorded or alert_id
        if alert_id is None:
            return  # another cycle recorded these first: it owns the message
        view = self._view(
            "threshold", crossing.level, crossing.levels, crossing.spend_cu, alert_id, projected
        )
        message = blocks.alert_message(view)
        key = alert_key(self.budget.id, crossing.period_key, AlertKind.THRESHOLD, crossing.level)
        root = None
        if earlier:
            first = earlier[0]
            root = _thread_root(
                self.db,
                alert_key(self.budget.id, first.period_key, first.kind, first.level),
                self.budget.channel_id,
            )
        if root is None:
            self._enqueue(key, OutboxAction.POST, message)
            return
        self._enqueue(key + ":update", OutboxAction.UPDATE, message, thread_key=root)
        self._enqueue(key, OutboxAction.POST, blocks.higher_level_reply(view), thread_key=root)

    def forecast(self, alert: ForecastAlert) -> None:
        alert_id = self._record(
            AlertKind.FORECAST, alert.period_key, FORECAST_LEVEL, alert.spend_cu
        )
        if alert_id is None:
            return
        view = self._view("forecast", FORECAST_LEVEL, (), alert.spend_cu, alert_id, alert)
        key = alert_key(self.budget.id, alert.period_key, AlertKind.FORECAST, FORECAST_LEVEL)
        self._enqueue(key, OutboxAction.POST, blocks.alert_message(view))

    def resolve(self, resolution: Resolution) -> None:
        alerts.resolve_alert(
            self.db,
            budget_id=self.budget.id,
            period_key=resolution.period_key,
            level=resolution.level,
            now=self.now,
        )
        fired = alert_key(
            self.budget.id, resolution.period_key, AlertKind.THRESHOLD, resolution.level
        )
        root = _thread_root(self.db, fired, self.budget.channel_id)
        if root:
            reply = blocks.resolved_reply(
                resolution.level, resolution.spend_cu, resolution.limit_cu
            )
            key = f"resolve:{self.budget.id}:{resolution.period_key}:{resolution.level}"
            self._enqueue(key, OutboxAction.POST, reply, thread_key=root)

    def _record(self, kind: AlertKind, period_key: str, level: int, spend: float) -> int | None:
        return alerts.record_alert(
            self.db,
            budget_id=self.budget.id,
            period_key=period_key,
            kind=kind,
            level=level,
            spend_cu=spend,
            limit_cu=self.budget.limit_cu,
            now=self.now,
        )

    def _view(
        self,
        kind: str,
        level: int,
        passed: tuple[int, ...],
        spend: float,
        alert_id: int,
        projected: ForecastAlert | None,
    ) -> blocks.AlertView:
        return blocks.AlertView(
            alert_id=alert_id,
            budget_id=self.budget.id,
            budget_label=f"Budget {self.budget.label}",
            period_label=_period_label(self.period, self.tz),
            tz=self.tz,
            kind=kind,
            level=level,
            passed=passed,
            spend_cu=spend,
            limit_cu=self.budget.limit_cu,
            time_left=None if self.period.kind.is_rolling else self.period.time_left(self.now),
            forecast=projected.forecast if projected else None,
            attribution=self.attribution,
            open_url=team_url(self.settings.app_url),
        )

    def _enqueue(
        self,
        key: str,
        action: OutboxAction,
        payload: dict[str, Any],
        *,
        thread_key: str | None = None,
    ) -> None:
        _enqueue(
            self.db,
            self.result,
            key=key,
            workspace_id=self.budget.workspace_id,
            channel_id=self.budget.channel_id,
            action=action,
            payload=payload,
            now=self.now,
            budget_id=self.budget.id,
            thread_key=thread_key,
        )


def _period_label(period: Period, tz: str) -> str:
    if period.kind.is_rolling:
        return f"the rolling {period.kind.value} window"
    local = period.start.astimezone(ZoneInfo(tz))
    names = {
        PeriodKind.DAILY: local.strftime("%a %d %b"),
        PeriodKind.WEEKLY: f"the week of {local.strftime('%d %b')}",
        PeriodKind.MONTHLY: local.strftime("%B %Y"),
        PeriodKind.BILLING: "this billing period",
    }
    return f"{names[period.kind]} ({tz})"


def _thread_root(db: Database, key: str, channel_id: str) -> str | None:
    """The key of the top-level message a thread hangs from (the alert's post or its parent),
    if it is in `channel_id`: after the budget moved to another channel, a higher level is a
    new message there rather than a reply to a thread it cannot reach."""
    item = outbox.get_item(db, key)
    if item is None or item.channel_id != channel_id:
        return None
    return item.thread_key or item.dedup_key


def _enqueue(
    db: Database,
    result: WorkspaceResult,
    *,
    key: str,
    workspace_id: str,
    channel_id: str,
    action: OutboxAction,
    payload: dict[str, Any],
    now: datetime,
    budget_id: int | None = None,
    thread_key: str | None = None,
) -> None:
    """One outbox row, reported in `result` only if it is new (the key makes it once)."""
    if outbox.enqueue(
        db,
        dedup_key=key,
        workspace_id=workspace_id,
        channel_id=channel_id,
        action=action,
        payload=payload,
        now=now,
        budget_id=budget_id,
        thread_key=thread_key,
    ):
        result.enqueued.append(
            {"key": key, "channel": channel_id, "action": action.value, **payload}
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
    """In every channel the workspace's budgets alert in — where people watch for alerts —
    mentioning the admins of `BUDGET_BOT_ADMINS` (a DM would sit in a Messages tab the app
    does not show)."""
    payload = blocks.scenario_health_message(
        failing=change.tell == "down",
        cause=exc.cause if exc else "",
        detail=exc.message if exc else "",
        checks=change.failures,
        admins=tuple(sorted(settings.admin_ids)),
    )
    for channel in sorted({b.channel_id for b in budgets}):
        _enqueue(
            db,
            result,
            key=f"health:{workspace.team_id}:{change.streak}:{change.tell}:{channel}",
            workspace_id=workspace.team_id,
            channel_id=channel,
            action=OutboxAction.POST,
            payload=payload,
            now=now,
        )
