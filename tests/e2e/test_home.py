"""The App Home tab end to end: published on app_home_opened, and its buttons."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import run_check
from bot.jobs.runtime import Runtime
from bot.messages import home
from bot.messages.alerts import forecast_range
from bot.messages.mrkdwn import cu, percent
from bot.reports.status import read_statuses
from bot.slack.app import create_app
from bot.slack.events.home import build_home
from bot.slack.views.budget_modal import BLOCK_CHANNEL, BLOCK_LIMIT
from bot.store import alerts, audit
from bot.store.budgets import (
    Budget,
    NewBudget,
    create_budget,
    delete_budget,
    list_budgets,
    update_budget,
)
from bot.store.digests import list_digests, set_digest
from bot.store.snapshots import snapshots_of
from tests.e2e.conftest import ADMIN, ANCHOR, MEMBER, TEAM, TEAM_ID, Bot
from tests.e2e.test_modal import submit

Json = dict[str, Any]


def add_budget(
    bot: Bot, limit: float, scope: Scope | None = None, name: str | None = None
) -> Budget:
    new = NewBudget(TEAM_ID, PeriodKind.ROLLING_24H, limit, "C_SPEND", ADMIN)
    if scope is not None:
        new = NewBudget(
            TEAM_ID, PeriodKind.ROLLING_24H, limit, "C_SPEND", ADMIN, scope=scope, scope_name=name
        )
    return create_budget(bot.db, new, now=ANCHOR)


async def open_home(bot: Bot, user: str = ADMIN, tab: str = "home") -> Json:
    """Send app_home_opened; returns the view published for ``user``."""
    before = len(bot.slack.calls_to("views.publish"))
    answer = await bot.event(
        {"type": "app_home_opened", "user": user, "channel": "D_HOME", "tab": tab}
    )
    assert answer.status_code == 200
    [call] = await bot.wait_for(
        lambda: bot.slack.calls_to("views.publish")[before:], what="views.publish"
    )
    assert call.args["user_id"] == user
    return call.args["view"]


def all_text(view: Json) -> str:
    return json.dumps(view, ensure_ascii=False)


def button(view: Json, action_id: str) -> Json:
    for block in view["blocks"]:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id", "b")}
    raise AssertionError(f"no {action_id} button")


def press_in_home(
    bot: Bot, view: Json, action_id: str, user: str, value: str | None = None
) -> Json:
    found = button(view, action_id)
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user, "team_id": TEAM_ID, "username": user.lower()},
        "api_app_id": "A_BOT",
        "token": "legacy-token-unused",
        "trigger_id": f"trigger-{bot.new_hook()}",
        "container": {"type": "view", "view_id": "V_HOME"},
        "view": {**view, "id": "V_HOME", "team_id": TEAM_ID},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": found["block_id"],
                "value": value if value is not None else found.get("value"),
                "action_ts": "1700000100.000001",
            }
        ],
    }


async def opened(bot: Bot, payload: Json) -> Json:
    before = len(bot.slack.calls_to("views.open"))
    answer = await bot.interact(payload)
    assert answer.status_code == 200
    [call] = await bot.wait_for(
        lambda: bot.slack.calls_to("views.open")[before:], what="views.open"
    )
    assert call.args["trigger_id"] == payload["trigger_id"]
    return call.args["view"]


async def test_opening_home_publishes_budgets_with_spend_last_alerts_and_buttons(bot: Bot) -> None:
    team = add_budget(bot, 10**9)
    spike = add_budget(bot, 100, Scope(ScopeKind.KEY, TEAM.spike.user_id), "Runaway key")
    deps = bot.deps
    await run_check(
        deps.db, lambda ws: deps.scenario_for(ws.team_id), deps.runtime.check_settings, ANCHOR
    )
    set_digest(bot.db, TEAM_ID, "C_DIGEST", time(9, 0), actor=ADMIN, now=ANCHOR)

    view = await open_home(bot)
    assert view["type"] == "home"
    shown = all_text(view)
    assert f"*#{team.id} Team 24h*" in shown
    assert f"*#{spike.id} Runaway key 24h*" in shown
    assert re.search(r"`█{12}` ⚠️ \*[\d,.]+ CU\* of 100 CU · \*\d+ %\*", shown)  # spend
    assert "🔔 alerted at 100 %" in shown
    assert f"🔴 *#{spike.id} Runaway key 24h* reached 100 %" in shown  # the last alerts
    assert "09:00 in <#C_DIGEST>" in shown
    for action_id in (home.ACTION_ADD, home.ACTION_DIGEST, home.ACTION_REFRESH):
        button(view, action_id)
    assert button(view, home.ACTION_EDIT)["value"] == str(team.id)
    assert "couldn't read Scenario" not in shown
    assert len(view["blocks"]) <= 100


async def test_when_the_last_check_could_not_read_scenario_home_says_so_and_lists(
    bot: Bot,
) -> None:
    budget = add_budget(bot, 5000)
    bot.simulator.faults.outage = True
    bot.simulator.faults.outage_status = 401  # bad credentials: not retried
    await check(bot)
    bot.simulator.reset_requests()
    view = await open_home(bot, MEMBER)
    shown = all_text(view)
    assert "couldn't read Scenario just now" in shown
    assert f"*#{budget.id} Team 24h*" in shown
    assert "not checked yet — figures at the next check, within 5 min" in shown
    assert bot.simulator.requests == []  # the tab itself never asks Scenario


async def test_only_the_home_tab_is_published(bot: Bot) -> None:
    await bot.event({"type": "app_home_opened", "user": ADMIN, "channel": "D1", "tab": "messages"})
    await open_home(bot, MEMBER)  # processed after the first: only this one publishes
    assert [c.args["user_id"] for c in bot.slack.calls_to("views.publish")] == [MEMBER]


async def test_add_budget_opens_the_form_and_saving_refreshes_home(bot: Bot) -> None:
    view = await open_home(bot)
    form = await opened(bot, press_in_home(bot, view, home.ACTION_ADD, ADMIN))
    assert form["callback_id"] == "budget_modal"
    assert json.loads(form["private_metadata"])["home"] is True
    assert field_of(form, BLOCK_CHANNEL).get("default_to_current_conversation") is True

    publishes = len(bot.slack.calls_to("views.publish"))
    answer = await submit(bot, form, limit="2k", period="daily", channel="C_SPEND")
    assert answer["response_action"] == "update"
    [saved] = list_budgets(bot.db, TEAM_ID)
    refreshed = await bot.wait_for(
        lambda: bot.slack.calls_to("views.publish")[publishes:], what="home refresh"
    )
    assert f"*#{saved.id} Team daily*" in all_text(refreshed[0].args["view"])


async def test_edit_opens_the_form_filled_in(bot: Bot) -> None:
    budget = add_budget(bot, 1234)
    view = await open_home(bot)
    form = await opened(bot, press_in_home(bot, view, home.ACTION_EDIT, ADMIN))
    assert json.loads(form["private_metadata"])["budget"] == budget.id
    assert field_of(form, BLOCK_LIMIT)["initial_value"] == "1234"


async def test_a_member_pressing_add_or_edit_is_told_only_admins_can(bot: Bot) -> None:
    add_budget(bot, 1234)
    view = await open_home(bot, MEMBER)
    for action_id in (home.ACTION_ADD, home.ACTION_EDIT, home.ACTION_DIGEST):
        shown = await opened(bot, press_in_home(bot, view, action_id, MEMBER))
        assert shown.get("callback_id") is None  # an explanation, not a form
        assert shown["title"]["text"] == "Admins only"
        assert "only workspace admins" in all_text(shown)


async def test_digest_settings_set_and_turn_off_the_digest(bot: Bot) -> None:
    view = await open_home(bot)
    form = await opened(bot, press_in_home(bot, view, home.ACTION_DIGEST, ADMIN))
    assert form["callback_id"] == home.DIGEST_CALLBACK

    async def save(
        channel: str | None, at: str | None, off: bool = False, user: str = ADMIN
    ) -> Json:
        values = {
            home.BLOCK_DIGEST_CHANNEL: {"channel": {"selected_conversation": channel}},
            home.BLOCK_DIGEST_TIME: {"time": {"type": "timepicker", "selected_time": at}},
            home.BLOCK_DIGEST_OFF: {"off": {"selected_options": [{"value": "off"}] if off else []}},
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": "A_BOT",
            "view": {**form, "id": "V_DIGEST", "team_id": TEAM_ID, "state": {"values": values}},
        }
        answer = await bot.interact(payload)
        assert answer.status_code == 200
        return answer.json() if answer.content else {}

    refused = await save("C_DIGEST", "08:30", user=MEMBER)
    assert refused["response_action"] == "errors" and list_digests(bot.db, TEAM_ID) == []
    missing = await save(None, "08:30")
    assert list(missing["errors"]) == [home.BLOCK_DIGEST_CHANNEL]

    publishes = len(bot.slack.calls_to("views.publish"))
    answer = await save("C_DIGEST", "08:30")
    assert answer["response_action"] == "update"
    [digest] = list_digests(bot.db, TEAM_ID)
    assert (digest.channel_id, digest.at) == ("C_DIGEST", "08:30")
    await bot.wait_for(lambda: bot.slack.calls_to("views.publish")[publishes:], what="refresh")

    nothing = await save("C_ELSEWHERE", "08:30", off=True)
    assert list(nothing["errors"]) == [home.BLOCK_DIGEST_OFF]
    answer = await save("C_DIGEST", None, off=True)
    assert answer["response_action"] == "update"
    assert list_digests(bot.db, TEAM_ID) == []
    actions = [e.action for e in audit.history(bot.db, TEAM_ID)]
    assert actions == ["digest.off", "digest.set"]

    # The form has only the time: a weekly, quiet digest stays weekly and quiet.
    weekly = PeriodKind.WEEKLY
    set_digest(
        bot.db,
        TEAM_ID,
        "C_DIGEST",
        time(9),
        actor=ADMIN,
        now=ANCHOR,
        when_empty="skip",
        cadence=weekly,
        weekday=4,
    )
    answer = await save("C_DIGEST", "07:15")
    assert "The weekly digest goes to <#C_DIGEST> every Friday at 07:15" in all_text(answer["view"])
    [digest] = list_digests(bot.db, TEAM_ID)
    assert (digest.at, digest.cadence, digest.weekday, digest.when_empty) == (
        "07:15",
        weekly,
        4,
        "skip",
    )


def field_of(view: Json, block_id: str) -> Json:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]


# ---------------------------------------------------------------------------------------------
# Opening from what the last check saw (SPEC §7)
# ---------------------------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")


async def check(bot: Bot, *, dry_run: bool = False) -> None:
    deps = bot.deps
    [result] = await run_check(
        deps.db,
        lambda ws: deps.scenario_for(ws.team_id),
        deps.runtime.check_settings,
        bot.clock(),
        dry_run=dry_run,
    )
    assert result.error is None or bot.simulator.faults.outage, result.error


def new_budget(bot: Bot, period: PeriodKind, limit: float, **fields: Any) -> Budget:
    return create_budget(
        bot.db, NewBudget(TEAM_ID, period, limit, "C_SPEND", ADMIN, **fields), now=ANCHOR
    )


def line_of(view: Json, budget: Budget) -> str:
    """The text of the budget's section (the one whose Edit button carries its ID)."""
    [block] = [
        b for b in view["blocks"] if (b.get("accessory") or {}).get("value") == str(budget.id)
    ]
    return str(block["text"]["text"])


