"""Multi-workspace mode end to end, over loopback: the install flow through the fake Slack's
consent page and `oauth.v2.access`, two workspaces T1 and T2 each with its own token and its
own Scenario team (two simulated teams behind one base URL), and what must never cross
between them."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from sqlite_utils import Database

from bot.asgi_server import serve_app
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.config import load_settings
from bot.crypto import new_key
from bot.jobs.runtime import Runtime
from bot.jobs.scheduler import Scheduler
from bot.messages.alerts import ACTION_SNOOZE
from bot.messages.connect import BLOCK_KEY, BLOCK_SECRET, BLOCK_TEAM, CONNECT_CALLBACK
from bot.messages.modals import BLOCK_LIMIT
from bot.messages.mrkdwn import cu
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator, serve_simulators
from bot.sim.team import SyntheticTeam
from bot.slack.app import create_app
from bot.slack.deps import Deps
from bot.slack.events.home import build_home
from bot.slack.oauth import BOT_SCOPES
from bot.slack.views import budget_modal
from bot.store import audit, snoozes
from bot.store.budgets import Budget, NewBudget, create_budget, list_budgets
from bot.store.snapshots import snapshots_of
from bot.web import create_server
from tests.e2e.conftest import SIGNING_SECRET, signed_post, wait_for
from tests.e2e.test_backtest import preview_of, reads_of
from tests.e2e.test_modal import state_of

ANCHOR = datetime(2026, 11, 26, 12, tzinfo=UTC)
TEAMS = {
    "T1": SyntheticTeam.build(7, ANCHOR),
    "T2": SyntheticTeam.build(11, ANCHOR),
}
CREDENTIALS = {"T1": ("key-one", "secret-one"), "T2": ("key-two", "secret-two")}
ADMINS = {"T1": "U_ADMIN1", "T2": "U_ADMIN2"}
MEMBER = "U_MEMBER"
CHANNELS = {"T1": "C01SPEND", "T2": "C02SPEND"}

Json = dict[str, Any]


@dataclass
class Fleet:
    url: str
    slack: slack_api.FakeSlack
    slack_origin: str
    simulators: dict[str, Simulator]
    clock: ManualClock
    runtime: Runtime
    deps: Deps
    db_path: Path
    http: httpx.AsyncClient
    hooks: int = field(default=0)

    @property
    def db(self) -> Database:
        return self.runtime.db

    def new_hook(self) -> str:
        self.hooks += 1
        return f"hook{self.hooks}"

    async def install(self, team: str) -> httpx.Response:
        """A person opens the install page, presses "Add to Slack", allows on Slack's
        consent page, and is sent back to the bot: the page they end on."""
        page = await self.open_install_page()
        authorize = authorize_link(page.text)
        assert authorize.startswith(f"{self.slack_origin}/oauth/v2/authorize?")
        return await self.http.get(f"{authorize}&team={team}", follow_redirects=True)

    async def open_install_page(self) -> httpx.Response:
        page = await self.http.get(f"{self.url}/slack/install")
        assert page.status_code == 200, page.text
        # The state cookie is `Secure`: browsers send it to http://localhost, httpx does not.
        name, _, rest = page.headers["set-cookie"].partition("=")
        self.http.cookies.set(name, rest.split(";")[0])
        return page

    async def post(self, body: str, content_type: str) -> httpx.Response:
        return await signed_post(self.http, self.url, body, content_type)

    async def command(
        self, team: str, command: str, text: str = "", *, user: str | None = None
    ) -> Json:
        """A slash command from `team`; the last answer it got through its response_url."""
        hook = self.new_hook()
        form = {
            "command": command,
            "text": text,
            "team_id": team,
            "team_domain": team.lower(),
            "channel_id": CHANNELS[team],
            "channel_name": "spend",
            "user_id": user or ADMINS[team],
            "user_name": "someone",
            "response_url": f"{self.slack_origin}/response/{hook}",
            "trigger_id": f"trigger-{hook}",
            "api_app_id": "A_BOT",
        }
        answer = await self.post(urlencode(form), "application/x-www-form-urlencoded")
        assert answer.status_code == 200, answer.text
        return await self.response(hook)

    async def interact(self, payload: Json) -> httpx.Response:
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )

    async def until(self, check: Any, what: str) -> None:
        await wait_for(check, what=what)

    async def uninstalled(self, team: str, event: Json | None = None) -> None:
        """The event reaches the bot; Bolt answers at once and handles it just after."""
        answer = await self.event(team, event or {"type": "app_uninstalled"})
        assert answer.status_code == 200
        await self.until(lambda: self.runtime.connected_team(team) is None, "the uninstall")

    async def event(self, team: str, event: Json) -> httpx.Response:
        body = json.dumps(
            {
                "type": "event_callback",
                "team_id": team,
                "api_app_id": "A_BOT",
                "event": event,
                "event_id": f"Ev{self.new_hook()}",
                "event_time": int(time.time()),
            }
        )
        return await self.post(body, "application/json")

    async def response(self, hook: str) -> Json:
        found = await wait_for(
            lambda: [body for name, body in self.slack.responses if name == hook],
            what=f"an answer on {hook}",
        )
        return found[-1]

    async def connect(self, team: str, credentials: tuple[str, str] | None = None) -> Json:
        """`/budget connect`, then the form submitted: the view the bot ends on."""
        opened = len(self.slack.calls_to("views.open"))
        await self.post_connect_command(team)
        call = await self.wait_call("views.open", after=opened)
        assert call.token == self.token_of(team)
        key, secret = credentials or CREDENTIALS[team]
        updates = len(self.slack.calls_to("views.update"))
        answer = await self.submit_connect(team, call.args["view"], key, secret)
        assert answer.get("response_action") == "update"
        update = await self.wait_call("views.update", after=updates)
        assert update.token == self.token_of(team)
        return update.args["view"]

    async def post_connect_command(self, team: str) -> None:
        await self.post_command(team, "/budget", "connect")

    async def post_command(self, team: str, command: str, text: str) -> None:
        """A command whose answer is not waited for (it opens a form)."""
        form = {
            "command": command,
            "text": text,
            "team_id": team,
            "channel_id": CHANNELS[team],
            "user_id": ADMINS[team],
            "response_url": f"{self.slack_origin}/response/{self.new_hook()}",
            "trigger_id": f"trigger-{self.new_hook()}",
        }
        answer = await self.post(urlencode(form), "application/x-www-form-urlencoded")
        assert answer.status_code == 200

    async def submit_connect(
        self, team: str, view: Json, key: str, secret: str, *, user: str | None = None
    ) -> Json:
        values = {
            BLOCK_KEY: {"value": {"type": "plain_text_input", "value": key}},
            BLOCK_SECRET: {"value": {"type": "plain_text_input", "value": secret}},
            BLOCK_TEAM: {"value": {"type": "plain_text_input", "value": TEAMS[team].team_id}},
        }
        payload = {
            "type": "view_submission",
            "team": {"id": team, "domain": team.lower()},
            "user": {"id": user or ADMINS[team], "team_id": team},
            "api_app_id": "A_BOT",
            "trigger_id": f"trigger-{self.new_hook()}",
            "view": {**view, "id": f"V_{team}", "team_id": team, "state": {"values": values}},
        }
        answer = await self.interact(payload)
        assert answer.status_code == 200, answer.text
        return answer.json() if answer.content else {}

    async def wait_call(self, method: str, *, after: int) -> slack_api.RecordedCall:
        calls = await wait_for(lambda: self.slack.calls_to(method)[after:], what=f"a {method} call")
        return calls[0]

    def token_of(self, team: str) -> str:
        tokens = [t for t, owner in self.slack.tokens.items() if owner == team]
        assert len(tokens) == 1, tokens
        return tokens[0]

    def budget(self, team: str, limit: float = 100) -> Budget:
        """A rolling-24h budget on the team's runaway key, crossed at ANCHOR."""
        return create_budget(
            self.db,
            NewBudget(
                workspace_id=team,
                period=PeriodKind.ROLLING_24H,
                limit_cu=limit,
                channel_id=CHANNELS[team],
                created_by=ADMINS[team],
                scope=Scope(ScopeKind.KEY, TEAMS[team].spike.user_id),
                scope_name="Runaway key",
            ),
            now=ANCHOR,
        )

    async def scheduled_check(self) -> None:
        """What the scheduler runs every interval: a check cycle, then the delivery."""
        await Scheduler(self.runtime, clock=self.clock).check()


