"""The scheduler inside `serve`: budget checks, outbox delivery and digests.

APScheduler 3's AsyncIOScheduler runs the jobs in the app's own event loop. The check runs
every BUDGET_BOT_CHECK_INTERVAL seconds, never two at once (`max_instances=1`), and a run
missed while the loop was busy is run once, not several times (`coalesce`). Delivery runs
on its own short interval, so a message that Slack refused for a while is retried soon
after Slack is back, independently of the check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.budgets.types import PeriodKind
from bot.jobs.check import run_check
from bot.jobs.digest import catch_up, is_due, run_digest
from bot.jobs.runtime import Runtime
from bot.store.digests import Digest, list_digests
from bot.store.workspaces import NotConnected, get_workspace

log = logging.getLogger(__name__)

DELIVERY_INTERVAL = timedelta(seconds=15)
FIRST_CHECK_AFTER = timedelta(seconds=5)
DIGEST_SYNC = timedelta(minutes=1)


def _wall_clock() -> datetime:
    """When APScheduler runs things: real time, whatever clock the jobs reason with."""
    return datetime.now(UTC)


def _guarded(name: str, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """Log a failing job with its name and carry on: the next run may well succeed."""

    async def run() -> None:
        try:
            await job()
        except Exception:
            log.exception("scheduled job %r failed; it will run again on schedule", name)

    return run


class Scheduler:
    def __init__(
        self,
        runtime: Runtime,
        *,
        check_interval: timedelta | None = None,
        delivery_interval: timedelta = DELIVERY_INTERVAL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        interval = check_interval or timedelta(seconds=runtime.settings.budget_bot_check_interval)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.scheduler.add_job(
            _guarded("check", self.check),
            IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
            id="check",
            name="budget check",
            max_instances=1,
            coalesce=True,
            # A run late by up to one interval still happens; later than that, the next one
            # is as good.
            misfire_grace_time=max(1, int(interval.total_seconds())),
            next_run_time=_wall_clock() + min(FIRST_CHECK_AFTER, interval),
        )
        self.scheduler.add_job(
            _guarded("deliver", self.deliver),
            IntervalTrigger(seconds=delivery_interval.total_seconds(), timezone=UTC),
            id="deliver",
            name="outbox delivery",
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(
            _guarded("digest settings", self.sync_digests),
            IntervalTrigger(seconds=DIGEST_SYNC.total_seconds(), timezone=UTC),
            id="digest-sync",
            name="digest settings",
            max_instances=1,
            coalesce=True,
        )
        # Held while a job runs, so that stopping can let in-flight deliveries finish.
        self._busy = asyncio.Lock()
        # job id → (local time, zone, cadence, weekday): what its trigger was made from
        self._digest_jobs: dict[str, tuple[str, str, str, str]] = {}
        runtime.scheduler_status = self.status
        runtime.digests_changed = self.sync_digests_soon

    async def check(self) -> None:
        async with self._busy:
            await self._check()

    async def _check(self) -> None:
        results = await run_check(
            self.runtime.db,
            self.runtime.scenario_for,
            self.runtime.check_settings,
            self.clock(),
        )
        for result in results:
            if result.error:
                log.warning("check of %s: %s", result.workspace_id, result.error)
        await self._deliver()

    async def deliver(self) -> None:
        async with self._busy:
            await self._deliver()

    async def _deliver(self) -> None:
        report = await self.runtime.deliver(self.clock)
        if report.sent or report.failed:
            log.info(
                "delivered %d, failed %d, retrying %d", report.sent, report.failed, report.retried
            )

    def start(self) -> None:
        self.scheduler.start()
        self.sync_digests_soon()

    def sync_digests_soon(self) -> None:
        """Follow digest settings at once (called after `/budget digest` or `timezone`)."""
        if self.scheduler.running:
            self.scheduler.modify_job("digest-sync", next_run_time=_wall_clock())

    async def sync_digests(self) -> None:
        """One cron job per digest at its local time in its workspace's zone; jobs of
        removed digests go, moved ones are rescheduled. A digest due less than an hour ago
        and not sent for its span (the bot was down at that time) is sent now."""
        wanted: dict[str, tuple[Digest, str]] = {}
        for digest in list_digests(self.runtime.db):
            wanted[f"digest:{digest.id}"] = (digest, self.runtime.timezone_of(digest.workspace_id))
        for job_id in set(self._digest_jobs) - set(wanted):
            self.scheduler.remove_job(job_id)
            del self._digest_jobs[job_id]
        now = self.clock()
        for job_id, (digest, tz) in wanted.items():
            shape = (digest.at, tz, digest.cadence.value, str(digest.weekday))
            if self._digest_jobs.get(job_id) != shape:
                self.scheduler.add_job(
                    _guarded(job_id, partial(self.send_digest, digest.id)),
                    CronTrigger(
                        day=1 if digest.cadence is PeriodKind.MONTHLY else None,
                        day_of_week=digest.weekday,
                        hour=digest.local_time.hour,
                        minute=digest.local_time.minute,
                        timezone=tz,
                    ),
                    id=job_id,
                    name=f"digest of {digest.channel_id}",
                    replace_existing=True,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=int(catch_up(digest.cadence).total_seconds()),
                )
                self._digest_jobs[job_id] = shape
            if is_due(digest, tz, now):
                self.scheduler.modify_job(job_id, next_run_time=_wall_clock())

    async def send_digest(self, digest_id: int) -> None:
        digest = next((d for d in list_digests(self.runtime.db) if d.id == digest_id), None)
        if digest is None:
            return  # turned off since it was scheduled
        tz = self.runtime.timezone_of(digest.workspace_id)
        now = self.clock()
        if not is_due(digest, tz, now):
            return  # already sent for this span, or the time moved
        workspace = get_workspace(self.runtime.db, digest.workspace_id)
        if workspace is None:
            return
        try:
            client = await self.runtime.scenario_for(workspace)
        except NotConnected:
            return  # multi-workspace: not connected (or uninstalled); nothing to read
        await run_digest(
            self.runtime.db, client, digest, tz, now, self.runtime.settings.scenario_app
        )
        await self.deliver()

    async def stop(self, grace: timedelta = timedelta(seconds=10)) -> None:
        """No new runs; a check or delivery in flight may finish (up to `grace`)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        try:
            async with asyncio.timeout(grace.total_seconds()):
                async with self._busy:
                    pass
        except TimeoutError:
            log.warning("stopping with a scheduled job still running")

    def status(self) -> str:
        if not self.scheduler.running:
            return "stopped"
        job = self.scheduler.get_job("check")
        upcoming = job.next_run_time if job else None
        return f"running; next check {upcoming.isoformat()}" if upcoming else "running"
