"""The Bolt AsyncApp: one factory that registers every listener, by kind."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError, Settings
from bot.jobs.runtime import Runtime
from bot.slack import actions, commands, events, views
from bot.slack.deps import Deps, utc_now
from bot.slack.oauth import NOT_INSTALLED, install_flow

log = logging.getLogger(__name__)


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
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    if not socket_mode and signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN)")
    if runtime.multi_workspace:
        if socket_mode:
            raise ConfigError(
                "multi-workspace mode (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) installs"
                " through /slack/install over HTTP: unset SLACK_APP_TOKEN"
            )
        client = web_client(settings)
        app = AsyncApp(
            client=client,
            signing_secret=signing_secret,
            oauth_flow=install_flow(runtime, client),
            user_facing_authorize_error_message=NOT_INSTALLED,
        )
    elif settings.slack_bot_token is None:
        raise ConfigError(
            "SLACK_BOT_TOKEN is required to run the Slack app (or SLACK_CLIENT_ID and"
            " SLACK_CLIENT_SECRET to install it into many workspaces)"
        )
    else:
        app = AsyncApp(
            client=web_client(settings),
            signing_secret=signing_secret,
            request_verification_enabled=not socket_mode,
        )
    deps = Deps.of(runtime, clock)
    for listeners in (commands, actions, views, events):
        listeners.register(app, deps)
    return app, deps
