"""Outbox delivery against the fake Slack over real loopback HTTP, with an injected clock.

Each test names a promise of SPEC §5 ("one message … never twice … retried until it
lands") or of the outbox design (ARCHITECTURE: "a crash at any line must neither lose
nor duplicate a message") and fails when delivery breaks it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlite_utils import Database
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.asgi_server import serve_app
from bot.jobs.delivery import LEASE, DrainReport, backoff, drain, metadata_for
from bot.sim.slack_api import FakeSlack, Fault, Message, create_app
from bot.store import outbox
from bot.store.db import migrate, open_db
from bot.store.outbox import OutboxAction, OutboxItem, OutboxStatus

# One loopback server for the module (starting and stopping uvicorn costs ~0.2 s); each
# test plugs its own fresh FakeSlack into it.
pytestmark = pytest.mark.asyncio(loop_scope="module")

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
WS = "T0DEMO"
CHANNEL = "C1"
PERMANENT = [
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "account_inactive",
]
CHANNEL_LEVEL = {"channel_not_found", "not_in_channel", "is_archived"}


class Clock:
    """The injected "now": tests move it; nothing in delivery may read the real time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def slack_client(origin: str) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=origin + "/api/", retry_handlers=[])


def closed_port_origin() -> str:
    """An origin on loopback where nothing listens: every call is a connection error."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Plug:
    """An ASGI app that forwards to the apps the current test plugged in, by path prefix."""

    def __init__(self) -> None:
        self.apps: dict[str, ASGIApp] = {}  # "" is the fake Slack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.apps[""]
        for prefix, mounted in self.apps.items():
            if prefix and scope["path"].startswith(prefix + "/"):
                path = scope["path"].removeprefix(prefix)
                scope = {**scope, "path": path, "raw_path": path.encode()}
                app = mounted
                break
        await app(scope, receive, send)


@dataclass
class Env:
    db: Database
    slack: FakeSlack
    origin: str
    clock: Clock
    plug: Plug
    clients: dict[str, AsyncWebClient] = field(default_factory=dict)

    async def client_for(self, workspace_id: str) -> AsyncWebClient:
        return self.clients[workspace_id]

    async def drain(self) -> DrainReport:
        return await drain(self.db, self.client_for, self.clock)

    def enqueue(
        self,
        key: str,
        *,
        action: OutboxAction = OutboxAction.POST,
        thread_key: str | None = None,
        channel: str = CHANNEL,
        workspace: str = WS,
        budget_id: int | None = 1,
        text: str | None = None,
        expires_at: datetime | None = None,
    ) -> OutboxItem:
        payload: dict[str, Any] = {
            "text": text or f"text of {key}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": key}}],
        }
        assert outbox.enqueue(
            self.db,
            dedup_key=key,
            workspace_id=workspace,
            channel_id=channel,
            action=action,
            payload=payload,
            now=self.clock(),
            expires_at=expires_at,
            budget_id=budget_id,
            thread_key=thread_key,
        )
        return self.row(key)

    def row(self, key: str) -> OutboxItem:
        item = outbox.get_item(self.db, key)
        assert item is not None
        return item

    def with_key(self, key: str) -> list[Message]:
        """Every message in the fake workspace that carries this dedup key."""
        return [
            m
            for m in self.slack.all_messages()
            if (m.metadata or {}).get("event_payload", {}).get("dedup_key") == key
        ]

    def posts(self) -> int:
        return len(self.slack.calls_to("chat.postMessage"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server() -> AsyncIterator[tuple[Plug, str]]:
    plug = Plug()
    async with serve_app(plug) as origin:
        yield plug, origin


@pytest_asyncio.fixture(loop_scope="module")
async def env(tmp_path: Path, server: tuple[Plug, str]) -> AsyncIterator[Env]:
    plug, origin = server
    db = open_db(tmp_path / "bot.db")
    migrate(db)
    slack = FakeSlack(team_id=WS, origin=origin)
    plug.apps[""] = create_app(slack)
    yield Env(db, slack, origin, Clock(T0), plug, {WS: slack_client(origin)})
    plug.apps.clear()
    db.conn.close()


def outage(slack: FakeSlack, *, posts_land: bool, calls: int = 10_000) -> None:
    """Every Web API call the delivery makes answers 500 until `slack.faults.clear()`."""
    slack.fail_next("chat.postMessage", Fault(status=500, after_effect=posts_land), calls)
    for method in ("chat.update", "conversations.history", "conversations.replies"):
        slack.fail_next(method, Fault(status=500), calls)


# --- the ordinary path ------------------------------------------------------------------


async def test_a_due_post_is_delivered_once_with_its_key_in_the_metadata(env: Env) -> None:
    env.enqueue("alert:1:monthly:2026-11@UTC:threshold:80", text="80% of budget #1")

    report = await env.drain()

    [message] = env.slack.top_level(CHANNEL)
    assert message.text == "80% of budget #1"
    assert message.blocks[0]["text"]["text"] == "alert:1:monthly:2026-11@UTC:threshold:80"
    assert message.metadata == metadata_for("alert:1:monthly:2026-11@UTC:threshold:80")
    row = env.row("alert:1:monthly:2026-11@UTC:threshold:80")
    assert (row.status, row.ts, row.attempts, row.last_error) == (
        OutboxStatus.SENT,
        message.ts,
        1,
        None,
    )
    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    # A first attempt has nothing to look for: it posts straight away.
    assert env.slack.calls_to("conversations.history") == []

    env.clock.advance(timedelta(hours=1))
    again = await env.drain()

    assert again.sent == 0
    assert env.posts() == 1
    assert len(env.slack.all_messages()) == 1


async def test_a_row_not_yet_due_is_left_alone(env: Env) -> None:
    item = env.enqueue("later")
    outbox.reschedule(env.db, item.id, error="test", at=T0 + timedelta(minutes=5))

    await env.drain()
    env.clock.advance(timedelta(minutes=4, seconds=59))
    await env.drain()

    assert env.slack.calls == []
    env.clock.advance(timedelta(seconds=1))
    await env.drain()
    assert len(env.with_key("later")) == 1


async def test_an_update_and_a_reply_wait_for_their_parent_then_follow_it(env: Env) -> None:
    env.slack.fail_next("chat.postMessage", Fault(status=500))
    env.enqueue("parent", text="50% used")
    env.enqueue("parent:edit", action=OutboxAction.UPDATE, thread_key="parent", text="80% used")
    env.enqueue("parent:reply", thread_key="parent", text="Now at 80%")

    first = await env.drain()

    assert (first.retried, first.waiting) == (1, 2)
    assert env.slack.calls_to("chat.update") == []
    assert env.slack.all_messages() == []
    for key in ("parent:edit", "parent:reply"):
        row = env.row(key)
        assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)

    env.clock.advance(backoff(1))
    second = await env.drain()

    assert second.sent == 3
    [parent] = env.slack.top_level(CHANNEL)
    assert (parent.text, parent.edits) == ("80% used", 1)  # edited in place, not re-posted
    assert parent.metadata == metadata_for("parent")
    [reply] = env.slack.replies(CHANNEL, parent.ts)
    assert reply.text == "Now at 80%"
    assert reply.metadata == metadata_for("parent:reply")
    [update_call] = env.slack.calls_to("chat.update")
    assert update_call.args["ts"] == parent.ts
    assert env.row("parent:edit").ts == parent.ts
    assert env.row("parent:reply").ts == reply.ts


async def test_children_keep_waiting_while_the_parent_is_not_due(env: Env) -> None:
    parent = env.enqueue("parent")
    outbox.reschedule(env.db, parent.id, error="ratelimited", at=T0 + timedelta(minutes=10))
    env.enqueue("parent:edit", action=OutboxAction.UPDATE, thread_key="parent")
    env.enqueue("parent:reply", thread_key="parent")

    for _ in range(9):
        report = await env.drain()
        assert report.waiting == 2
        env.clock.advance(timedelta(minutes=1))

    assert env.slack.calls == []
    env.clock.advance(timedelta(minutes=1))
    await env.drain()
    assert [env.row(k).status for k in ("parent", "parent:edit", "parent:reply")] == [
        OutboxStatus.SENT
    ] * 3


# --- transient errors: rescheduled, never dropped ---------------------------------------


async def test_rate_limit_reschedules_at_retry_after(env: Env) -> None:
    env.slack.fail_next("chat.postMessage", Fault(status=429, retry_after=30))
    env.enqueue("k")

    report = await env.drain()

    row = env.row("k")
    assert report.retried == 1
    assert (row.status, row.last_error) == (OutboxStatus.PENDING, "ratelimited")
    assert row.next_attempt_at == T0 + timedelta(seconds=30)

    env.clock.advance(timedelta(seconds=29))
    await env.drain()
    assert env.posts() == 1  # not yet: Slack asked for 30 s

    env.clock.advance(timedelta(seconds=1))
    await env.drain()
    assert env.posts() == 2
    assert env.row("k").status is OutboxStatus.SENT
    assert len(env.with_key("k")) == 1


async def test_rate_limit_without_retry_after_waits_a_second(env: Env) -> None:
    env.slack.fail_next("chat.postMessage", Fault(status=429))
    env.enqueue("k")

    await env.drain()

    assert env.row("k").next_attempt_at == T0 + timedelta(seconds=1)


async def test_server_error_backs_off_then_delivers(env: Env) -> None:
    env.slack.fail_next("chat.postMessage", Fault(status=500))
    env.enqueue("k")

    await env.drain()

    row = env.row("k")
    assert row.status is OutboxStatus.PENDING
    assert row.last_error is not None and row.last_error.startswith("500")
    assert row.next_attempt_at == T0 + backoff(1)
    assert backoff(1) > timedelta(0)

    env.clock.advance(backoff(1))
    await env.drain()

    assert env.row("k").status is OutboxStatus.SENT
    assert len(env.with_key("k")) == 1
    [lookup] = env.slack.calls_to("conversations.history")  # a retry looks before posting
    assert lookup.args["channel"] == CHANNEL
    assert lookup.args["include_all_metadata"] in ("1", "true", True)


async def test_backoff_grows_with_each_failure_and_is_capped(env: Env) -> None:
    env.slack.fail_next("chat.postMessage", Fault(status=503), times=8)
    env.slack.fail_next("conversations.history", Fault(status=503), times=8)
    env.enqueue("k")
    waits = []

    for _ in range(8):
        await env.drain()
        row = env.row("k")
        waits.append(row.next_attempt_at - env.clock())
        env.clock.advance(row.next_attempt_at - env.clock())

    assert waits == sorted(waits)
    assert waits[0] < waits[3]
    assert max(waits) == waits[-1] <= timedelta(minutes=5)
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (5, 10, 20)]


async def test_network_error_reschedules_and_other_workspaces_still_get_theirs(
    env: Env,
) -> None:
    env.clients["TDOWN"] = slack_client(closed_port_origin())
    env.enqueue("down", workspace="TDOWN")
    env.enqueue("up")

    report = await env.drain()

    down = env.row("down")
    assert (report.sent, report.retried) == (1, 1)
    assert down.status is OutboxStatus.PENDING
    assert down.last_error is not None and down.last_error.startswith("network:")
    assert down.next_attempt_at == T0 + backoff(1)
    assert len(env.with_key("up")) == 1

    env.clients["TDOWN"] = env.clients[WS]  # the network is back
    env.clock.advance(backoff(1))
    await env.drain()

    assert env.row("down").status is OutboxStatus.SENT
    assert len(env.with_key("down")) == 1


def _error_page_app(status: int, body: str, media_type: str) -> Starlette:
    """What a proxy in front of Slack answers when Slack is down: not Slack's JSON."""

    async def answer(request: Request) -> Response:
        return Response(body, status_code=status, media_type=media_type)

    return Starlette(routes=[Route("/api/{method}", answer, methods=["GET", "POST"])])


