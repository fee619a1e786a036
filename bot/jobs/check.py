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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from bot.budgets.culprits import Attribution, attribute
from bot.budgets.evaluate import BudgetRule, Decisions, EventKind, evaluate
from bot.budgets.forecast import Forecast, forecast
from bot.budgets.periods import Period
from bot.budgets.spend import (
    Window,
    scope_series,
    scope_spend,
    window_for,
)
from bot.budgets.watch import Finding
from bot.config import ConfigError
from bot.jobs import watch as watching
from bot.jobs.announce import announce_pending
from bot.messages.alerts import scenario_health_message
from bot.reports.reads import periods_for, read_activity, read_windows
from bot.scenario.client import ScenarioClient
from bot.scenario.errors import ScenarioError
from bot.scenario.models import UsagesResponse
from bot.scenario.names import Directory, Entry, load_people
from bot.store import alerts, health, outbox, snoozes
from bot.store import watch as watch_store
from bot.store.alerts import Alert
from bot.store.budgets import Budget, find_budget, list_budgets
from bot.store.db import immediate, in_savepoint
from bot.store.outbox import OutboxAction
from bot.store.snapshots import record_snapshot
from bot.store.watch import get_watch
from bot.store.workspaces import NotConnected, Workspace, list_workspaces

log = logging.getLogger(__name__)

# "Scenario is down" read hours later, after it came back, would only alarm.
HEALTH_NOTICE_TTL = timedelta(hours=6)
NAMES_WITHIN = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class CheckSettings:
    default_tz: str
    app_url: str
    admin_ids: frozenset[str] = frozenset()
    concurrency: int = 8
    interval: timedelta = timedelta(minutes=5)  # between checks (the watch confirms on the next)


@dataclass
class WorkspaceResult:
    workspace_id: str
    usage_calls: int = 0
    enqueued: list[dict[str, Any]] = field(default_factory=list)  # outbox rows, as written
    error: str | None = None  # Scenario could not be read: nothing was checked
    skipped: str | None = None  # why some budgets (billing ones) could not be checked


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
            except NotConnected:  # multi-workspace: not connected yet, nothing to check
                return WorkspaceResult(workspace.team_id, skipped="not connected to Scenario")
            except ConfigError as exc:  # e.g. no Scenario credentials: one line, no traceback
                log.error("check of workspace %s: %s", workspace.team_id, exc)
                return WorkspaceResult(workspace.team_id, error=str(exc))
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
    watch = get_watch(db, workspace.team_id)
    if not budgets and watch is None:
        return result
    tz = workspace.timezone_or(settings.default_tz)
    client = await scenario_for(workspace)
    recent: watching.Recent | None = None
    try:
        periods, unreadable = await periods_for(client, budgets, tz, now)
        if unreadable is not None:
            log.warning("workspace %s: %s", workspace.team_id, unreadable.message)
            result.skipped = f"{unreadable.cause}: {unreadable.message}"
        budgets = [b for b in budgets if b.id in periods]
        responses = await read_windows(client, budgets, periods, now)
        result.usage_calls = len(responses)
        if watch is not None:
            try:
                recent = await _read_watch(db, client, workspace, now, dry_run, result)
            except ScenarioError as exc:
                if budgets:  # the budgets were read: they are checked, the watch waits
                    log.warning("workspace %s: watch skipped: %s", workspace.team_id, exc.cause)
                    result.skipped = f"watch: {exc.cause}: {exc.message}"
                else:
                    raise
            except Exception:  # a bug in the watch (or a busy database) must not hold them
                log.exception(
                    "watch of workspace %s failed; budgets are checked", workspace.team_id
                )
    except ScenarioError as exc:
        failure = exc
        result.error = f"{exc.cause}: {exc.message}"
        told = [*budgets, *([watch] if watch else [])]
        _in_transaction(
            db,
            dry_run,
            lambda: _scenario_failed(db, workspace, told, failure, settings, now, result),
        )
        return result

    # Attribution needs more reads; only for budgets whose alert is about to say something.
    alerting = [b for b in budgets if _decide(db, b, periods[b.id], responses, now)[0]]
    opening: list[Finding] = []
    if watch is not None and recent is not None:
        try:
            if watching.judging(db, watch):
                found = watching.findings_now(db, watch, tz, now, recent=recent)
                opening = watching.to_open(
                    db, watch, found, tz, now, recent=recent, interval=settings.interval
                )
        except Exception:  # a bug in the watch must not hold the budgets back
            log.exception("watch of workspace %s failed; budgets are checked", workspace.team_id)
            recent = None
    activity: dict[Window, UsagesResponse] = {}
    causes: UsagesResponse | None = None
    names = Directory()
    if alerting or opening:
        async with asyncio.TaskGroup() as reads:  # one failing cancels the other
            activity_read = reads.create_task(read_activity(client, alerting, periods, now))
            causes_read = reads.create_task(_causes(client, opening, now))
            people_read = reads.create_task(load_names(client, projects=bool(opening)))
        activity, causes, names = (
            activity_read.result(),
            causes_read.result(),
            people_read.result(),
        )

    def write() -> None:
        change = health.record_success(db, workspace.team_id, now=now)
        if change.tell:
            told = [*budgets, *([watch] if watch else [])]
            _tell_admins(db, workspace, told, settings, change, None, now, result)
        for read in budgets:
            # The budget as it is now: it may have been edited or removed while Scenario
            # was being read. An edited one is decided at the next cycle, with its new rule
            # (the edit re-armed its alert in its own transaction).
            budget = find_budget(db, read.id)
            if budget is None or budget.updated_at != read.updated_at:
                continue
            period = periods[budget.id]
            # Decided again inside the transaction: another cycle may have written first.
            decisions, current, spend, projection = _decide(db, budget, period, responses, now)
            attribution = None
            if decisions:
                window = window_for(budget.scope, period, now)
                attribution = attribute(
                    budget.scope,
                    responses[window],
                    activity.get(window),
                    settings.app_url,
                    directory=names,
                )
            record_decisions(db, budget, period, decisions, current, spend, attribution, now)
            # What Home shows until the next check: the figures just decided on.
            record_snapshot(db, budget, period, spend, projection, now=now)
        if watch is not None and recent is not None:
            # As it is now: turned off or moved while Scenario was being read.
            current_watch = get_watch(db, workspace.team_id)
            if current_watch is not None and current_watch.id == watch.id:
                # Its own savepoint: a bug in the watch undoes the watch's writes only.
                in_savepoint(
                    db,
                    "watch",
                    lambda: watching.record(
                        db,
                        current_watch,
                        recent,
                        tz,
                        now,
                        activity=causes,
                        names=names,
                        app_url=settings.app_url,
                        interval=settings.interval,
                    ),
                    what=f"watch of workspace {workspace.team_id}",
                )
        result.enqueued += announce_pending(
            db,
            app_url=settings.app_url,
            default_tz=settings.default_tz,
            now=now,
            workspace_id=workspace.team_id,
        )

    _in_transaction(db, dry_run, write)
    return result


