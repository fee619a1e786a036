"""The Bolt AsyncApp: one factory, and the dependencies every listener receives."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from bot.config import ConfigError, Settings
from bot.runtime import Runtime
from bot.scenario.client import ScenarioClient
from bot.slack.admins import AdminCheck
from bot.slack.directory import DirectoryCache


def utc_now() -> datetime:
    return datetime.now(UTC)


log = logging.getLogger(__name__)


@dataclass
class Deps:
    """What listeners need, passed in once instead of read from globals."""

    runtime: Runtime
    clock: Callable[[], datetime]
    admins: AdminCheck
    directory: DirectoryCache

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    async def scenario_for(self, team_id: str) -> ScenarioClient:
        """The Scenario client of a workspace (single-workspace mode: the configured one)."""
        return self.runtime.scenario

    def timezone_of(self, team_id: str) -> str:
        return self.runtime.timezone_of(team_id)

    async def deliver_now(self, team_id: str) -> None:
        """After a change that an alert message shows (a snooze, an acknowledgement, an
        edit): edit it now, while the person looks, rather than at the next delivery."""
        try:
            await self.runtime.deliver(self.clock, workspace_id=team_id)
        except Exception:  # the scheduler delivers it soon anyway; the change is recorded
            log.exception("delivery after a change failed")


def web_client(settings: Settings) -> AsyncWebClient:
    """Listeners' client: Slack's own retry handlers for 429 and 5xx (these calls are
    idempotent or answered by response_url; outbox posts use Runtime.slack instead)."""
    token = settings.slack_bot_token
    return AsyncWebClient(
        token=token.get_secret_value() if token else None,
        base_url=settings.slack_api_base,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def create_app(
    runtime: Runtime, *, clock: Callable[[], datetime] = utc_now, socket_mode: bool = False
) -> tuple[AsyncApp, Deps]:
    settings = runtime.settings
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is required to run the Slack app")
    if not socket_mode and settings.slack_signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN)")
    app = AsyncApp(
        client=web_client(settings),
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        request_verification_enabled=not socket_mode,
    )
    deps = Deps(
        runtime=runtime,
        clock=clock,
        admins=AdminCheck(settings.admin_ids, clock),
        directory=DirectoryCache(clock),
    )
    # Listener modules each register their handlers (one module per kind of interaction).
    from bot.slack import listeners

    listeners.register(app, deps)
    return app, deps
