"""The shell's shared resources, built once from Settings: database, Scenario, Slack."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.config import ConfigError, Settings
from bot.jobs.announce import announce
from bot.jobs.check import CheckSettings
from bot.jobs.delivery import DrainReport, drain
from bot.scenario.client import ScenarioClient
from bot.store.db import migrate, open_db
from bot.store.installations import InstallationStore, NotInstalled, reseal_all
from bot.store.workspaces import (
    NotConnected,
    ScenarioConnection,
    Workspace,
    connection_summary,
    get_workspace,
    scenario_connection,
)

log = logging.getLogger(__name__)

# Tokens that expire within this many minutes are refreshed before use (Bolt's default).
ROTATE_BEFORE_MINUTES = 120
# A replaced Scenario client is closed this long after: longer than any read (60 s each).
RETIRED_CLIENT_GRACE = timedelta(minutes=3)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    # Multi-workspace mode only: the workspaces' bot tokens.
    installations: InstallationStore | None = None
    _scenario: ScenarioClient | None = field(default=None, repr=False)
    _slack: AsyncWebClient | None = field(default=None, repr=False)
    # Multi-workspace mode: one long-lived Scenario client per workspace, with the
    # connection it was made for (a reconnect with other credentials makes a new one).
    _clients: dict[str, tuple[ScenarioConnection, ScenarioClient]] = field(
        default_factory=dict, repr=False
    )
    _rotations: dict[str, asyncio.Lock] = field(default_factory=dict, repr=False)
    _retiring: dict[asyncio.Task[None], ScenarioClient] = field(default_factory=dict, repr=False)
    scheduler_status: Callable[[], str] = field(default=lambda: "not running", repr=False)
    # Set by the scheduler: digest or timezone settings changed, reschedule now.
    digests_changed: Callable[[], None] = field(default=lambda: None, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        db = open_db(settings.budget_bot_db)
        migrate(db)
        installations = None
        if settings.multi_workspace:
            sealer = settings.require_secret_key()
            installations = InstallationStore(settings.budget_bot_db, sealer)
            moved, unreadable = reseal_all(db, sealer)
            if moved:
                log.info("resealed %d stored secret(s) with the first BUDGET_BOT_SECRET_KEY", moved)
            if unreadable:
                log.warning(
                    "%d stored secret(s) open with no BUDGET_BOT_SECRET_KEY configured: their"
                    " workspaces must reinstall or reconnect",
                    unreadable,
                )
        return cls(settings, db, installations)

    @property
    def multi_workspace(self) -> bool:
        return self.installations is not None

    @property
    def check_settings(self) -> CheckSettings:
        return CheckSettings(
            default_tz=self.settings.budget_bot_timezone,
            app_url=self.settings.scenario_app,
            admin_ids=self.settings.admin_ids,
            interval=timedelta(seconds=self.settings.budget_bot_check_interval),
        )

    @property
    def scenario(self) -> ScenarioClient:
        """Single-workspace mode: the configured Scenario client; ConfigError when
        credentials are missing."""
        if self._scenario is None:
            self._scenario = ScenarioClient.from_settings(self.settings)
        return self._scenario

    @property
    def slack(self) -> AsyncWebClient:
        """Single-workspace mode: the client that delivers the outbox (see `_outbox_client`)."""
        if self._slack is None:
            token = self.settings.slack_bot_token
            if token is None:
                raise ConfigError("SLACK_BOT_TOKEN is required to post to Slack")
            self._slack = self._outbox_client(token.get_secret_value())
        return self._slack

    def _outbox_client(self, token: str) -> AsyncWebClient:
        """It retries nothing by itself: a server error can arrive after Slack posted, and
        only the outbox knows how to retry that safely."""
        return AsyncWebClient(token=token, base_url=self.settings.slack_api_base, retry_handlers=[])

    def connection_for(self, team_id: str) -> ScenarioConnection:
        """The Scenario credentials a workspace reads with: the environment's in
        single-workspace mode (ConfigError if unset), its own otherwise (NotConnected)."""
        settings = self.settings
        if self.installations is None:
            settings.require_scenario_credentials()
            secret = settings.scenario_sdk_api_secret
            return ScenarioConnection(
                api_key=settings.scenario_sdk_api_key or "",
                api_secret=secret.get_secret_value() if secret else "",
                team_id=settings.scenario_team_id,
            )
        connection = scenario_connection(self.db, team_id, settings.require_secret_key())
        if connection is None:
            raise NotConnected(team_id)
        return connection

    def connected_team(self, team_id: str) -> str | None:
        """Multi-workspace mode: the Scenario team a workspace is connected to ("" when
        connected without a team ID), None when it is not connected."""
        summary = connection_summary(self.db, team_id)
        if not summary["connected"]:
            return None
        return str(summary["scenario_team_id"] or "")

    async def scenario_for(self, workspace: Workspace) -> ScenarioClient:
        return await self.scenario_for_team(workspace.team_id)

    async def scenario_for_team(self, team_id: str) -> ScenarioClient:
        """The workspace's Scenario client, made on first use and kept."""
        if self.installations is None:
            return self.scenario
        connection = self.connection_for(team_id)
        held = self._clients.get(team_id)
        if held is not None and held[0] == connection:
            return held[1]
        if held is not None:
            self._retire(held[1])
        client = ScenarioClient(
            base_url=self.settings.scenario_base,
            api_key=connection.api_key,
            api_secret=connection.api_secret,
            team_id=connection.team_id,
        )
        self._clients[team_id] = (connection, client)
        return client

    async def forget_scenario(self, team_id: str) -> None:
        """After a disconnect or an uninstall: that workspace's client is retired."""
        held = self._clients.pop(team_id, None)
        if held is not None:
            self._retire(held[1])

    def _retire(self, client: ScenarioClient) -> None:
        """Close a replaced client once the reads already using it are done: a `/usage` or
        a check in flight finishes with the old credentials rather than failing."""

        async def close_later() -> None:
            try:
                await asyncio.sleep(RETIRED_CLIENT_GRACE.total_seconds())
            finally:
                await client.aclose()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retiring[task] = client
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def slack_for(self, workspace_id: str) -> AsyncWebClient:
        """The client that posts for a workspace, with its token read now (and refreshed
        first when it is about to expire: the scheduler has no request for Bolt to do it)."""
        if self.installations is None:
            return self.slack
        bot = await self.bot_of(workspace_id)
        return self._outbox_client(bot.bot_token)

    @functools.cached_property
    def _rotator(self) -> AsyncTokenRotator:
        """Refreshes rotating tokens with the app's credentials, on SLACK_API_URL."""
        secret = self.settings.slack_client_secret
        return AsyncTokenRotator(
            client_id=self.settings.slack_client_id or "",
            client_secret=secret.get_secret_value() if secret else "",
            client=AsyncWebClient(base_url=self.settings.slack_api_base),
        )

    async def bot_of(self, workspace_id: str) -> Bot:
        """The workspace's bot installation, its token refreshed if rotation is on and it
        expires soon; NotInstalled if the app is not (or no longer) installed there."""
        assert self.installations is not None
        # One refresh at a time per workspace: two at once would both spend the same grant.
        lock = self._rotations.setdefault(workspace_id, asyncio.Lock())
        async with lock:
            bot = await self.installations.async_find_bot(enterprise_id=None, team_id=workspace_id)
            if bot is None:
                raise NotInstalled(workspace_id)
            if bot.bot_refresh_token is None:
                return bot
            try:
                refreshed = await self._rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=ROTATE_BEFORE_MINUTES
                )
            except SlackTokenRotationError:
                # Another process (a cron `budget-bot check`, a second replica) may have
                # refreshed it first: its token is in the store then.
                again = await self.installations.async_find_bot(
                    enterprise_id=None, team_id=workspace_id
                )
                if again is not None and again.bot_token != bot.bot_token:
                    return again
                raise
            if refreshed is None:
                return bot
            await self.installations.async_save_bot(refreshed)
            return refreshed

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
        clients = [client for _, client in self._clients.values()]
        self._clients.clear()
        for task, client in list(self._retiring.items()):
            task.cancel()
            clients.append(client)  # the task may never have started: close it here too
        await asyncio.gather(*self._retiring, return_exceptions=True)
        # Closing twice is harmless; one client failing to close must not keep the rest open.
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
        self.db.close()
