"""Connecting a workspace to Scenario (multi-workspace mode): the form, its answers, and what
commands say until a workspace is connected. Pure."""

from __future__ import annotations

from bot.messages.budgets import notice
from bot.messages.modals import Metadata
from bot.messages.mrkdwn import Json, escape, plain_text, section

CONNECT_CALLBACK = "scenario_connect"
BLOCK_KEY = "scenario_api_key"
BLOCK_SECRET = "scenario_api_secret"
BLOCK_TEAM = "scenario_team_id"
ACTION_KEY = "value"

NOT_CONNECTED = (
    "This workspace isn't connected to Scenario yet, so I have no usage to read."
    " An admin can connect it with `/budget connect`: it asks for a Scenario API key and"
    " secret (Scenario → Settings → API keys) and, optionally, the team ID."
)
FROM_ENVIRONMENT = (
    "This bot reads Scenario with the credentials in its own settings"
    " (`SCENARIO_SDK_API_KEY`, `SCENARIO_SDK_API_SECRET`, `SCENARIO_TEAM_ID`): there is nothing"
    " to connect or disconnect here. Whoever runs the bot changes them."
)


def not_connected() -> Json:
    return notice(NOT_CONNECTED)


def from_environment() -> Json:
    return notice(FROM_ENVIRONMENT)


def connect_view(
    team_id: str,
    *,
    api_key: str = "",
    scenario_team_id: str = "",
    problem: str | None = None,
    connected_team: str | None = None,
) -> Json:
    """The form. Shown again with ``problem`` when Scenario refused what was entered: the
    key and team ID are kept, the secret must be typed again (it is never put in a view)."""
    blocks: list[Json] = []
    if problem:
        blocks.append(section(f":warning: {problem}"))
    elif connected_team is not None:
        which = f" (team `{escape(connected_team)}`)" if connected_team else ""
        blocks.append(
            section(f"This workspace is connected{which}. Saving replaces the credentials.")
        )
    blocks.append(
        section(
            "I check these with Scenario before saving them, and store them encrypted."
            " They are used only to read this workspace's usage."
        )
    )
    blocks += [
        _text_input(BLOCK_KEY, "API key", api_key, placeholder="the key's ID"),
        _text_input(BLOCK_SECRET, "API secret", "", placeholder="shown once when you made the key"),
        _text_input(
            BLOCK_TEAM,
            "Team ID",
            scenario_team_id,
            optional=True,
            hint="Optional. Needed for `billing` budgets and for keys that see several teams.",
        ),
    ]
    return {
        "type": "modal",
        "callback_id": CONNECT_CALLBACK,
        "private_metadata": Metadata(team_id=team_id, channel_id="").dump(),
        "title": plain_text("Connect Scenario"),
        "submit": plain_text("Check and save"),
        "close": plain_text("Cancel"),
        "blocks": blocks,
    }


def _text_input(
    block_id: str,
    label: str,
    initial: str,
    *,
    placeholder: str | None = None,
    optional: bool = False,
    hint: str | None = None,
) -> Json:
    element: Json = {"type": "plain_text_input", "action_id": ACTION_KEY, "max_length": 200}
    if initial:
        element["initial_value"] = initial
    if placeholder:
        element["placeholder"] = plain_text(placeholder)
    block: Json = {
        "type": "input",
        "block_id": block_id,
        "label": plain_text(label),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain_text(hint)
    return block


def checking_view() -> Json:
    return {
        "type": "modal",
        "callback_id": CONNECT_CALLBACK,
        "title": plain_text("Connect Scenario"),
        "close": plain_text("Close"),
        "blocks": [section(":hourglass_flowing_sand: Checking these credentials with Scenario…")],
    }


def connected_view(scenario_team_id: str | None) -> Json:
    which = f" team `{escape(scenario_team_id)}`" if scenario_team_id else ""
    lines = [
        f"✅ Connected to Scenario{which}. Budgets and `/usage` now read its usage.",
        "Next: `/budget add 5000 monthly` (or `/budget add` for a form), then `/usage`.",
    ]
    return {
        "type": "modal",
        "callback_id": CONNECT_CALLBACK,
        "title": plain_text("Connected"),
        "close": plain_text("Done"),
        "blocks": [section("\n".join(lines))],
    }


def disconnected(was_connected: bool) -> Json:
    if not was_connected:
        return notice("This workspace isn't connected to Scenario; there was nothing to forget.")
    return notice(
        "Disconnected: I forgot this workspace's Scenario credentials. Budgets and digests"
        " stay, but nothing is checked or sent until an admin runs `/budget connect` again."
    )
