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


@pytest.mark.parametrize(
    ("status", "content_type"),
    [
        (b"200 OK", b"text/plain"),
        (b"200 OK", b"application/json"),  # says JSON, is a page
        (b"502 Bad Gateway", b"application/json"),
        (b"429 Too Many Requests", b"text/plain"),
        (b"502 Bad Gateway", b"text/html"),
    ],
)
async def test_an_answer_that_isnt_slacks_is_unknown(status: bytes, content_type: bytes) -> None:
    async with serving(status, content_type) as origin:
        with pytest.raises(AdminUnknown):
            await check().is_admin(client(origin), "T1", "U1")
