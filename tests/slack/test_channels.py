"""The channel check refuses only what Slack says cannot work: an answer that is not Slack's
JSON (a proxy's error page) means "can't tell"; Slack out of reach is said, with what to do."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.channels import channel_problem


def client(origin: str) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=f"{origin}/api/", retry_handlers=[])


@asynccontextmanager
async def serving(status: bytes, content_type: bytes) -> AsyncIterator[str]:
    """A loopback server answering every request as a proxy or captive portal would."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"<html><body>Please sign in to the network</body></html>"
        writer.write(
            b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, content_type, len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


async def test_slack_out_of_reach_is_said_not_raised() -> None:
    problem = await channel_problem(client(closed_port()), "CSPEND1")
    assert problem is not None and problem.startswith("Slack could not be reached")
    assert "Try again" in problem


@pytest.mark.parametrize(
    ("status", "content_type"),
    [
        (b"502 Bad Gateway", b"text/html"),
        (b"200 OK", b"text/plain"),
        (b"200 OK", b"text/html"),
        (b"200 OK", b"application/json"),  # says JSON, is a page
        (b"503 Service Unavailable", b"text/plain"),
    ],
)
async def test_an_answer_that_is_not_slacks_is_cant_tell(
    status: bytes, content_type: bytes
) -> None:
    async with serving(status, content_type) as origin:
        assert await channel_problem(client(origin), "CSPEND1") is None
