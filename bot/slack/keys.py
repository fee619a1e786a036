"""Which Scenario API key a watch episode is about, as Scenario has it now: its key ID and
its project, which revoking it needs (DELETE /projects/{project}/api-keys/{key})."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.budgets.types import ScopeKind
from bot.budgets.watch_history import entity_of
from bot.messages.mrkdwn import escape
from bot.scenario.errors import ScenarioError
from bot.scenario.links import api_keys_url
from bot.store.alerts import Alert

if TYPE_CHECKING:
    from bot.slack.deps import Deps

# Inside a button press: Slack's trigger for the form lasts 3 seconds.
FIND_WITHIN = 2.0


@dataclass(frozen=True, slots=True)
class Key:
    member_id: str
    api_key_id: str
    name: str
    project_id: str
    project_name: str


async def find_key(
    deps: Deps, team_id: str, alert: Alert, *, within: float = FIND_WITHIN
) -> Key | str:
    """The episode's key, or what to tell the person (mrkdwn) when it cannot be revoked
    from Slack."""
    finding = alert.finding
    entity = entity_of(finding.entity) if finding else None
    if entity is None or entity.kind is not ScopeKind.KEY or not entity.ref:
        return "Only an API key's alert can revoke a key."
    if finding is not None and finding.revoked is not None:
        return f"<@{finding.revoked[0]}> already revoked this key; nothing changed."
    page = api_keys_url(deps.settings.scenario_app)
    try:
        client = await deps.scenario_for(team_id)
        team = await asyncio.wait_for(client.team(), within)
    except (ScenarioError, TimeoutError, ValueError) as exc:
        why = (
            escape(exc.message) if isinstance(exc, ScenarioError) else "it did not answer in time."
        )
        return (
            f"I couldn't ask Scenario about this key: {why}"
            f" Revoke it on <{page}|the API keys page>."
        )
    key = next((k for k in team.keys if k.id == entity.ref), None)
    if key is None or not key.api_key_id:
        return "Scenario no longer lists this key (it may be revoked already); nothing changed."
    project = next((p for p in team.projects if p.id == key.owner_id), None)
    if key.scope != "project" or project is None:
        return (
            f"🔑 {escape(key.name or key.api_key_id)} is a team key: Scenario revokes those on"
            f" <{page}|the API keys page>, not from here."
        )
    return Key(
        entity.ref,
        key.api_key_id,
        key.name or key.api_key_id,
        project.id,
        project.name or project.id,
    )