async def _read_watch(
    db: Database,
    client: ScenarioClient,
    workspace: Workspace,
    now: datetime,
    dry_run: bool,
    result: WorkspaceResult,
) -> watching.Recent | None:
    """The watch's reads of this check (its history filled first); None when a dry run
    finds the history is of another Scenario team (the real check would learn afresh)."""
    team, key = client.team_id, client.key_fingerprint
    if dry_run:
        if watch_store.is_other_team(db, workspace.team_id, team, key):
            return None
    elif watch_store.follow_team(db, workspace.team_id, team, key, now=now):
        log.info("workspace %s: another Scenario team; the watch learns afresh", workspace.team_id)
    result.usage_calls += await _fill_history(db, client, workspace, now, dry_run)
    recent = await watching.read_recent(client, now, watch_store.known_keys(db, workspace.team_id))
    result.usage_calls += recent.reads
    return recent


async def _fill_history(
    db: Database, client: ScenarioClient, workspace: Workspace, now: datetime, dry_run: bool
) -> int:
    """Back-fill the watch's history where it is missing; the reads it made."""
    gap = watching.history_gap(db, workspace.team_id, now)
    if gap is None:
        return 0
    keys = watch_store.known_keys(db, workspace.team_id)
    buckets, reads = await watching.fill(client, *gap, keys)
    log.info(
        "workspace %s: watch history back-filled from %s to %s in %d reads",
        workspace.team_id,
        gap[0],
        gap[1],
        reads,
    )
    if not dry_run:
        start, end = gap
        watch_store.add_backfill(db, workspace.team_id, buckets, start=start, end=end, now=now)
    return reads


async def _causes(
    client: ScenarioClient, opening: list[Finding], now: datetime
) -> UsagesResponse | None:
    """The activity behind new watch episodes; an episode goes out without it rather than
    not at all."""
    try:
        return await watching.read_causes(client, opening, now)
    except ScenarioError as exc:
        log.warning("activity for the watch unavailable: %s", exc.cause)
    except Exception:  # a bug of ours must not cancel the budgets' reads beside it
        log.exception("activity for the watch failed")
    return None


