"""Multi-workspace mode: Bolt's OAuth flow on our own stores, with our own pages (SPEC §3).

`GET /slack/install` issues a signed, single-use state (also set as a browser cookie by
Bolt) and shows the "Add to Slack" page; `GET /slack/oauth_redirect` checks the state and
the cookie, exchanges the code with `oauth.v2.access` on SLACK_API_URL and stores the bot
token sealed. Requests are authorized from the stored installation, through
`Runtime.bot_of`: the same code refreshes a rotating token for a request as for the
scheduler, one refresh at a time per workspace.
"""

from __future__ import annotations

import html
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin

from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.authorization.authorize_result import AuthorizeResult
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackTokenRotationError

from bot.jobs.runtime import Runtime
from bot.store.installations import STATE_LIFETIME_SECONDS, NotInstalled, OAuthStateStore

if TYPE_CHECKING:
    from slack_bolt.context.async_context import AsyncBoltContext
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# What the bot calls (tests/slack/test_manifest.py keeps manifest.yml to exactly these).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "users:read",
    "users:read.email",
    "files:write",
    "channels:history",
    "groups:history",
    # Before a budget is saved: can the bot post to its channel (archived, not a member)?
    "channels:read",
    "groups:read",
)
NOT_INSTALLED = (
    "Scenario Budget Bot can't act for this workspace right now: its installation is missing"
    " or its token could not be refreshed. An admin can add the app again from the bot's"
    " install page (/slack/install)."
)

_FAILURES = {
    "access_denied": (
        "Installation cancelled",
        "Nothing was installed. You can add the app whenever you like.",
    ),
    "invalid_browser": (
        "Start again in one browser",
        "This page was opened in another browser than the one that started the installation"
        " (or it blocks cookies), so I can't tell it was you. Nothing was installed.",
    ),
    "invalid_state": (
        "This link has expired",
        "This installation link was already used or is too old. Nothing was installed.",
    ),
    "missing_code": (
        "Slack didn't confirm the installation",
        "The answer from Slack had no code in it. Nothing was installed.",
    ),
    "invalid_code": (
        "Slack didn't confirm the installation",
        "Slack refused the installation code (it may have been used already). Nothing was"
        " installed.",
    ),
    "storage_error": (
        "The installation couldn't be saved",
        "Slack confirmed the installation, but the bot couldn't save it. Please try again in a"
        " moment.",
    ),
}
_OTHER_FAILURE = ("The installation didn't finish", "Nothing was installed.")


class WorkspaceAuthorize(AsyncAuthorize):
    """Authorizes a request with the stored installation of its workspace (refreshed first
    when rotation is on), without a round trip to Slack: the answer to a command must leave
    within 3 s, and a revoked token shows itself at the first call anyway."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **_: Any,
    ) -> AuthorizeResult | None:
        if not team_id:
            return None
        try:
            bot = await self.runtime.bot_of(team_id)
        except NotInstalled:
            log.warning("request from workspace %s, where the app is not installed", team_id)
            return None
        except SlackTokenRotationError as exc:
            log.error("token refresh for workspace %s failed: %s", team_id, type(exc).__name__)
            return None
        except Exception:  # e.g. a token the configured key cannot open
            log.exception("installation of workspace %s unusable", team_id)
            return None
        return AuthorizeResult(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            bot_user_id=bot.bot_user_id,
            bot_id=bot.bot_id,
            bot_token=bot.bot_token,
            bot_scopes=bot.bot_scopes,
            user_id=user_id,
        )


class InstallFlow(AsyncOAuthFlow):
    """Bolt's flow with our install page."""

    async def build_authorize_url(self, state: str, request: AsyncBoltRequest) -> str:
        # Bolt copies `?team=` into Slack's URL as it is: only a workspace ID may pass.
        team = (request.query.get("team") or [""])[0]
        generate = self.settings.authorize_url_generator.generate
        return generate(state=state, team=team if _WORKSPACE_ID.fullmatch(team) else None)

    async def build_install_page_html(self, url: str, request: AsyncBoltRequest) -> str:
        return _page(
            "Add Scenario Budget Bot to Slack",
            "<p>The bot answers <code>/usage</code> and <code>/budget</code>, and posts one"
            " clear alert when a Compute Unit budget is crossed.</p>"
            f'<p><a class="button" href="{html.escape(url)}">Add to Slack</a></p>'
            "<p class=small>After installing, an admin runs <code>/budget connect</code> in"
            " Slack to connect the workspace's Scenario team.</p>",
        )