async def test_before_any_check_home_says_not_checked_yet_and_reads_nothing(bot: Bot) -> None:
    budgets = [
        new_budget(bot, PeriodKind.MONTHLY, 12_000, forecast=True),
        new_budget(bot, PeriodKind.ROLLING_24H, 100),
    ]
    bot.simulator.reset_requests()
    view = await open_home(bot)
    for budget in budgets:
        line = line_of(view, budget)
        assert "not checked yet — figures at the next check, within 5 min" in line
        assert " CU* of " not in line  # no figure at all, not a zero
    assert "couldn't read Scenario" not in all_text(view)
    assert bot.simulator.requests == []


async def test_after_a_check_home_shows_the_figures_that_check_saw(bot: Bot) -> None:
    marketing = next(p for p in TEAM.projects if p.name == "Marketing")
    team = new_budget(bot, PeriodKind.MONTHLY, 20_000, forecast=True)
    project = new_budget(
        bot,
        PeriodKind.DAILY,
        1_000,
        scope=Scope(ScopeKind.PROJECT, marketing.id),
        scope_name="Marketing",
    )
    key = new_budget(
        bot,
        PeriodKind.ROLLING_24H,
        100,
        scope=Scope(ScopeKind.KEY, TEAM.spike.user_id),
        scope_name="Runaway key",
    )
    await check(bot)
    # What the check saw, worked out again from the same simulated data: its own job list
    # for the spend, and a live read (the `/budget list` path) for the forecast.
    month_start = datetime(2026, 10, 31, 23, tzinfo=UTC)  # 1 Nov, midnight in Paris
    day_start = datetime(2026, 11, 25, 23, tzinfo=UTC)
    spend = {
        team.id: TEAM.cu_between(month_start, ANCHOR),
        project.id: TEAM.cu_between(day_start, ANCHOR, project_ids=[marketing.id]),
        key.id: TEAM.cu_between(ANCHOR - timedelta(hours=24), ANCHOR, user_ids=[key.scope.ref]),
    }
    client = await bot.deps.scenario_for(TEAM_ID)
    live, failure = await read_statuses(
        bot.db, client, [team, project, key], "Europe/Paris", ANCHOR
    )
    assert failure is None
    forecasts = {s.budget.id: s.forecast for s in live}

    # Minutes later: Scenario has more by now, but Home shows the check's figures, at once.
    bot.clock.advance(timedelta(minutes=3))
    bot.simulator.reset_requests()
    view = await open_home(bot)
    assert bot.simulator.requests == []
    for budget in (team, project, key):
        line = line_of(view, budget)
        used = spend[budget.id]
        assert f"*{cu(used)}* of {cu(budget.limit_cu)}" in line
        assert f"*{percent(used, budget.limit_cu)}*" in line
        assert "· as of 13:00" in line  # the check's instant, in Paris
        projection = forecasts[budget.id]
        if projection is not None:
            assert f"📈 likely {forecast_range(projection)} by the period's end" in line
        else:
            assert "📈" not in line
    assert forecasts[team.id] is not None  # a forecast budget, late in the month
    assert "🔔 alerted at 100 %" in line_of(view, key)  # the state the check left


