"""The check cycle when Scenario fails: nothing lost, nothing duplicated, no false alert.

SPEC §5: "A Scenario outage or bad credentials never produces a false alert or a crash;
after repeated failures the admins are told once, and told again when it recovers." Each
test breaks Scenario a different way (the simulator's `Faults`, a credential mismatch, or
a wrapping transport that fails chosen requests), checks that the failed cycle recorded
nothing and named the cause, then heals Scenario and compares the next cycle's alerts with
those a fault-free run writes into a fresh database: the same rows, once.

The simulator runs in-process (`httpx.ASGITransport`), the clocks are injected and the
client's retry sleeps return at once; only the timeout test waits, for a few 20 ms
attempt deadlines.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlite_utils import Database

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs import check
from bot.jobs.check import CheckSettings, WorkspaceResult, run_check
from bot.scenario.client import DEFAULT_TIMEOUT, ScenarioClient, format_iso
from bot.sim.scenario import UNKNOWN_JOB_TYPE, ManualClock, Simulator, create_app
from bot.sim.team import SyntheticTeam
from bot.store.budgets import NewBudget, create_budget
from bot.store.db import migrate, open_db
from bot.store.health import RECOVERED_AFTER, TELL_ADMINS_AFTER, health_of
from bot.store.workspaces import Workspace

ANCHOR = datetime(2026, 11, 26, 12, tzinfo=UTC)
TEAM = SyntheticTeam.build(7, ANCHOR)
WS = "T1"
ADMIN = "U0ADMIN"
SETTINGS = CheckSettings(
    default_tz="Europe/Paris", app_url="https://app.example", admin_ids=frozenset({ADMIN})
)
CYCLE = timedelta(minutes=5)
THRESHOLDS = (50, 80, 100)
# At ANCHOR the spike's API key spent ~5,390 CU in the last 24 h (90 % of 6,000), the team
# ~43,700 CU this month (87 % of 50,000, and on track to exceed it) and ~5,730 CU today
# (115 % of 5,000). The three budgets need three /usages windows; sorted by start (the order
# the cycle asks for them) the rolling one is the 2nd.
BUDGETS = (
    NewBudget(
        WS,
        PeriodKind.ROLLING_24H,
        6000,
        "C1",
        "U1",
        scope=Scope(ScopeKind.KEY, TEAM.spike.user_id),
        thresholds=THRESHOLDS,
    ),
    NewBudget(WS, PeriodKind.MONTHLY, 50_000, "C2", "U1", thresholds=THRESHOLDS, forecast=True),
    NewBudget(WS, PeriodKind.DAILY, 5000, "C2", "U1", thresholds=THRESHOLDS),
)
CAUSES = ("outage", "rate limited", "bad credentials")

Predicate = Callable[[httpx.Request], bool]


class FailingTransport(httpx.AsyncBaseTransport):
    """Answers 503 to the requests `fails` picks (every attempt), never answers those
    `hangs` picks; the rest reach `inner`."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, fails: Predicate, hangs: Predicate = lambda r: False
    ) -> None:
        self.inner = inner
        self.fails = fails
        self.hangs = hangs
        self.failed: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        failing = self.fails(request)  # asked first: a predicate may also count requests
        if self.hangs(request):
            await asyncio.sleep(3600)
        if failing:
            self.failed.append(request)
            return httpx.Response(503, json={"message": "Service unavailable"})
        return await self.inner.handle_async_request(request)


def never(request: httpx.Request) -> bool:
    return False


@dataclass
class Rig:
    """One workspace with BUDGETS, a simulator on a manual clock, and knobs to break it."""

    db: Database
    simulator: Simulator
    clock: ManualClock
    fails: Predicate = never
    team_id: str | None = None  # set: alerts also read the team's names (GET /teams/{id})
    hangs: Predicate = never
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    transports: list[FailingTransport] = field(default_factory=list)
    clients: list[ScenarioClient] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.clock()

    async def scenario_for(self, workspace: Workspace) -> ScenarioClient:
        async def no_wait(seconds: float) -> None:
            return None

        # Looks the predicate up per request, so a test may change it between cycles.
        transport = FailingTransport(
            httpx.ASGITransport(create_app(self.simulator)),
            lambda r: self.fails(r),
            lambda r: self.hangs(r),
        )
        client = ScenarioClient(
            base_url="http://simulator/v1",
            api_key="test-key",
            api_secret="test-secret",
            team_id=self.team_id,
            transport=transport,
            sleep=no_wait,
            timeout=self.timeout,
            activity_page_cap=2,  # attribution reads are not what is tested; keep them cheap
        )
        self.transports.append(transport)
        self.clients.append(client)
        return client

    async def cycle(self) -> WorkspaceResult:
        """One check cycle at the clock's time, then the clock moves on one cycle."""
        results = await run_check(self.db, self.scenario_for, SETTINGS, self.now)
        self.clock.advance(CYCLE)
        assert [r.workspace_id for r in results] == [WS]
        return results[0]


