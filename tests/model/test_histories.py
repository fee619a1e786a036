"""Random histories against the reference model: what Slack holds must equal what SPEC §5
says it must hold, after every step.

Each history is a workspace in a random time zone, one to three budgets (daily, weekly,
monthly or a rolling 24 h window; team or project scope; random limits and thresholds),
starting near a DST change, a month end, an ISO week end or a leap day, then a random
sequence of: jobs of any size, clock moves (a minute to a week) each followed by a check,
checks that fail (Scenario answers 500), budget edits (limit, thresholds), snoozes and
unsnoozes, acknowledgements of any message (also of an ended period), removals, Slack
answering 429 or 500 to the next calls, and restarts (the database reopened). The bot runs
for real: the check cycle reads the Scenario simulator over its wire format, the store is a
SQLite file, and messages go through the outbox to a fake Slack Web API over loopback HTTP.

After every step the messages in the fake Slack — each top-level post with its latest
content (level reached, limit, acknowledged by, snoozed until) and its thread replies, in
order, read back from their text — must equal `tests/model/reference.py`'s, which knows
nothing of the bot's code. `HYPOTHESIS_PROFILE=long` runs many more histories.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient

from bot.asgi_server import serve_app
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.announce import announce
from bot.jobs.check import CheckSettings, run_check
from bot.jobs.delivery import drain
from bot.messages.alerts import STATUS_ACK, STATUS_SNOOZE
from bot.scenario.client import ScenarioClient
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator
from bot.sim.team import Job, Model, Project, SyntheticTeam, User
from bot.store import alerts, snoozes
from bot.store.budgets import NewBudget, create_budget, delete_budget, update_budget
from bot.store.db import migrate, open_db
from bot.store.workspaces import Workspace, set_timezone
from tests.model import reference as ref
from tests.simulated import simulator_client

WORKSPACE = "T1"
CHANNEL = "C_ALERTS"
APP_URL = "https://app.example"
PROJECTS = ("p1", "p2")
PERIODS = {
    "daily": PeriodKind.DAILY,
    "weekly": PeriodKind.WEEKLY,
    "monthly": PeriodKind.MONTHLY,
    ref.ROLLING: PeriodKind.ROLLING_24H,
}
ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
]
# Boundaries worth straddling: DST changes, month and ISO week ends, a leap day.
ANCHORS = [
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # Europe spring forward
    datetime(2026, 10, 24, 22, 30, tzinfo=UTC),  # Europe fall back (a 25 h day in Paris)
    datetime(2026, 11, 1, 4, 30, tzinfo=UTC),  # New York fall back
    datetime(2026, 3, 8, 6, 30, tzinfo=UTC),  # New York spring forward
    datetime(2026, 11, 30, 22, 30, tzinfo=UTC),  # a month end
    datetime(2026, 12, 6, 22, 30, tzinfo=UTC),  # an ISO week end (Sunday)
    datetime(2028, 2, 28, 23, 30, tzinfo=UTC),  # a leap day
    datetime(2026, 4, 4, 14, 30, tzinfo=UTC),  # Lord Howe's half-hour fall back
]
USERS = ("U_ANA", "U_BO")


# -- the fake Slack, served once for the module ---------------------------------------------


class SlackServer:
    """The fake Slack Web API on loopback, in a thread of its own so that every history
    (each in its own event loop) can reach it."""

    def __init__(self) -> None:
        self.slack = slack_api.FakeSlack()
        self.origin = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve_app(slack_api.create_app(self.slack)) as origin:
            self.origin = self.slack.origin = origin
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("the fake Slack did not start")

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def reset(self) -> None:
        self.slack.calls.clear()
        self.slack.messages.clear()
        self.slack.faults.clear()


@pytest.fixture(scope="module")
def slack_server() -> Iterator[SlackServer]:
    server = SlackServer()
    server.start()
    yield server
    server.stop()


# -- histories ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetDraft:
    period: str
    scope: str  # "team" or a project id
    limit: int
    thresholds: frozenset[int]


@st.composite
def budget_drafts(draw: st.DrawFn) -> BudgetDraft:
    return BudgetDraft(
        period=draw(st.sampled_from(sorted(PERIODS))),
        scope=draw(st.sampled_from(["team", "team", *PROJECTS])),
        limit=draw(st.sampled_from([4, 10, 20, 37, 50, 100])),
        thresholds=frozenset(draw(LEVELS)),
    )


MINUTES = [1, 7, 29, 59, 61, 180, 181, 600, 1439, 1441, 3000, 10080]

spend = st.tuples(
    st.just("spend"),
    st.sampled_from(["team", *PROJECTS]),
    st.sampled_from([0.25, 1.0, 2.5, 5.0, 7.75, 10.0, 20.0, 40.0]),
    st.integers(1, 58),
)
check = st.tuples(st.just("check"), st.sampled_from(MINUTES))
LEVELS = st.sets(st.sampled_from([25, 50, 80, 100, 150]), min_size=1)
STEPS = {
    "spend": spend,
    "check": check,
    "failed_check": st.tuples(st.just("failed_check"), st.sampled_from(MINUTES[:5])),
    "edit": st.tuples(
        st.just("edit"),
        st.integers(0, 2),
        st.one_of(st.none(), st.sampled_from([4, 10, 20, 37, 50, 100, 200])),
        st.one_of(st.none(), LEVELS),
    ),
    "snooze": st.tuples(st.just("snooze"), st.integers(0, 2), st.sampled_from([30, 240, 1440])),
    "unsnooze": st.tuples(st.just("unsnooze"), st.integers(0, 2)),
    "acknowledge": st.tuples(st.just("acknowledge"), st.integers(0, 20), st.sampled_from(USERS)),
    "remove": st.tuples(st.just("remove"), st.integers(0, 2)),
    "slack_fails": st.tuples(
        st.just("slack_fails"), st.sampled_from([429, 500, "500 after posting"]), st.integers(1, 2)
    ),
    "restart": st.tuples(st.just("restart")),
}
# Spend and checks make the story; the rest happens now and then.
WEIGHTS = {"spend": 12, "check": 8, "failed_check": 1, "edit": 2, "snooze": 1, "unsnooze": 1}
KINDS = [kind for kind in STEPS for _ in range(WEIGHTS.get(kind, 1))]
steps = st.sampled_from(KINDS).flatmap(STEPS.__getitem__)


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, datetime, list[BudgetDraft], list[tuple[Any, ...]]]:
    tz = draw(st.sampled_from(ZONES))
    # Checks happen at :30 seconds (clock moves are whole minutes), periods start at :00
    # and jobs at neither: no job or check ever sits exactly on a boundary.
    start = draw(st.sampled_from(ANCHORS)) - timedelta(minutes=draw(st.integers(0, 600)))
    start += timedelta(seconds=30)
    budgets = draw(st.lists(budget_drafts(), min_size=1, max_size=3))
    return tz, start, budgets, draw(st.lists(steps, min_size=20, max_size=80))


# -- the bot, driven for real ---------------------------------------------------------------


class Bot:
    def __init__(self, path: Path, tz: str, now: datetime, web: AsyncWebClient) -> None:
        self.path, self.tz, self.now, self.web = path, tz, now, web
        self.db = open_db(path)
        migrate(self.db)
        set_timezone(self.db, WORKSPACE, tz, actor="U_ADMIN", now=now)
        self.jobs: list[Job] = []
        self.scenario_down = False
        self.settings = CheckSettings(default_tz=tz, app_url=APP_URL)

    def restart(self) -> None:
        self.db.close()
        self.db = open_db(self.path)
        migrate(self.db)

    async def check(self) -> None:
        team = SyntheticTeam(
            projects=[Project(p, p.upper()) for p in PROJECTS],
            users=[User("u_x", email="x@example.test", full_name="X")],
            models=[Model("m_1", "Model one")],
            jobs=sorted(self.jobs, key=lambda job: job.time),
        )
        simulator = Simulator(team, clock=ManualClock(self.now))
        simulator.faults.outage = self.scenario_down

        client = simulator_client(simulator)

        async def scenario_for(workspace: Workspace) -> ScenarioClient:
            return client

        try:
            [result] = await run_check(self.db, scenario_for, self.settings, self.now)
        finally:
            await client.aclose()
        if self.db["budgets"].count:  # with no budget left, nothing is read
            assert (result.error is not None) == self.scenario_down, result.error

    async def deliver(self) -> None:
        """What `Runtime.deliver` does after a check or a press; retried a few seconds
        later while Slack answers 429 or 500 (never long enough for anything to expire)."""
        announce(self.db, app_url=APP_URL, default_tz=self.tz, now=self.now)

        async def client_for(workspace_id: str) -> AsyncWebClient:
            return self.web

        for offset in (0, 6, 12, 20):
            at = self.now + timedelta(seconds=offset)
            await drain(self.db, client_for, lambda at=at: at)  # type: ignore[misc]


def label_of(alert: alerts.Alert, tz: str) -> str:
    """The reference's name for the alert's message."""
    if alert.period_start is None:
        return "episode-" + alert.period_key.rsplit("#", 1)[1]
    return alert.period_start.astimezone(ZoneInfo(tz)).date().isoformat()


_CU = r"([\d,]+(?:\.\d)?) CU"


def _cu(text: str) -> float:
    return float(text.replace(",", ""))


def read_reply(text: str) -> tuple[Any, ...]:
    """A thread reply, read back as the reference's event tuple."""
    if m := re.match(r"⬆️ Now at .*: crossed (\d+) %", text):
        return ("level", int(m[1]))
    if m := re.match(r"✅ Back under (\d+) %", text):
        return ("back_under", int(m[1]))
    edited = (
        rf"✏️ <@\w+> (?:changed the budget: limit {_CU}"
        rf"|(?:raised|lowered) the limit to {_CU} \(from {_CU}\)), alerts at ([\d %,]+)\."
    )
    if m := re.match(edited, text):
        levels = tuple(int(x) for x in re.findall(r"\d+", m[4]))
        return ("edited", _cu(m[1] or m[2]), levels)
    if m := re.match(r"💤 <@\w+> snoozed this budget until <!date\^(\d+)\^", text):
        return ("snoozed", datetime.fromtimestamp(int(m[1]), UTC))
    if text.startswith("🔔 "):
        return ("unsnoozed",)
    if m := re.match(r"👀 <@(\w+)> acknowledged", text):
        return ("acknowledged", m[1])
    raise AssertionError(f"a reply the model does not know: {text!r}")


