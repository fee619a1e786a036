"""The fake Slack Web API answers like Slack, over real loopback HTTP, through slack_sdk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.asgi_server import serve_app
from bot.sim.slack_api import FakeSlack, Fault, create_app

# One loopback server for the module (uvicorn takes ~0.2 s to stop); each test plugs a
# fresh fake into it.
pytestmark = pytest.mark.asyncio(loop_scope="module")

METADATA = {"event_type": "scenario_budget_bot", "event_payload": {"dedup_key": "k1"}}


@dataclass
class Served:
    slack: FakeSlack
    origin: str
    client: AsyncWebClient


class Plug:
    """Forwards to the app of the current test."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server() -> AsyncIterator[tuple[Plug, str]]:
    plug = Plug()
    async with serve_app(plug) as origin:
        yield plug, origin


@pytest_asyncio.fixture(loop_scope="module")
async def served(server: tuple[Plug, str]) -> AsyncIterator[Served]:
    plug, origin = server
    slack = FakeSlack(users={"U1": {"name": "ada", "profile": {"email": "ada@example.com"}}})
    slack.origin = origin
    plug.app = create_app(slack)
    client = AsyncWebClient(token="xoxb-test", base_url=origin + "/api/", retry_handlers=[])
    yield Served(slack, origin, client)
    plug.app = None


async def test_post_message_records_the_message_with_its_metadata(served: Served) -> None:
    response = await served.client.chat_postMessage(
        channel="C1", text="hello", blocks=[{"type": "divider"}], metadata=METADATA
    )

    assert response["ok"] is True
    assert response["channel"] == "C1"
    [message] = served.slack.top_level("C1")
    assert (message.ts, message.text, message.blocks) == (
        response["ts"],
        "hello",
        [{"type": "divider"}],
    )
    assert message.metadata == METADATA
    [call] = served.slack.calls_to("chat.postMessage")
    assert call.token == "xoxb-test"
    assert call.args["channel"] == "C1"


async def test_each_post_gets_a_new_increasing_ts(served: Served) -> None:
    first = await served.client.chat_postMessage(channel="C1", text="one")
    second = await served.client.chat_postMessage(channel="C1", text="two")

    assert float(second["ts"]) > float(first["ts"])


async def test_update_edits_the_message_in_place(served: Served) -> None:
    posted = await served.client.chat_postMessage(channel="C1", text="before", metadata=METADATA)

    await served.client.chat_update(channel="C1", ts=posted["ts"], text="after")

    [message] = served.slack.top_level("C1")
    assert (message.text, message.edits) == ("after", 1)
    assert message.metadata == METADATA  # untouched when the update does not carry any


async def test_update_of_an_unknown_message_is_message_not_found(served: Served) -> None:
    with pytest.raises(SlackApiError) as caught:
        await served.client.chat_update(channel="C1", ts="1.000001", text="x")

    assert caught.value.response["error"] == "message_not_found"


async def test_history_shows_metadata_only_when_asked(served: Served) -> None:
    await served.client.chat_postMessage(channel="C1", text="first", metadata=METADATA)
    await served.client.chat_postMessage(channel="C1", text="second")

    plain = await served.client.conversations_history(channel="C1")
    with_metadata = await served.client.conversations_history(
        channel="C1", include_all_metadata=True
    )

    assert [m["text"] for m in plain["messages"]] == ["second", "first"]  # newest first
    assert all("metadata" not in m for m in plain["messages"])
    assert with_metadata["messages"][1]["metadata"] == METADATA
    assert "metadata" not in with_metadata["messages"][0]


async def test_history_leaves_thread_replies_out_and_honours_limit(served: Served) -> None:
    parent = await served.client.chat_postMessage(channel="C1", text="parent")
    await served.client.chat_postMessage(channel="C1", text="reply", thread_ts=parent["ts"])
    await served.client.chat_postMessage(channel="C1", text="later")

    everything = await served.client.conversations_history(channel="C1")
    one = await served.client.conversations_history(channel="C1", limit=1)

    assert [m["text"] for m in everything["messages"]] == ["later", "parent"]
    assert everything["has_more"] is False
    assert [m["text"] for m in one["messages"]] == ["later"]
    assert one["has_more"] is True


async def test_replies_return_the_parent_then_its_thread(served: Served) -> None:
    parent = await served.client.chat_postMessage(channel="C1", text="parent")
    await served.client.chat_postMessage(
        channel="C1", text="reply", thread_ts=parent["ts"], metadata=METADATA
    )
    await served.client.chat_postMessage(channel="C1", text="elsewhere")

    plain = await served.client.conversations_replies(channel="C1", ts=parent["ts"])
    with_metadata = await served.client.conversations_replies(
        channel="C1", ts=parent["ts"], include_all_metadata=True
    )

    assert [m["text"] for m in plain["messages"]] == ["parent", "reply"]
    assert plain["messages"][1]["thread_ts"] == parent["ts"]
    assert "metadata" not in plain["messages"][1]
    assert with_metadata["messages"][1]["metadata"] == METADATA


