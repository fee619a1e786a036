"""The Scenario client the bot uses, talking to the simulator in process (no socket), with
retries that do not wait: for tests that run many check cycles."""

from __future__ import annotations

import httpx

from bot.scenario.client import ScenarioClient
from bot.sim.scenario import Simulator, create_app


async def _no_wait(seconds: float) -> None:
    return None


def simulator_client(simulator: Simulator) -> ScenarioClient:
    return ScenarioClient(
        base_url="http://simulator/v1",
        api_key="test-key",
        api_secret="test-secret",
        transport=httpx.ASGITransport(create_app(simulator)),
        sleep=_no_wait,
    )
