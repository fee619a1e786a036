"""A synthetic team for tests that run the bot as a subprocess, on the only clock it has
there: the wall clock. Anchoring the team at the current hour keeps its scripted spend in
the bot's periods whatever the date the suite runs on (a fixed anchor stops alerting once
the calendar leaves its month)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.sim.team import SyntheticTeam, floor_hour


def live_now() -> datetime:
    return floor_hour(datetime.now(UTC))


def live_team(seed: int = 7) -> SyntheticTeam:
    return SyntheticTeam.build(seed, live_now())
