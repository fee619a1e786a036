"""Button presses: on alerts, on a removal question, on the Home tab."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.slack.actions import alerts, budget_removal, home, watch

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    for listeners in (
        alerts,
        budget_removal,
        home,
        watch,
    ):
        listeners.register(app, deps)