def authorize_link(page: str) -> str:
    marker = 'class="button" href="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)].replace("&amp;", "&")


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    slack = slack_api.FakeSlack(team_id="T1")
    slack.add_workspace("T1", "Acme <Art> & Co")
    slack.add_workspace("T2", "Globex")
    slack.channel_teams.update({channel: team for team, channel in CHANNELS.items()})
    slack.users.update(
        {
            ADMINS["T1"]: {"name": "ada", "is_admin": True},
            ADMINS["T2"]: {"name": "bo", "is_admin": True},
            MEMBER: {"name": "mo", "is_admin": False},
        }
    )
    clock = ManualClock(ANCHOR)
    simulators = {
        team: Simulator(TEAMS[team], clock=clock, api_key=key, api_secret=secret)
        for team, (key, secret) in CREDENTIALS.items()
    }
    db_path = tmp_path / "bot.db"
    async with (
        serve_simulators(list(simulators.values())) as scenario_url,
        serve_app(slack_api.create_app(slack)) as slack_origin,
    ):
        slack.origin = slack_origin
        settings = load_settings(
            _env_file=None,
            slack_client_id=slack.client_id,
            slack_client_secret=slack.client_secret,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=f"{slack_origin}/api/",
            scenario_base_url=scenario_url,
            scenario_app_url="https://app.example",
            budget_bot_db=db_path,
            budget_bot_secret_key=new_key(),
        )
        runtime = Runtime.open(settings)
        app, deps = create_app(runtime, clock=clock)
        async with (
            serve_app(create_server(app, runtime)) as url,
            httpx.AsyncClient(timeout=10) as http,
        ):
            slack.redirect_url = f"{url}/slack/oauth_redirect"
            yield Fleet(url, slack, slack_origin, simulators, clock, runtime, deps, db_path, http)
        await runtime.aclose()