def install_flow(runtime: Runtime, client: AsyncWebClient) -> InstallFlow:
    settings = runtime.settings
    assert runtime.installations is not None and settings.slack_client_secret is not None
    oauth = AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=settings.slack_authorize_url,
        installation_store=runtime.installations,
        installation_store_bot_only=True,
        state_store=OAuthStateStore(settings.budget_bot_db, settings.state_secret),
        state_expiration_seconds=STATE_LIFETIME_SECONDS,
        callback_options=AsyncCallbackOptions(success=_installed, failure=_failed),
    )
    oauth.authorize = WorkspaceAuthorize(runtime)
    return InstallFlow(client=client, settings=oauth)


async def _installed(args: AsyncSuccessArgs) -> BoltResponse:
    installation = args.installation
    team = html.escape(installation.team_name or installation.team_id or "your workspace")
    query = urlencode({"app": installation.app_id or "", "team": installation.team_id or ""})
    slack_base = args.settings.authorization_url
    open_slack = urljoin(slack_base, f"/app_redirect?{query}")
    body = _page(
        "Installed",
        f"<p>Scenario Budget Bot is now in <strong>{team}</strong>.</p>"
        "<p>Next, in Slack: an admin runs <code>/budget connect</code> to connect your"
        " Scenario team (API key and secret), then <code>/budget add 5000 monthly</code>.</p>"
        f'<p><a class="button" href="{html.escape(open_slack)}">Open Slack</a></p>',
    )
    return BoltResponse(status=200, body=body, headers=_headers(args))


async def _failed(args: AsyncFailureArgs) -> BoltResponse:
    title, text = _FAILURES.get(args.reason, _OTHER_FAILURE)
    if args.reason == "storage_error":
        log.error("installation could not be stored: %s", type(args.error).__name__)
    again = html.escape(INSTALL_PATH)
    body = _page(title, f'<p>{html.escape(text)}</p><p><a href="{again}">Start again</a></p>')
    return BoltResponse(status=args.suggested_status_code, body=body, headers=_headers(args))


_HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
_WORKSPACE_ID = re.compile(r"T[A-Z0-9]{2,20}")


def _headers(args: AsyncSuccessArgs | AsyncFailureArgs) -> dict[str, Any]:
    """The page's headers; the state cookie has served its purpose and is deleted."""
    return {**_HTML, "Set-Cookie": [args.settings.state_utils.build_set_cookie_for_deletion()]}


def broken_page() -> str:
    """What a person sees when the install flow itself failed (the database was busy, …)."""
    again = html.escape(INSTALL_PATH)
    return _page(
        "The installation didn't finish",
        "<p>Something went wrong on the bot's side, and nothing was installed. Please try"
        f' again in a moment.</p><p><a href="{again}">Start again</a></p>',
    )


def _page(title: str, content: str) -> str:
    """`title` is plain text; `content` is HTML whose variable parts are already escaped."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>{html.escape(title)} · Scenario Budget Bot</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 34rem; margin: 4rem auto; padding: 0 1rem;
  color: #1d2b3a; line-height: 1.5; }}
.button {{ display: inline-block; background: #4a154b; color: #fff; padding: .6rem 1.2rem;
  border-radius: .3rem; text-decoration: none; font-weight: 600; }}
.small {{ font-size: .9rem; color: #555; }}
</style></head>
<body><h1>{html.escape(title)}</h1>
{content}
</body></html>
"""
