"""Time one check cycle: 200 workspaces × 5 budgets against the simulator, 100 ms per request.

The simulator is served over real loopback HTTP (`serve_simulator`, 127.0.0.1, port 0)
with `Faults(latency=0.1)`. By default it runs in a child process, as Scenario is another
machine in production: the bot's event loop is then charged only with the bot's own work,
and on a 2-core machine each side gets a core (`--simulator inline` serves it in the bot's
event loop instead, to see what sharing one core costs).

`scenario_for` is what production needs: one long-lived `ScenarioClient` per workspace
(each workspace has its own Scenario credentials), built once by a registry and closed at
shutdown. The registry is built before the timed cycle, as a long-running bot's would be
(building a client costs ~20 ms of CPU: httpx loads the CA bundle into a fresh SSL
context), unless `--build-clients-in-cycle`; its connections start cold, as they do every
cycle in production (httpx drops idle connections after 5 s, cycles are minutes apart).
A client pools 10 connections; a workspace needs at most one per distinct window, so its
pool never queues, and `CheckSettings.concurrency` bounds the workspaces in flight.

Printed per cycle: wall time, requests from the simulator's request log split by path and
`type`, the expected count (one per distinct window × project filter, computed here from
the budgets created, without the bot's planner) with PASS/FAIL, and the ratio to the ideal
`ceil(requests / concurrency) × latency` (target ≤ 1.5); then the CPU each side spent,
the floor that CPU sets, and the CPU other processes took meanwhile (they share the cores).
Last, a cycle where some budgets fire, with the extra attribution reads (`type=activity`)
reported separately. Timings are printed, never asserted; the run stops by itself (about
a minute; later cycles are skipped past `Options.time_budget`).

    PYTHONPATH=. python bench/check_cycle.py [--concurrency 8] [--sweep 32 64]
        [--simulator process|inline] [--shared-client] [--build-clients-in-cycle]
        [--profile N] [--no-firing] [--latency 0.1] [--workspaces 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import math
import multiprocessing
import os
import pstats
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import CheckSettings, WorkspaceResult, run_check
from bot.scenario.client import ScenarioClient
from bot.scenario.models import ACTIVITY_PAGE_SIZE
from bot.sim.scenario import (
    Faults,
    ManualClock,
    RecordedRequest,
    Simulator,
    serve_simulator,
)
from bot.sim.team import SyntheticTeam
from bot.store.budgets import NewBudget, create_budget
from bot.store.db import migrate, open_db
from bot.store.workspaces import Workspace, list_workspaces, set_timezone

# A Thursday; the synthetic team's scripted spike (one API key) is in the day before it.
ANCHOR = datetime(2026, 11, 26, 12, tzinfo=UTC)
SEED = 7
API_KEY = "bench-key"
API_SECRET = "bench-secret"
APP_URL = "https://app.scenario.com"
DEFAULT_TZ = "UTC"
TIMEZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC", "America/Los_Angeles")
QUIET_LIMIT = 1e9  # CU: far above any spend, so no threshold or forecast alert fires
FIRING_LIMIT = 1.0  # CU: any spend at all crosses the 50 % threshold
FIRE_EVERY = 10  # firing run: every 10th workspace's project-daily and key-24h budgets fire
DEFAULT_CONCURRENCY = CheckSettings(DEFAULT_TZ, APP_URL).concurrency  # what the bot uses
CYCLE_TIMEOUT = 25.0  # seconds; a cycle that takes longer is reported as timed out
STARTUP_TIMEOUT = 20.0

# (path, type param, paged (has activityOffset), status) of one logged request.
Entry = tuple[str, str | None, bool, int]


# ---------------------------------------------------------------------------- budgets


@dataclass(frozen=True, slots=True)
class Plan:
    """The budgets of one workspace, as created."""

    workspace_id: str
    tz: str
    budgets: tuple[NewBudget, ...]


def plan_budgets(team: SyntheticTeam, workspaces: int, *, firing: bool) -> list[Plan]:
    """5 budgets a workspace: team monthly (with forecast), a project daily, a user weekly,
    a model monthly and an API key's rolling 24 h, on IDs of the synthetic team.

    With `firing`, every `FIRE_EVERY`-th workspace watches the spiking key and has its
    project-daily and key-24h limits at `FIRING_LIMIT`.
    """
    humans, keys = team.humans, team.api_keys
    plans = []
    for i in range(workspaces):
        hot = firing and i % FIRE_EVERY == 0
        project = team.projects[i % len(team.projects)]
        human = humans[i % len(humans)]
        model = team.models[i % len(team.models)]
        key = team.user(team.spike.user_id) if hot else keys[i % len(keys)]
        assert key is not None
        hot_limit = FIRING_LIMIT if hot else QUIET_LIMIT
        new = _Maker(f"T{i + 1:04d}", f"C{i + 1:04d}")
        budgets = (
            new(PeriodKind.MONTHLY, QUIET_LIMIT, Scope(ScopeKind.TEAM), "Team"),
            new(PeriodKind.DAILY, hot_limit, Scope(ScopeKind.PROJECT, project.id), project.name),
            new(PeriodKind.WEEKLY, QUIET_LIMIT, Scope(ScopeKind.USER, human.id), human.full_name),
            new(PeriodKind.MONTHLY, QUIET_LIMIT, Scope(ScopeKind.MODEL, model.id), model.name),
            new(PeriodKind.ROLLING_24H, hot_limit, Scope(ScopeKind.KEY, key.id), key.key_name),
        )
        plans.append(Plan(new.workspace_id, TIMEZONES[i % len(TIMEZONES)], budgets))
    return plans


@dataclass(frozen=True, slots=True)
class _Maker:
    workspace_id: str
    channel_id: str

    def __call__(
        self, period: PeriodKind, limit: float, scope: Scope, name: str | None
    ) -> NewBudget:
        return NewBudget(
            self.workspace_id,
            period,
            limit,
            self.channel_id,
            "U0BENCH",
            scope=scope,
            scope_name=name,
            forecast=scope.kind is ScopeKind.TEAM,
        )


def build_db(path: Path, plans: list[Plan]) -> None:
    db = open_db(path)
    try:
        migrate(db)
        for plan in plans:
            set_timezone(db, plan.workspace_id, plan.tz, actor="U0BENCH", now=ANCHOR)
            for budget in plan.budgets:
                create_budget(db, budget, now=ANCHOR)
    finally:
        db.close()


# ------------------------------------------------------- expectations (no bot planner)


def period_start(kind: PeriodKind, tz: str, now: datetime) -> datetime:
    """Start of the period holding `now`, by hand (local midnight exists in TIMEZONES)."""
    if kind is PeriodKind.ROLLING_24H:
        return now - timedelta(hours=24)
    zone = ZoneInfo(tz)
    day = now.astimezone(zone).date()
    if kind is PeriodKind.WEEKLY:
        day -= timedelta(days=day.weekday())
    elif kind is PeriodKind.MONTHLY:
        day = day.replace(day=1)
    elif kind is not PeriodKind.DAILY:
        raise ValueError(f"the benchmark does not use {kind} budgets")
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


WindowKey = tuple[datetime, str | None]  # start (the end is `now`), project filter


def window_key(budget: NewBudget, tz: str) -> WindowKey:
    project = budget.scope.ref if budget.scope.kind is ScopeKind.PROJECT else None
    return period_start(budget.period, tz, ANCHOR), project


def expected_window_reads(plans: list[Plan]) -> int:
    """One /usages call per distinct window × project filter, per workspace."""
    return sum(len({window_key(b, plan.tz) for b in plan.budgets}) for plan in plans)


class Oracle:
    """Spend and activity counts straight from the synthetic team's job list."""

    def __init__(self, team: SyntheticTeam) -> None:
        self.team = team
        self._spend: dict[tuple[datetime, Scope], float] = {}
        self._jobs: dict[WindowKey, int] = {}

    def spend(self, start: datetime, scope: Scope) -> float:
        key = (start, scope)
        if key not in self._spend:
            ref = [scope.ref] if scope.ref else None
            self._spend[key] = self.team.cu_between(
                start,
                ANCHOR,
                project_ids=ref if scope.kind is ScopeKind.PROJECT else None,
                user_ids=ref if scope.kind in (ScopeKind.USER, ScopeKind.KEY) else None,
                model_ids=ref if scope.kind is ScopeKind.MODEL else None,
            )
        return self._spend[key]

    def jobs(self, window: WindowKey) -> int:
        if window not in self._jobs:
            start, project = window
            projects = [project] if project else None
            self._jobs[window] = len(self.team.jobs_between(start, ANCHOR, project_ids=projects))
        return self._jobs[window]


