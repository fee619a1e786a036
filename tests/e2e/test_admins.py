"""Who is an admin (SPEC §4): Slack's admin and owner flags count for members of this
workspace — including, on Enterprise Grid, members whose home is another workspace of the
org — never for someone of another organisation in a shared channel."""

from __future__ import annotations

import pytest

from bot.store.budgets import list_budgets
from tests.e2e.conftest import TEAM_ID, Bot
from tests.e2e.test_budget import ask, everything

GUEST = "U_GUEST"


@pytest.mark.parametrize(
    ("profile", "admin"),
    [
        ({"team_id": "T_ELSEWHERE"}, False),  # another organisation's admin
        ({"team_id": TEAM_ID, "is_stranger": True}, False),  # Slack says: a stranger
        (  # Grid: home elsewhere in the org, a member here too
            {"team_id": "T_HOME", "enterprise_user": {"id": GUEST, "teams": ["T_HOME", TEAM_ID]}},
            True,
        ),
        (  # Grid: home elsewhere, not a member here
            {"team_id": "T_HOME", "enterprise_user": {"id": GUEST, "teams": ["T_HOME"]}},
            False,
        ),
        ({"team_id": TEAM_ID}, True),
    ],
)
async def test_admin_rights_count_only_in_their_own_workspace(
    bot: Bot, profile: dict[str, object], admin: bool
) -> None:
    bot.slack.users[GUEST] = {"name": "guest", "is_admin": True, **profile}
    answer = everything(await ask(bot, "add 5k monthly", user=GUEST))
    saved = list_budgets(bot.db, TEAM_ID)
    assert bool(saved) is admin, answer
    if not admin:
        assert "admins" in answer and "Nothing" in answer
