"""Every listener module, registered on the app in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.app import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    """Each module exposes `register(app, deps)`; later modules are added here."""
    from bot.slack import budget

    budget.register(app, deps)
    from bot.slack import usage

    usage.register(app, deps)
    from bot.slack import modals

    modals.register(app, deps)
    from bot.slack import actions

    actions.register(app, deps)
    from bot.slack import home

    home.register(app, deps)