def read_top(message: slack_api.Message, now: datetime) -> tuple[Any, ...]:
    level = re.search(r": (\d+) % of budget reached", message.text)
    limit = re.search(rf" of {_CU} \(", message.text)
    assert limit is not None, message.text
    ack = snoozed = None
    for block in message.blocks:
        text = (block.get("elements") or [{}])[0].get("text", "")
        if block.get("block_id") == STATUS_ACK:
            ack = re.search(r"Acknowledged by <@(\w+)>", text)[1]  # type: ignore[index]
        if block.get("block_id") == STATUS_SNOOZE:
            until = datetime.fromtimestamp(int(re.search(r"<!date\^(\d+)\^", text)[1]), UTC)  # type: ignore[index]
            snoozed = until if until > now else None
    return (int(level[1]) if level else None, _cu(limit[1]), ack, snoozed)


def slack_view(bot: Bot, slack: slack_api.FakeSlack) -> dict[ref.MessageId, tuple[Any, ...]]:
    """Every top-level message in Slack: its latest state and its replies, by the
    reference's message id (found through the alert that owns the message)."""
    view: dict[ref.MessageId, tuple[Any, ...]] = {}
    roots = {row["root_key"]: row["id"] for row in bot.db.query("SELECT id, root_key FROM alerts")}
    removed = 0
    for message in slack.top_level(CHANNEL):
        key = (message.metadata or {}).get("event_payload", {}).get("dedup_key")
        alert = alerts.alert_by_id(bot.db, roots[key]) if key in roots else None
        if alert is None:  # its budget was removed: the reference keeps it, unchanged
            removed += 1
            continue
        replies = tuple(read_reply(r.text) for r in slack.replies(CHANNEL, message.ts))
        view[(alert.budget_id, label_of(alert, bot.tz))] = (read_top(message, bot.now), replies)
    return view


