"""`budget-bot demo` as a newcomer runs it: a subprocess, no accounts, loopback only."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_demo_shows_alerts_and_a_digest_and_writes_the_chart(tmp_path: Path) -> None:
    result = demo(tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "% of budget reached" in out
    assert "[Snooze 24 h] [Acknowledge] [Raise budget] [Open in Scenario]" in out
    assert "Scenario digest" in out
    assert "Costliest jobs" in out
    chart = tmp_path / "budget-bot-demo-chart.png"
    assert f"chart written to {chart}" in out
    png = chart.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1200, 600)
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.db"))  # the database was thrown away


def test_the_demo_names_the_runaway_key_the_same_way_everywhere(tmp_path: Path) -> None:
    """Alerts name an API key by its name (never its key ID), and the digest names people by
    their full names (never an e-mail address), like `/usage` does."""
    result = demo(tmp_path)
    assert result.returncode == 0, result.stderr
    found = re.search(r"the API key “(.+?)” ran away", result.stdout)
    assert found, result.stdout[:500]
    key = found.group(1)
    alerts, digest = result.stdout.split("Scenario digest", 1)
    assert f"🔑 {key}" in alerts
    assert "Maya Chen" in digest  # a member of the simulator's team
    assert not re.search(r"[\w.]+@[\w.]+\.\w+", digest)
    assert f"by 🔑 {key}" in alerts  # the costliest jobs say who ran them
    assert not re.search(r"\bapi_[A-Za-z0-9]{8,}", result.stdout)


def test_the_demo_prints_raw_block_kit_with_json(tmp_path: Path) -> None:
    result = demo(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    body = result.stdout[: result.stdout.rindex("]") + 1]
    messages = json.loads(body)
    assert any(m.get("blocks") for m in messages)
    assert {m["channel"] for m in messages} == {"C0ALERTS", "C0DIGEST", "C0WATCH"}


def test_the_demo_shows_the_watch_catching_the_runaway_key(tmp_path: Path) -> None:
    result = demo(tmp_path)
    assert result.returncode == 0, result.stderr
    key = re.search(r"the API key “(.+?)” ran away", result.stdout).group(1)  # type: ignore[union-attr]
    watch = [part for part in result.stdout.split("━━ ") if part.startswith("#C0WATCH")]
    # One message (edited once the key is back to usual) and the reply that says so.
    assert len(watch) == 2
    message, reply = watch
    assert f"🚨 🔑 {key} is spending" in message and "its usual rate" in message
    assert "Projects: Game Art" in message and "Costliest jobs" in message
    assert "[Expected] [Snooze 24 h] [Open in Scenario]" in message
    assert reply.startswith("#C0WATCH (thread reply)") and "back to usual" in reply
