"""Time Slack's acknowledgements under load: N concurrent `/usage` commands, slow Scenario.

The real app (`create_app` + `create_server`) is served on loopback, with a fake Slack Web
API (`bot.sim.slack_api`) and the Scenario simulator, which waits `--latency` seconds
(default 2 s, `Faults(latency=2.0)`) before answering every request. `--commands` signed
`/usage <text>` commands (default 50, text `7d`) are sent at once, each with its own
`response_url` pointing at the fake Slack; measured from the moment each one is sent:

- the HTTP acknowledgement (Slack shows `operation_timeout` after 3 s; target p99 ≤ 300 ms),
- the arrival at the fake Slack of the first `response_url` answer (and of the last one,
  when a command posts more than one), recorded by a thin ASGI wrapper around the fake
  (the bodies themselves are read from the fake's `responses` record).

By default the bot runs alone in this process, as in production: the simulator runs in
one child process, the fake Slack and the load generator in another, so the bot's event
loop is charged only with the bot's work (`--inline` puts everything in one event loop
instead; its figures are then upper bounds). All times are taken in the load process, on
one clock. The CPU each side spent until the last acknowledgement is printed too: on a
shared machine, other processes' work shows up in the acknowledgement times. One command
is sent and answered first (not counted), unless `--cold`, so that one-time costs (Bolt's
first `auth.test`, the Scenario directory, connection pools) stay out of the burst.

Percentiles are nearest-rank (with 50 samples, p99 is the slowest). Exit status 0 when every
command was acknowledged with 200, p99 of the acknowledgements met the target, and every
command was answered through its `response_url` within `--deadline` seconds; 1 otherwise.

    PYTHONPATH=. python bench/ack_latency.py [--commands 50] [--latency 2.0]
        [--text 7d] [--deadline 60] [--target-ms 300] [--cold] [--inline]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.asgi_server import serve_app
from bot.config import load_settings
from bot.jobs.runtime import Runtime
from bot.sim import slack_api
from bot.sim.scenario import Faults, ManualClock, Simulator, serve_simulator
from bot.sim.team import SyntheticTeam
from bot.slack.app import create_app
from bot.slack.deps import Deps
from bot.web import create_server

# The same world as the end-to-end tests (tests/e2e/conftest.py), rebuilt here so that
# the bench does not import a pytest conftest.
SIGNING_SECRET = "bench-signing-secret"
ANCHOR = datetime(2026, 11, 26, 12, tzinfo=UTC)  # a Thursday; synthetic spend around it
SEED = 7
TEAM_ID = "T1"
USER = "U_ADMIN"
CHANNEL = "C_GENERAL"
RESPONSE_PREFIX = "/response/"  # the fake Slack's (bot/sim/slack_api.py) response_url route
API_PREFIX = "/api/"  # and its Web API methods
QUIET_AFTER_ANSWERS = 1.0  # seconds without a new answer before follow-ups are counted done
STARTUP_TIMEOUT = 30.0  # seconds for the child process to start its servers


@dataclass
class Options:
    commands: int = 50
    latency: float = 2.0
    text: str = "7d"
    deadline: float = 60.0
    target_ms: float = 300.0
    cold: bool = False
    inline: bool = False


# ------------------------------------------------------------------ the outside world


@dataclass(frozen=True)
class ScenarioAddress:
    """How the bot reaches the simulator (plain data: crosses processes)."""

    url: str
    key: str
    secret: str
    team_id: str


@contextlib.asynccontextmanager
async def scenario_served(latency: float) -> AsyncIterator[tuple[Simulator, ScenarioAddress]]:
    simulator = Simulator(
        SyntheticTeam.build(SEED, ANCHOR), clock=ManualClock(ANCHOR), faults=Faults(latency=latency)
    )
    async with serve_simulator(simulator) as url:
        yield (
            simulator,
            ScenarioAddress(url, simulator.api_key, simulator.api_secret, simulator.team_id),
        )


class ResponseClock:
    """ASGI wrapper around the fake Slack: when each `response_url` request arrives."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.api_calls: dict[str, list[float]] = defaultdict(list)  # Web API method → when

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(RESPONSE_PREFIX):
            self.arrivals[path.removeprefix(RESPONSE_PREFIX)].append(time.perf_counter())
        elif path.startswith(API_PREFIX):
            self.api_calls[path.removeprefix(API_PREFIX)].append(time.perf_counter())
        await self.app(scope, receive, send)

    @property
    def last_arrival(self) -> float:
        return max((t[-1] for t in self.arrivals.values()), default=0.0)