@dataclass
class FiringExpectation:
    budgets: int = 0
    workspaces: int = 0
    activity_reads: int = 0


def expected_firing(plans: list[Plan], oracle: Oracle, page_cap: int) -> FiringExpectation:
    """Budgets at or past their lowest threshold, and the activity pages their windows take
    (pages of `ACTIVITY_PAGE_SIZE` while full, at most `page_cap`)."""
    found = FiringExpectation()
    for plan in plans:
        windows = set()
        for budget in plan.budgets:
            start = period_start(budget.period, plan.tz, ANCHOR)
            floor = budget.limit_cu * min(budget.thresholds) / 100
            if oracle.spend(start, budget.scope) >= floor:
                found.budgets += 1
                windows.add(window_key(budget, plan.tz))
        found.workspaces += bool(windows)
        found.activity_reads += sum(
            min(page_cap, oracle.jobs(w) // ACTIVITY_PAGE_SIZE + 1) for w in windows
        )
    return found


# ----------------------------------------------------------------------- the simulator


def make_simulator(latency: float) -> Simulator:
    return Simulator(
        SyntheticTeam.build(SEED, ANCHOR),
        clock=ManualClock(ANCHOR),
        api_key=API_KEY,
        api_secret=API_SECRET,
        faults=Faults(latency=latency),
    )


def summarise(requests: Iterable[RecordedRequest]) -> list[Entry]:
    return [
        (r.path, r.param("type"), r.param("activityOffset") is not None, r.status) for r in requests
    ]


@dataclass(frozen=True, slots=True)
class ServerLog:
    entries: list[Entry]
    cpu_seconds: float | None  # the simulator process's CPU during the cycle (child only)


class Host(Protocol):
    url: str

    async def reset(self) -> None: ...

    async def log(self) -> ServerLog: ...


class InlineHost:
    def __init__(self, url: str, simulator: Simulator) -> None:
        self.url = url
        self.simulator = simulator

    async def reset(self) -> None:
        self.simulator.reset_requests()

    async def log(self) -> ServerLog:
        return ServerLog(summarise(self.simulator.requests), None)


class ProcessHost:
    def __init__(self, url: str, conn: Connection) -> None:
        self.url = url
        self.conn = conn
        self._cpu = 0.0

    async def _ask(self, command: str) -> object:
        self.conn.send(command)
        if not await asyncio.to_thread(self.conn.poll, STARTUP_TIMEOUT):
            raise TimeoutError(f"the simulator process did not answer {command!r}")
        return self.conn.recv()

    async def reset(self) -> None:
        cpu = await self._ask("reset")
        assert isinstance(cpu, float)
        self._cpu = cpu

    async def log(self) -> ServerLog:
        answer = await self._ask("log")
        assert isinstance(answer, tuple)
        entries, cpu = answer
        return ServerLog(entries, cpu - self._cpu)


def _child(conn: Connection, latency: float) -> None:
    asyncio.run(_child_main(conn, latency))


async def _child_main(conn: Connection, latency: float) -> None:
    simulator = make_simulator(latency)
    async with serve_simulator(simulator, "127.0.0.1", 0) as url:
        conn.send(url)
        while True:
            try:
                command = await asyncio.to_thread(conn.recv)
            except EOFError:  # the parent is gone
                return
            if command == "reset":
                simulator.reset_requests()
                conn.send(time.process_time())
            elif command == "log":
                conn.send((summarise(simulator.requests), time.process_time()))
            else:
                return


@contextlib.asynccontextmanager
async def hosted(mode: str, latency: float) -> AsyncIterator[Host]:
    if mode == "inline":
        simulator = make_simulator(latency)
        async with serve_simulator(simulator, "127.0.0.1", 0) as url:
            yield InlineHost(url, simulator)
        return
    context = multiprocessing.get_context("spawn")
    conn, child_end = context.Pipe()
    process = context.Process(target=_child, args=(child_end, latency), daemon=True)
    process.start()
    child_end.close()
    try:
        if not await asyncio.to_thread(conn.poll, STARTUP_TIMEOUT):
            raise TimeoutError("the simulator process did not start")
        yield ProcessHost(conn.recv(), conn)
    finally:
        with contextlib.suppress(OSError):
            conn.send("stop")
        await asyncio.to_thread(process.join, 5)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, 2)
        conn.close()


