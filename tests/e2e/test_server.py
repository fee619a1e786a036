"""The server itself: health, signatures."""

from __future__ import annotations

import httpx

from bot.web import create_health_server, health_report
from tests.e2e.conftest import Bot


async def test_healthz_reports_db_scenario_and_scheduler_without_secrets(bot: Bot) -> None:
    answer = await bot.http.get(f"{bot.url}/healthz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["db"] == "ok"
    assert "scheduler" in body and "scenario" in body
    text = answer.text
    for secret in ("xoxb-test", "test-secret", "test-signing-secret"):
        assert secret not in text


async def test_a_bad_or_stale_signature_gets_401_and_changes_nothing(bot: Bot) -> None:
    before = bot.db["audit_log"].count
    wrong, _ = await bot.command("/budget", "add 100 daily", secret="not-the-secret")
    stale, _ = await bot.command("/budget", "add 100 daily", age=10 * 60)
    assert wrong.status_code == 401
    assert stale.status_code == 401
    assert bot.db["budgets"].count == 0
    assert bot.db["audit_log"].count == before
    assert bot.slack.calls == []


async def test_the_socket_mode_health_server_answers_healthz_and_nothing_else(bot: Bot) -> None:
    # Socket Mode has no events endpoint (events come over the socket), yet the same
    # health check is served on PORT for the same probes.
    health = create_health_server(bot.deps.runtime)
    transport = httpx.ASGITransport(app=health)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
        answer = await http.get("/healthz")
        events = await http.post("/slack/events", content="{}")
    assert answer.status_code == 200
    assert answer.json() == health_report(bot.deps.runtime)
    assert answer.json()["db"] == "ok"
    assert events.status_code == 404
    for secret in ("xoxb-test", "test-secret", "test-signing-secret"):
        assert secret not in answer.text
