"""Who may change budgets: workspace admins and owners, and `BUDGET_BOT_ADMINS`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.delivery import slack_error
from bot.messages.modals import field_error

log = logging.getLogger(__name__)

CACHE_FOR = timedelta(minutes=5)
# What Slack says of someone who is nobody here; any other refusal (a rate limit, a missing
# scope, a proxy's page) or failure says nothing about their rights.
NOBODY = frozenset({"user_not_found", "user_not_visible"})

# Slack refusing for good: asking again cannot help (the app lacks `users:read`, or its token
# is no longer valid).
LASTING = frozenset(
    {
        "missing_scope",
        "invalid_auth",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "not_allowed_token_type",
    }
)


class AdminUnknown(Exception):
    """Slack did not say whether this person is an admin (it failed, or was unreadable)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause

    @property
    def message(self) -> str:
        """For the person who asked: nothing was changed, and what to do."""
        if self.cause in LASTING:
            return (
                "Slack won't tell me who the admins are here (the app lacks the `users:read`"
                " permission, or its token is no longer valid), so nothing was changed. A"
                " workspace admin can reinstall the app, or its operator can add you to"
                " `BUDGET_BOT_ADMINS`."
            )
        return (
            "Slack couldn't confirm your admin rights just now, so nothing was changed. Try"
            " again in a moment."
        )


class AdminCheck:
    """Answers "is this user an admin?", asking Slack at most once per user per few minutes."""

    def __init__(self, configured: frozenset[str], clock: Callable[[], datetime]) -> None:
        self._configured = configured
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[datetime, bool]] = {}
        # Questions on their way to Slack. A caller that stops waiting (a form's deadline)
        # leaves its question running, so that the answer is cached for the next press.
        self._asking: dict[tuple[str, str], asyncio.Task[bool]] = {}

    async def is_admin(self, client: AsyncWebClient, team_id: str, user_id: str) -> bool:
        if user_id in self._configured:
            return True
        key = (team_id, user_id)
        cached = self._cache.get(key)
        if cached is not None and self._clock() - cached[0] < CACHE_FOR:
            return cached[1]
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.get_running_loop().create_task(self._ask(client, team_id, user_id))
            self._asking[key] = asking
            asking.add_done_callback(lambda done: self._asked(key, done))
        return await asyncio.shield(asking)

    def _asked(self, key: tuple[str, str], done: asyncio.Task[bool]) -> None:
        self._asking.pop(key, None)
        if not done.cancelled():
            done.exception()  # raised to whoever still waited; nobody else needs it

    async def _ask(self, client: AsyncWebClient, team_id: str, user_id: str) -> bool:
        now = self._clock()
        try:
            response = await client.users_info(user=user_id)
            user = response.get("user") or {}
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in NOBODY:
                return False
            log.warning("admin check of %s: Slack said %s", user_id, error or "no code")
            raise AdminUnknown(error or "an answer that isn't Slack's") from None
        except (aiohttp.ClientError, OSError, AttributeError, TypeError, ValueError) as exc:
            # Slack out of reach, or an answer that isn't Slack's (a captive portal's page).
            # The name only: some aiohttp errors' repr carries the request's headers (the token).
            log.warning("admin check of %s not possible: %s", user_id, type(exc).__name__)
            raise AdminUnknown(type(exc).__name__) from None
        admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        admin = admin and _of_this_workspace(user, team_id)
        self._cache[(team_id, user_id)] = (now, admin)
        return admin


def _of_this_workspace(user: dict[str, Any], team_id: str) -> bool:
    """Not someone of another organisation in a shared channel (whose admin rights are
    theirs, not this workspace's). On Enterprise Grid a member's `team_id` is their home
    workspace: the org's other workspaces they belong to are in `enterprise_user.teams`."""
    if user.get("is_stranger"):
        return False
    home = user.get("team_id")
    if not home or home == team_id:
        return True
    return team_id in ((user.get("enterprise_user") or {}).get("teams") or ())


async def admin_problem(
    admins: AdminCheck, client: AsyncWebClient, team_id: str, user_id: str, refused: str
) -> str | None:
    """None for an admin; else what to tell the person: `refused`, or why Slack couldn't
    say (mrkdwn)."""
    try:
        admin = await admins.is_admin(client, team_id, user_id)
    except AdminUnknown as unknown:
        return unknown.message
    return None if admin else refused


# What a form may spend asking Slack (its answer, errors included, must leave within 3 s).
ADMIN_WITHIN = 2.0
ADMIN_CHECK_SLOW = "Slack didn't confirm your admin rights in time; press Save again."
ADMIN_CHECK_UNKNOWN = (
    "Slack couldn't confirm your admin rights just now. Nothing was saved; press Save again "
    "in a moment."
)


async def form_admin_problem(
    admins: AdminCheck,
    client: AsyncWebClient,
    team_id: str,
    user_id: str,
    *,
    within: float,
    refused: str,
) -> str | None:
    """For a form submission, whose errors must travel in Slack's 3-second answer: None for
    an admin, else the field error to show (`refused`, or Slack being too slow to tell)."""
    try:
        admin = await asyncio.wait_for(admins.is_admin(client, team_id, user_id), within)
    except TimeoutError:
        return ADMIN_CHECK_SLOW
    except AdminUnknown as unknown:
        return ADMIN_CHECK_UNKNOWN if unknown.cause not in LASTING else field_error(unknown.message)
    return None if admin else refused


# A trigger ID lasts 3 s: past this, opening the form is likelier to fail than to succeed.
OPEN_WITHIN = 1.5


async def may_open_form(
    admins: AdminCheck, client: AsyncWebClient, team_id: str, user_id: str
) -> bool:
    """Whether to open an admins' form: not for someone Slack says is no admin. When Slack
    is too slow to say before the trigger expires (or cannot be reached), the form opens
    anyway — its Save checks again (`form_admin_problem`), and the answer is cached by then."""
    try:
        return await asyncio.wait_for(admins.is_admin(client, team_id, user_id), OPEN_WITHIN)
    except (TimeoutError, AdminUnknown):  # unknown: the Save asks again
        return True


REFUSAL = (
    "Sorry — only workspace admins and owners (or people listed in `BUDGET_BOT_ADMINS`) "
    "can change budgets. Nothing was changed. `/budget list` and `/budget history` are open "
    "to everyone."
)