def fresh_db(path: Path) -> Database:
    db = open_db(path)
    migrate(db)
    for budget in BUDGETS:
        create_budget(db, budget, now=ANCHOR)
    return db


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = ManualClock(ANCHOR)
    rig = Rig(fresh_db(tmp_path / "bot.db"), Simulator(TEAM, clock=clock), clock)
    yield rig
    for client in rig.clients:
        await client.aclose()
    rig.db.close()


# ------------------------------------------------------------------------------- observing


def alert_state(db: Database) -> list[tuple[Any, ...]]:
    return [
        (row["budget_id"], row["period_key"], row["kind"], row["level"])
        for row in db.query("SELECT * FROM alert_state ORDER BY id")
    ]


def alert_outbox(db: Database) -> list[dict[str, Any]]:
    """Every outbox row except the admins' health notices, without ids and times."""
    rows = db.query(
        "SELECT dedup_key, workspace_id, budget_id, channel_id, action, thread_key, payload"
        " FROM outbox WHERE dedup_key NOT LIKE 'health:%' ORDER BY id"
    )
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


def health_rows(db: Database) -> list[tuple[str, str]]:
    """(key, text) of the health notices, oldest first."""
    rows = db.query(
        "SELECT dedup_key, payload FROM outbox WHERE dedup_key LIKE 'health:%' ORDER BY id"
    )
    return [(row["dedup_key"], json.loads(row["payload"])["text"]) for row in rows]


@dataclass(frozen=True)
class Expected:
    alert_state: list[tuple[Any, ...]]
    outbox: list[dict[str, Any]]
    enqueued_keys: list[str]


_FAULT_FREE: dict[datetime, Expected] = {}


async def fault_free(tmp_path: Path, now: datetime) -> Expected:
    """What one cycle at `now` writes into a fresh database, Scenario healthy (computed
    once per instant: it depends on nothing else)."""
    if now not in _FAULT_FREE:
        _FAULT_FREE[now] = await _fault_free(tmp_path, now)
    return _FAULT_FREE[now]


async def _fault_free(tmp_path: Path, now: datetime) -> Expected:
    clock = ManualClock(now)
    db = fresh_db(tmp_path / f"fresh-{now:%H%M%S}.db")
    fresh = Rig(db, Simulator(TEAM, clock=clock), clock)
    try:
        result = await fresh.cycle()
        assert result.error is None
        return Expected(alert_state(db), alert_outbox(db), [r["key"] for r in result.enqueued])
    finally:
        for client in fresh.clients:
            await client.aclose()
        db.close()


def assert_nothing_recorded(rig: Rig, result: WorkspaceResult, cause: str) -> None:
    assert result.error is not None and result.error.startswith(f"{cause}: "), result.error
    assert result.enqueued == []
    assert result.usage_calls == 0
    assert alert_state(rig.db) == []
    assert rig.db["outbox"].count == 0
    assert rig.db["audit_log"].count == len(BUDGETS)  # the creations only


async def assert_heals_like_a_fresh_run(rig: Rig, tmp_path: Path) -> None:
    """The next healthy cycle writes exactly what a fault-free run would; then nothing."""
    expected = await fault_free(tmp_path, rig.now)
    # The data crosses: 3 budgets alert, one of them with its forecast in the same message.
    assert len(expected.alert_state) >= 7 and len(expected.outbox) == 3
    healed = await rig.cycle()
    assert healed.error is None
    assert [row["key"] for row in healed.enqueued] == expected.enqueued_keys
    assert alert_state(rig.db) == expected.alert_state
    assert alert_outbox(rig.db) == expected.outbox
    again = await rig.cycle()
    assert again.error is None and again.enqueued == []
    assert alert_outbox(rig.db) == expected.outbox


# ------------------------------------------------------------------------- faults that win