def model_view(
    model: ref.Reference, removed: set[int], now: datetime
) -> dict[ref.MessageId, tuple[Any, ...]]:
    view = {}
    for message_id, message in model.messages().items():
        if message_id[0] in removed:
            continue
        top = message.top
        snoozed = top.snoozed_until if top.snoozed_until and top.snoozed_until > now else None
        view[message_id] = (
            (top.highest_level, top.limit_cu, top.acknowledged_by, snoozed),
            message.replies,
        )
    return view


async def run_history(
    server: SlackServer,
    path: Path,
    tz: str,
    start: datetime,
    drafts: list[BudgetDraft],
    history: list[tuple[Any, ...]],
) -> tuple[int, int, int]:
    server.reset()
    web = AsyncWebClient(token="xoxb-test", base_url=f"{server.origin}/api/", retry_handlers=[])
    bot = Bot(path, tz, start, web)
    model = ref.Reference()
    ids: list[int] = []
    removed: set[int] = set()
    for draft in drafts:
        scope = (
            Scope(ScopeKind.TEAM)
            if draft.scope == "team"
            else Scope(ScopeKind.PROJECT, draft.scope)
        )
        budget = create_budget(
            bot.db,
            NewBudget(
                WORKSPACE,
                PERIODS[draft.period],
                draft.limit,
                CHANNEL,
                "U_ADMIN",
                scope,
                thresholds=tuple(sorted(draft.thresholds)),
            ),
            now=bot.now,
        )
        ids.append(budget.id)
        model.add(
            bot.now,
            ref.BudgetSpec(
                budget.id,
                float(draft.limit),
                draft.thresholds,
                draft.period,
                ref.TEAM_SCOPE if draft.scope == "team" else f"project:{draft.scope}",
                tz,
            ),
        )
    steps_run = 0
    for step in history:
        kind = step[0]
        now = bot.now
        if kind == "spend":
            _, where, cu, seconds = step
            project = where if where != "team" else PROJECTS[len(bot.jobs) % 2]
            # Seconds never 0 or 30: checks happen at :30, periods start at :00.
            at = now + timedelta(seconds=seconds if seconds != 30 else 31)
            bot.jobs.append(Job(f"job_{len(bot.jobs)}", at, "u_x", project, "m_1", cu))
            model.add_job(ref.Job(at, cu, frozenset({ref.TEAM_SCOPE, f"project:{project}"})))
            continue
        if kind in ("check", "failed_check"):
            bot.now = now + timedelta(minutes=step[1])
            bot.scenario_down = kind == "failed_check"
            await bot.check()
            model.check(bot.now, ok=kind == "check")
        elif kind == "edit":
            _, index, limit, thresholds = step
            budget_id = ids[index % len(ids)]
            if budget_id in removed or (limit is None and thresholds is None):
                continue
            changes: dict[str, Any] = {}
            if limit is not None:
                changes["limit_cu"] = float(limit)
            if thresholds is not None:
                changes["thresholds"] = tuple(sorted(thresholds))
            update_budget(bot.db, WORKSPACE, budget_id, changes, actor="U_ADMIN", now=now)
            model.edit(
                now,
                budget_id,
                limit_cu=float(limit) if limit is not None else None,
                thresholds=frozenset(thresholds) if thresholds is not None else None,
            )
        elif kind == "snooze":
            budget_id = ids[step[1] % len(ids)]
            if budget_id in removed:
                continue
            until = now + timedelta(minutes=step[2])
            snoozes.snooze(bot.db, WORKSPACE, budget_id, until, actor="U_ADMIN", now=now)
            model.snooze(now, budget_id, until)
        elif kind == "unsnooze":
            budget_id = ids[step[1] % len(ids)]
            if budget_id in removed:
                continue
            snoozes.unsnooze(bot.db, WORKSPACE, budget_id, actor="U_ADMIN", now=now)
            model.unsnooze(now, budget_id)
        elif kind == "acknowledge":
            rows = list(bot.db.query("SELECT id FROM alerts ORDER BY id"))
            if not rows:
                continue
            alert = alerts.alert_by_id(bot.db, rows[step[1] % len(rows)]["id"])
            assert alert is not None
            alerts.acknowledge(bot.db, WORKSPACE, alert.id, actor=step[2], now=now)
            model.acknowledge(now, (alert.budget_id, label_of(alert, tz)), step[2])
        elif kind == "remove":
            budget_id = ids[step[1] % len(ids)]
            if budget_id in removed:
                continue
            delete_budget(bot.db, WORKSPACE, budget_id, actor="U_ADMIN", now=now)
            model.remove(now, budget_id)
            removed.add(budget_id)
        elif kind == "slack_fails":
            _, status, times = step
            if status == "500 after posting":  # Slack did it, but the bot cannot know
                fault = slack_api.Fault(status=500, after_effect=True)
            else:
                fault = slack_api.Fault(status=status, retry_after=1 if status == 429 else None)
            for method in ("chat.postMessage", "chat.update"):
                server.slack.fail_next(method, fault, times)
        elif kind == "restart":
            bot.restart()
        await bot.deliver()
        server.slack.faults.clear()  # a failure not used up by this step is forgotten
        steps_run += 1
        assert slack_view(bot, server.slack) == model_view(model, removed, bot.now), (
            f"after step {steps_run}: {step}"
        )
    bot.db.close()
    messages = len(server.slack.top_level(CHANNEL))
    for reply in server.slack.all_messages():
        if reply.thread_ts:
            event(f"reply: {read_reply(reply.text)[0]}")
    return steps_run, messages, len(server.slack.all_messages()) - messages


# 1,000 histories in CI (about 90 s on 2 cores); `HYPOTHESIS_PROFILE=long` for 3,000.
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"


@settings(
    max_examples=3000 if LONG else 1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(histories())
def test_slack_holds_what_the_reference_model_says_after_every_step(
    slack_server: SlackServer, tmp_path_factory: pytest.TempPathFactory, case: Any
) -> None:
    tz, start, drafts, history = case
    path = tmp_path_factory.mktemp("history") / "bot.db"
    steps_run, messages, replies = asyncio.run(
        run_history(slack_server, path, tz, start, drafts, history)
    )
    event(f"steps: {min(steps_run // 10 * 10, 30)}+")
    event(f"messages: {min(messages, 5)}{'+' if messages >= 5 else ''}")
    event(f"replies: {min(replies // 5 * 5, 15)}+")