@pytest.mark.parametrize(
    ("status", "body", "media_type"),
    [
        (502, "Bad Gateway", "text/plain"),
        (503, "<html><body>Service Unavailable</body></html>", "text/html"),
        (500, "{not json", "application/json"),
    ],
)
async def test_an_error_page_instead_of_json_is_retried_without_stopping_the_drain(
    env: Env, status: int, body: str, media_type: str
) -> None:
    env.enqueue("behind-proxy", workspace="TPROXY")
    env.enqueue("healthy")

    env.plug.apps["/proxy"] = _error_page_app(status, body, media_type)
    env.clients["TPROXY"] = slack_client(env.origin + "/proxy")
    report = await env.drain()

    row = env.row("behind-proxy")
    assert row.status is OutboxStatus.PENDING
    assert row.last_error is not None and row.last_error.startswith(str(status))
    assert row.next_attempt_at == T0 + backoff(1)
    assert (report.sent, report.retried) == (1, 1)
    assert len(env.with_key("healthy")) == 1


# --- permanent errors: failed for good, shown to admins --------------------------------


@pytest.mark.parametrize("error", PERMANENT)
async def test_a_permanent_error_fails_the_row_without_retrying(env: Env, error: str) -> None:
    if error in CHANNEL_LEVEL:
        env.slack.channel_errors[CHANNEL] = error
    else:
        env.slack.fail_next("chat.postMessage", Fault(status=200, error=error))
    env.enqueue("doomed", budget_id=7)
    env.enqueue("doomed:edit", action=OutboxAction.UPDATE, thread_key="doomed", budget_id=7)
    env.enqueue("doomed:reply", thread_key="doomed", budget_id=7)

    report = await env.drain()

    row = env.row("doomed")
    assert (row.status, row.last_error) == (OutboxStatus.FAILED, error)
    assert report.failed == 3
    for key in ("doomed:edit", "doomed:reply"):
        child = env.row(key)
        assert (child.status, child.last_error) == (OutboxStatus.FAILED, error)
    assert env.posts() == 1
    assert env.slack.calls_to("chat.update") == []

    for _ in range(3):
        env.clock.advance(timedelta(hours=1))
        assert await env.drain() == DrainReport()
    assert env.posts() == 1  # no retries
    assert env.slack.all_messages() == []
    assert outbox.delivery_problems(env.db, WS) == {7: error}


