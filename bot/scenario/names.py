"""Names of a Scenario team — projects, members, API keys, models — and matching what a
person typed against them (case-insensitive, an ID, or a unique prefix)."""

from __future__ import annotations

import asyncio
import difflib
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.scenario.client import ScenarioClient
from bot.scenario.errors import ScenarioError
from bot.scenario.models import TimeRange, UsageType

CACHE_FOR = timedelta(minutes=5)
MAX_MODEL_LOOKUPS = 20


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    name: str  # what people call it: a project's or model's name, a member's email, a key's name
    aliases: tuple[str, ...] = ()  # other accepted spellings (full name, key ID)


@dataclass(frozen=True, slots=True)
class Found:
    entry: Entry


@dataclass(frozen=True, slots=True)
class Ambiguous:
    text: str
    candidates: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Unknown:
    text: str
    suggestions: tuple[Entry, ...]


Match = Found | Ambiguous | Unknown


def match(text: str, entries: Sequence[Entry]) -> Match:
    """An exact ID or name (any case) wins; else a unique prefix; else candidates."""
    wanted = text.strip().casefold()
    for entry in entries:
        if entry.id == text.strip():
            return Found(entry)
    exact = [e for e in entries if wanted in {n.casefold() for n in (e.name, *e.aliases)}]
    if len(exact) == 1:
        return Found(exact[0])
    if len(exact) > 1:
        return Ambiguous(text, tuple(exact))
    prefixed = [
        e for e in entries if any(n.casefold().startswith(wanted) for n in (e.name, *e.aliases))
    ]
    if len(prefixed) == 1 and wanted:
        return Found(prefixed[0])
    if len(prefixed) > 1 and wanted:
        return Ambiguous(text, tuple(prefixed[:10]))
    names = {e.name.casefold(): e for e in entries}
    close = difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.5)
    return Unknown(text, tuple(names[n] for n in close))


@dataclass(frozen=True, slots=True)
class Directory:
    projects: tuple[Entry, ...] = ()
    members: tuple[Entry, ...] = ()  # humans, by email
    keys: tuple[Entry, ...] = ()  # API keys, by name; id is the member ID usage data uses
    models: tuple[Entry, ...] = ()

    def member(self, member_id: str) -> Entry | None:
        return next((m for m in self.members if m.id == member_id), None)

    def key(self, member_id: str) -> Entry | None:
        return next((k for k in self.keys if k.id == member_id), None)

    def name_of(self, entry_id: str) -> str | None:
        for entry in (*self.projects, *self.members, *self.keys, *self.models):
            if entry.id == entry_id:
                return entry.name
        return None


@dataclass
class DirectoryCache:
    """One directory per Scenario client, reloaded after a few minutes.

    Keyed by the client object itself, weakly: a workspace's client that is closed and
    dropped takes its directory with it, so a later client (of another workspace, maybe
    at the same address) never finds it. One lock per client: a slow team does not hold
    up the others.
    """

    clock: Callable[[], datetime]
    _cached: weakref.WeakKeyDictionary[ScenarioClient, tuple[datetime, Directory]] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    _locks: weakref.WeakKeyDictionary[ScenarioClient, asyncio.Lock] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    async def get(self, client: ScenarioClient) -> Directory:
        lock = self._locks.setdefault(client, asyncio.Lock())
        async with lock:
            now = self.clock()
            cached = self._cached.get(client)
            if cached is not None and now - cached[0] < CACHE_FOR:
                return cached[1]
            directory = await load_directory(client)
            self._cached[client] = (now, directory)
            return directory


async def load_people(client: ScenarioClient) -> Directory:
    """Only the team's members and API keys, in one request (none without a team ID): what
    an alert needs to name people and keys that the usage data leaves unnamed."""
    if not client.team_id:
        return Directory()
    team = await client.team()
    members = tuple(Entry(u.id, u.email or u.id) for u in team.users)
    keys = tuple(
        Entry(k.id, k.name or k.api_key_id or k.id, (k.api_key_id,) if k.api_key_id else ())
        for k in team.keys
    )
    return Directory(members=members, keys=keys)


async def load_directory(client: ScenarioClient) -> Directory:
    """Projects from GET /projects; members and keys from the team (or, without a team ID,
    from the last month's activity); models from the last month's usage, named by their
    entities or, failing that, by GET /models/{id}."""
    # Independent reads, so at once: one round trip for a cold `/usage` instead of three.
    listed, recent, people = await asyncio.gather(
        client.projects(),
        client.usages(
            time_range=TimeRange.LAST_THIRTY_ONE_DAYS,
            types=(UsageType.MODEL_USAGES, UsageType.ACTIVITY, UsageType.CONSUMPTION),
        ),
        load_people(client),
    )
    projects = tuple(Entry(p.id, p.name or p.id) for p in listed)
    members: list[Entry] = []
    keys: list[Entry] = []
    if client.team_id:
        members, keys = list(people.members), list(people.keys)
    else:
        for user in recent.entities.users:
            if user.is_api_key:
                keys.append(Entry(user.id, user.api_key_id or user.id))
            else:
                aliases = (user.full_name,) if user.full_name else ()
                members.append(Entry(user.id, user.email or user.id, aliases))
    names = {m.id: m.name for m in recent.entities.models if m.name}
    model_ids = [usage.model_id for usage in recent.model_usages if usage.model_id]

    async def name_of(model_id: str) -> str | None:
        try:
            return (await client.model(model_id)).name
        except ScenarioError:
            return None

    unnamed = [m for m in model_ids if m not in names][:MAX_MODEL_LOOKUPS]
    for model_id, name in zip(
        unnamed, await asyncio.gather(*(name_of(m) for m in unnamed)), strict=True
    ):
        if name:
            names[model_id] = name
    models = tuple(Entry(m, names.get(m, m)) for m in dict.fromkeys([*model_ids, *names]))
    return Directory(projects, tuple(members), tuple(keys), models)
