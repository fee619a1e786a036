"""Whether someone is an admin is what Slack says of them; a Slack that fails, or an answer
that isn't Slack's, says nothing — never "not an admin"."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import admins
from bot.slack.admins import AdminCheck, AdminUnknown, form_admin_problem
from bot.slack.channels import channel_problem
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


async def test_a_redirect_loop_keeps_the_token_out_of_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiohttp's TooManyRedirects carries the request's headers in its repr: the bearer
    token must not reach a log line."""

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: /api/users.info\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(redirect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    web = AsyncWebClient(
        token="xoxb-not-a-real-token", base_url=f"http://127.0.0.1:{port}/api/", retry_handlers=[]
    )
    async with server:
        with caplog.at_level(logging.DEBUG, logger="bot"), pytest.raises(AdminUnknown):
            await check().is_admin(web, "T1", "U1")
        assert await channel_problem(web, "C1") is not None  # out of reach: said
    assert caplog.records and "xoxb-not-a-real-token" not in caplog.text
