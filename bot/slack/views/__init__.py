"""Form submissions: the budget form, the digest settings, the Scenario connection and the
watch's Revoke key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.slack.views import budget_modal, digest_settings, scenario_connect, watch_revoke

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    for listeners in (
        budget_modal,
        digest_settings,
        scenario_connect,
        watch_revoke,
    ):
        listeners.register(app, deps)
