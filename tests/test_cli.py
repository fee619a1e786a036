"""The command line as a user runs it: a real subprocess, real files, real sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from bot.asgi_server import serve_app
from bot.crypto import new_key
from bot.sim import slack_api
from tests.live import live_now

ROOT = Path(__file__).resolve().parents[1]


def run(
    tmp_path: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    # On timeout, subprocess.run kills the child before raising: nothing is left running.
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_on_loopback() -> list[str]:
    """`serve` on a free loopback port."""
    return ["serve", "--host", "127.0.0.1", "--port", str(free_port())]


def test_migrate_creates_then_reports_up_to_date(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    first = run(tmp_path, "migrate", BUDGET_BOT_DB=str(db))
    assert first.returncode == 0, first.stderr
    assert "applied m001_initial" in first.stdout
    second = run(tmp_path, "migrate", BUDGET_BOT_DB=str(db))
    assert second.returncode == 0
    assert "up to date" in second.stdout


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BUDGET_BOT_DB=from-dotenv.db\n")
    result = run(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-dotenv.db").exists()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BUDGET_BOT_TIMEZONE": "Mars/Olympus"}, "BUDGET_BOT_TIMEZONE"),
        ({"SCENARIO_BASE_URL": "nope"}, "SCENARIO_BASE_URL"),
        ({"BUDGET_BOT_DB": "."}, "cannot open database"),
    ],
)
def test_bad_configuration_is_one_line_and_status_2(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = run(tmp_path, "migrate", **env)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_digest_without_any_configured_says_so(tmp_path: Path) -> None:
    credentials = {"SCENARIO_SDK_API_KEY": "test-key", "SCENARIO_SDK_API_SECRET": "test-secret"}
    result = run(
        tmp_path, "digest", "--dry-run", BUDGET_BOT_DB=str(tmp_path / "b.db"), **credentials
    )
    assert result.returncode == 0, result.stderr
    assert "no digest is configured" in result.stdout


@pytest.mark.parametrize("command", ["check", "digest"])
def test_commands_that_read_scenario_need_its_credentials(tmp_path: Path, command: str) -> None:
    result = run(tmp_path, command, "--dry-run", BUDGET_BOT_DB=str(tmp_path / "b.db"))
    assert result.returncode == 2
    assert "SCENARIO_SDK_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


# Which Scenario credentials are given → which variables the error must name (and not).
CREDENTIALS_CASES = [
    pytest.param({}, ["SCENARIO_SDK_API_KEY", "SCENARIO_SDK_API_SECRET"], [], id="neither"),
    pytest.param(
        {"SCENARIO_SDK_API_KEY": "test-key"},
        ["SCENARIO_SDK_API_SECRET"],
        ["SCENARIO_SDK_API_KEY"],
        id="no-secret",
    ),
    pytest.param(
        {"SCENARIO_SDK_API_SECRET": "test-secret"},
        ["SCENARIO_SDK_API_KEY"],
        ["SCENARIO_SDK_API_SECRET"],
        id="no-key",
    ),
    pytest.param(
        {"SCENARIO_SDK_API_KEY": "test-key", "SCENARIO_SDK_API_SECRET": ""},
        ["SCENARIO_SDK_API_SECRET"],
        ["SCENARIO_SDK_API_KEY"],
        id="empty-secret",
    ),
]
# Everything else serve needs in single-workspace HTTP mode; Slack itself is never reached.
SLACK_SETTINGS = {
    "SLACK_BOT_TOKEN": "xoxb-test",
    "SLACK_SIGNING_SECRET": "test-signing-secret",
    "SLACK_API_URL": "http://127.0.0.1:9/api/",
}


def assert_names_only_the_missing(
    result: subprocess.CompletedProcess[str], missing: list[str], given: list[str]
) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in missing:
        assert name in lines[0]
    for name in given:
        assert name not in lines[0]
    assert "test-key" not in result.stderr and "test-secret" not in result.stderr


@pytest.mark.parametrize(("credentials", "missing", "given"), CREDENTIALS_CASES)
def test_serve_without_scenario_credentials_exits_2_with_one_line(
    tmp_path: Path, credentials: dict[str, str], missing: list[str], given: list[str]
) -> None:
    result = run(
        tmp_path,
        *serve_on_loopback(),
        timeout=30,  # the bug was serving on regardless: a hang here is a failure
        BUDGET_BOT_DB=str(tmp_path / "bot.db"),
        **SLACK_SETTINGS,
        **credentials,
    )
    assert_names_only_the_missing(result, missing, given)
    assert result.stdout == ""  # it never got to listening


@pytest.mark.parametrize(("credentials", "missing", "given"), CREDENTIALS_CASES)
def test_check_without_scenario_credentials_exits_2_with_one_line(
    tmp_path: Path, credentials: dict[str, str], missing: list[str], given: list[str]
) -> None:
    result = run(
        tmp_path,
        "check",
        timeout=30,
        BUDGET_BOT_DB=str(tmp_path / "bot.db"),
        **SLACK_SETTINGS,
        **credentials,
    )
    assert_names_only_the_missing(result, missing, given)


# Multi-workspace mode: the OAuth app's credentials instead of a bot token.
OAUTH_SETTINGS = {
    "SLACK_CLIENT_ID": "111.222",
    "SLACK_CLIENT_SECRET": "a-client-secret",
    "SLACK_SIGNING_SECRET": "test-signing-secret",
    "SLACK_API_URL": "http://127.0.0.1:9/api/",
}


@pytest.mark.parametrize("command", ["serve", "check", "digest"])
def test_multi_workspace_mode_refuses_to_start_without_a_secret_key(
    tmp_path: Path, command: str
) -> None:
    result = run(
        tmp_path,
        *(serve_on_loopback() if command == "serve" else [command]),
        timeout=30,
        BUDGET_BOT_DB=str(tmp_path / "bot.db"),
        **OAUTH_SETTINGS,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "BUDGET_BOT_SECRET_KEY" in line and "keygen" in line
    assert "a-client-secret" not in result.stderr and result.stdout == ""


def test_multi_workspace_mode_refuses_socket_mode(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        *serve_on_loopback(),
        timeout=30,
        BUDGET_BOT_DB=str(tmp_path / "bot.db"),
        BUDGET_BOT_SECRET_KEY=new_key(),
        SLACK_APP_TOKEN="xapp-test",
        **OAUTH_SETTINGS,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "SLACK_APP_TOKEN" in line and "multi-workspace" in line


def test_check_in_multi_workspace_mode_needs_no_scenario_credentials(tmp_path: Path) -> None:
    """Each workspace brings its own; with none connected there is nothing to read."""
    result = run(
        tmp_path,
        "check",
        timeout=30,
        BUDGET_BOT_DB=str(tmp_path / "bot.db"),
        BUDGET_BOT_SECRET_KEY=new_key(),
        **OAUTH_SETTINGS,
    )
    assert result.returncode == 0, result.stderr
    assert "checked 0 workspace(s)" in result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("ending", ["sigterm", "app-token-refused"])
async def test_socket_mode_serves_healthz_on_port(tmp_path: Path, ending: str) -> None:
    """Socket Mode, against a local fake Slack that holds apps.connections.open until the
    test has read /healthz (there is no WebSocket to connect to), then refuses the token
    or the bot is stopped with SIGTERM while it is still connecting."""
    slack = slack_api.FakeSlack()
    asked, answer = asyncio.Event(), asyncio.Event()

    async def connections_open(request: Request) -> JSONResponse:
        asked.set()
        await answer.wait()
        return JSONResponse({"ok": False, "error": "invalid_auth"})

    fake = Starlette(
        routes=[
            Route("/api/apps.connections.open", connections_open, methods=["POST"]),
            Mount("/", slack_api.create_app(slack)),
        ]
    )
    async with serve_app(fake) as slack_origin:
        port = free_port()
        env = {
            "BUDGET_BOT_DB": str(tmp_path / "bot.db"),
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_APP_TOKEN": "xapp-test",
            "SLACK_API_URL": f"{slack_origin}/api/",
            "SCENARIO_SDK_API_KEY": "test-key",
            "SCENARIO_SDK_API_SECRET": "test-secret",
            "SCENARIO_BASE_URL": "http://127.0.0.1:9/v1",  # no budget: never asked
            "PORT": str(port),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--host",
            "127.0.0.1",
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 20
            async with httpx.AsyncClient() as http:
                while True:
                    try:
                        health = await http.get(f"http://127.0.0.1:{port}/healthz")
                        break
                    except httpx.ConnectError:
                        if time.monotonic() > deadline or process.returncode is not None:
                            raise
                        await asyncio.sleep(0.05)
                events = await http.post(f"http://127.0.0.1:{port}/slack/events", content="{}")
            assert health.status_code == 200
            assert health.json()["db"] == "ok"
            assert health.json()["scheduler"].startswith("running")
            assert events.status_code == 404  # events come over the socket
            await asyncio.wait_for(asked.wait(), 20)
            if ending == "sigterm":
                process.send_signal(signal.SIGTERM)
            else:
                answer.set()
            out, err = (b.decode() for b in await asyncio.wait_for(process.communicate(), 20))
        finally:
            answer.set()  # the held request ends, so the fake can stop
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert "Traceback" not in err
    assert "xapp-test" not in out + err and "xoxb-test" not in out + err
    assert f"health check on http://127.0.0.1:{port}/healthz" in out
    if ending == "sigterm":
        assert process.returncode == 0, err
    else:
        assert process.returncode == 2, err
        assert (
            err.strip()
            .splitlines()[-1]
            .startswith("budget-bot: Slack refused SLACK_APP_TOKEN (invalid_auth)")
        )


def test_simulate_serves_the_scenario_api_on_loopback(tmp_path: Path) -> None:
    anchor = live_now().strftime("%Y-%m-%dT%H:%M")
    process = subprocess.Popen(
        # Anchored at the current hour: the simulated timeline follows the wall clock
        # for FUTURE_DAYS from there, so "last-day" always has spend.
        [sys.executable, "-m", "bot", "simulate", "--port", "0", "--anchor", anchor],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(
                    f"{url}/usages",
                    params={"timeRange": "last-day", "type": "consumption"},
                    auth=("test-key", "test-secret"),
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert response.status_code == 200
        assert sum(row["value"] for row in response.json()["consumption"]) > 0
        wrong = httpx.get(f"{url}/usages", auth=("test-key", "wrong"))
        assert wrong.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