def break_with_server_errors(rig: Rig) -> None:
    rig.simulator.faults.server_error_next = 10**6  # more 500s than any retry budget


def break_with_outage(rig: Rig) -> None:
    rig.simulator.faults.outage = True


def break_with_rate_limit(rig: Rig) -> None:
    # Every attempt is refused, and the server asks for more than the client would wait.
    rig.simulator.faults.rate_limit_next = 10**6
    rig.simulator.faults.retry_after = 600


def break_with_latency(rig: Rig) -> None:
    rig.timeout = httpx.Timeout(0.02)
    rig.simulator.faults.latency = 30.0  # cancelled at the client's deadline: never waited


def break_with_malformed_body(rig: Rig) -> None:
    rig.simulator.faults.malformed_next = 1  # one truncated JSON body is enough


def break_credentials(rig: Rig) -> None:
    rig.simulator.api_secret = "rotated-test-secret"  # the bot still sends the old one


def heal(rig: Rig) -> None:
    faults = rig.simulator.faults
    faults.server_error_next = faults.rate_limit_next = faults.malformed_next = 0
    faults.outage = False
    faults.latency = 0.0
    rig.simulator.api_secret = "test-secret"
    rig.timeout = DEFAULT_TIMEOUT
    rig.fails = never


BREAKS: dict[str, tuple[Callable[[Rig], None], str, str]] = {
    # name: (break, cause in WorkspaceResult.error, words of the message)
    "500s outlast retries": (break_with_server_errors, "outage", "HTTP 500"),
    "outage": (break_with_outage, "outage", "HTTP 500"),
    "429 beyond retries": (break_with_rate_limit, "rate limited", "HTTP 429"),
    "timeout": (break_with_latency, "outage", "did not answer in time"),
    "malformed body": (break_with_malformed_body, "outage", "not JSON"),
    "bad credentials": (break_credentials, "bad credentials", "HTTP 401"),
}


@pytest.mark.parametrize("name", list(BREAKS))
async def test_a_failed_cycle_records_nothing_and_the_next_alerts_once(
    rig: Rig, tmp_path: Path, name: str
) -> None:
    breaks, cause, words = BREAKS[name]
    breaks(rig)
    failed = await rig.cycle()
    assert_nothing_recorded(rig, failed, cause)
    assert words in failed.error
    assert health_of(rig.db, WS)["consecutive_failures"] == 1
    assert health_of(rig.db, WS)["last_cause"] == cause
    if cause != "bad credentials" and name != "malformed body":
        # It really retried: one window got every attempt the client allows.
        attempts = rig.clients[0].max_retries + 1
        starts = [r.param("startDate") for r in rig.simulator.requests]
        assert max(starts.count(s) for s in set(starts)) >= attempts

    heal(rig)
    await assert_heals_like_a_fresh_run(rig, tmp_path)
    assert health_of(rig.db, WS)["consecutive_failures"] == 0


# ---------------------------------------------------------------------- faults absorbed


@pytest.mark.parametrize(
    "faults",
    [
        {"server_error_next": 1},
        {"server_error_next": 2},
        {"rate_limit_next": 1},
        {"rate_limit_next": 2, "retry_after": 3},
        {"rate_limit_next": 1, "server_error_next": 1},
    ],
)
async def test_a_transient_fault_the_retries_absorb_changes_nothing(
    rig: Rig, tmp_path: Path, faults: dict[str, float]
) -> None:
    expected = await fault_free(tmp_path, rig.now)
    for name, value in faults.items():
        setattr(rig.simulator.faults, name, value)
    result = await rig.cycle()
    assert result.error is None
    refused = [r for r in rig.simulator.requests if r.status in (429, 500)]
    injected = int(faults.get("server_error_next", 0) + faults.get("rate_limit_next", 0))
    assert len(refused) == injected  # the faults did happen, and were retried
    assert [row["key"] for row in result.enqueued] == expected.enqueued_keys
    assert alert_state(rig.db) == expected.alert_state
    assert alert_outbox(rig.db) == expected.outbox
    assert health_of(rig.db, WS)["consecutive_failures"] == 0
    assert (await rig.cycle()).enqueued == []


# ------------------------------------------------------------------------ partial failures


# The three windows' starts at ANCHOR, as the cycle orders them: month, rolling 24 h, day.
WINDOW_STARTS = (
    "2026-10-31T23:00:00.000Z",  # November in Paris
    format_iso(ANCHOR - timedelta(hours=24)),
    "2026-11-25T23:00:00.000Z",  # the 26th in Paris
)


