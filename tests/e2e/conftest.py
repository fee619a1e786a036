"""The real app over real loopback HTTP: the ASGI server, a fake Slack Web API that records
every call, the Scenario simulator, and requests signed like Slack signs them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier
from sqlite_utils import Database

from bot.asgi_server import serve_app
from bot.config import load_settings
from bot.jobs.runtime import Runtime
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator, serve_simulator
from bot.sim.team import SyntheticTeam
from bot.slack.app import create_app
from bot.slack.deps import Deps
from bot.slack.views import budget_modal
from bot.web import create_server

SIGNING_SECRET = "test-signing-secret"
ANCHOR = datetime(2026, 11, 26, 12, tzinfo=UTC)
TEAM_ID = "T1"
ADMIN, MEMBER, CONFIGURED_ADMIN = "U_ADMIN", "U_MEMBER", "U_CONFIGURED"
TEAM = SyntheticTeam.build(7, ANCHOR)


@dataclass
class Bot:
    url: str
    slack: slack_api.FakeSlack
    slack_origin: str
    simulator: Simulator
    clock: ManualClock
    deps: Deps
    http: httpx.AsyncClient
    hooks: int = field(default=0)

    @property
    def db(self) -> Database:
        return self.deps.db

    def new_hook(self) -> str:
        self.hooks += 1
        return f"hook{self.hooks}"

    async def post(
        self, body: str, content_type: str, *, secret: str = SIGNING_SECRET, age: int = 0
    ) -> httpx.Response:
        return await signed_post(self.http, self.url, body, content_type, secret=secret, age=age)

    async def command(
        self,
        command: str,
        text: str = "",
        *,
        user: str = ADMIN,
        channel: str = "C_GENERAL",
        **signing: Any,
    ) -> tuple[httpx.Response, str]:
        """Send a slash command; returns the HTTP answer and its response_url hook name."""
        hook = self.new_hook()
        form = {
            "command": command,
            "text": text,
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "response_url": f"{self.slack_origin}/response/{hook}",
            "trigger_id": f"trigger-{hook}",
            "api_app_id": "A_BOT",
        }
        answer = await self.post(urlencode(form), "application/x-www-form-urlencoded", **signing)
        return answer, hook

    async def interact(self, payload: dict[str, Any], **signing: Any) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", **signing)

    async def submit_view(
        self, view: dict[str, Any], values: dict[str, Any], *, user: str = ADMIN, view_id: str
    ) -> dict[str, Any]:
        """Submit a form the bot opened, as Slack does; the bot's answer (`{}`: it closes)."""
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "team_id": TEAM_ID, "username": user.lower()},
            "api_app_id": "A_BOT",
            "token": "legacy-token-unused",
            "trigger_id": f"trigger-{self.new_hook()}",
            "view": {
                **view,
                "id": view_id,
                "team_id": TEAM_ID,
                "state": {"values": values},
                "hash": "1700000000.abc",
            },
            "response_urls": [],
        }
        answer = await self.interact(payload)
        assert answer.status_code == 200
        return answer.json() if answer.content else {}

    async def event(self, event: dict[str, Any]) -> httpx.Response:
        body = json.dumps(
            {
                "type": "event_callback",
                "team_id": TEAM_ID,
                "api_app_id": "A_BOT",
                "event": event,
                "event_id": f"Ev{self.new_hook()}",
                "event_time": int(time.time()),
            }
        )
        return await self.post(body, "application/json")

    def responses(self, hook: str) -> list[dict[str, Any]]:
        return [body for name, body in self.slack.responses if name == hook]

    async def wait_for(
        self, check: Callable[[], Any], *, within: float = 10.0, what: str = "condition"
    ) -> Any:
        return await wait_for(check, within=within, what=what)

    async def response(self, hook: str, *, within: float = 10.0) -> dict[str, Any]:
        found = await self.wait_for(
            lambda: self.responses(hook), within=within, what=f"response_url {hook}"
        )
        return found[-1]


AsyncBot = Callable[..., Awaitable[Bot]]


async def signed_post(
    http: httpx.AsyncClient,
    url: str,
    body: str,
    content_type: str,
    *,
    secret: str = SIGNING_SECRET,
    age: int = 0,
) -> httpx.Response:
    """POST to the bot's /slack/events, signed as Slack signs (`age` seconds ago)."""
    timestamp = str(int(time.time()) - age)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return await http.post(
        f"{url}/slack/events",
        content=body,
        headers={
            "content-type": content_type,
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature,
        },
    )


async def wait_for(
    check: Callable[[], Any], *, within: float = 10.0, what: str = "condition"
) -> Any:
    """Poll until `check()` is truthy (no fixed sleeps: the deadline only bounds it)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def fresh_form_previews(monkeypatch: pytest.MonkeyPatch) -> None:
    """The form's preview caches are module-wide, as in a server: each test's app starts
    with them empty, so that no test counts on (or is miscounted by) another's reads. The
    pause before a preview is none, but for the tests about it, which set it themselves."""
    monkeypatch.setattr(budget_modal, "_histories", {})
    monkeypatch.setattr(budget_modal, "_previews", {})
    monkeypatch.setattr(budget_modal, "_updated", {})
    monkeypatch.setattr(budget_modal, "PREVIEW_AFTER", 0.0)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    async with running_bot(tmp_path) as running:
        yield running


@asynccontextmanager
async def running_bot(tmp_path: Path, **settings: Any) -> AsyncIterator[Bot]:
    """The app over HTTP against fake Slack and Scenario servers; ``settings`` override
    the defaults (e.g. ``scenario_sdk_api_key=None`` for a bot without credentials)."""
    slack = slack_api.FakeSlack(team_id=TEAM_ID)
    slack.users.update(
        {
            ADMIN: {"name": "ada", "is_admin": True, "tz": "Europe/Paris"},
            MEMBER: {"name": "mo", "is_admin": False},
            CONFIGURED_ADMIN: {"name": "cy", "is_admin": False},
        }
    )
    clock = ManualClock(ANCHOR)
    simulator = Simulator(TEAM, clock=clock)
    async with (
        serve_simulator(simulator) as scenario_url,
        serve_app(slack_api.create_app(slack)) as slack_origin,
    ):
        slack.origin = slack_origin
        defaults: dict[str, Any] = dict(
            slack_bot_token="xoxb-test",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=f"{slack_origin}/api/",
            scenario_base_url=scenario_url,
            scenario_sdk_api_key="test-key",
            scenario_sdk_api_secret="test-secret",
            scenario_team_id=TEAM.team_id,
            scenario_app_url="https://app.example",
            budget_bot_db=tmp_path / "bot.db",
            budget_bot_admins=CONFIGURED_ADMIN,
            budget_bot_timezone="Europe/Paris",
        )
        runtime = Runtime.open(load_settings(_env_file=None, **(defaults | settings)))
        app, deps = create_app(runtime, clock=clock)
        async with (
            serve_app(create_server(app, runtime)) as url,
            httpx.AsyncClient(timeout=10) as http,
        ):
            yield Bot(url, slack, slack_origin, simulator, clock, deps, http)
        await runtime.aclose()