async def test_delivery_problems_name_the_error_per_budget(env: Env) -> None:
    env.slack.channel_errors["CARCHIVED"] = "is_archived"
    env.slack.channel_errors["CGONE"] = "channel_not_found"
    env.enqueue("a", channel="CARCHIVED", budget_id=1)
    env.enqueue("b", channel="CGONE", budget_id=2)
    env.enqueue("c", channel=CHANNEL, budget_id=3)
    env.enqueue("d", channel="CGONE", budget_id=None)

    await env.drain()

    assert outbox.delivery_problems(env.db, WS) == {
        1: "is_archived",
        2: "channel_not_found",
        None: "channel_not_found",
    }
    assert outbox.delivery_problems(env.db, "TOTHER") == {}


async def test_an_update_of_a_deleted_message_fails_instead_of_retrying_forever(
    env: Env,
) -> None:
    env.enqueue("parent")
    await env.drain()
    env.slack.messages[CHANNEL].clear()  # someone deleted the alert in Slack
    env.enqueue("parent:edit", action=OutboxAction.UPDATE, thread_key="parent")

    await env.drain()

    row = env.row("parent:edit")
    assert (row.status, row.last_error) == (OutboxStatus.FAILED, "message_not_found")


async def test_a_reply_whose_parent_was_never_enqueued_fails(env: Env) -> None:
    env.enqueue("orphan", thread_key="no-such-parent")

    report = await env.drain()

    assert report.failed == 1
    assert env.row("orphan").status is OutboxStatus.FAILED
    assert env.slack.calls == []