@pytest.mark.parametrize("failing", [1, 2, 3])
async def test_one_failed_window_of_three_alerts_nothing_then_everything(
    rig: Rig, tmp_path: Path, failing: int
) -> None:
    # The n-th of the three windows fails every attempt; the others are read fine, and
    # their budgets' data says "alert", yet the workspace alerts nothing this cycle.
    target = WINDOW_STARTS[failing - 1]
    rig.fails = lambda r: r.url.params.get("startDate") == target
    failed = await rig.cycle()
    assert_nothing_recorded(rig, failed, "outage")
    assert {r.url.params["startDate"] for r in rig.transports[0].failed} == {target}
    assert len(rig.transports[0].failed) == rig.clients[0].max_retries + 1
    served = {r.param("startDate") for r in rig.simulator.requests if r.status == 200}
    assert served <= set(WINDOW_STARTS) - {target}
    heal(rig)
    await assert_heals_like_a_fresh_run(rig, tmp_path)


# ----------------------------------------------------------------- attribution unavailable


def is_activity(request: httpx.Request) -> bool:
    """An attribution read: the usage windows never ask for the activity log."""
    return "activity" in (request.url.params.get("type") or "").split(",")


async def test_failing_attribution_reads_still_alert_once_with_less_detail(
    rig: Rig, tmp_path: Path
) -> None:
    expected = await fault_free(tmp_path, rig.now)
    rig.fails = is_activity
    result = await rig.cycle()
    assert result.error is None
    assert rig.transports[0].failed  # the activity reads were tried, and failed
    assert all(is_activity(r) for r in rig.transports[0].failed)
    assert health_of(rig.db, WS)["consecutive_failures"] == 0  # usage was readable

    assert [row["key"] for row in result.enqueued] == expected.enqueued_keys
    assert alert_state(rig.db) == expected.alert_state
    got = alert_outbox(rig.db)
    assert [row["dedup_key"] for row in got] == [row["dedup_key"] for row in expected.outbox]
    for degraded, full in zip(got, expected.outbox, strict=True):
        # The headline (budget, spend / limit / %) is the same; the job list is gone.
        assert degraded["payload"]["text"] == full["payload"]["text"]
        assert re.search(r"— [\d,.]+ CU of [\d,.]+ CU \(\d+ %\)$", degraded["payload"]["text"])
        head = json.dumps(degraded["payload"]["blocks"][:2])
        assert head == json.dumps(full["payload"]["blocks"][:2])
        blocks = json.dumps(degraded["payload"]["blocks"])
        assert "Costliest jobs" not in blocks
        assert "most recent activity only" in blocks
    assert any("Costliest jobs" in json.dumps(row["payload"]["blocks"]) for row in expected.outbox)

    # Attribution back or not, nothing is announced twice.
    assert (await rig.cycle()).enqueued == []
    heal(rig)
    assert (await rig.cycle()).enqueued == []
    assert alert_outbox(rig.db) == got


def is_team(request: httpx.Request) -> bool:
    return "/teams/" in request.url.path


def spike_key_line(rig: Rig) -> str:
    """The alert line naming the runaway API key, in the rolling 24 h key budget's alert."""
    for row in alert_outbox(rig.db):
        for line in json.dumps(row["payload"]["blocks"], ensure_ascii=False).split("\\n"):
            if "🔑" in line:
                return line
    raise AssertionError("no API key in any alert")


async def names_rig(tmp_path: Path, name: str, fails: Predicate) -> Rig:
    clock = ManualClock(ANCHOR)
    simulator = Simulator(TEAM, clock=clock, team_id="team_t")
    return Rig(fresh_db(tmp_path / f"{name}.db"), simulator, clock, team_id="team_t", fails=fails)


