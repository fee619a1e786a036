"""`budget-bot budget …` as a user runs it: real processes against the Scenario simulator
(and the fake Slack Web API when a token is given) on loopback; what is asserted is what
the database holds afterwards, not only what is printed."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlite_utils import Database

from bot.asgi_server import serve_app
from bot.budgets.types import TEAM, PeriodKind, Scope, ScopeKind
from bot.cli import CLI_ACTOR, LOCAL_WORKSPACE
from bot.crypto import Sealer, new_key
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator, serve_simulator
from bot.store import audit
from bot.store.budgets import list_budgets
from bot.store.db import migrate, open_db
from bot.store.digests import list_digests
from bot.store.installations import InstallationStore
from bot.store.snoozes import get_snooze
from bot.store.watch import get_watch
from bot.store.workspaces import ScenarioConnection, connect_scenario, get_workspace
from tests.jobs.test_check_cli import ANCHOR, budget_bot
from tests.jobs.test_check_cli import TEAM as SIM_TEAM

SCENARIO_CREDENTIALS = {
    "SCENARIO_SDK_API_KEY": "test-key",
    "SCENARIO_SDK_API_SECRET": "test-secret",
}


@pytest.fixture(autouse=True)
def no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test gives: no Slack token or Scenario account of the machine running it."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "SCENARIO_", "BUDGET_BOT_")):
            monkeypatch.delenv(name)


@pytest.fixture
async def scenario_url() -> AsyncIterator[str]:
    async with serve_simulator(Simulator(SIM_TEAM, clock=ManualClock(ANCHOR))) as url:
        yield url


def read_db(path: Path) -> Database:
    db = open_db(path)
    migrate(db)
    return db


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


async def test_a_budget_added_without_slack_is_what_check_dry_run_alerts_on(
    tmp_path: Path, scenario_url: str
) -> None:
    db_path = tmp_path / "bot.db"
    env = {"BUDGET_BOT_DB": str(db_path), "SCENARIO_BASE_URL": scenario_url, **SCENARIO_CREDENTIALS}
    # A limit the last 24 hours' spend (an independent sum over the synthetic jobs) is far
    # above, so that the check must announce 100 %.
    spent = SIM_TEAM.cu_between(ANCHOR - timedelta(hours=24), ANCHOR)
    limit = math.floor(spent / 4)
    assert limit >= 1

    code, out, err = await budget_bot(
        tmp_path, "budget", "add", str(limit), "24h", "C0ALERTS", **env
    )
    assert code == 0, err
    assert LOCAL_WORKSPACE in err  # it says where the budget went, with no Slack to ask
    assert "not checked" in err
    db = read_db(db_path)
    [budget] = list_budgets(db, LOCAL_WORKSPACE)
    assert (budget.limit_cu, budget.period, budget.scope) == (limit, PeriodKind.ROLLING_24H, TEAM)
    assert (budget.channel_id, budget.created_by) == ("C0ALERTS", CLI_ACTOR)
    [entry] = audit.history(db, LOCAL_WORKSPACE)
    assert (entry.action, entry.actor, entry.target) == ("budget.add", "cli", f"budget:{budget.id}")

    code, out, err = await budget_bot(tmp_path, "check", "--dry-run", **env)
    assert code == 0, err
    assert "checked 1 workspace(s): would post 1 message(s)" in out
    assert "would post to C0ALERTS" in out
    assert f"Budget #{budget.id} Team 24h: 100 % of budget reached" in out
    assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0  # a dry run

    # Posting for real needs Slack: refused before any work, in one line.
    code, out, err = await budget_bot(tmp_path, "check", **env)
    assert code == 2
    assert "SLACK_BOT_TOKEN" in one_line(err)
    assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


async def test_the_subcommands_change_the_store_as_slash_budget_does_audited_as_cli(
    tmp_path: Path, scenario_url: str
) -> None:
    db_path = tmp_path / "bot.db"
    env = {"BUDGET_BOT_DB": str(db_path), "SCENARIO_BASE_URL": scenario_url, **SCENARIO_CREDENTIALS}

    async def budget(*words: str) -> tuple[int, str, str]:
        return await budget_bot(tmp_path, "budget", *words, **env)

    # Bad input: the parser's own message, status 2, nothing saved.
    code, _, err = await budget("add", "5x", "monthly", "C0ALERTS")
    assert code == 2
    assert "`5x` is neither a CU limit" in one_line(err)
    db = read_db(db_path)
    assert db.execute("SELECT count(*) FROM budgets").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0

    # A project by its name (with a space: one shell argument), a channel as `#C…`.
    game_art = next(p for p in SIM_TEAM.projects if p.name == "Game Art")
    code, out, err = await budget("add", "2k", "weekly", "project:Game Art", "#C0ALERTS")
    assert code == 0, err
    code, out, err = await budget("add", "5k", "monthly", "<#C0OTHER1>")
    assert code == 0, err
    first, second = list_budgets(db, LOCAL_WORKSPACE)
    assert (first.scope, first.scope_name) == (Scope(ScopeKind.PROJECT, game_art.id), "Game Art")
    assert (first.limit_cu, first.period, first.channel_id) == (2000, PeriodKind.WEEKLY, "C0ALERTS")
    assert (second.scope, second.channel_id, second.limit_cu) == (TEAM, "C0OTHER1", 5000)

    # What the command line cannot do changes nothing either.
    for words, said in [
        (("add", "5k", "monthly"), "say which channel"),
        (("add", "5k", "monthly", "#alerts"), "by ID"),
        (("add",), "form in Slack"),
        (("add", "1k", "daily", "user:<@U123>", "C0ALERTS"), "user:name@example.com"),
        (("test", "1"), "/budget test"),
        (("edit", "9", "1k"), "no budget #9"),
    ]:
        code, _, err = await budget(*words)
        assert code == 2, words
        assert said in one_line(err)
    assert len(list_budgets(db, LOCAL_WORKSPACE)) == 2

    code, _, err = await budget("edit", str(first.id), "3k", "at", "50,100", "forecast")
    assert code == 0, err
    [edited] = [b for b in list_budgets(db, LOCAL_WORKSPACE) if b.id == first.id]
    assert (edited.limit_cu, edited.thresholds, edited.forecast) == (3000, (50, 100), True)

    code, out, _ = await budget("list")
    assert code == 0
    assert f"#{first.id} Game Art weekly" in out
    assert f"#{second.id} Team monthly" in out

    before = datetime.now(UTC)
    code, _, err = await budget("snooze", str(first.id), "2h")
    after = datetime.now(UTC)
    assert code == 0, err
    snooze = get_snooze(db, first.id)
    assert snooze is not None
    assert before + timedelta(hours=2) <= snooze.until <= after + timedelta(hours=2)
    code, _, err = await budget("unsnooze", str(first.id))
    assert code == 0, err
    assert get_snooze(db, first.id) is None

    code, _, err = await budget("digest", "09:00", "weekly", "friday", "C0DIGEST1")
    assert code == 0, err
    [digest] = list_digests(db, LOCAL_WORKSPACE)
    assert (digest.channel_id, digest.local_time) == ("C0DIGEST1", time(9))
    assert (digest.cadence, digest.weekday) == (PeriodKind.WEEKLY, 4)

    # A zone name shaped like a channel ID is still a zone name.
    code, _, err = await budget("timezone", "CST6CDT")
    assert code == 0, err
    workspace = get_workspace(db, LOCAL_WORKSPACE)
    assert workspace is not None
    assert workspace.timezone == "CST6CDT"

    # The watch: a channel first; then a new sensitivity keeps the watch's channel.
    code, _, err = await budget("watch", "C0WATCH12")
    assert code == 0, err
    code, _, err = await budget("watch", "high")
    assert code == 0, err
    watch = get_watch(db, LOCAL_WORKSPACE)
    assert watch is not None
    assert (watch.channel_id, watch.watch) == ("C0WATCH12", "high")

    # Removing asks first: without --yes it says what would go and keeps it.
    code, out, err = await budget("remove", str(second.id))
    assert code == 2
    assert f"#{second.id} Team monthly" in out
    assert "--yes" in one_line(err)
    assert [b.id for b in list_budgets(db, LOCAL_WORKSPACE)] == [first.id, second.id]
    code, out, err = await budget("remove", str(second.id), "--yes")
    assert code == 0, err
    assert "by cli" in out
    assert [b.id for b in list_budgets(db, LOCAL_WORKSPACE)] == [first.id]

    entries = audit.history(db, LOCAL_WORKSPACE, limit=100)
    assert {e.actor for e in entries} == {CLI_ACTOR}
    assert sorted(e.action for e in entries) == sorted(
        [
            "budget.add",
            "budget.add",
            "budget.edit",
            "budget.snooze",
            "budget.unsnooze",
            "digest.set",
            "timezone",
            "watch.on",
            "watch.edit",
            "budget.remove",
        ]
    )
    code, out, _ = await budget("history")
    assert code == 0
    assert f"cli removed *#{second.id} Team monthly*" in out
    assert "cli set the timezone: the default → CST6CDT" in out


async def test_with_a_token_slack_names_the_workspace_and_checks_the_channel(
    tmp_path: Path, scenario_url: str
) -> None:
    db_path = tmp_path / "bot.db"
    slack = slack_api.FakeSlack(team_id="T0FAKE", channel_errors={"C0PRIVATE": "channel_not_found"})
    async with serve_app(slack_api.create_app(slack)) as slack_origin:
        slack.origin = slack_origin
        env = {
            "BUDGET_BOT_DB": str(db_path),
            "SCENARIO_BASE_URL": scenario_url,
            "SLACK_API_URL": f"{slack_origin}/api/",
            "SLACK_BOT_TOKEN": "xoxb-test",
            **SCENARIO_CREDENTIALS,
        }
        code, _, err = await budget_bot(
            tmp_path, "budget", "add", "5k", "monthly", "C0PRIVATE", **env
        )
        assert code == 2
        assert "/invite @Budget Bot" in one_line(err)
        db = read_db(db_path)
        assert db.execute("SELECT count(*) FROM budgets").fetchone()[0] == 0

        code, _, err = await budget_bot(
            tmp_path, "budget", "add", "5k", "monthly", "C0OPEN12", **env
        )
        assert code == 0, err
        assert "not checked" not in err
        # Slack gone: refused in one line before anything is saved.
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            gone = f"http://127.0.0.1:{unused.getsockname()[1]}/api/"
        for workspace in ((), ("--workspace", "T0FAKE")):
            code, _, err = await budget_bot(
                tmp_path,
                "budget",
                "add",
                "1k",
                "daily",
                "C0OPEN12",
                *workspace,
                **{**env, "SLACK_API_URL": gone},
            )
            assert code == 2
            assert "could not be reached" in one_line(err)
    [budget] = list_budgets(db, "T0FAKE")  # auth.test's team, not a placeholder
    assert budget.channel_id == "C0OPEN12"
    asked = [c.args["channel"] for c in slack.calls_to("conversations.info")]
    assert asked == ["C0PRIVATE", "C0OPEN12"]
    assert slack.calls_to("chat.postMessage") == []


async def test_multi_workspace_mode_needs_the_workspace_and_uses_its_own_token(
    tmp_path: Path, scenario_url: str
) -> None:
    db_path = tmp_path / "bot.db"
    key = new_key()
    sealer = Sealer.from_setting(key)
    db = read_db(db_path)
    now = datetime.now(UTC)
    store = InstallationStore(db_path, sealer)
    await store.async_save(
        Installation(
            app_id="A1",
            team_id="T1",
            team_name="Acme",
            bot_token="xoxb-acme",
            bot_id="B1",
            bot_user_id="UBOT",
            bot_scopes="commands,chat:write",
            user_id="U_INSTALLER",
            installed_at=now.timestamp(),
        )
    )
    connect_scenario(
        db, "T1", ScenarioConnection("test-key", "test-secret", None), sealer, actor="U1", now=now
    )
    slack = slack_api.FakeSlack()
    async with serve_app(slack_api.create_app(slack)) as slack_origin:
        slack.origin = slack_origin
        env = {
            "BUDGET_BOT_DB": str(db_path),
            "BUDGET_BOT_SECRET_KEY": key,
            "SLACK_CLIENT_ID": "1.2",
            "SLACK_CLIENT_SECRET": "client-secret",
            "SLACK_API_URL": f"{slack_origin}/api/",
            "SCENARIO_BASE_URL": scenario_url,
        }
        add = ("budget", "add", "5k", "monthly", "C0ALERTS")
        code, _, err = await budget_bot(tmp_path, *add, **env)
        assert code == 2
        assert "--workspace" in one_line(err)
        code, _, err = await budget_bot(tmp_path, *add, "--workspace", "T2", **env)
        assert code == 2
        assert "not installed in workspace T2" in one_line(err)
        assert db.execute("SELECT count(*) FROM budgets").fetchone()[0] == 0

        code, _, err = await budget_bot(tmp_path, *add, "--workspace", "T1", **env)
        assert code == 0, err
    [budget] = list_budgets(db, "T1")
    assert (budget.channel_id, budget.created_by) == ("C0ALERTS", CLI_ACTOR)
    [check] = slack.calls_to("conversations.info")
    assert (check.args["channel"], check.token) == ("C0ALERTS", "xoxb-acme")
