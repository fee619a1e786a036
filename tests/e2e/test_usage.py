"""`/usage` over real HTTP: acknowledged at once, answered through response_url with the
totals the simulator's own job list (the oracle) gives for the range and filters."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.budgets.periods import this_month
from bot.messages.mrkdwn import cu
from tests.e2e.conftest import ANCHOR, TEAM, Bot

Json = dict[str, Any]
DAY = timedelta(days=1)


def everything(message: Json) -> str:
    """The top-level text and every text of every block, one string."""
    parts = [message.get("text", "")]
    for block in message.get("blocks") or []:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [e.get("text", "") for e in block.get("elements", []) if isinstance(e, dict)]
    return "\n".join(parts)


async def usage(bot: Bot, text: str = "") -> tuple[httpx.Response, Json]:
    """Send `/usage text`; the HTTP acknowledgement and the response_url answer."""
    answer, hook = await bot.command("/usage", text)
    assert answer.status_code == 200
    return answer, await bot.response(hook)


def project_id(name: str) -> str:
    return next(p.id for p in TEAM.projects if p.name == name)


def model_id(name: str) -> str:
    return next(m.id for m in TEAM.models if m.name == name)


def user_id(email: str) -> str:
    return next(u.id for u in TEAM.users if u.email == email)


async def test_plain_usage_is_the_last_24_hours_against_the_24_hours_before(bot: Bot) -> None:
    ack, reply = await usage(bot)
    assert ack.text == ""  # an empty acknowledgement; the report follows
    assert reply["response_type"] == "ephemeral"
    text = everything(reply)

    total = TEAM.cu_between(ANCHOR - DAY, ANCHOR)
    before = TEAM.cu_between(ANCHOR - 2 * DAY, ANCHOR - DAY)
    assert total > before > 0
    assert f"*{cu(total)}*" in text
    change = round((total - before) / before * 100)
    assert f"▲ +{change:,} % vs the previous 24 hours ({cu(before)})" in text

    # Top projects, users with API keys shown as keys, models linked; a sparkline trend.
    assert "*Top projects*" in text and "Marketing" in text
    keys = [u.key_name for u in TEAM.users if u.key_name]
    assert any(f"🔑 <https://app.example/settings/api|{name}>" in text for name in keys)
    assert "API key api_" not in text  # named, not shown by key ID
    assert "<https://app.example/models/model_" in text
    assert any(ch in text for ch in "▂▃▄▅▆▇█")
    assert "Wed 25 Nov 13:00 → Thu 26 Nov 13:00" in text  # Europe/Paris


async def test_7d_total_matches_the_oracle(bot: Bot) -> None:
    _, reply = await usage(bot, "7d")
    text = everything(reply)
    assert f"*{cu(TEAM.cu_between(ANCHOR - 7 * DAY, ANCHOR))}*" in text
    assert "the last 7 days" in text
    before = TEAM.cu_between(ANCHOR - 14 * DAY, ANCHOR - 7 * DAY)
    assert f"vs the previous 7 days ({cu(before)})" in text


async def test_this_month_starts_at_local_midnight_in_the_workspace_timezone(bot: Bot) -> None:
    start, _ = this_month(ANCHOR, "Europe/Paris")
    assert start == datetime.fromisoformat("2026-10-31T23:00:00+00:00")
    local = TEAM.cu_between(start, ANCHOR)
    utc = TEAM.cu_between(datetime.fromisoformat("2026-11-01T00:00:00+00:00"), ANCHOR)
    assert cu(local) != cu(utc)  # the timezone matters for this check

    _, reply = await usage(bot, "this-month")
    text = everything(reply)
    assert f"*{cu(local)}*" in text
    # The range before it has the same length: 25 days 13 hours.
    before = TEAM.cu_between(start - (ANCHOR - start), start)
    assert f"vs the previous 25 d 13 h ({cu(before)})" in text


async def test_a_project_prefix_filters_the_report(bot: Bot) -> None:
    _, reply = await usage(bot, "project mark 7d")
    text = everything(reply)
    expected = TEAM.cu_between(ANCHOR - 7 * DAY, ANCHOR, project_ids=[project_id("Marketing")])
    assert f"*{cu(expected)}* · project *Marketing*" in text
    assert "Top projects" not in text


async def test_an_ambiguous_prefix_is_answered_with_the_candidates(bot: Bot) -> None:
    _, reply = await usage(bot, "model flux")
    assert reply["response_type"] == "ephemeral"
    assert "matches several models" in reply["text"]
    assert "`Flux Dev`" in reply["text"] and "`Flux Pro Ultra`" in reply["text"]
    assert not reply.get("blocks")  # the candidates and nothing else


async def test_an_unknown_model_gets_suggestions(bot: Bot) -> None:
    _, reply = await usage(bot, 'model "Kling Vidoe" public')
    assert reply["response_type"] == "ephemeral"
    assert "I don't know a model called “Kling Vidoe”" in reply["text"]
    assert "`Kling Video`" in reply["text"]


async def test_a_model_filter_uses_its_cost_series_and_says_so(bot: Bot) -> None:
    _, reply = await usage(bot, 'model "flux dev"')
    text = everything(reply)
    expected = TEAM.cu_between(ANCHOR - DAY, ANCHOR, model_ids=[model_id("Flux Dev")])
    assert f"*{cu(expected)}* · model *<https://app.example/models/" in text
    assert "can't filter usage by model" in text
    assert "*Top users and API keys*" in text and "Top models" not in text


async def test_a_slack_mention_is_the_scenario_member_with_that_email(bot: Bot) -> None:
    bot.slack.users["U0MAYA"] = {"name": "maya", "profile": {"email": "maya.chen@example.com"}}
    _, reply = await usage(bot, "user <@U0MAYA|maya> 3d")
    text = everything(reply)
    expected = TEAM.cu_between(
        ANCHOR - 3 * DAY, ANCHOR, user_ids=[user_id("maya.chen@example.com")]
    )
    assert f"*{cu(expected)}* · user *maya.chen@example.com*" in text
    assert "Top users" not in text


async def test_an_api_key_by_name_is_a_user_filter(bot: Bot) -> None:
    key = next(u for u in TEAM.users if u.key_name == "CI pipeline")
    _, reply = await usage(bot, "user ci 7d")
    text = everything(reply)
    expected = TEAM.cu_between(ANCHOR - 7 * DAY, ANCHOR, user_ids=[key.id])
    assert f"*{cu(expected)}* · API key *<https://app.example/settings/api|CI pipeline>*" in text


async def test_public_is_shown_in_the_channel(bot: Bot) -> None:
    _, reply = await usage(bot, "1h public")
    assert reply["response_type"] == "in_channel"
    assert f"*{cu(TEAM.cu_between(ANCHOR - timedelta(hours=1), ANCHOR))}*" in everything(reply)


async def test_a_grammar_error_is_an_ephemeral_answer_with_the_usage_line(bot: Bot) -> None:
    answer, _ = await bot.command("/usage", "last-week")
    assert answer.status_code == 200
    body = answer.json()
    assert body["response_type"] == "ephemeral"
    assert "I don't understand `last-week`" in body["text"]
    assert "*Usage:* `/usage" in body["text"]
    assert bot.simulator.requests == []


async def test_a_scenario_outage_gets_a_polite_apology(bot: Bot) -> None:
    bot.simulator.faults.outage = True
    _, reply = await usage(bot, "public")
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("Sorry — I couldn't get the usage from Scenario.")
    assert "unavailable" in reply["text"]
    assert "Traceback" not in reply["text"]


async def test_the_acknowledgement_does_not_wait_for_a_slow_scenario(bot: Bot) -> None:
    bot.simulator.faults.latency = 5.0
    try:
        started = time.perf_counter()
        answer, hook = await bot.command("/usage", "7d")
        acknowledged = time.perf_counter() - started
    finally:
        bot.simulator.faults.latency = 0.0  # so that the report, and teardown, are quick
    assert answer.status_code == 200
    assert acknowledged < 3.0, f"acknowledged after {acknowledged:.2f} s"
    assert bot.responses(hook) == []  # the report itself is still on its way
    reply = await bot.response(hook, within=30)
    assert f"*{cu(TEAM.cu_between(ANCHOR - 7 * DAY, ANCHOR))}*" in everything(reply)


def usage_reads(bot: Bot) -> list[str]:
    """The project filter of each `/usages` request since the last reset ("" for none)."""
    return [r.param("projectIds") or "" for r in bot.simulator.requests if r.path == "/v1/usages"]


async def test_7d_reads_the_two_ranges_and_each_project_once_with_names_cached(bot: Bot) -> None:
    await usage(bot, "24h")  # the names are loaded once, then cached
    bot.simulator.reset_requests()
    _, reply = await usage(bot, "7d")
    text = everything(reply)
    assert f"*{cu(TEAM.cu_between(ANCHOR - 7 * DAY, ANCHOR))}*" in text
    assert f"({cu(TEAM.cu_between(ANCHOR - 14 * DAY, ANCHOR - 7 * DAY))})" in text
    for project in TEAM.projects:  # each project's own figure, as the oracle gives it
        spent = TEAM.cu_between(ANCHOR - 7 * DAY, ANCHOR, project_ids=[project.id])
        assert f"{project.name} — {cu(spent)}" in text
    # 2 + P requests, all /usages: this range, the one before, one per project; no names.
    assert len(bot.simulator.requests) == 2 + len(TEAM.projects)
    assert sorted(usage_reads(bot)) == sorted(["", "", *(p.id for p in TEAM.projects)])


async def test_a_first_7d_loads_the_names_in_three_more_reads(bot: Bot) -> None:
    bot.simulator.reset_requests()
    await usage(bot, "7d")
    paths = [r.path for r in bot.simulator.requests]
    assert paths.count("/v1/projects") == 1
    assert paths.count(f"/v1/teams/{TEAM.team_id}") == 1
    assert paths.count("/v1/usages") == 3 + len(TEAM.projects)  # + the last 31 days' names
    lookups = sum(p.startswith("/v1/models/") for p in paths)  # models the usage leaves unnamed
    assert len(paths) == 5 + len(TEAM.projects) + lookups
