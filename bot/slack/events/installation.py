"""`app_uninstalled` and `tokens_revoked`: the workspace's tokens and Scenario secrets are
deleted, its checks and digests stop, its audit trail stays (SPEC §8)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.context.async_context import AsyncBoltContext

    from bot.slack.deps import Deps

log = logging.getLogger(__name__)
SLACK = "slack"  # the actor of these changes in the audit trail


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_uninstalled")
    async def on_uninstalled(context: AsyncBoltContext) -> None:
        await forget(deps, context.team_id, reason="app uninstalled")

    @app.event("tokens_revoked")
    async def on_tokens_revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
        # The bot stores no user token: only a revoked bot token matters here.
        if (event.get("tokens") or {}).get("bot"):
            await forget(deps, context.team_id, reason="bot token revoked")


async def forget(deps: Deps, team_id: str | None, *, reason: str) -> None:
    runtime = deps.runtime
    if not team_id:
        return
    if runtime.installations is None:
        # Single-workspace mode: the token lives in the environment, not here.
        log.warning("%s in workspace %s: SLACK_BOT_TOKEN no longer works", reason, team_id)
        return
    await runtime.installations.forget_workspace(team_id, actor=SLACK, reason=reason)
    await runtime.forget_scenario(team_id)
    runtime.digests_changed()
    log.info("workspace %s: %s; its token and Scenario secrets are deleted", team_id, reason)