async def load_names(client: ScenarioClient, *, projects: bool = False) -> Directory:
    """The names of the team's people and API keys for an alert's culprits (and of its
    projects, which a watch episode names). An alert goes out without them (naming what the
    usage data names, IDs for the rest) rather than late: the wait is bounded and any
    failure is only logged."""

    async def load() -> Directory:
        people = await load_people(client)
        if not projects:
            return people
        found = tuple(Entry(p.id, p.name or p.id) for p in await client.projects())
        return replace(people, projects=found)

    try:
        return await asyncio.wait_for(load(), NAMES_WITHIN.total_seconds())
    except ScenarioError as exc:
        log.warning("names for attribution unavailable: %s", exc.cause)
    except TimeoutError:
        log.warning("names for attribution unavailable: Scenario took over %s", NAMES_WITHIN)
    except Exception:  # a bug of ours must not hold the alert back; say where it is
        log.exception("names for attribution failed")
    return Directory()


def _in_transaction(db: Database, dry_run: bool, write: Callable[[], None]) -> None:
    """Run `write` in one transaction; a dry run rolls it back and keeps what it would post."""
    try:
        with immediate(db):
            write()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass


def _decide(
    db: Database,
    budget: Budget,
    period: Period,
    responses: dict[Window, UsagesResponse],
    now: datetime,
) -> tuple[Decisions, Alert | None, float, Forecast | None]:
    """The decisions at the spend read, and the spend and forecast they were made at. The
    forecast is worked out for every budget, as `/budget list` shows it, but only a
    forecast budget's alerts are decided on it."""
    spend, projection = measure(budget, period, responses, now)
    decisions, current = decide(
        db, budget, period, spend, now, projection=projection if budget.forecast else None
    )
    return decisions, current, spend, projection


def measure(
    budget: Budget, period: Period, responses: dict[Window, UsagesResponse], now: datetime
) -> tuple[float, Forecast | None]:
    """A budget's spend in its period and the projection to its end (for every budget:
    without the CU series, which only forecast budgets read, from the period's average)."""
    response = responses[window_for(budget.scope, period, now)]
    spend = scope_spend(budget.scope, response)
    series = scope_series(budget.scope, response)
    return spend, forecast(
        spend=spend, limit=budget.limit_cu, period=period, now=now, series=series
    )


def decide(
    db: Database,
    budget: Budget,
    period: Period,
    spend: float,
    now: datetime,
    *,
    projection: Forecast | None = None,
) -> tuple[Decisions, Alert | None]:
    """What one check decides for a budget at `spend`, from its stored alert and snooze;
    `record_decisions` writes it (in the caller's transaction)."""
    current, episodes = alerts.current_alert(db, budget.id, period)
    decisions = evaluate(
        BudgetRule(budget.limit_cu, budget.thresholds, budget.forecast),
        spend,
        period,
        now,
        current.state if current else None,
        episodes=episodes,
        snoozed_until=snoozes.snoozed_until(db, budget.id),
        projection=projection,
    )
    return decisions, current


def record_decisions(
    db: Database,
    budget: Budget,
    period: Period,
    decisions: Decisions,
    current: Alert | None,
    spend: float,
    attribution: Attribution | None,
    now: datetime,
) -> None:
    """The alert's new state and events; what the check saw, for re-arming on edits."""
    if current is not None and not current.state.closed:
        alerts.saw_spend(db, current, spend, period, now=now)
    for change in decisions.changes:
        alerts.apply_change(
            db,
            budget_id=budget.id,
            channel_id=budget.channel_id,
            change=change,
            period=period,
            spend_cu=spend,
            limit_cu=budget.limit_cu,
            projection=decisions.projection,
            # Culprits are worth showing for what was crossed, not for a "back under".
            attribution=attribution
            if any(e.kind in (EventKind.LEVEL, EventKind.FORECAST) for e in change.events)
            else None,
            now=now,
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
    payload = scenario_health_message(
        failing=change.tell == "down",
        cause=exc.cause if exc else "",
        detail=exc.message if exc else "",
        checks=change.failures,
        admins=tuple(sorted(settings.admin_ids)),
    )
    for channel in sorted({b.channel_id for b in budgets}):
        key = f"health:{workspace.team_id}:{change.streak}:{change.tell}:{channel}"
        if outbox.enqueue(
            db,
            dedup_key=key,
            workspace_id=workspace.team_id,
            channel_id=channel,
            action=OutboxAction.POST,
            payload=payload,
            now=now,
            expires_at=now + HEALTH_NOTICE_TTL,
        ):  # reported only if new: the key makes it once
            result.enqueued.append(
                {"key": key, "channel": channel, "action": OutboxAction.POST.value, **payload}
            )