async def test_channel_errors_apply_to_posts_and_reads(served: Served) -> None:
    served.slack.channel_errors["CGONE"] = "channel_not_found"

    for call in (
        served.client.chat_postMessage(channel="CGONE", text="x"),
        served.client.conversations_history(channel="CGONE"),
    ):
        with pytest.raises(SlackApiError) as caught:
            await call
        assert caught.value.response["error"] == "channel_not_found"
    assert served.slack.all_messages() == []


async def test_users_info_and_auth_test(served: Served) -> None:
    user = await served.client.users_info(user="U1")
    auth = await served.client.auth_test()

    assert user["user"]["id"] == "U1"
    assert user["user"]["profile"]["email"] == "ada@example.com"
    assert user["user"]["team_id"] == served.slack.team_id
    assert (auth["team_id"], auth["user_id"]) == (served.slack.team_id, served.slack.bot_user_id)
    with pytest.raises(SlackApiError) as caught:
        await served.client.users_info(user="UNOBODY")
    assert caught.value.response["error"] == "user_not_found"


async def test_files_upload_v2_delivers_the_bytes_intact(served: Served) -> None:
    content = bytes(range(256)) * 40  # binary, with NUL and non-UTF-8 bytes

    response = await served.client.files_upload_v2(
        channel="C1", content=content, filename="chart.png", title="Last 14 days"
    )

    [file_id] = served.slack.uploads
    assert served.slack.uploads[file_id] == content
    assert response["files"][0]["id"] == file_id
    assert served.slack.files[file_id]["channel"] == "C1"
    assert served.slack.files[file_id]["title"] == "Last 14 days"
    assert int(served.slack.files[file_id]["length"]) == len(content)


async def test_complete_upload_refuses_a_file_never_uploaded(served: Served) -> None:
    step1 = await served.client.files_getUploadURLExternal(filename="x.png", length=3)

    with pytest.raises(SlackApiError) as caught:
        await served.client.files_completeUploadExternal(
            files=[{"id": step1["file_id"], "title": "x"}], channel_id="C1"
        )

    assert caught.value.response["error"] == "file_not_found"


async def test_response_url_sink_records_the_json(served: Served) -> None:
    body = {"response_type": "ephemeral", "text": "done"}

    async with (
        aiohttp.ClientSession() as session,
        session.post(served.origin + "/response/abc", json=body) as response,
    ):
        assert response.status == 200

    assert served.slack.responses == [("abc", body)]


async def test_a_call_without_a_token_is_not_authed(served: Served) -> None:
    anonymous = AsyncWebClient(base_url=served.origin + "/api/", retry_handlers=[])

    with pytest.raises(SlackApiError) as caught:
        await anonymous.chat_postMessage(channel="C1", text="x")

    assert caught.value.response["error"] == "not_authed"
    assert served.slack.all_messages() == []


async def test_faults_are_consumed_in_order(served: Served) -> None:
    served.slack.fail_next("chat.postMessage", Fault(status=429, retry_after=7))
    served.slack.fail_next("chat.postMessage", Fault(status=200, error="not_in_channel"))

    with pytest.raises(SlackApiError) as limited:
        await served.client.chat_postMessage(channel="C1", text="x")
    with pytest.raises(SlackApiError) as refused:
        await served.client.chat_postMessage(channel="C1", text="x")
    ok = await served.client.chat_postMessage(channel="C1", text="x")

    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"
    assert refused.value.response.status_code == 200
    assert refused.value.response["error"] == "not_in_channel"
    assert ok["ok"] is True
    assert len(served.slack.top_level("C1")) == 1


async def test_a_server_error_fault_changes_nothing(served: Served) -> None:
    served.slack.fail_next("chat.postMessage", Fault(status=500))

    with pytest.raises(SlackApiError) as caught:
        await served.client.chat_postMessage(channel="C1", text="x")

    assert caught.value.response.status_code == 500
    assert served.slack.all_messages() == []


async def test_an_after_effect_fault_performs_the_call_then_answers_500(served: Served) -> None:
    served.slack.fail_next("chat.postMessage", Fault(after_effect=True))

    with pytest.raises(SlackApiError) as caught:
        await served.client.chat_postMessage(channel="C1", text="x", metadata=METADATA)

    assert caught.value.response.status_code == 500
    [message] = served.slack.top_level("C1")
    assert message.metadata == METADATA
