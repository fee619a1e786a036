"""Who is an admin (SPEC §4): Slack's admin and owner flags count for members of this
workspace — including, on Enterprise Grid, members whose home is another workspace of the
org — never for someone of another organisation in a shared channel."""

from __future__ import annotations

import pytest

from bot.sim.slack_api import Fault
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


@pytest.mark.parametrize("error", ["ratelimited", "internal_error"])
async def test_when_slack_cannot_say_who_is_an_admin_nothing_changes_and_that_is_said(
    bot: Bot, error: str
) -> None:
    bot.slack.fail_next("users.info", Fault(status=200, error=error))
    answer = everything(await ask(bot, "add 5k monthly"))
    assert "couldn't confirm your admin rights" in answer and "Only" not in answer
    assert list_budgets(bot.db, TEAM_ID) == []
    # Not taken for "not an admin" and remembered: asked again, Slack says.
    assert "added" in everything(await ask(bot, "add 5k monthly"))


async def test_someone_slack_does_not_know_is_no_admin(bot: Bot) -> None:
    bot.slack.fail_next("users.info", Fault(status=200, error="user_not_found"))
    answer = everything(await ask(bot, "add 5k monthly"))
    assert "admins" in answer and "couldn't confirm" not in answer
    assert list_budgets(bot.db, TEAM_ID) == []


async def test_when_slack_will_never_say_the_answer_says_what_would_help(bot: Bot) -> None:
    bot.slack.fail_next("users.info", Fault(status=200, error="missing_scope"))
    answer = everything(await ask(bot, "add 5k monthly"))
    assert "won't tell me who the admins are" in answer and "BUDGET_BOT_ADMINS" in answer
    assert "Try again" not in answer
    assert list_budgets(bot.db, TEAM_ID) == []
