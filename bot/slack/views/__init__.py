"""Form submissions: the budget form and the digest settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.slack.views import budget_modal, digest_settings

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    for listeners in (
        budget_modal,
        digest_settings,
    ):
        listeners.register(app, deps)