@dataclass
class SlackSide:
    slack: slack_api.FakeSlack
    clock: ResponseClock
    origin: str


@contextlib.asynccontextmanager
async def slack_served() -> AsyncIterator[SlackSide]:
    slack = slack_api.FakeSlack(team_id=TEAM_ID)
    slack.users[USER] = {"name": "ada", "is_admin": True, "tz": "Europe/Paris"}
    response_clock = ResponseClock(slack_api.create_app(slack))
    async with serve_app(response_clock) as origin:
        slack.origin = origin
        yield SlackSide(slack, response_clock, origin)


# ------------------------------------------------------------------------------ the bot


@contextlib.asynccontextmanager
async def bot_served(scenario: ScenarioAddress, slack_origin: str) -> AsyncIterator[str]:
    """The app as `budget-bot serve` runs it (without the scheduler); yields its origin."""
    async with bot_and_deps(scenario, slack_origin) as (url, _deps):
        yield url


@contextlib.asynccontextmanager
async def bot_and_deps(
    scenario: ScenarioAddress, slack_origin: str
) -> AsyncIterator[tuple[str, Deps]]:
    """`bot_served`, with what its listeners use (its store, to set up budgets)."""
    with tempfile.TemporaryDirectory(prefix="ack-latency-") as tmp:
        settings = load_settings(
            _env_file=None,
            slack_bot_token="xoxb-bench",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=f"{slack_origin}/api/",
            scenario_base_url=scenario.url,
            scenario_sdk_api_key=scenario.key,
            scenario_sdk_api_secret=scenario.secret,
            scenario_team_id=scenario.team_id,
            scenario_app_url="https://app.example",
            budget_bot_db=Path(tmp) / "bot.db",
        )
        runtime = Runtime.open(settings)
        try:
            app, deps = create_app(runtime, clock=ManualClock(ANCHOR))
            async with serve_app(create_server(app, runtime)) as url:
                yield url, deps
        finally:
            await runtime.aclose()


# -------------------------------------------------------------------- the measurement