@pytest.mark.parametrize(
    ("period", "ends"),
    [  # where each period of 26 Nov 2026 ends in Paris, as UTC instants
        (PeriodKind.DAILY, datetime(2026, 11, 26, 23, tzinfo=UTC)),
        (PeriodKind.WEEKLY, datetime(2026, 11, 29, 23, tzinfo=UTC)),  # Monday 30th 00:00
        (PeriodKind.MONTHLY, datetime(2026, 11, 30, 23, tzinfo=UTC)),  # 1 December 00:00
    ],
)
async def test_a_period_that_ended_since_the_check_never_shows_its_spend_as_current(
    bot: Bot, period: PeriodKind, ends: datetime
) -> None:
    budget = new_budget(bot, period, 50_000)
    await check(bot)
    seen = f"*{cu(TEAM.cu_between(_local_start(period), ANCHOR))}*"

    bot.clock.set(ends - timedelta(minutes=1))  # the checks stopped; the period runs on
    line = line_of(await open_home(bot), budget)
    same_day = (ends - timedelta(minutes=1)).astimezone(PARIS).date() == date(2026, 11, 26)
    assert seen in line
    assert ("as of 13:00" if same_day else "as of Thu 26 Nov 13:00") in line

    bot.clock.set(ends)
    bot.simulator.reset_requests()
    line = line_of(await open_home(bot), budget)
    assert "new period since the last check — figures at the next check" in line
    assert " CU* of " not in line
    assert bot.simulator.requests == []

    await check(bot)  # the next check brings the new period's figure
    line = line_of(await open_home(bot), budget)
    assert f"*{cu(TEAM.cu_between(ends, ends))}* of" in line and "as of 00:00" in line