@pytest.mark.parametrize("how", ["answers", "fails", "hangs"])
async def test_alerts_name_api_keys_from_the_team_and_go_out_without_it(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a team ID an alert names the runaway key by its name, from one GET /teams/{id}
    in a cycle that alerts; when that read fails or hangs, the same alerts still go out, in
    the same cycle, naming the key by its key ID."""
    monkeypatch.setattr(check, "NAMES_WITHIN", timedelta(seconds=0.3))
    baseline = await names_rig(tmp_path, "baseline", never)
    expected = [row["key"] for row in (await baseline.cycle()).enqueued]
    team_reads: list[httpx.Request] = []

    def watch(request: httpx.Request) -> bool:
        if is_team(request):
            team_reads.append(request)
        return how == "fails" and is_team(request)

    rig = await names_rig(tmp_path, how, watch)
    if how == "hangs":
        rig.hangs = is_team
    # A guard, not a measure: without the bound on the names read, a hang stops the cycle.
    result = await asyncio.wait_for(rig.cycle(), 120)
    assert result.error is None
    assert [row["key"] for row in result.enqueued] == expected  # the same alerts
    assert team_reads  # the names were asked for
    if how == "answers":
        assert len(team_reads) == 1  # once per cycle that alerts, not per alert
    key = next(u for u in TEAM.users if u.id == TEAM.spike.user_id)
    line = spike_key_line(rig)
    if how == "answers":
        assert key.key_name and f"|{key.key_name}>" in line
    else:
        assert key.key_name not in line and TEAM.spike.api_key_id in line
    for r in (baseline, rig):
        for client in r.clients:
            await client.aclose()
        r.db.close()


# -------------------------------------------------------------------------- admin notices


OUTAGES: dict[str, Callable[[Rig], None]] = {
    "bad credentials": break_credentials,
    "outage": break_with_outage,
    "rate limited": break_with_rate_limit,
}


async def fail_cycles(rig: Rig, n: int, cause: str) -> list[dict[str, Any]]:
    """Runs `n` failing cycles; what they enqueued (health notices only, if anything)."""
    alerts_before, outbox_before = alert_state(rig.db), alert_outbox(rig.db)
    enqueued = []
    for _ in range(n):
        result = await rig.cycle()
        assert result.error is not None and result.error.startswith(f"{cause}: ")
        enqueued += result.enqueued
    assert alert_state(rig.db) == alerts_before
    assert alert_outbox(rig.db) == outbox_before
    return enqueued


@pytest.mark.parametrize("cause", list(OUTAGES))
async def test_admins_hear_once_per_episode_naming_the_cause(
    rig: Rig, tmp_path: Path, cause: str
) -> None:
    breaks = OUTAGES[cause]
    breaks(rig)
    assert await fail_cycles(rig, TELL_ADMINS_AFTER - 1, cause) == []
    told = await fail_cycles(rig, 1, cause)
    # In each channel the budgets alert in, mentioning the configured admin.
    assert [(row["key"].split(":")[-2], row["channel"]) for row in told] == [
        ("down", "C1"),
        ("down", "C2"),
    ]
    assert all(f"<@{ADMIN}>" in row["text"] for row in told)
    text = told[0]["text"]
    assert f"{TELL_ADMINS_AFTER} times in a row ({cause})" in text
    assert all(other not in text for other in CAUSES if other != cause)
    assert await fail_cycles(rig, 2, cause) == []  # still down: nothing more
    assert alert_outbox(rig.db) == [] and alert_state(rig.db) == []

    heal(rig)
    expected = await fault_free(tmp_path, rig.now)
    recovered = await rig.cycle()
    assert [row["key"] for row in recovered.enqueued] == expected.enqueued_keys
    # "It works again" once it has for RECOVERED_AFTER cycles in a row (no flapping).
    for _ in range(RECOVERED_AFTER - 2):
        assert (await rig.cycle()).enqueued == []
    notices = (await rig.cycle()).enqueued
    assert [(row["key"].split(":")[-2], row["channel"]) for row in notices] == [
        ("up", "C1"),
        ("up", "C2"),
    ]
    assert "can be read again" in notices[0]["text"]
    assert alert_outbox(rig.db) == expected.outbox
    assert (await rig.cycle()).enqueued == []

    # A second outage later is a new episode: told again, and again on recovery.
    breaks(rig)
    assert await fail_cycles(rig, TELL_ADMINS_AFTER - 1, cause) == []
    second = await fail_cycles(rig, 1, cause)
    assert [row["key"].split(":")[-2] for row in second] == ["down", "down"]
    assert second[0]["key"] != told[0]["key"]
    assert await fail_cycles(rig, 1, cause) == []
    heal(rig)
    for _ in range(RECOVERED_AFTER - 1):
        assert (await rig.cycle()).enqueued == []
    back = await rig.cycle()
    assert [row["key"].split(":")[-2] for row in back.enqueued] == ["up", "up"]
    assert back.enqueued[0]["key"] != notices[0]["key"]
    kinds = [kind for kind, _ in (key.split(":")[-2:] for key, _ in health_rows(rig.db))]
    assert kinds == ["down", "down", "up", "up", "down", "down", "up", "up"]
    assert alert_outbox(rig.db) == expected.outbox  # and no alert twice


async def test_a_second_episode_is_told_even_when_the_clock_did_not_move(rig: Rig) -> None:
    # Every cycle at one instant (a frozen clock, as in tests and demos): the episodes
    # cannot be told apart by time, and the second must still be announced.
    async def cycle() -> WorkspaceResult:
        return (await run_check(rig.db, rig.scenario_for, SETTINGS, ANCHOR))[0]

    assert (await cycle()).error is None
    told: list[str] = []
    for _ in range(2):
        break_with_outage(rig)
        for _ in range(TELL_ADMINS_AFTER + 1):
            told += [row["key"] for row in (await cycle()).enqueued]
        heal(rig)
        for _ in range(RECOVERED_AFTER):
            told += [row["key"] for row in (await cycle()).enqueued]
    assert [key.split(":")[-2] for key in told] == ["down", "down", "up", "up"] * 2
    assert [key for key, _ in health_rows(rig.db)] == told
    assert len(set(told)) == 8


async def test_a_flapping_api_is_one_outage_told_once_and_recovered_once(rig: Rig) -> None:
    """Finding 9: down, one good cycle, down again… is not news every time."""
    told: list[str] = []
    for _ in range(3):
        break_with_outage(rig)
        for _ in range(TELL_ADMINS_AFTER):
            told += [row["key"] for row in (await rig.cycle()).enqueued]
        heal(rig)
        told += [row["key"].split(":")[0] for row in (await rig.cycle()).enqueued]
    assert [key.split(":")[-2] for key in told if key.startswith("health:")] == ["down", "down"]
    for _ in range(RECOVERED_AFTER):
        told += [row["key"] for row in (await rig.cycle()).enqueued]
    kinds = [key.split(":")[-2] for key in told if key.startswith("health:")]
    assert kinds == ["down", "down", "up", "up"]


async def test_fewer_failures_than_the_threshold_tell_nobody(rig: Rig) -> None:
    for _ in range(3):
        break_with_outage(rig)
        assert await fail_cycles(rig, TELL_ADMINS_AFTER - 1, "outage") == []
        heal(rig)
        assert [r["key"] for r in (await rig.cycle()).enqueued if "health" in r["key"]] == []
    assert health_rows(rig.db) == []


async def test_changing_causes_count_as_one_streak_named_by_the_latest(rig: Rig) -> None:
    break_with_outage(rig)
    await fail_cycles(rig, 1, "outage")
    heal(rig)
    break_with_rate_limit(rig)
    await fail_cycles(rig, 1, "rate limited")
    heal(rig)
    break_credentials(rig)
    told = await fail_cycles(rig, 1, "bad credentials")
    assert len(told) == 2 and "(bad credentials)" in told[0]["text"]
    assert "HTTP 401" in told[0]["text"]


# ------------------------------------------------------------- unknown values, extra keys


@pytest.mark.parametrize(
    "faults",
    [{"unknown_enums": True}, {"extra_keys": True}, {"unknown_enums": True, "extra_keys": True}],
)
async def test_unknown_enums_and_extra_keys_change_no_alert(
    rig: Rig, tmp_path: Path, faults: dict[str, bool]
) -> None:
    expected = await fault_free(tmp_path, rig.now)
    for name, value in faults.items():
        setattr(rig.simulator.faults, name, value)
    result = await rig.cycle()
    assert result.error is None
    assert [row["key"] for row in result.enqueued] == expected.enqueued_keys
    assert alert_state(rig.db) == expected.alert_state
    # Only the job type shown in the job list may change: it is Scenario's own word.
    got = alert_outbox(rig.db)
    assert without_job_types(got) == without_job_types(expected.outbox)
    if faults.get("unknown_enums"):
        assert UNKNOWN_JOB_TYPE in json.dumps(got)
    assert (await rig.cycle()).enqueued == []


def without_job_types(rows: list[dict[str, Any]]) -> str:
    return re.sub(r"` [\w-]+ on <", "` (type) on <", json.dumps(rows, ensure_ascii=False))