@dataclass
class Sample:
    hook: str
    sent_at: float = 0.0
    acked_at: float | None = None
    status: int | None = None
    error: str | None = None

    @property
    def ack(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.sent_at


@dataclass
class Result:
    """What the burst measured, as plain data (it crosses from the child process)."""

    warm_up: str = ""
    acks: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    acked_in: float = 0.0
    firsts: list[float] = field(default_factory=list)
    lasts: list[float] = field(default_factory=list)
    answers_per_command: dict[int, int] = field(default_factory=dict)
    response_types: dict[str, int] = field(default_factory=dict)
    first_lines: list[tuple[str, int]] = field(default_factory=list)
    cores: int = 1
    burst_machine_cpu: float | None = None  # CPU seconds, all processes, until all acked
    burst_load_cpu: float = 0.0  # the process that sent the commands (inline: everything)
    burst_bot_cpu: float | None = None  # the bot's process (split layout only)
    commands_sent: int = 0  # the warm-up included
    scenario_requests: int = 0  # the whole run, the warm-up included
    slack_calls: dict[str, int] = field(default_factory=dict)
    waited: float = 0.0


class Load:
    """Signed `/usage` commands to the bot, from one HTTP client."""

    def __init__(self, side: SlackSide, bot_url: str, http: httpx.AsyncClient) -> None:
        self.side = side
        self.bot_url = bot_url
        self.http = http
        self.hooks = 0

    def form(self, text: str) -> tuple[str, str]:
        """A `/usage` command body and the name of its response_url hook."""
        self.hooks += 1
        hook = f"hook{self.hooks}"
        form = {
            "command": "/usage",
            "text": text,
            "team_id": TEAM_ID,
            "team_domain": "bench",
            "channel_id": CHANNEL,
            "channel_name": "general",
            "user_id": USER,
            "user_name": "ada",
            "response_url": f"{self.side.origin}{RESPONSE_PREFIX}{hook}",
            "trigger_id": f"trigger-{hook}",
            "api_app_id": "A_BOT",
        }
        return urlencode(form), hook

    async def send(self, body: str, sample: Sample) -> None:
        timestamp = str(int(time.time()))
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(
            timestamp=timestamp, body=body
        )
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature,
        }
        sample.sent_at = time.perf_counter()
        try:
            answer = await self.http.post(
                f"{self.bot_url}/slack/events", content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            sample.error = f"{type(exc).__name__}: {exc}"
            return
        sample.acked_at = time.perf_counter()
        sample.status = answer.status_code

    async def wait_answers(self, hooks: list[str], deadline: float) -> None:
        """Until every hook has an answer (then until answers stop coming), or the deadline."""
        clock = self.side.clock
        while time.perf_counter() < deadline:
            answered = all(clock.arrivals.get(h) for h in hooks)
            if answered and time.perf_counter() - clock.last_arrival >= QUIET_AFTER_ANSWERS:
                return
            await asyncio.sleep(0.01)

    async def warm_up(self, options: Options) -> str:
        body, hook = self.form(options.text)
        sample = Sample(hook)
        await self.send(body, sample)
        await self.wait_answers([hook], time.perf_counter() + min(options.deadline, 30.0))
        arrivals = self.side.clock.arrivals.get(hook)
        ack = f"{sample.ack * 1000:.0f} ms" if sample.ack is not None else sample.error
        answer = f"{(arrivals[0] - sample.sent_at):.1f} s" if arrivals else "never"
        return f"warm-up command: HTTP {sample.status}, ack {ack}, answered after {answer}"


def first_line(body: dict[str, Any]) -> str:
    text = str(body.get("text") or "")
    if not text:
        for block in body.get("blocks") or []:
            inner = block.get("text")
            if isinstance(inner, dict) and inner.get("text"):
                text = str(inner["text"])
                break
    line = text.strip().splitlines()[0] if text.strip() else "<no text>"
    return line[:90]


def machine_busy() -> float | None:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat (Linux)."""
    try:
        fields = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()[1:9]
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def no_mark(name: str) -> None:
    return None


async def measure(
    side: SlackSide, bot_url: str, options: Options, mark: Callable[[str], None] = no_mark
) -> Result:
    """Warm-up, then the burst; `mark` is told when the burst starts and when it is acked."""
    result = Result(cores=os.cpu_count() or 1)
    limits = httpx.Limits(
        max_connections=options.commands, max_keepalive_connections=options.commands
    )
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        load = Load(side, bot_url, http)
        if not options.cold:
            result.warm_up = await load.warm_up(options)
        responses_before = len(side.slack.responses)
        forms = [load.form(options.text) for _ in range(options.commands)]
        samples = [Sample(hook) for _, hook in forms]
        mark("burst")
        busy_before, cpu_before = machine_busy(), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(
            *(load.send(body, s) for (body, _), s in zip(forms, samples, strict=True))
        )
        result.acked_in = time.perf_counter() - started
        busy_after, result.burst_load_cpu = machine_busy(), time.process_time() - cpu_before
        mark("acked")
        if busy_before is not None and busy_after is not None:
            result.burst_machine_cpu = busy_after - busy_before
        hooks = [s.hook for s in samples]
        await load.wait_answers(hooks, started + options.deadline)
        result.waited = time.perf_counter() - started
        result.commands_sent = load.hooks

    arrivals = side.clock.arrivals
    result.acks = [s.ack for s in samples if s.ack is not None]
    result.statuses = dict(Counter(str(s.status or s.error) for s in samples))
    result.firsts = [arrivals[s.hook][0] - s.sent_at for s in samples if arrivals.get(s.hook)]
    result.lasts = [arrivals[s.hook][-1] - s.sent_at for s in samples if arrivals.get(s.hook)]
    result.answers_per_command = dict(sorted(Counter(len(arrivals[h]) for h in hooks).items()))
    wanted = set(hooks)
    last_body = {
        hook: body for hook, body in side.slack.responses[responses_before:] if hook in wanted
    }
    result.response_types = dict(
        Counter(str(body.get("response_type", "<unset>")) for body in last_body.values())
    )
    result.first_lines = Counter(first_line(b) for b in last_body.values()).most_common(3)
    result.slack_calls = dict(Counter(c.method for c in side.slack.calls))
    return result


# ----------------------------------------------------------------------- two layouts


async def run_inline(options: Options) -> Result:
    async with (
        scenario_served(options.latency) as (simulator, scenario),
        slack_served() as side,
        bot_served(scenario, side.origin) as url,
    ):
        result = await measure(side, url, options)
        result.scenario_requests = len(simulator.requests)
        return result


def _scenario_child(conn: Connection, latency: float) -> None:
    quiet_logging()
    asyncio.run(_scenario_main(conn, latency))


async def _scenario_main(conn: Connection, latency: float) -> None:
    async with scenario_served(latency) as (simulator, scenario):
        conn.send(dataclasses.asdict(scenario))
        with contextlib.suppress(EOFError):
            while await asyncio.to_thread(conn.recv) == "count":
                conn.send(len(simulator.requests))


def _load_child(conn: Connection, options: Options) -> None:
    quiet_logging()
    asyncio.run(_load_main(conn, options))


async def _load_main(conn: Connection, options: Options) -> None:
    async with slack_served() as side:
        conn.send(side.origin)
        bot_url = await asyncio.to_thread(conn.recv)

        def mark(name: str) -> None:
            conn.send(("mark", name))

        conn.send(dataclasses.asdict(await measure(side, bot_url, options, mark)))


class Child:
    """A spawned process that talks over a pipe; its failures surface as RuntimeError."""

    def __init__(self, conn: Connection, name: str) -> None:
        self.conn = conn
        self.name = name

    def send(self, message: object) -> None:
        self.conn.send(message)

    async def recv(self, within: float) -> Any:
        message, _cpu = await self.recv_stamped(within)
        return message

    async def recv_stamped(self, within: float) -> tuple[Any, float]:
        """The next message, and this process's CPU time when it arrived (taken in the
        receiving thread: the event loop may be too busy to notice it at once)."""
        try:
            return await asyncio.to_thread(self._receive, within)
        except (EOFError, OSError) as exc:
            raise RuntimeError(f"the {self.name} process died (its traceback is above)") from exc

    def _receive(self, within: float) -> tuple[Any, float]:
        if not self.conn.poll(within):
            raise TimeoutError(f"the {self.name} process did not answer in {within:g} s")
        message = self.conn.recv()
        return message, time.process_time()


@contextlib.asynccontextmanager
async def child_process(
    target: Callable[..., None], arg: object, name: str
) -> AsyncIterator[Child]:
    context = multiprocessing.get_context("spawn")
    conn, child_end = context.Pipe()
    process = context.Process(target=target, args=(child_end, arg), daemon=True, name=name)
    process.start()
    child_end.close()
    try:
        yield Child(conn, name)
    finally:
        conn.close()  # the child sees EOF and returns
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, 5)


async def run_split(options: Options) -> Result:
    """The bot alone in this process; the simulator in one child, the fake Slack and the
    load generator in another."""
    async with (
        child_process(_scenario_child, options.latency, "simulator") as simulator,
        child_process(_load_child, options, "load") as load,
    ):
        scenario = ScenarioAddress(**await simulator.recv(STARTUP_TIMEOUT))
        slack_origin = await load.recv(STARTUP_TIMEOUT)
        async with bot_served(scenario, slack_origin) as url:
            load.send(url)
            marks: dict[str, float] = {}
            while True:
                message, cpu = await load.recv_stamped(options.deadline + 120)
                if isinstance(message, tuple) and message[0] == "mark":
                    marks[message[1]] = cpu
                    continue
                result = Result(**message)
                break
        if "burst" in marks and "acked" in marks:
            result.burst_bot_cpu = marks["acked"] - marks["burst"]
        simulator.send("count")
        result.scenario_requests = await simulator.recv(STARTUP_TIMEOUT)
        return result


# --------------------------------------------------------------------------- report


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def spread(values: list[float]) -> str:
    if not values:
        return "n/a (no samples)"
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return (
        f"p50 {p50 * 1000:7.0f} ms   p99 {p99 * 1000:7.0f} ms   max {max(values) * 1000:7.0f} ms"
        f"   (n={len(values)})"
    )


def burst_cpu(result: Result) -> str:
    """Who used the machine's CPU while the acknowledgements were pending."""
    wall = result.acked_in
    parts = [f"{wall * 1000:.0f} ms wall × {result.cores} cores"]
    if result.burst_bot_cpu is not None:
        parts.append(f"bot ≈ {result.burst_bot_cpu * 1000:.0f} ms (stamped via a pipe)")
        parts.append(f"load + fake Slack {result.burst_load_cpu * 1000:.0f} ms")
    else:
        parts.append(f"bot + load + fake Slack + simulator {result.burst_load_cpu * 1000:.0f} ms")
    if result.burst_machine_cpu is not None:
        accounted = result.burst_load_cpu + (result.burst_bot_cpu or 0.0)
        rest = max(0.0, result.burst_machine_cpu - accounted)
        parts.append(f"rest of the machine ≈ {rest * 1000:.0f} ms (±10 ms ticks)")
    return "; ".join(parts)


