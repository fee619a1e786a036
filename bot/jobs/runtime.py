"""The shell's shared resources, built once from Settings: database, Scenario, Slack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.config import ConfigError, Settings
from bot.jobs.announce import announce
from bot.jobs.check import CheckSettings
from bot.jobs.delivery import DrainReport, drain
from bot.scenario.client import ScenarioClient
from bot.store.db import migrate, open_db
from bot.store.workspaces import Workspace, get_workspace


@dataclass
class Runtime:
    settings: Settings
    db: Database
    _scenario: ScenarioClient | None = field(default=None, repr=False)
    _slack: AsyncWebClient | None = field(default=None, repr=False)
    scheduler_status: Callable[[], str] = field(default=lambda: "not running", repr=False)
    # Set by the scheduler: digest or timezone settings changed, reschedule now.
    digests_changed: Callable[[], None] = field(default=lambda: None, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        db = open_db(settings.budget_bot_db)
        migrate(db)
        return cls(settings, db)

    @property
    def check_settings(self) -> CheckSettings:
        return CheckSettings(
            default_tz=self.settings.budget_bot_timezone,
            app_url=self.settings.scenario_app,
            admin_ids=self.settings.admin_ids,
        )

    @property
    def scenario(self) -> ScenarioClient:
        """The configured Scenario client; ConfigError when credentials are missing."""
        if self._scenario is None:
            self._scenario = ScenarioClient.from_settings(self.settings)
        return self._scenario

    @property
    def slack(self) -> AsyncWebClient:
        """The client that delivers the outbox. It retries nothing by itself: a server error
        can arrive after Slack posted, and only the outbox knows how to retry that safely."""
        if self._slack is None:
            token = self.settings.slack_bot_token
            if token is None:
                raise ConfigError("SLACK_BOT_TOKEN is required to post to Slack")
            self._slack = AsyncWebClient(
                token=token.get_secret_value(),
                base_url=self.settings.slack_api_base,
                retry_handlers=[],
            )
        return self._slack

    async def scenario_for(self, workspace: Workspace) -> ScenarioClient:
        """Single-workspace mode: every workspace reads the one configured Scenario team."""
        return self.scenario

    async def slack_for(self, workspace_id: str) -> AsyncWebClient:
        return self.slack

    async def deliver(
        self, clock: Callable[[], datetime], *, workspace_id: str | None = None
    ) -> DrainReport:
        """Alert events not yet announced become outbox rows, then the outbox is drained.
        Called by the scheduler, the command line, and right after a button press or an
        edit, so that the message changes while the person is looking at it."""
        announce(
            self.db,
            app_url=self.settings.scenario_app,
            default_tz=self.settings.budget_bot_timezone,
            now=clock(),
            workspace_id=workspace_id,
        )
        return await drain(self.db, self.slack_for, clock, workspace_id=workspace_id)

    def timezone_of(self, workspace_id: str) -> str:
        workspace = get_workspace(self.db, workspace_id)
        default = self.settings.budget_bot_timezone
        return workspace.timezone_or(default) if workspace else default

    async def aclose(self) -> None:
        if self._scenario is not None:
            await self._scenario.aclose()
        self.db.close()