def database_bytes(path: Path) -> bytes:
    """The database as it is on disk, write-ahead log included."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


# ---------------------------------------------------------------------------------------------
# Installing
# ---------------------------------------------------------------------------------------------


async def test_installing_two_workspaces_stores_each_its_own_token_sealed(fleet: Fleet) -> None:
    first = await fleet.install("T1")
    second = await fleet.install("T2")
    assert first.status_code == 200 and "Installed" in first.text, (first.url, first.text)
    # The workspace name is Slack's data: escaped in the page.
    assert "Acme &lt;Art&gt; &amp; Co" in first.text and "<Art>" not in first.text
    assert "Globex" in second.text and "/budget connect" in second.text
    rows = {r["team_id"]: r for r in fleet.db.query("SELECT * FROM slack_installations")}
    assert set(rows) == {"T1", "T2"}
    assert rows["T1"]["installer_user_id"] == "U_INSTALLER"
    for team in ("T1", "T2"):
        bot = await fleet.runtime.bot_of(team)
        assert bot.bot_token == fleet.token_of(team)
    on_disk = database_bytes(fleet.db_path)
    for token in fleet.slack.tokens:
        assert token.encode() not in on_disk


async def test_the_install_page_issues_a_state_and_a_matching_cookie(fleet: Fleet) -> None:
    page = await fleet.open_install_page()
    link = urlparse(authorize_link(page.text))
    query = parse_qs(link.query)
    state = query["state"][0]
    assert query["client_id"] == [fleet.slack.client_id]
    assert sorted(query["scope"][0].split(",")) == sorted(BOT_SCOPES)
    assert state in page.headers["set-cookie"]
    assert "Add to Slack" in page.text


@pytest.mark.parametrize("tamper", ["replayed", "forged", "expired", "no cookie", "cancelled"])
async def test_a_bad_state_gets_a_clear_page_and_stores_nothing(fleet: Fleet, tamper: str) -> None:
    page = await fleet.open_install_page()
    state = parse_qs(urlparse(authorize_link(page.text)).query)["state"][0]
    redirect = f"{fleet.url}/slack/oauth_redirect"
    if tamper == "replayed":
        ok = await fleet.http.get(
            redirect, params={"code": fleet.slack.issue_code("T1"), "state": state}
        )
        assert "Installed" in ok.text
        fleet.db.execute("DELETE FROM slack_installations")
        answer = await fleet.http.get(
            redirect, params={"code": fleet.slack.issue_code("T1"), "state": state}
        )
        expected = "already used or is too old"
    elif tamper == "forged":
        # The nonce and expiry of a real state (still in the database), another signature:
        # only the HMAC can tell.
        nonce, expires, signature = state.split(".")
        forged = f"{nonce}.{expires}.{'0' * len(signature)}"
        fleet.http.cookies.set("slack-app-oauth-state", forged)
        answer = await fleet.http.get(
            redirect, params={"code": fleet.slack.issue_code("T1"), "state": forged}
        )
        expected = "already used or is too old"
    elif tamper == "expired":
        fleet.db.execute("UPDATE oauth_states SET expires_at = expires_at - 601")
        answer = await fleet.http.get(
            redirect, params={"code": fleet.slack.issue_code("T1"), "state": state}
        )
        expected = "already used or is too old"
    elif tamper == "no cookie":
        fleet.http.cookies.clear()
        answer = await fleet.http.get(
            redirect, params={"code": fleet.slack.issue_code("T1"), "state": state}
        )
        expected = "another browser"
    else:
        answer = await fleet.http.get(redirect, params={"error": "access_denied", "state": state})
        expected = "Nothing was installed"
    assert answer.status_code in (200, 400, 401)
    assert expected in answer.text and "Start again" in answer.text
    assert fleet.db.execute("SELECT count(*) FROM slack_installations").fetchone()[0] == 0
    cleared = answer.headers.get("set-cookie", "")
    if tamper != "no cookie":  # the state cookie has served its purpose: cleared
        assert cleared.startswith("slack-app-oauth-state=deleted;") and "1970" in cleared


# ---------------------------------------------------------------------------------------------
# Connecting and using each workspace
# ---------------------------------------------------------------------------------------------


async def installed_and_connected(fleet: Fleet) -> None:
    for team in ("T1", "T2"):
        await fleet.install(team)
        view = await fleet.connect(team)
        assert "Connected to Scenario" in json.dumps(view)


async def test_before_connecting_commands_say_how_and_checks_skip_quietly(fleet: Fleet) -> None:
    await fleet.install("T1")
    usage = await fleet.command("T1", "/usage")
    listing = await fleet.command("T1", "/budget", "list")
    for answer in (usage, listing):
        assert "/budget connect" in answer["text"]
    fleet.budget("T1")
    await fleet.scheduled_check()
    assert sum(len(s.requests) for s in fleet.simulators.values()) == 0
    assert fleet.slack.all_messages() == []  # no "Scenario is down" notice either


async def test_each_workspace_connects_its_own_team_and_uses_its_own_token(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    for team, other in (("T1", "T2"), ("T2", "T1")):
        before = len(fleet.simulators[other].requests)
        calls = len(fleet.slack.calls)
        answer = await fleet.command(team, "/usage", "7d")
        assert "CU" in answer["text"]
        opened = len(fleet.slack.calls_to("views.open"))
        await fleet.post_command(team, "/budget", "add")  # opens the form: a Slack call
        await fleet.wait_call("views.open", after=opened)
        assert len(fleet.simulators[other].requests) == before, "read the other team's usage"
        assert fleet.simulators[team].requests
        # Whatever Slack call the command made, it made with its own workspace's token.
        tokens = {c.token for c in fleet.slack.calls[calls:] if c.method != "oauth.v2.access"}
        assert tokens == {fleet.token_of(team)}
    # Projects only T2's team has never appear in T1's answer.
    only_t2 = {p.name for p in TEAMS["T2"].projects} - {p.name for p in TEAMS["T1"].projects}
    t1 = json.dumps(await fleet.command("T1", "/usage", "7d"))
    assert only_t2 and not any(name in t1 for name in only_t2)


async def test_the_connection_is_checked_before_it_is_saved(fleet: Fleet) -> None:
    await fleet.install("T1")
    view = await fleet.connect("T1", ("key-one", "not-the-secret"))
    text = json.dumps(view)
    assert "refused this key and secret" in text
    assert "not-the-secret" not in text and view["callback_id"] == CONNECT_CALLBACK
    assert fleet.runtime.connected_team("T1") is None
    assert "/budget connect" in (await fleet.command("T1", "/usage"))["text"]


async def test_only_admins_connect(fleet: Fleet) -> None:
    await fleet.install("T1")
    opened = len(fleet.slack.calls_to("views.open"))
    await fleet.post_connect_command("T1")
    view = (await fleet.wait_call("views.open", after=opened)).args["view"]
    answer = await fleet.submit_connect("T1", view, *CREDENTIALS["T1"], user=MEMBER)
    assert answer["response_action"] == "errors"
    assert fleet.runtime.connected_team("T1") is None


async def test_only_admins_disconnect(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    answer = await fleet.command("T1", "/budget", "disconnect", user=MEMBER)
    assert "admin" in answer["text"]
    assert fleet.runtime.connected_team("T1") is not None


async def test_the_install_link_passes_only_a_workspace_id_to_slack(fleet: Fleet) -> None:
    for team, kept in (("T0123ABCD", True), ("T1&user_scope=admin", False)):
        page = await fleet.http.get(f"{fleet.url}/slack/install", params={"team": team})
        query = parse_qs(urlparse(authorize_link(page.text)).query)
        assert ("team" in query and query["team"] == [team]) is kept, query
        assert "admin" not in query.get("user_scope", [""])[0]


async def test_an_install_the_database_cannot_take_gets_a_page_saying_so(
    fleet: Fleet,
) -> None:
    page = await fleet.open_install_page()
    consent = await fleet.http.get(f"{authorize_link(page.text)}&team=T1")
    fleet.db.conn.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        answer = await fleet.http.get(consent.headers["location"])
    finally:
        fleet.db.conn.execute("ROLLBACK")
    assert answer.status_code == 500 and "Internal Server Error" not in answer.text
    assert "nothing was installed" in answer.text and "Start again" in answer.text


async def test_a_token_no_key_opens_holds_up_only_its_own_workspace(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    fleet.budget("T1")
    fleet.budget("T2")
    fleet.db.execute("UPDATE slack_installations SET bot_token = 'not-sealed' WHERE team_id = 'T1'")
    await fleet.scheduled_check()
    assert fleet.slack.top_level(CHANNELS["T1"]) == []
    assert len(fleet.slack.top_level(CHANNELS["T2"])) == 1
    [waiting] = fleet.db.execute(
        "SELECT status, last_error FROM outbox WHERE workspace_id = 'T1'"
    ).fetchall()
    # Failed on the workspace's credentials: sent after all once its token works again.
    assert waiting == ("failed", "token_unreadable")
    await fleet.install("T1")  # installed again: a token that opens
    fleet.clock.advance(timedelta(minutes=3))  # past the failed attempt's lease
    await fleet.runtime.deliver(fleet.clock)
    assert len(fleet.slack.top_level(CHANNELS["T1"])) == 1


async def test_a_connection_form_from_another_workspace_changes_nothing(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    opened = len(fleet.slack.calls_to("views.open"))
    await fleet.post_connect_command("T1")
    view = (await fleet.wait_call("views.open", after=opened)).args["view"]
    # T2's admin submits T1's form (its private_metadata names T1) from T2.
    answer = await fleet.submit_connect("T2", view, "key-one", "secret-one")
    assert answer["response_action"] == "errors"
    assert fleet.runtime.connection_for("T2").api_key == "key-two"


async def test_after_a_new_key_the_forms_preview_reads_the_history_again(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    opened = len(fleet.slack.calls_to("views.open"))
    await fleet.post_command("T1", "/budget", "add")
    form = (await fleet.wait_call("views.open", after=opened)).args["view"]
    scenario = fleet.simulators["T1"]

    async def preview() -> str:
        """The limit typed in T1's form; the preview the form then shows."""
        updates = len(fleet.slack.calls_to("views.update"))
        view = {**form, "id": "V_FORM", "state": {"values": state_of(form, limit="12000")}}
        answer = await fleet.interact(
            {
                "type": "block_actions",
                "team": {"id": "T1", "domain": "t1"},
                "user": {"id": ADMINS["T1"], "team_id": "T1"},
                "api_app_id": "A_BOT",
                "container": {"type": "view", "view_id": "V_FORM"},
                "view": view,
                "actions": [
                    {"type": "plain_text_input", "block_id": BLOCK_LIMIT, "action_id": "limit"}
                ],
            }
        )
        assert answer.status_code == 200
        shown = (await fleet.wait_call("views.update", after=updates)).args["view"]
        await wait_for(lambda: not budget_modal._background, what="the preview's reads")
        return preview_of(shown)

    first = await preview()
    usages = scenario.count("/v1/usages")
    assert await preview() == first and scenario.count("/v1/usages") == usages  # one history
    # The key is replaced (rotated, say): what the old key read is not shown again.
    scenario.api_key = "key-one-rotated"
    await fleet.connect("T1", ("key-one-rotated", "secret-one"))
    usages = scenario.count("/v1/usages")
    again = await preview()
    assert scenario.count("/v1/usages") - usages == reads_of(again) > 0
    assert again == first  # the same team's spend, read afresh