# --- crash safety: never twice --------------------------------------------------------


async def test_a_post_whose_answer_was_lost_is_found_and_not_posted_again(env: Env) -> None:
    env.slack.fail_next("chat.postMessage", Fault(after_effect=True))
    env.enqueue("k")

    await env.drain()

    [posted] = env.with_key("k")
    assert env.row("k").status is OutboxStatus.PENDING  # the bot saw a 500

    env.clock.advance(backoff(1))
    report = await env.drain()

    assert report.sent == 1
    assert env.posts() == 1
    assert env.with_key("k") == [posted]
    assert env.row("k").ts == posted.ts


async def _crash_after_posting(env: Env, item: OutboxItem, thread_ts: str | None = None) -> str:
    """What a process that died right after Slack answered leaves behind."""
    assert outbox.claim(env.db, item, lease_until=env.clock())
    response = await env.clients[WS].chat_postMessage(
        channel=item.channel_id,
        thread_ts=thread_ts,
        metadata=metadata_for(item.dedup_key),
        text=item.payload["text"],
    )
    return str(response["ts"])


async def test_a_crash_between_post_and_mark_does_not_post_twice(env: Env) -> None:
    env.slack.messages[CHANNEL].append(
        Message(CHANNEL, "1699999999.000001", "someone else's", [], metadata_for("other"), None)
    )
    item = env.enqueue("k")
    ts = await _crash_after_posting(env, item)
    assert env.row("k").attempts == 1

    await env.drain()

    assert env.posts() == 1
    assert [m.ts for m in env.with_key("k")] == [ts]
    row = env.row("k")
    assert (row.status, row.ts) == (OutboxStatus.SENT, ts)


