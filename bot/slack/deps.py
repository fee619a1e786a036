"""What every listener receives: the runtime, the clock, the admin check and the directory of
Scenario names, passed in once instead of read from globals."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlite_utils import Database

from bot.config import Settings
from bot.jobs.runtime import Runtime
from bot.scenario.client import ScenarioClient
from bot.scenario.names import DirectoryCache
from bot.slack.admins import AdminCheck

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    """What listeners need."""

    runtime: Runtime
    clock: Callable[[], datetime]
    admins: AdminCheck
    directory: DirectoryCache
    # False on the command line without Slack: what a change edits waits for the next delivery.
    can_post: bool = True

    @classmethod
    def of(cls, runtime: Runtime, clock: Callable[[], datetime], *, can_post: bool = True) -> Deps:
        return cls(
            runtime=runtime,
            clock=clock,
            admins=AdminCheck(runtime.settings.admin_ids, clock),
            directory=DirectoryCache(clock),
            can_post=can_post,
        )

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    async def scenario_for(self, team_id: str) -> ScenarioClient:
        """The Scenario client of a workspace (single-workspace mode: the configured one);
        NotConnected (a ConfigError) when a workspace has not connected one yet."""
        return await self.runtime.scenario_for_team(team_id)

    def timezone_of(self, team_id: str) -> str:
        return self.runtime.timezone_of(team_id)

    async def deliver_now(self, team_id: str) -> None:
        """After a change that an alert message shows (a snooze, an acknowledgement, an
        edit): edit it now, while the person looks, rather than at the next delivery."""
        if not self.can_post:
            return
        try:
            await self.runtime.deliver(self.clock, workspace_id=team_id)
        except Exception:  # the scheduler delivers it soon anyway; the change is recorded
            log.exception("delivery after a change failed")
