"""The App Home tab (SPEC §7): the workspace's budgets with spend bars, the last alerts, and
buttons to add a budget and open the digest settings.

The tab is published whenever someone opens it (and after a change made from it). Spend
comes from Scenario through the same reads as `/budget list`; when Scenario cannot be read
the tab says so and still lists the budgets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.messages.budgets import watch_summary
from bot.messages.home import RECENT_ALERTS, home_view
from bot.messages.mrkdwn import Json
from bot.reports.status import read_statuses, statuses_without_spend, watch_status
from bot.store import alerts
from bot.store.budgets import list_budgets
from bot.store.digests import list_digests
from bot.store.workspaces import NotConnected

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.deps import Deps

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# The views (pure)
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Slack side
# ---------------------------------------------------------------------------------------------


async def build_home(deps: Deps, team_id: str) -> Json:
    now = deps.clock()
    tz = deps.timezone_of(team_id)
    budgets = list_budgets(deps.db, team_id)
    error: str | None = None
    try:
        client = await deps.scenario_for(team_id)
        statuses, failure = await read_statuses(deps.db, client, budgets, tz, now)
        error = failure.message if failure is not None else None
    except NotConnected:
        statuses = statuses_without_spend(deps.db, budgets)
        error = "not connected yet — an admin runs /budget connect"
    except Exception as exc:  # e.g. no credentials: still show the budgets
        log.warning("Home tab: Scenario unreadable: %s", type(exc).__name__)
        statuses, error = statuses_without_spend(deps.db, budgets), "not configured"
    return home_view(
        statuses=statuses,
        scenario_error=error,
        recent=alerts.recent_alerts(deps.db, team_id, limit=RECENT_ALERTS),
        labels={b.id: b.label for b in budgets},
        digests=list_digests(deps.db, team_id),
        tz=tz,
        now=now,
        watch=watch_summary(*watch_status(deps.db, team_id)),
    )


async def publish_home(client: AsyncWebClient, deps: Deps, team_id: str, user_id: str) -> None:
    view = await build_home(deps, team_id)
    try:
        await client.views_publish(user_id=user_id, view=view)
    except SlackApiError as exc:
        log.warning("could not publish the Home tab of %s: %s", user_id, exc)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: Json, body: Json, client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab (turned off in the manifest) has nothing to publish
        team_id = body.get("team_id") or event.get("view", {}).get("team_id") or ""
        await publish_home(client, deps, team_id, event["user"])
