"""Reading what Slack sent with a button press or a form submission: who, in which workspace,
and the value the button carries. Nothing in it is trusted beyond its shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# SQLite's INTEGER is signed 64-bit: a longer "ID" can only be a tampered value.
_MAX_ID_DIGITS = 18


@dataclass(frozen=True, slots=True)
class Interaction:
    team_id: str
    user_id: str
    trigger_id: str
    value: str  # the pressed button's value ("" for a form or a link button)

    @property
    def id_value(self) -> int | None:
        """The button's value as a budget or alert ID; None when it is not one."""
        raw = self.value
        ok = raw.isascii() and raw.isdigit() and len(raw) <= _MAX_ID_DIGITS
        return int(raw) if ok else None


def interaction(body: dict[str, Any]) -> Interaction:
    """The team, user, trigger and button value of a `block_actions` or `view_submission`."""
    user = body.get("user") or {}
    view = body.get("view") or {}
    # The workspace the press or form happened in: a view's own team comes before the
    # user's home team (they differ for an org-wide install on Enterprise Grid).
    team_id = (body.get("team") or {}).get("id") or view.get("team_id") or user.get("team_id")
    actions = body.get("actions") or [{}]
    return Interaction(
        team_id=str(team_id or ""),
        user_id=str(user.get("id") or ""),
        trigger_id=str(body.get("trigger_id") or ""),
        value=str(actions[0].get("value") or ""),
    )
