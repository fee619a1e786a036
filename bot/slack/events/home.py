"""The App Home tab (SPEC §7): the workspace's budgets with spend bars, the last alerts, and
buttons to add a budget and open the digest settings.

The tab is published whenever someone opens it (and after a change made from it). It is
built from the store alone, so it opens at once: spend, % used and forecast are what the
latest check saw (`bot.store.snapshots`, "as of" its time); a budget that check has not
read yet, or read in an earlier period or before an edit, says so instead of showing an
old figure. When that check could not read Scenario, the tab says so too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.messages.budgets import watch_summary
from bot.messages.home import RECENT_ALERTS, home_view
from bot.messages.mrkdwn import Json
from bot.reports.status import statuses_from_snapshots, watch_status
from bot.store import alerts
from bot.store.budgets import list_budgets
from bot.store.digests import list_digests
from bot.store.health import health_of
from bot.store.workspaces import NotConnected

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.slack.deps import Deps

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Slack side
# ---------------------------------------------------------------------------------------------


def build_home(deps: Deps, team_id: str) -> Json:
    """The tab from the store alone: it never waits for Scenario."""
    now = deps.clock()
    tz = deps.timezone_of(team_id)
    budgets = list_budgets(deps.db, team_id)
    return home_view(
        statuses=statuses_from_snapshots(deps.db, budgets, tz, now),
        scenario_error=_scenario_problem(deps, team_id),
        recent=alerts.recent_alerts(deps.db, team_id, limit=RECENT_ALERTS),
        labels={b.id: b.label for b in budgets},
        digests=list_digests(deps.db, team_id),
        tz=tz,
        now=now,
        watch=watch_summary(*watch_status(deps.db, team_id)),
        check_every=deps.runtime.check_settings.interval,
    )


def _scenario_problem(deps: Deps, team_id: str) -> str | None:
    """Why the figures may be missing or old, from what is stored: no connection, or the
    latest check could not read Scenario."""
    try:
        deps.runtime.connection_for(team_id)
    except NotConnected:
        return "not connected yet — an admin runs /budget connect"
    except Exception as exc:  # e.g. no credentials: still show the budgets
        log.warning("Home tab: no Scenario connection: %s", type(exc).__name__)
        return "not configured"
    health = health_of(deps.db, team_id)
    if health is not None and health["consecutive_failures"]:
        return str(health["last_error"] or health["last_cause"] or "unavailable")
    return None


async def publish_home(client: AsyncWebClient, deps: Deps, team_id: str, user_id: str) -> None:
    view = build_home(deps, team_id)
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
