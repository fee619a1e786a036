"""The command line as a user runs it: a real subprocess, real files, real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live import live_now

ROOT = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


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
