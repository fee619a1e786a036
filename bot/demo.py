"""`budget-bot demo`: the whole bot on this machine, no Slack or Scenario account.

It serves the Scenario simulator and a local stand-in for Slack's Web API on loopback,
creates example budgets and a watch in a throw-away database, runs real checks and a real digest
through the real delivery path, and shows every message that reached "Slack".
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from bot.asgi_server import serve_app
from bot.budgets.types import PeriodKind, Scope, ScopeKind
from bot.budgets.watch import Sensitivity
from bot.config import Settings, load_settings
from bot.jobs.check import run_check
from bot.jobs.digest import run_digest
from bot.jobs.runtime import Runtime
from bot.messages.terminal import render
from bot.sim import slack_api
from bot.sim.scenario import ManualClock, Simulator, serve_simulator
from bot.sim.team import SyntheticTeam
from bot.store.budgets import NewBudget, create_budget
from bot.store.digests import list_digests, set_digest
from bot.store.watch import set_watch

WORKSPACE = "T0DEMO"
ALERTS = "C0ALERTS"
DIGESTS = "C0DIGEST"
WATCH = "C0WATCH"
ADMIN = "U0DEMO"


def _budgets(team: SyntheticTeam, now: datetime) -> list[NewBudget]:
    """Three budgets the simulator's runaway API key crosses."""
    spike = team.spike
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month = team.cu_between(month_start, now)
    project = team.project(spike.project_id)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    project_today = team.cu_between(day_start, now, project_ids=[project.id])
    key = team.user(spike.user_id)
    common = {"workspace_id": WORKSPACE, "channel_id": ALERTS, "created_by": ADMIN}
    return [
        NewBudget(
            period=PeriodKind.MONTHLY,
            # Never 0: early in a month (or a day) there is little to size the limit from.
            limit_cu=max(round(month * 1.6, -2), 100),
            scope=Scope(ScopeKind.TEAM),
            forecast=True,
            **common,
        ),
        NewBudget(
            period=PeriodKind.DAILY,
            limit_cu=max(round(project_today * 0.9, -1), 10),
            scope=Scope(ScopeKind.PROJECT, project.id),
            scope_name=project.name,
            **common,
        ),
        NewBudget(
            period=PeriodKind.ROLLING_24H,
            limit_cu=1000,
            scope=Scope(ScopeKind.KEY, key.id),
            scope_name=key.key_name or key.id,
            **common,
        ),
    ]


async def run_demo(settings: Settings, *, as_json: bool, out_dir: Path) -> int:
    started = time.perf_counter()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    team = SyntheticTeam.build(7, now)
    simulator = Simulator(team, clock=ManualClock(now))
    slack = slack_api.FakeSlack(team_id=WORKSPACE)
    with tempfile.TemporaryDirectory(prefix="budget-bot-demo-") as scratch:
        async with (
            serve_simulator(simulator) as scenario_url,
            serve_app(slack_api.create_app(slack)) as slack_origin,
        ):
            slack.origin = slack_origin
            demo_settings = load_settings(
                _env_file=None,
                budget_bot_db=Path(scratch) / "demo.db",
                budget_bot_timezone=settings.budget_bot_timezone,
                scenario_base_url=scenario_url,
                scenario_sdk_api_key="test-key",
                scenario_sdk_api_secret="test-secret",
                scenario_team_id=team.team_id,
                slack_api_url=f"{slack_origin}/api/",
                slack_bot_token="xoxb-demo",
            )
            runtime = Runtime.open(demo_settings)
            try:
                for budget in _budgets(team, now):
                    create_budget(runtime.db, budget, now=now - timedelta(days=1))
                spike = team.spike
                watch_on = spike.start - timedelta(minutes=30)
                set_watch(
                    runtime.db, WORKSPACE, WATCH, Sensitivity.NORMAL, actor=ADMIN, now=watch_on
                )
                # The watch learns the last month, sees the key run away within minutes and
                # confirms it at the next check; budgets alert as the key crosses them; a
                # check now edits those alerts in place and replies in their threads (the
                # watch's: the key is back to usual).
                during = spike.start + (spike.end - spike.start) / 2
                first_checks = [watch_on + i * timedelta(minutes=5) for i in range(9)]
                for at in (*first_checks, during, now):
                    simulator.clock.set(at)
                    await run_check(runtime.db, runtime.scenario_for, runtime.check_settings, at)
                    await runtime.deliver(lambda at=at: at)  # type: ignore[misc]
                set_digest(runtime.db, WORKSPACE, DIGESTS, clock_time(9), actor=ADMIN, now=now)
                [digest] = list_digests(runtime.db)
                tz = runtime.timezone_of(WORKSPACE)
                await run_digest(
                    runtime.db, runtime.scenario, digest, tz, now, "https://app.scenario.com"
                )
                await runtime.deliver(lambda: now)
            finally:
                await runtime.aclose()

    chart = out_dir / "budget-bot-demo-chart.png"
    for data in slack.uploads.values():
        chart.write_bytes(data)
        break
    messages = slack.all_messages()
    if as_json:
        print(
            json.dumps(
                [m.as_json(with_metadata=False) | {"channel": m.channel} for m in messages],
                indent=2,
            )
        )
    else:
        spike, key = team.spike, team.user(team.spike.user_id)
        print(f"Scenario Budget Bot demo — simulated team “{team.name}”, {now:%Y-%m-%d %H:%M} UTC")
        print(
            f"{len(team.jobs):,} jobs in the simulator; the API key “{key.key_name}” ran away"
            f" {spike.start:%H:%M}–{spike.end:%H:%M} UTC.\n"
        )
        for message in messages:
            where = f"#{message.channel}" + (" (thread reply)" if message.thread_ts else "")
            if message.files:
                print(f"━━ {where}: file {message.files[0]['title']}\n")
                continue
            edited = " (edited in place)" if message.edits else ""
            print(f"━━ {where}{edited}")
            print(render(message.as_json(with_metadata=False)), end="\n\n")
    print(f"chart written to {chart.resolve()}" if slack.uploads else "no chart was uploaded")
    print(f"{len(messages)} messages posted in {time.perf_counter() - started:.1f} s")
    return 0