def report(result: Result, options: Options) -> int:
    layout = "everything in one event loop" if options.inline else "bot alone in its process"
    if result.warm_up:
        print(result.warm_up)
    print(
        f"\n{options.commands} concurrent `/usage {options.text}`, Scenario latency "
        f"{options.latency:g} s, deadline {options.deadline:g} s ({layout})"
    )
    print(f"HTTP acks:              {spread(result.acks)}")
    print(f"  all acked after:      {result.acked_in * 1000:.0f} ms; statuses {result.statuses}")
    if "404" in result.statuses:
        print("  (404 is Bolt's answer when no listener matches: is /usage registered?)")
    print(f"  CPU until all acked:  {burst_cpu(result)}")
    print(f"response_url, first:    {spread(result.firsts)}")
    if any(n > 1 for n in result.answers_per_command):
        print(f"response_url, last:     {spread(result.lasts)}")
    print(f"  answers per command:  {result.answers_per_command} (answers: commands)")
    print(f"  response_type (last): {result.response_types}")
    for line, count in result.first_lines:
        print(f"  {count:3d} × {line}")
    print(
        f"Scenario requests: {result.scenario_requests} for {result.commands_sent} commands "
        "(the warm-up included)"
    )
    print(f"fake Slack Web API calls (whole run): {result.slack_calls}")
    print(f"waited {result.waited:.1f} s\n")

    ok_acks = result.statuses.get("200", 0)
    ack_p99 = percentile(result.acks, 99) * 1000 if result.acks else math.inf
    answered = len(result.firsts)
    checks = [
        (f"acknowledged with 200: {ok_acks}/{options.commands}", ok_acks == options.commands),
        (f"p99 ack {ack_p99:.0f} ms ≤ {options.target_ms:g} ms", ack_p99 <= options.target_ms),
        (
            f"answered via response_url within {options.deadline:g} s: "
            f"{answered}/{options.commands}",
            answered == options.commands,
        ),
    ]
    for what, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {what}")
    return 0 if all(passed for _, passed in checks) else 1


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=Options.commands)
    parser.add_argument("--latency", type=float, default=Options.latency, help="seconds")
    parser.add_argument("--text", default=Options.text, help="the /usage arguments")
    parser.add_argument("--deadline", type=float, default=Options.deadline, help="seconds")
    parser.add_argument("--target-ms", type=float, default=Options.target_ms)
    parser.add_argument("--cold", action="store_true", help="no warm-up command")
    parser.add_argument(
        "--inline", action="store_true", help="the simulator, fake Slack and load in-process"
    )
    args = parser.parse_args(argv)
    if args.commands < 1:
        parser.error("--commands must be at least 1")
    return Options(
        args.commands,
        args.latency,
        args.text,
        args.deadline,
        args.target_ms,
        args.cold,
        args.inline,
    )


class OncePerMessage(logging.Filter):
    """50 identical warnings (e.g. Bolt's "Unhandled request") say no more than one."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def quiet_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(OncePerMessage())


def main() -> None:
    quiet_logging()
    options = parse_args()
    result = asyncio.run(run_inline(options) if options.inline else run_split(options))
    sys.exit(report(result, options))


if __name__ == "__main__":
    main()
