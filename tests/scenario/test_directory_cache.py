"""The names directory cache: per Scenario client, and gone with it."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime

import httpx

from bot.scenario.client import ScenarioClient
from bot.scenario.names import DirectoryCache

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def client_of(project: str, seen: list[str]) -> ScenarioClient:
    """A client whose Scenario has one project named `project` and no usage."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("/projects"):
            body = {"projects": [{"id": f"proj_{project}", "name": project}]}
        else:
            body = {}
        return httpx.Response(200, content=json.dumps(body))

    return ScenarioClient(
        base_url="https://scenario.test/v1",
        api_key="key",
        api_secret="secret",
        transport=httpx.MockTransport(answer),
    )


async def test_each_client_has_its_own_directory_and_it_goes_with_the_client() -> None:
    cache = DirectoryCache(lambda: NOW)
    seen: list[str] = []
    first = client_of("Acme Art", seen)
    assert [p.name for p in (await cache.get(first)).projects] == ["Acme Art"]
    calls = len(seen)
    assert (await cache.get(first)).projects[0].name == "Acme Art" and len(seen) == calls
    await first.aclose()
    del first
    gc.collect()
    # A workspace's client is dropped after a disconnect: nothing of it stays behind for a
    # later client (which may get the same address) to find.
    assert len(cache._cached) == 0
    second = client_of("Globex", seen)
    assert [p.name for p in (await cache.get(second)).projects] == ["Globex"]
    await second.aclose()