def _local_start(period: PeriodKind) -> datetime:
    local = ANCHOR.astimezone(PARIS)
    if period is PeriodKind.DAILY:
        day = local.date()
    elif period is PeriodKind.WEEKLY:
        day = local.date() - timedelta(days=local.weekday())
    else:
        day = local.date().replace(day=1)
    return datetime.combine(day, time(0), PARIS).astimezone(UTC)


async def test_an_edit_after_the_check_waits_for_the_next_check(bot: Bot) -> None:
    budget = new_budget(bot, PeriodKind.ROLLING_24H, 5_000)
    await check(bot)
    edited = bot.clock.advance(timedelta(minutes=1))
    update_budget(bot.db, TEAM_ID, budget.id, {"limit_cu": 10.0}, actor=ADMIN, now=edited)
    line = line_of(await open_home(bot), budget)
    assert "changed since the last check — figures at the next check" in line
    await check(bot)
    assert f"of {cu(10.0)}" in line_of(await open_home(bot), budget)


async def test_a_dry_run_check_leaves_home_as_it_was(bot: Bot) -> None:
    budget = new_budget(bot, PeriodKind.ROLLING_24H, 100)
    await check(bot, dry_run=True)
    assert snapshots_of(bot.db, TEAM_ID) == {}
    assert "not checked yet" in line_of(await open_home(bot), budget)
    assert alerts.open_alerts(bot.db, budget.id) == []


async def test_snapshots_outlive_a_restart_and_go_with_their_budget(bot: Bot) -> None:
    kept = new_budget(bot, PeriodKind.ROLLING_24H, 100)
    removed = new_budget(bot, PeriodKind.DAILY, 1_000)
    await check(bot)
    before = build_home(bot.deps, TEAM_ID)

    runtime = Runtime.open(bot.deps.settings)  # a new process on the same database file
    try:
        _, deps = create_app(runtime, clock=bot.clock)
        bot.simulator.reset_requests()
        after = build_home(deps, TEAM_ID)
        assert line_of(after, kept) == line_of(before, kept)
        assert " CU* of " in line_of(after, kept)
        assert bot.simulator.requests == []
        delete_budget(runtime.db, TEAM_ID, removed.id, actor=ADMIN, now=ANCHOR)
        assert set(snapshots_of(runtime.db, TEAM_ID)) == {kept.id}
    finally:
        await runtime.aclose()
