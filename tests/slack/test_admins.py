"""Whether someone is an admin is what Slack says of them; a Slack that fails, or an answer
that isn't Slack's, says nothing — never "not an admin"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.slack import admins
from bot.slack.admins import AdminCheck, AdminUnknown, form_admin_problem
from tests.slack.test_channels import client, closed_port, serving


def check() -> AdminCheck:
    return AdminCheck(frozenset(), lambda: datetime(2026, 12, 3, tzinfo=UTC))


async def test_slack_out_of_reach_is_unknown_and_the_form_says_so() -> None:
    with pytest.raises(AdminUnknown):
        await check().is_admin(client(closed_port()), "T1", "U1")
    problem = await form_admin_problem(
        check(), client(closed_port()), "T1", "U1", within=2.0, refused="no"
    )
    assert problem == admins.ADMIN_CHECK_UNKNOWN


async def test_a_captive_portals_page_is_unknown() -> None:
    async with serving(b"200 OK", b"text/plain") as origin:
        with pytest.raises(AdminUnknown):
            await check().is_admin(client(origin), "T1", "U1")
