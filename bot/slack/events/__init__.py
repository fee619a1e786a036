"""Events: the Home tab opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.slack.events import home

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    for listeners in (home,):
        listeners.register(app, deps)
