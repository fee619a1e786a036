"""The HTTP face of the bot: Slack's events endpoint and a health check (SPEC §1); in Socket
Mode, the health check alone."""

from __future__ import annotations

import logging
import sqlite3

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.jobs.runtime import Runtime
from bot.slack.oauth import INSTALL_PATH, REDIRECT_PATH, broken_page
from bot.store.health import health_of
from bot.store.workspaces import list_workspaces

log = logging.getLogger(__name__)


def create_server(app: AsyncApp, runtime: Runtime) -> Starlette:
    """HTTP mode: Slack's events endpoint, the health check, and in multi-workspace mode
    the install page and the OAuth redirect."""
    handler = AsyncSlackRequestHandler(app)

    async def slack(request: Request) -> Response:
        return await handler.handle(request)

    async def install(request: Request) -> Response:
        """A person's browser, not Slack: a failure is a page that says so, never a bare 500."""
        try:
            return await handler.handle(request)
        except Exception:
            log.exception("the install flow failed")
            headers = {"Cache-Control": "no-store"}
            return HTMLResponse(broken_page(), status_code=500, headers=headers)

    routes = [Route("/slack/events", slack, methods=["POST"]), _healthz_route(runtime)]
    if app.oauth_flow is not None:  # multi-workspace mode: Bolt's OAuth flow answers these
        routes += [
            Route(INSTALL_PATH, install, methods=["GET"]),
            Route(REDIRECT_PATH, install, methods=["GET"]),
        ]
    return Starlette(routes=routes)


def create_health_server(runtime: Runtime) -> Starlette:
    """Socket Mode: Slack's events come over the socket, so only the health check is served."""
    return Starlette(routes=[_healthz_route(runtime)])


def _healthz_route(runtime: Runtime) -> Route:
    async def healthz(request: Request) -> Response:
        return JSONResponse(health_report(runtime))

    return Route("/healthz", healthz, methods=["GET"])


def health_report(runtime: Runtime) -> dict[str, object]:
    """Database reachable, Scenario's last result per workspace, the scheduler's state.

    Names causes and counts only: no token, secret or message from a remote server.
    """
    try:
        runtime.db.execute("SELECT 1").fetchone()
        db_status = "ok"
        scenario = {}
        for workspace in list_workspaces(runtime.db):
            row = health_of(runtime.db, workspace.team_id)
            if row is None:
                continue
            failing = row["consecutive_failures"] > 0
            scenario[workspace.team_id] = {
                "status": "failing" if failing else "ok",
                "consecutive_failures": row["consecutive_failures"],
                "cause": row["last_cause"] if failing else None,
                "last_ok_at": row["last_ok_at"],
            }
    except sqlite3.Error:
        log.exception("health check: database unavailable")
        db_status, scenario = "unavailable", {}
    return {"db": db_status, "scenario": scenario, "scheduler": runtime.scheduler_status()}
