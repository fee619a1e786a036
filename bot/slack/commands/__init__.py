"""The slash commands: `/budget` and `/usage` (SPEC §4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.slack.commands import budget, usage

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.deps import Deps


def register(app: AsyncApp, deps: Deps) -> None:
    for listeners in (
        budget,
        usage,
    ):
        listeners.register(app, deps)