# ------------------------------------------------------------------------ the cycle


class ClientRegistry:
    """Production's `scenario_for`: one long-lived client per workspace (each has its own
    Scenario credentials), built on first use and closed at shutdown. `shared` hands every
    workspace one client instead, to show what its 10-connection pool does."""

    def __init__(self, base_url: str, *, shared: bool = False) -> None:
        self.base_url = base_url
        self.shared = shared
        self.clients: dict[str, ScenarioClient] = {}

    def get(self, workspace: Workspace) -> ScenarioClient:
        name = "" if self.shared else workspace.team_id
        client = self.clients.get(name)
        if client is None:
            client = self.clients[name] = ScenarioClient(
                base_url=self.base_url,
                api_key=API_KEY,
                api_secret=API_SECRET,
                team_id=None if self.shared else workspace.scenario_team_id,
            )
        return client

    async def scenario_for(self, workspace: Workspace) -> ScenarioClient:
        return self.get(workspace)

    async def aclose(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        await asyncio.gather(*(client.aclose() for client in clients))


@dataclass
class Cycle:
    concurrency: int
    wall: float
    bot_cpu: float  # this process during the cycle (includes the simulator when inline)
    server_cpu: float | None  # the simulator's process during the cycle (None: inline)
    entries: list[Entry]
    results: list[WorkspaceResult]
    client_build: float  # seconds spent building clients before the cycle (0: inside it)
    machine_cpu: float | None = None  # every process on the machine during the cycle
    profile: pstats.Stats | None = None

    @property
    def others_cpu(self) -> float | None:
        """CPU the rest of the machine used meanwhile: it competed for the same cores."""
        if self.machine_cpu is None:
            return None
        return max(0.0, self.machine_cpu - self.bot_cpu - (self.server_cpu or 0.0))

    @property
    def requests(self) -> int:
        return len(self.entries)

    @property
    def window_reads(self) -> int:
        return sum(
            1 for path, kind, _, _ in self.entries if path == USAGES and not _reads_log(kind)
        )

    @property
    def activity_first(self) -> int:
        return sum(1 for _, kind, paged, _ in self.entries if _reads_log(kind) and not paged)

    @property
    def activity_paged(self) -> int:
        return sum(1 for _, kind, paged, _ in self.entries if _reads_log(kind) and paged)

    @property
    def alerted(self) -> dict[str, int]:
        """Alert rows enqueued, per workspace."""
        found = Counter(
            r.workspace_id for r in self.results for row in r.enqueued if row["key"][:6] == "alert:"
        )
        return dict(found)

    @property
    def errors(self) -> list[str]:
        return [f"{r.workspace_id}: {r.error}" for r in self.results if r.error]

    def cpu_floor(self, cores: int) -> float:
        """The least wall time the CPU spent allows, if each side had a free core."""
        if self.server_cpu is None:
            return self.bot_cpu  # one event loop does both
        return max(self.bot_cpu, self.server_cpu, (self.bot_cpu + self.server_cpu) / cores)


USAGES = "/v1/usages"


def _reads_log(kind: str | None) -> bool:
    """An attribution read: its `type` asks for the activity log (possibly with more)."""
    return kind is not None and "activity" in kind.split(",")


async def run_cycle(
    db_path: Path,
    host: Host,
    concurrency: int,
    options: Options,
    *,
    limit: float,
    profile: bool = False,
) -> Cycle:
    db = open_db(db_path)
    registry = ClientRegistry(host.url, shared=options.shared_client)
    # CPU time, not wall: waits and other processes' time slices stay out of the profile.
    profiler = cProfile.Profile(time.process_time) if profile else None
    try:
        built = time.perf_counter()
        if not options.build_clients_in_cycle:
            for workspace in list_workspaces(db):
                registry.get(workspace)
        client_build = 0.0 if options.build_clients_in_cycle else time.perf_counter() - built
        settings = CheckSettings(DEFAULT_TZ, APP_URL, concurrency=concurrency)
        await host.reset()
        machine = machine_busy()
        cpu, start = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        try:
            async with asyncio.timeout(limit):
                results = await run_check(db, registry.scenario_for, settings, ANCHOR)
        finally:
            if profiler:
                profiler.disable()
        wall, bot_cpu = time.perf_counter() - start, time.process_time() - cpu
        machine_after = machine_busy()
        log = await host.log()
    finally:
        await registry.aclose()
        db.close()
    return Cycle(
        concurrency,
        wall,
        bot_cpu,
        log.cpu_seconds,
        log.entries,
        results,
        client_build,
        None if machine is None or machine_after is None else machine_after - machine,
        pstats.Stats(profiler) if profiler else None,
    )


def machine_busy() -> float | None:
    """CPU seconds every process has used since boot (Linux `/proc/stat`), else None."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------ reporting


def ideal(requests: int, concurrency: int, latency: float) -> float:
    return math.ceil(requests / concurrency) * latency


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_cycle(title: str, cycle: Cycle, expected: int, options: Options) -> None:
    latency, workspaces = options.latency, options.workspaces
    ms = f"{latency * 1000:.0f} ms"
    total = cycle.requests
    literal = ideal(total, cycle.concurrency, latency)
    print(f"\n== {title}, concurrency {cycle.concurrency} ==")
    print(f"  wall time of one cycle   {cycle.wall:.2f} s")
    print(f"  requests (simulator log) {total}")
    split = Counter(
        (path, kind or "(none: every section)", paged, status)
        for path, kind, paged, status in cycle.entries
    )
    for (path, kind, paged, status), n in sorted(split.items()):
        extra = " +activityOffset" if paged else ""
        shown = "" if status == 200 else f" -> HTTP {status}"
        print(f"    GET {path} type={kind}{extra}{shown}: {n}")
    window_reads = cycle.window_reads
    print(
        f"  window reads             {window_reads}; expected {expected} (one per distinct"
        f" window x project filter, from the budgets created)  {verdict(window_reads <= expected)}"
    )
    print(f"  bot's usage_calls        {sum(r.usage_calls for r in cycle.results)}")
    ratio = _ratio(cycle.wall, literal)
    print(
        f"  ideal                    ceil({total} / {cycle.concurrency}) x {ms} = {literal:.2f} s"
    )
    print(f"  ratio                    {ratio:.2f} (target <= 1.5)  {verdict(ratio <= 1.5)}")
    if not cycle.activity_first:
        floor = math.ceil(workspaces / cycle.concurrency) * latency
        print(
            f"  latency floor            ceil({workspaces} / {cycle.concurrency}) x {ms} ="
            f" {floor:.2f} s (a workspace's reads go out together)"
        )
    server = "(in the bot's loop)" if cycle.server_cpu is None else f"{cycle.server_cpu:.2f} s"
    per_request = f"{cycle.bot_cpu / max(1, total) * 1000:.1f} ms"
    if cycle.server_cpu is not None:
        per_request += f" + {cycle.server_cpu / max(1, total) * 1000:.1f} ms"
    print(
        f"  CPU                      bot {cycle.bot_cpu:.2f} s, simulator {server};"
        f" {per_request} a request"
    )
    cores = usable_cores()
    floor_cpu = cycle.cpu_floor(cores)
    print(
        f"  CPU floor                {floor_cpu:.2f} s on {cores} free cores"
        f" (wall / CPU floor = {_ratio(cycle.wall, floor_cpu):.2f})"
    )
    others = cycle.others_cpu
    if others is not None:
        print(
            f"  other processes          {others:.2f} s of CPU during the cycle"
            f" ({_ratio(others, cycle.wall):.1f} cores busy on average)"
        )
    if cycle.client_build:
        print(f"  (clients built before the cycle in {cycle.client_build:.2f} s, not counted)")
    if cycle.errors:
        print(f"  ERRORS in {len(cycle.errors)} workspaces, e.g. {cycle.errors[0]}")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def category(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    areas = (
        ("sqlite", "SQLite (sqlite3, sqlite_utils)"),
        ("ssl", "SSL contexts (client construction)"),
        ("/httpx/", "HTTP client (httpx, httpcore, h11, anyio)"),
        ("/httpcore/", "HTTP client (httpx, httpcore, h11, anyio)"),
        ("/h11/", "HTTP client (httpx, httpcore, h11, anyio)"),
        ("/anyio/", "HTTP client (httpx, httpcore, h11, anyio)"),
        ("/uvicorn/", "simulator (inline)"),
        ("/starlette/", "simulator (inline)"),
        ("/bot/sim/", "simulator (inline)"),
        ("/bot/scenario/models", "parsing responses (json, pydantic, bot.scenario.models)"),
        ("pydantic", "parsing responses (json, pydantic, bot.scenario.models)"),
        ("/json/", "parsing responses (json, pydantic, bot.scenario.models)"),
        ("/bot/", "bot: check cycle, budgets, store"),
        ("asyncio", "event loop, sockets"),
        ("select", "event loop, sockets"),
        ("socket", "event loop, sockets"),
    )
    for needle, area in areas:
        if needle in where.lower():
            return area
    return "other (builtins called from the above)"


def print_profile(stats: pstats.Stats, top: int) -> None:
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    by_area: dict[str, float] = defaultdict(float)
    for (filename, _, name), entry in raw.items():
        by_area[category(filename, name)] += entry[2]
    print(
        f"\n  profile of the bot process: {total:.2f} s of CPU under cProfile (which inflates"
        f" Python-heavy code such as httpx and asyncio far more than json or sqlite3)"
    )
    for area, seconds in sorted(by_area.items(), key=lambda kv: -kv[1]):
        print(f"    {seconds:6.2f} s {seconds / total:4.0%}  {area}")
    print(f"  top {top} functions by own time:")
    for (filename, line, name), entry in sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]:
        where = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        print(f"    {entry[2]:6.2f} s {entry[1]:7d} calls  {name}  ({where}:{line})")


# ------------------------------------------------------------------------------ main


@dataclass
class Options:
    workspaces: int = 200
    latency: float = 0.1
    concurrency: int = DEFAULT_CONCURRENCY
    sweep: list[int] = field(default_factory=lambda: [32, 64])
    simulator: str = "process"
    build_clients_in_cycle: bool = False
    shared_client: bool = False
    profile: int = 0
    firing: bool = True
    time_budget: float = 100.0  # seconds; later cycles are skipped past it


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


async def bench(options: Options) -> None:
    deadline = Deadline(options.time_budget)
    team = SyntheticTeam.build(SEED, ANCHOR)
    quiet_plans = plan_budgets(team, options.workspaces, firing=False)
    hot_plans = plan_budgets(team, options.workspaces, firing=True)
    oracle = Oracle(team)
    probe = ScenarioClient(base_url="http://127.0.0.1", api_key="k", api_secret="s")
    page_cap = probe.activity_page_cap
    await probe.aclose()

    budgets = sum(len(p.budgets) for p in quiet_plans)
    quiet_expect = expected_firing(quiet_plans, oracle, page_cap)
    where = "a child process" if options.simulator == "process" else "the bot's event loop"
    clients = "one shared ScenarioClient" if options.shared_client else "a ScenarioClient each"
    built = "inside" if options.build_clients_in_cycle else "before"
    print(
        f"check cycle: {options.workspaces} workspaces x 5 budgets = {budgets} budgets (team"
        f" monthly with forecast, project daily, user weekly, model monthly, API key 24h);"
        f" timezones {', '.join(TIMEZONES)}"
    )
    print(
        f"simulator: http://127.0.0.1 port 0, {options.latency * 1000:.0f} ms added to every"
        f" request, served in {where}; workspaces use {clients}, built {built} the timed cycle"
    )
    print(
        f"machine: {usable_cores()} cores, load average {os.getloadavg()[0]:.2f} at start"
        f" (other processes share the cores)"
    )
    print(
        f"quiet cycles: limits {QUIET_LIMIT:.0e} CU, so no alert fires and no attribution read"
        f" is made (budgets at their lowest threshold per the job log: {quiet_expect.budgets})"
    )

    values = [options.concurrency, *(c for c in options.sweep if c != options.concurrency)]
    cycles: list[Cycle] = []
    with tempfile.TemporaryDirectory(prefix="bench-check-cycle-") as tmp:
        quiet_db, hot_db = Path(tmp, "quiet.db"), Path(tmp, "firing.db")
        build_db(quiet_db, quiet_plans)
        if options.firing:
            build_db(hot_db, hot_plans)
        expected = expected_window_reads(quiet_plans)
        async with hosted(options.simulator, options.latency) as host:
            for n, concurrency in enumerate(values):
                timeout = min(CYCLE_TIMEOUT, deadline.left() - 15)
                if timeout < 5:
                    print(f"\n== quiet cycle, concurrency {concurrency}: skipped (time budget)")
                    continue
                try:
                    cycle = await run_cycle(
                        quiet_db,
                        host,
                        concurrency,
                        options,
                        limit=timeout,
                        profile=bool(options.profile) and n == 0,
                    )
                except TimeoutError:
                    print(
                        f"\n== quiet cycle, concurrency {concurrency}: timed out ({timeout:.0f} s)"
                    )
                    continue
                cycles.append(cycle)
                print_cycle("quiet cycle", cycle, expected, options)
                fired = sum(cycle.alerted.values())
                print(
                    f"  alerts fired             {fired}, so no attribution reads"
                    if not fired
                    else f"  UNEXPECTED: {fired} alerts fired"
                )
                if cycle.profile is not None:
                    print_profile(cycle.profile, options.profile)
            if options.firing:
                await firing_cycle(options, host, hot_db, hot_plans, oracle, page_cap, deadline)

    cores = usable_cores()
    print("\nsummary of the quiet cycles")
    print(
        "  concurrency  wall s  requests  expected  ideal s  ratio  CPU floor s"
        "  CPU s: bot / simulator / other processes"
    )
    for c in cycles:
        literal = ideal(c.requests, c.concurrency, options.latency)
        sim = "-" if c.server_cpu is None else f"{c.server_cpu:.2f}"
        others = "-" if c.others_cpu is None else f"{c.others_cpu:.2f}"
        print(
            f"  {c.concurrency:11d} {c.wall:7.2f} {c.requests:9d} {expected:9d} {literal:8.2f}"
            f" {_ratio(c.wall, literal):6.2f} {c.cpu_floor(cores):12.2f}"
            f"  {c.bot_cpu:.2f} / {sim} / {others}"
        )


async def firing_cycle(
    options: Options,
    host: Host,
    db_path: Path,
    plans: list[Plan],
    oracle: Oracle,
    page_cap: int,
    deadline: Deadline,
) -> None:
    title = (
        f"firing cycle: every {FIRE_EVERY}th workspace has its project-daily and key-24h"
        f" (the spiking key) budgets at {FIRING_LIMIT:g} CU"
    )
    timeout = min(CYCLE_TIMEOUT, deadline.left() - 5)
    if timeout < 5:
        print(f"\n== {title}: skipped (time budget)")
        return
    expect = expected_firing(plans, oracle, page_cap)
    try:
        cycle = await run_cycle(db_path, host, options.concurrency, options, limit=timeout)
    except TimeoutError:
        print(f"\n== {title}: timed out ({timeout:.0f} s)")
        return
    print_cycle(title, cycle, expected_window_reads(plans), options)
    alerted = cycle.alerted
    fired = sum(alerted.values())
    print(
        f"  alerts fired             {fired} in {len(alerted)} workspaces; expected from the"
        f" job log {expect.budgets} in {expect.workspaces}  {verdict(fired == expect.budgets)}"
    )
    extra = cycle.activity_first + cycle.activity_paged
    print(
        f"  attribution reads        {extra} more requests: {cycle.activity_first} first pages"
        f" + {cycle.activity_paged} further pages (type=activity); expected"
        f" {expect.activity_reads} (100 entries a page while full, at most {page_cap})"
        f"  {verdict(extra <= expect.activity_reads)}"
    )
    window_ideal = ideal(cycle.window_reads, cycle.concurrency, options.latency)
    print(
        f"  window reads alone       ideal ceil({cycle.window_reads} / {cycle.concurrency}) x"
        f" {options.latency * 1000:.0f} ms = {window_ideal:.2f} s; ratio without the"
        f" attribution reads in the ideal: {_ratio(cycle.wall, window_ideal):.2f}"
    )


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="Time one check cycle against the simulator.")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="workspaces in flight, CheckSettings.concurrency (default %(default)s)",
    )
    parser.add_argument(
        "--sweep",
        type=int,
        nargs="*",
        default=[32, 64],
        help="more concurrency values for quiet cycles (default: 32 64; `--sweep` alone: none)",
    )
    parser.add_argument("--workspaces", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per request")
    parser.add_argument(
        "--simulator",
        choices=("process", "inline"),
        default="process",
        help="serve the simulator from a child process (default) or in the bot's event loop",
    )
    parser.add_argument(
        "--build-clients-in-cycle",
        action="store_true",
        help="build each workspace's client on first use, inside the timed cycle",
    )
    parser.add_argument(
        "--shared-client", action="store_true", help="one ScenarioClient for every workspace"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="profile the bot process during the first cycle; print the top N functions",
    )
    parser.add_argument("--no-firing", action="store_true", help="skip the firing cycle")
    args = parser.parse_args(argv)
    if min(args.concurrency, args.workspaces, *args.sweep) < 1:
        parser.error("concurrency and workspaces must be >= 1")
    return Options(
        workspaces=args.workspaces,
        latency=max(0.0, args.latency),
        concurrency=args.concurrency,
        sweep=args.sweep,
        simulator=args.simulator,
        build_clients_in_cycle=args.build_clients_in_cycle,
        shared_client=args.shared_client,
        profile=max(0, args.profile),
        firing=not args.no_firing,
    )


def main() -> None:
    asyncio.run(bench(parse_args()))


if __name__ == "__main__":
    main()
