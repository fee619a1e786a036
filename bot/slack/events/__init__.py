"""Events: the Home tab opened; the app uninstalled or its tokens revoked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.slack.events import home, installation

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    for listeners in (home, installation):
        listeners.register(app, deps)
