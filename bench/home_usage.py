"""How fast the Home tab opens and `/usage 7d` answers while Scenario is slow.

The real app on loopback, as in `bench/ack_latency.py` (whose servers and helpers this
reuses), with the Scenario simulator waiting `--latency` seconds (default 2 s) before every
answer. Everything runs in this one process and event loop, so the figures are upper bounds.

1. `--budgets` budgets (team, projects, the runaway key; default 5; limits too high to alert,
   so that the check makes no attribution reads) and one check cycle at the anchor, which
   records what it saw; then `--opens` signed `app_home_opened` events,
   one after the other (default 50), each timed from its send to the arrival of its
   `views.publish` at the fake Slack. Target p99 ≤ `--home-target-ms` (300 ms): Home must
   not wait for Scenario. The Scenario requests made while the tab was opened are counted
   (expected: none).
2. One `/usage 7d` to warm the names cache (not counted), then `--usages` more, one after
   the other (default 10), each timed from its send to its `response_url` answer, and the
   Scenario requests each one made. Target p50 ≤ 1.3 × latency + 200 ms (one round trip).

Exit status 0 when both targets are met and Home made no Scenario request; 1 otherwise.

    PYTHONPATH=. python bench/home_usage.py [--latency 2.0] [--opens 50] [--usages 10]
        [--budgets 5] [--home-target-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass

import httpx
from slack_sdk.signature import SignatureVerifier

from bench.ack_latency import (
    ANCHOR,
    SIGNING_SECRET,
    TEAM_ID,
    USER,
    Load,
    Options,
    Sample,
    SlackSide,
    bot_and_deps,
    percentile,
    quiet_logging,
    scenario_served,
    slack_served,
    spread,
)
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.jobs.check import run_check
from bot.sim.scenario import Simulator
from bot.slack.deps import Deps
from bot.store.budgets import NewBudget, create_budget

PUBLISH = "views.publish"


@dataclass
class Settings:
    latency: float = 2.0
    opens: int = 50
    usages: int = 10
    budgets: int = 5
    home_target_ms: float = 300.0


def add_budgets(deps: Deps, simulator: Simulator, count: int) -> None:
    team = simulator.team
    scopes = [
        (Scope(ScopeKind.TEAM, None), None, PeriodKind.MONTHLY),
        (Scope(ScopeKind.KEY, team.spike.user_id), "Runaway key", PeriodKind.ROLLING_24H),
        *((Scope(ScopeKind.PROJECT, p.id), p.name, PeriodKind.DAILY) for p in team.projects),
    ]
    for i in range(count):
        scope, name, period = scopes[i % len(scopes)]
        new = NewBudget(
            TEAM_ID, period, 10.0**6 * (i + 1), "C_SPEND", USER, scope, name, forecast=True
        )
        create_budget(deps.db, new, now=ANCHOR)


async def open_home(http: httpx.AsyncClient, url: str, side: SlackSide, n: int) -> float:
    """Seconds from sending `app_home_opened` to its `views.publish` reaching Slack."""
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "api_app_id": "A_BOT",
            "event": {"type": "app_home_opened", "user": USER, "channel": "D_HOME", "tab": "home"},
            "event_id": f"EvHome{n}",
            "event_time": int(time.time()),
        }
    )
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    published = side.clock.api_calls[PUBLISH]
    before = len(published)
    sent = time.perf_counter()
    answer = await http.post(
        f"{url}/slack/events",
        content=body,
        headers={
            "content-type": "application/json",
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature,
        },
    )
    answer.raise_for_status()
    deadline = sent + 30
    while len(published) == before:
        if time.perf_counter() > deadline:
            raise TimeoutError("no views.publish within 30 s")
        await asyncio.sleep(0.0005)
    return published[before] - sent


async def run(settings: Settings) -> int:
    async with (
        scenario_served(settings.latency) as (simulator, scenario),
        slack_served() as side,
        bot_and_deps(scenario, side.origin) as (url, deps),
    ):
        add_budgets(deps, simulator, settings.budgets)
        started = time.perf_counter()
        await run_check(
            deps.db, lambda ws: deps.scenario_for(ws.team_id), deps.runtime.check_settings, ANCHOR
        )
        checked_in = time.perf_counter() - started
        async with httpx.AsyncClient(timeout=30) as http:
            simulator.reset_requests()
            homes = [await open_home(http, url, side, n) for n in range(settings.opens)]
            home_requests = len(simulator.requests)
            [view] = [c.args["view"] for c in side.slack.calls_to(PUBLISH)[-1:]]
            as_of = sum("as of " in json.dumps(b, ensure_ascii=False) for b in view["blocks"])

            load = Load(side, url, http)
            warm_up = await load.warm_up(Options(text="7d"))
            answers: list[float] = []
            requests: list[int] = []
            for _ in range(settings.usages):
                simulator.reset_requests()
                body, hook = load.form("7d")
                sample = Sample(hook)
                await load.send(body, sample)
                await load.wait_answers([hook], time.perf_counter() + 60)
                arrivals = side.clock.arrivals.get(hook)
                if arrivals:
                    answers.append(arrivals[0] - sample.sent_at)
                requests.append(len(simulator.requests))

    print(f"Scenario latency {settings.latency:g} s (everything in one event loop)")
    print(f"check cycle of {settings.budgets} budgets: {checked_in:.1f} s")
    print(f"\nHome: {settings.opens} app_home_opened → views.publish, one after the other")
    print(f"  views.publish after:  {spread(homes)}")
    print(f"  budgets shown with 'as of': {as_of}/{settings.budgets}")
    print(f"  Scenario requests while opening: {home_requests}")
    print(f"\n/usage 7d: {warm_up}")
    print(f"  {settings.usages} more, one after the other")
    print(f"  response_url after:   {spread(answers)}")
    print(f"  Scenario requests per /usage: {sorted(set(requests))} (all {requests})")

    home_p99 = percentile(homes, 99) * 1000
    usage_p50 = percentile(answers, 50) if answers else float("inf")
    usage_target = 1.3 * settings.latency + 0.2
    checks = [
        (
            f"Home p99 {home_p99:.0f} ms ≤ {settings.home_target_ms:g} ms",
            home_p99 <= settings.home_target_ms,
        ),
        (f"Home made {home_requests} Scenario requests (0 wanted)", home_requests == 0),
        (f"Home showed every budget's figures ({as_of})", as_of == settings.budgets),
        (
            f"/usage 7d p50 {usage_p50:.2f} s ≤ {usage_target:.2f} s",
            usage_p50 <= usage_target and len(answers) == settings.usages,
        ),
    ]
    print()
    for what, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {what}")
    return 0 if all(passed for _, passed in checks) else 1


def parse_args(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=Settings.latency, help="seconds")
    parser.add_argument("--opens", type=int, default=Settings.opens)
    parser.add_argument("--usages", type=int, default=Settings.usages)
    parser.add_argument("--budgets", type=int, default=Settings.budgets)
    parser.add_argument("--home-target-ms", type=float, default=Settings.home_target_ms)
    args = parser.parse_args(argv)
    if min(args.opens, args.usages, args.budgets) < 1:
        parser.error("--opens, --usages and --budgets must be at least 1")
    return Settings(args.latency, args.opens, args.usages, args.budgets, args.home_target_ms)


def main() -> None:
    quiet_logging()
    sys.exit(asyncio.run(run(parse_args())))


if __name__ == "__main__":
    main()