async def test_secrets_are_never_in_the_database_file_in_clear(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    fleet.budget("T1")
    await fleet.scheduled_check()
    on_disk = database_bytes(fleet.db_path)
    assert on_disk
    for key, secret in CREDENTIALS.values():
        assert secret.encode() not in on_disk and key.encode() not in on_disk
    for token in fleet.slack.tokens:
        assert token.encode() not in on_disk
    # Disconnecting forgets them; the audit trail keeps who did what, not the secrets.
    answer = await fleet.command("T1", "/budget", "disconnect")
    assert "Disconnected" in answer["text"]
    assert fleet.runtime.connected_team("T1") is None
    actions = [e.action for e in audit.history(fleet.db, "T1")]
    assert "connect" in actions and "disconnect" in actions
    assert "secret-one" not in json.dumps([e.after for e in audit.history(fleet.db, "T1")])


async def test_budgets_alert_in_their_own_workspace_only(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    fleet.budget("T1")
    fleet.budget("T2")
    await fleet.scheduled_check()
    for team in ("T1", "T2"):
        [message] = fleet.slack.top_level(CHANNELS[team])
        [post] = [
            c
            for c in fleet.slack.calls_to("chat.postMessage")
            if c.args.get("channel") == CHANNELS[team] and not c.args.get("thread_ts")
        ]
        assert post.token == fleet.token_of(team)
        assert "Runaway key" in message.text or message.blocks


# ---------------------------------------------------------------------------------------------
# Isolation
# ---------------------------------------------------------------------------------------------


async def test_each_home_shows_only_its_own_workspaces_check(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    budgets = {team: fleet.budget(team, limit=10**9) for team in ("T1", "T2")}
    await fleet.scheduled_check()
    seen = {
        team: cu(
            TEAMS[team].cu_between(
                ANCHOR - timedelta(hours=24), ANCHOR, user_ids=[TEAMS[team].spike.user_id]
            )
        )
        for team in ("T1", "T2")
    }
    assert seen["T1"] != seen["T2"]  # else the check below proves nothing
    for team, other in (("T1", "T2"), ("T2", "T1")):
        assert set(snapshots_of(fleet.db, team)) == {budgets[team].id}
        home = json.dumps(build_home(fleet.deps, team), ensure_ascii=False)
        assert f"*{seen[team]}* of" in home
        assert seen[other] not in home and f"#{budgets[other].id} " not in home


async def test_t2_cannot_touch_t1_budgets_by_id(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    budget = fleet.budget("T1")
    before = list_budgets(fleet.db, "T1")
    for text in (
        f"remove {budget.id}",
        f"edit {budget.id} 5k",
        f"snooze {budget.id} 4h",
        f"history {budget.id}",
    ):
        answer = await fleet.command("T2", "/budget", text)
        assert f"no budget #{budget.id} in this workspace" in answer["text"], text
    assert list_budgets(fleet.db, "T1") == before
    assert snoozes.snoozed_until(fleet.db, budget.id) is None
    assert all(e.target != f"budget:{budget.id}" for e in audit.history(fleet.db, "T2"))
    assert [e.action for e in audit.history(fleet.db, "T1")].count("snooze") == 0


async def test_a_t2_budget_naming_a_t1_channel_never_posts_there(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    answer = await fleet.command(
        "T2", "/budget", f"add 100 24h key:{TEAMS['T2'].spike.user_id} <#{CHANNELS['T1']}|spend>"
    )
    # To T2's token the channel does not exist: the add says so and saves nothing.
    assert f"I can't see <#{CHANNELS['T1']}>" in answer["text"], answer["text"]
    assert list_budgets(fleet.db, "T2") == [] and list_budgets(fleet.db, "T1") == []
    # One saved anyway (before the channel check existed): its alerts never reach T1.
    budget = create_budget(
        fleet.db,
        NewBudget(
            "T2",
            PeriodKind.ROLLING_24H,
            100,
            CHANNELS["T1"],
            ADMINS["T2"],
            scope=Scope(ScopeKind.KEY, TEAMS["T2"].spike.user_id),
        ),
        now=ANCHOR,
    )
    await fleet.scheduled_check()
    assert fleet.slack.top_level(CHANNELS["T1"]) == []
    tried = [
        c
        for c in fleet.slack.calls_to("chat.postMessage")
        if c.args["channel"] == budget.channel_id
    ]
    assert tried and {c.token for c in tried} == {fleet.token_of("T2")}


async def test_t2_cannot_press_t1_alert_buttons(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    budget = fleet.budget("T1")
    await fleet.scheduled_check()
    [message] = fleet.slack.top_level(CHANNELS["T1"])
    actions = next(b for b in message.blocks if b["type"] == "actions")
    button = next(e for e in actions["elements"] if e["action_id"] == ACTION_SNOOZE)
    hook = fleet.new_hook()
    payload = {
        "type": "block_actions",
        "team": {"id": "T2", "domain": "t2"},
        "user": {"id": ADMINS["T2"], "team_id": "T2"},
        "api_app_id": "A_BOT",
        "trigger_id": f"trigger-{hook}",
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
        "channel": {"id": message.channel},
        "message": message.as_json(with_metadata=False),
        "response_url": f"{fleet.slack_origin}/response/{hook}",
        "actions": [
            {
                "type": "button",
                "action_id": ACTION_SNOOZE,
                "block_id": actions["block_id"],
                "value": button["value"],
                "action_ts": "1700000100.000001",
            }
        ],
    }
    answer = await fleet.interact(payload)
    assert answer.status_code == 200
    await fleet.response(hook)
    assert snoozes.snoozed_until(fleet.db, budget.id) is None
    assert not [e for e in audit.history(fleet.db, "T1") if e.action == "snooze"]


# ---------------------------------------------------------------------------------------------
# Uninstalling, and rotating tokens
# ---------------------------------------------------------------------------------------------


async def test_uninstalling_t1_deletes_its_secrets_and_stops_its_checks(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    fleet.budget("T1")
    fleet.budget("T2")
    t1_token = fleet.token_of("T1")
    fleet.slack.revoke("T1")
    await fleet.uninstalled("T1")
    row = fleet.db.execute(
        "SELECT scenario_api_key, scenario_api_secret FROM workspaces WHERE team_id = 'T1'"
    ).fetchone()
    assert row == (None, None)
    assert fleet.db.execute(
        "SELECT count(*) FROM slack_installations WHERE team_id = 'T1'"
    ).fetchone() == (0,)
    assert t1_token.encode() not in database_bytes(fleet.db_path)
    before = len(fleet.simulators["T1"].requests)
    await fleet.scheduled_check()
    assert len(fleet.simulators["T1"].requests) == before, "T1 is still checked"
    assert fleet.slack.top_level(CHANNELS["T1"]) == []
    assert len(fleet.slack.top_level(CHANNELS["T2"])) == 1  # T2 goes on
    assert [e.action for e in audit.history(fleet.db, "T1")][:1] == ["uninstall"]
    # A reinstall starts cleanly: a new token, and a connection to make again.
    await fleet.install("T1")
    assert (await fleet.runtime.bot_of("T1")).bot_token == fleet.token_of("T1") != t1_token
    assert "/budget connect" in (await fleet.command("T1", "/usage"))["text"]


async def test_messages_queued_before_an_uninstall_are_never_posted_late(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    fleet.budget("T1")
    fleet.slack.fail_next("chat.postMessage", slack_api.Fault(status=500), times=1)
    await fleet.scheduled_check()  # the alert waits in the outbox for a retry
    assert fleet.slack.top_level(CHANNELS["T1"]) == []
    fleet.slack.revoke("T1")
    await fleet.uninstalled("T1")
    await fleet.install("T1")
    fleet.clock.advance(timedelta(minutes=10))
    await fleet.runtime.deliver(fleet.clock)
    assert fleet.slack.top_level(CHANNELS["T1"]) == []


async def test_a_revoked_bot_token_is_forgotten_like_an_uninstall(fleet: Fleet) -> None:
    await installed_and_connected(fleet)
    await fleet.event("T1", {"type": "tokens_revoked", "tokens": {"oauth": ["U1"]}})
    await fleet.uninstalled("T1", {"type": "tokens_revoked", "tokens": {"bot": ["UBOT_T1"]}})
    # The user-token event came first and changed nothing (the bot keeps no user token).
    actions = [e.action for e in audit.history(fleet.db, "T1")]
    assert actions.count("uninstall") == 1
    assert fleet.runtime.connected_team("T2") is not None


async def test_an_expiring_token_is_refreshed_before_the_schedulers_post(fleet: Fleet) -> None:
    # Rotation on: tokens live 10 minutes, under the 2 hours before expiry that refreshes.
    fleet.slack.workspaces["T1"].token_lifetime = 600
    await fleet.install("T1")
    first = fleet.token_of("T1")
    await fleet.connect("T1")  # this request refreshed it already (Bolt's authorize)
    fleet.budget("T1")
    refreshed_before = len(
        [c for c in fleet.slack.calls_to("oauth.v2.access") if "refresh_token" in c.args]
    )
    await fleet.scheduled_check()
    refreshes = [c for c in fleet.slack.calls_to("oauth.v2.access") if "refresh_token" in c.args]
    assert len(refreshes) > refreshed_before
    [post] = [
        c
        for c in fleet.slack.calls_to("chat.postMessage")
        if c.args.get("channel") == CHANNELS["T1"] and not c.args.get("thread_ts")
    ]
    assert post.token == fleet.token_of("T1") != first
    assert len(fleet.slack.top_level(CHANNELS["T1"])) == 1
    assert fleet.token_of("T1").encode() not in database_bytes(fleet.db_path)
