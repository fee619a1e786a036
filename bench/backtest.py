"""How long a backtest takes, and how many Scenario reads, while Scenario is slow.

The simulator's seeded team behind a transport that waits `--latency` seconds (default 2 s)
before every answer; for each kind of budget, the whole `/budget add` backtest (reads and
replay) and the replay alone (what each further limit tried in the form costs).

    PYTHONPATH=. python bench/backtest.py [--latency 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

import httpx

from bot.budgets.evaluate import BudgetRule
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.reports.backtest import read_history, replay_history
from bot.scenario.client import ScenarioClient
from bot.sim.scenario import ManualClock, Simulator, create_app
from bot.sim.team import SyntheticTeam

ANCHOR = datetime(2026, 11, 26, 12, 37, tzinfo=UTC)


class Slow(httpx.AsyncBaseTransport):
    def __init__(self, simulator: Simulator, latency: float) -> None:
        self.inner = httpx.ASGITransport(create_app(simulator))
        self.latency, self.requests = latency, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        await asyncio.sleep(self.latency)
        return await self.inner.handle_async_request(request)


async def main(latency: float) -> None:
    team = SyntheticTeam.build(7, ANCHOR)
    transport = Slow(Simulator(team, clock=ManualClock(ANCHOR)), latency)
    client = ScenarioClient(
        base_url="http://simulator/v1",
        api_key="test-key",
        api_secret="test-secret",
        transport=transport,
    )
    cases = [
        ("team monthly + forecast", Scope(ScopeKind.TEAM), PeriodKind.MONTHLY, True),
        ("project daily", Scope(ScopeKind.PROJECT, team.projects[0].id), PeriodKind.DAILY, False),
        (
            "key rolling 24h",
            Scope(ScopeKind.KEY, team.spike.user_id),
            PeriodKind.ROLLING_24H,
            False,
        ),
        ("team rolling 30d", Scope(ScopeKind.TEAM), PeriodKind.ROLLING_30D, False),
    ]
    print(f"Scenario latency {latency:.1f} s; 30 days, a check every hour")
    print(f"{'budget':26} {'reads':>5} {'total':>8} {'replay':>8}  result")
    for name, scope, kind, forecast in cases:
        before = transport.requests
        started = time.perf_counter()
        history = await read_history(client, scope, kind, "Europe/Paris", ANCHOR)
        rule = BudgetRule(5_000, (50, 80, 100), forecast)
        replay_started = time.perf_counter()
        found = replay_history(history, rule, kind, "Europe/Paris")
        done = time.perf_counter()
        print(
            f"{name:26} {transport.requests - before:5d} {done - started:7.2f}s"
            f" {(done - replay_started) * 1000:6.0f}ms  {len(found.alerts)} alerts,"
            f" {found.messages} messages"
        )
    await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0)
    asyncio.run(main(parser.parse_args().latency))