async def test_a_crash_between_reply_and_mark_does_not_reply_twice(env: Env) -> None:
    env.enqueue("parent")
    await env.drain()
    parent_ts = env.row("parent").ts
    env.slack.messages[CHANNEL].append(
        Message(CHANNEL, "1799999999.000001", "a person", [], None, parent_ts)
    )
    item = env.enqueue("parent:reply", thread_key="parent")
    ts = await _crash_after_posting(env, item, thread_ts=parent_ts)

    await env.drain()

    assert env.posts() == 2  # the parent, and the reply made before the "crash"
    assert [m.ts for m in env.with_key("parent:reply")] == [ts]
    assert env.row("parent:reply").ts == ts
    [lookup] = env.slack.calls_to("conversations.replies")
    assert lookup.args["ts"] == parent_ts


async def test_a_crash_before_slack_got_the_post_still_delivers_it(env: Env) -> None:
    """attempts=1 but nothing in Slack: the lookup must not mistake another key for it."""
    env.enqueue("before")
    await env.drain()
    item = env.enqueue("k")
    assert outbox.claim(env.db, item, lease_until=env.clock())

    await env.drain()

    assert len(env.with_key("k")) == 1
    assert len(env.with_key("before")) == 1
    assert env.row("k").status is OutboxStatus.SENT


async def test_a_drain_that_dies_holding_a_row_is_resumed_after_its_lease(env: Env) -> None:
    item = env.enqueue("k")
    assert outbox.claim(env.db, item, lease_until=T0 + LEASE)
    await env.clients[WS].chat_postMessage(
        channel=CHANNEL, text="x", metadata=metadata_for("k")
    )  # ...and the process dies here

    await env.drain()
    assert env.slack.calls_to("conversations.history") == []  # still held

    env.clock.advance(LEASE)
    await env.drain()

    assert env.posts() == 1
    assert len(env.with_key("k")) == 1
    assert env.row("k").status is OutboxStatus.SENT


class _SlowPostClient(AsyncWebClient):
    """A client whose chat.postMessage reaches Slack only when the test says so."""

    def __init__(self, gate: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.waiting = asyncio.Event()

    async def chat_postMessage(self, **kwargs: Any) -> AsyncSlackResponse:
        self.waiting.set()
        await self.gate.wait()
        return await super().chat_postMessage(**kwargs)


async def test_two_drains_racing_post_each_row_once(env: Env) -> None:
    env.enqueue("k")
    gate = asyncio.Event()
    slow = _SlowPostClient(
        gate, token="xoxb-test", base_url=env.origin + "/api/", retry_handlers=[]
    )

    async def slow_client(workspace_id: str) -> AsyncWebClient:
        return slow

    first = asyncio.create_task(drain(env.db, slow_client, env.clock))
    await asyncio.wait_for(slow.waiting.wait(), timeout=5)  # the first drain is mid-post
    second = await env.drain()
    gate.set()
    await asyncio.wait_for(first, timeout=5)

    assert second.sent == 0
    assert len(env.with_key("k")) == 1
    assert env.row("k").status is OutboxStatus.SENT


# --- the long outage -------------------------------------------------------------------


@pytest.mark.parametrize("posts_land", [False, True], ids=["posts-lost", "answers-lost"])
async def test_slack_down_for_an_hour_delivers_everything_exactly_once(
    env: Env, posts_land: bool
) -> None:
    """Every call answers 500 for 60 minutes of drains a minute apart; then Slack is back.

    With `answers-lost`, each post reaches Slack but the answer is a 500, the crash
    window in its worst form.
    """
    outage(env.slack, posts_land=posts_land)
    env.enqueue("a")
    env.enqueue("a:edit", action=OutboxAction.UPDATE, thread_key="a", text="a edited")
    env.enqueue("a:reply", thread_key="a")
    env.enqueue("b", channel="C2")
    env.enqueue("c")

    for _ in range(60):
        report = await env.drain()
        assert report.sent == report.failed == 0
        env.clock.advance(timedelta(minutes=1))

    attempts = {k: env.row(k).attempts for k in ("a", "b", "c")}
    assert all(2 <= n <= 20 for n in attempts.values()), attempts  # backed off, not hammered
    env.slack.faults.clear()
    for _ in range(6):  # the longest backoff is 5 minutes
        await env.drain()
        env.clock.advance(timedelta(minutes=1))

    rows = [env.row(k) for k in ("a", "a:edit", "a:reply", "b", "c")]
    assert [r.status for r in rows] == [OutboxStatus.SENT] * 5
    for key in ("a", "a:reply", "b", "c"):
        assert len(env.with_key(key)) == 1, key
    [a] = env.with_key("a")
    assert (a.text, a.edits) == ("a edited", 1)
    assert [m.ts for m in env.slack.replies(CHANNEL, a.ts)] == [env.row("a:reply").ts]
    assert len(env.slack.all_messages()) == 4


# --- nothing is lost: failures are sent once the cause is fixed --------------------------


async def test_messages_refused_by_a_channel_are_sent_once_a_later_one_gets_through(
    env: Env,
) -> None:
    env.slack.channel_errors[CHANNEL] = "not_in_channel"
    env.enqueue("before-invite")
    await env.drain()
    assert env.row("before-invite").status is OutboxStatus.FAILED
    del env.slack.channel_errors[CHANNEL]  # someone invited the bot
    env.enqueue("after-invite")
    report = await env.drain()
    assert (report.sent, report.requeued) == (1, 1)
    await env.drain()
    assert env.row("before-invite").status is OutboxStatus.SENT
    assert len(env.with_key("before-invite")) == 1
    assert outbox.delivery_problems(env.db, WS) == {}


async def test_messages_that_stopped_mattering_are_dropped_not_sent_late(env: Env) -> None:
    """Finding 7: a channel the bot was out of for a week does not get last week's alerts
    once a later post gets through; what expired is dropped (and kept, as dropped)."""
    env.slack.channel_errors[CHANNEL] = "not_in_channel"
    env.enqueue("last-week", expires_at=env.clock() + timedelta(days=1))
    env.enqueue("its-reply", thread_key="last-week", expires_at=env.clock() + timedelta(days=1))
    env.enqueue("still-current", expires_at=env.clock() + timedelta(days=30))
    await env.drain()
    assert env.row("last-week").status is OutboxStatus.FAILED
    env.clock.advance(timedelta(days=7))
    del env.slack.channel_errors[CHANNEL]  # someone invited the bot
    env.enqueue("today", expires_at=env.clock() + timedelta(hours=1))
    report = await env.drain()
    await env.drain()
    assert report.dropped == 2
    assert env.row("last-week").status is OutboxStatus.DROPPED
    assert env.row("its-reply").status is OutboxStatus.DROPPED
    assert env.row("still-current").status is OutboxStatus.SENT
    assert env.with_key("last-week") == [] and env.with_key("its-reply") == []
    # Two days after their expiry, sent and dropped rows are pruned: the outbox stays small.
    env.clock.advance(timedelta(days=31))
    await env.drain()
    assert env.db["outbox"].count == 0


async def test_a_fixed_token_resends_auth_failures_everywhere_but_not_broken_messages(
    env: Env,
) -> None:
    env.slack.fail_next("chat.postMessage", Fault(status=200, error="invalid_auth"))
    env.enqueue("elsewhere", channel="C_OTHER")
    await env.drain()
    env.slack.fail_next("chat.postMessage", Fault(status=200, error="invalid_blocks"))
    env.enqueue("broken")
    await env.drain()
    env.enqueue("fine")
    await env.drain()
    await env.drain()
    assert env.row("elsewhere").status is OutboxStatus.SENT
    assert (env.row("broken").status, env.row("broken").last_error) == (
        OutboxStatus.FAILED,
        "invalid_blocks",
    )


async def test_the_lookup_before_a_repost_reads_past_the_first_page(env: Env) -> None:
    item = env.enqueue("busy")
    ts = await _crash_after_posting(env, item)
    for n in range(250):  # a busy channel since: the post is on the second page now
        await env.clients[WS].chat_postMessage(channel=CHANNEL, text=f"chatter {n}")
    env.clock.advance(LEASE + timedelta(seconds=1))
    await env.drain()
    assert env.row("busy").ts == ts
    assert len(env.with_key("busy")) == 1
