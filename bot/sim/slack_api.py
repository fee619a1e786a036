"""A local stand-in for Slack's Web API that records every call.

The demo posts through it so that a newcomer sees real messages without a workspace, and
the tests point `SLACK_API_URL` at it. It answers like Slack (`ok`, `ts`, `error`), keeps
messages per channel with their metadata and threads, and can be told to fail: rate
limits with Retry-After, server errors, permanent errors per channel, or "post, then lose
the answer" (the crash window between posting and recording it).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

Json = dict[str, Any]


@dataclass
class RecordedCall:
    method: str
    args: Json
    token: str | None


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[Json]
    metadata: Json | None
    thread_ts: str | None
    edits: int = 0
    files: list[Json] = field(default_factory=list)

    def as_json(self, *, with_metadata: bool) -> Json:
        data: Json = {"type": "message", "ts": self.ts, "text": self.text, "blocks": self.blocks}
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            data["metadata"] = self.metadata
        if self.files:
            data["files"] = self.files
        return data


@dataclass
class Fault:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    # Carry out the call, then answer 500: the caller cannot know it succeeded.
    after_effect: bool = False
    # Answer this many seconds late; with no error or status given, answer normally then.
    slow: float = 0.0


@dataclass
class FakeWorkspace:
    """A workspace the fake can install the app into (multi-workspace mode)."""

    team_id: str
    name: str
    installer: str = "U_INSTALLER"
    # Seconds a bot token lives when token rotation is on; None: tokens never expire.
    token_lifetime: int | None = None
    tokens_issued: int = 0


@dataclass
class FakeSlack:
    """State of the fake workspace (or workspaces); tests read it and set faults on it."""

    team_id: str = "T0DEMO"
    bot_user_id: str = "UBOT"
    users: dict[str, Json] = field(default_factory=dict)
    calls: list[RecordedCall] = field(default_factory=list)
    messages: dict[str, list[Message]] = field(default_factory=lambda: defaultdict(list))
    channel_errors: dict[str, str] = field(default_factory=dict)
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    uploads: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, Json] = field(default_factory=dict)
    responses: list[tuple[str, Json]] = field(default_factory=list)
    views: list[Json] = field(default_factory=list)
    # The hash of each view as views.update last left it: an update sent with another is
    # refused (`hash_conflict`), as Slack does for a view changed since its sender saw it.
    view_hashes: dict[str, str] = field(default_factory=dict)
    origin: str = ""  # set once served, for upload URLs
    # Multi-workspace mode: the workspaces the app can be installed into, the OAuth app's
    # credentials, the live tokens (token → team) and refresh tokens, and the codes issued.
    workspaces: dict[str, FakeWorkspace] = field(default_factory=dict)
    client_id: str = "fake-client-id"
    client_secret: str = "fake-client-secret"
    redirect_url: str = ""  # where the consent page sends installers back
    tokens: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    channel_teams: dict[str, str] = field(default_factory=dict)  # channel → its workspace
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, method: str, fault: Fault, times: int = 1) -> None:
        self.faults[method].extend([fault] * times)

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    def top_level(self, channel: str) -> list[Message]:
        return [m for m in self.messages[channel] if m.thread_ts is None]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self.messages[channel] if m.thread_ts == thread_ts]

    def all_messages(self) -> list[Message]:
        return [m for channel in self.messages.values() for m in channel]

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def add_workspace(self, team_id: str, name: str, **options: Any) -> FakeWorkspace:
        workspace = FakeWorkspace(team_id, name, **options)
        self.workspaces[team_id] = workspace
        return workspace

    def issue_code(self, team_id: str) -> str:
        """What the consent page gives the installer of `team_id` to bring back."""
        code = f"code-{team_id}-{len(self.codes) + 1}"
        self.codes[code] = team_id
        return code

    def revoke(self, team_id: str) -> None:
        """The app is uninstalled: every token of the workspace stops working."""
        for table in (self.tokens, self.refresh_tokens):
            for token in [t for t, team in table.items() if team == team_id]:
                del table[token]

    def team_of(self, token: str | None) -> str | None:
        return self.tokens.get(token or "")

    def _new_tokens(self, workspace: FakeWorkspace) -> Json:
        workspace.tokens_issued += 1
        team, n = workspace.team_id, workspace.tokens_issued
        rotating = workspace.token_lifetime is not None
        if rotating:
            # The token it replaces is as good as expired: using it fails, as it would
            # have a few minutes later.
            for old in [t for t, owner in self.tokens.items() if owner == team]:
                del self.tokens[old]
        token = f"xoxe.xoxb-1-{team}-{n}" if rotating else f"xoxb-{team}-{n}"
        self.tokens[token] = team
        answer: Json = {"access_token": token, "token_type": "bot"}
        if rotating:
            refresh = f"xoxe-1-{team}-{n}"
            self.refresh_tokens[refresh] = team
            answer.update(refresh_token=refresh, expires_in=workspace.token_lifetime)
        return answer


def create_app(slack: FakeSlack) -> Starlette:
    async def api(request: Request) -> Response:
        method = request.path_params["method"]
        args = await _read_args(request)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        slack.calls.append(RecordedCall(method, args, token))
        if method == "oauth.v2.access":  # authenticated by the app's client ID and secret
            return JSONResponse(_oauth_access(slack, args, auth))
        if not token:
            return JSONResponse({"ok": False, "error": "not_authed"})
        if slack.workspaces and slack.team_of(token) is None:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        channel = args.get("channel") or args.get("channel_id")
        owner = slack.channel_teams.get(str(channel)) if channel else None
        if owner is not None and owner != slack.team_of(token):
            # Another workspace's channel: to this token, it does not exist.
            return JSONResponse({"ok": False, "error": "channel_not_found"})
        fault = slack.faults[method].popleft() if slack.faults[method] else None
        if fault and fault.slow:
            await asyncio.sleep(fault.slow)
            if fault.error is None and fault.status == 200:
                fault = None
        if fault and not fault.after_effect:
            return _fault_response(fault)
        handler = _HANDLERS.get(method)
        if method == "auth.test":
            body = _auth_test(slack, args, token)
        elif method == "users.info":
            # A member of the workspace the token is for (Slack says which team a user is of).
            body = _users_info(slack, args, slack.team_of(token) or slack.team_id)
        else:
            body = handler(slack, args) if handler else {"ok": True}
        if fault:
            return _fault_response(fault)
        return JSONResponse(body)

    async def upload(request: Request) -> Response:
        slack.uploads[request.path_params["file_id"]] = await request.body()
        return Response("OK - uploaded", media_type="text/plain")

    async def response_url(request: Request) -> Response:
        slack.responses.append((request.path_params["hook"], json.loads(await request.body())))
        return Response("ok", media_type="text/plain")

    async def authorize(request: Request) -> Response:
        """Slack's consent page, answered "Allow" at once for the workspace in `team` (or
        the only one): back to the bot with a code and the state it sent."""
        query = request.query_params
        team = query.get("team") or next(iter(slack.workspaces), "")
        back = query.get("redirect_uri") or slack.redirect_url
        if query.get("client_id") != slack.client_id or team not in slack.workspaces or not back:
            return Response("bad authorize request", status_code=400, media_type="text/plain")
        answer = {"code": slack.issue_code(team), "state": query.get("state", "")}
        return RedirectResponse(f"{back}?{urlencode(answer)}", status_code=302)

    return Starlette(
        routes=[
            Route("/oauth/v2/authorize", authorize, methods=["GET"]),
            Route("/api/{method}", api, methods=["GET", "POST"]),
            Route("/upload/{file_id}", upload, methods=["POST"]),
            Route("/response/{hook}", response_url, methods=["POST"]),
        ]
    )


async def _read_args(request: Request) -> Json:
    args: Json = dict(request.query_params)
    raw = await request.body()
    if raw and request.headers.get("content-type", "").startswith("application/json"):
        args.update(json.loads(raw))
    elif raw:
        args.update(parse_qsl(raw.decode(), keep_blank_values=True))
    for name in ("blocks", "metadata", "files", "view", "attachments"):
        if isinstance(args.get(name), str):
            args[name] = json.loads(args[name])
    return args


def _fault_response(fault: Fault) -> Response:
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
    status = fault.status if fault.status != 200 or fault.error else 500
    body = {"ok": False, "error": fault.error or ("ratelimited" if status == 429 else "fatal")}
    return JSONResponse(body, status_code=status, headers=headers)


def _oauth_access(slack: FakeSlack, args: Json, auth: str) -> Json:
    """oauth.v2.access: a code for a first install, or a refresh token for a new token."""
    client_id, client_secret = args.get("client_id"), args.get("client_secret")
    if auth.startswith("Basic "):
        decoded = base64.b64decode(auth.removeprefix("Basic ")).decode()
        client_id, _, client_secret = decoded.partition(":")
    if (client_id, client_secret) != (slack.client_id, slack.client_secret):
        return {"ok": False, "error": "invalid_client_id"}
    if args.get("grant_type") == "refresh_token":
        team = slack.refresh_tokens.pop(str(args.get("refresh_token")), None)
        if team is None:
            return {"ok": False, "error": "invalid_refresh_token"}
        return {"ok": True, "team": {"id": team}, **slack._new_tokens(slack.workspaces[team])}
    team = slack.codes.pop(str(args.get("code")), None)  # a code is good once
    if team is None:
        return {"ok": False, "error": "invalid_code"}
    workspace = slack.workspaces[team]
    return {
        "ok": True,
        "app_id": "A_BOT",
        "scope": "commands,chat:write",
        "bot_user_id": f"UBOT_{team}",
        "team": {"id": team, "name": workspace.name},
        "enterprise": None,
        "is_enterprise_install": False,
        "authed_user": {"id": workspace.installer},
        **slack._new_tokens(workspace),
    }


def _channel_error(slack: FakeSlack, channel: str | None) -> Json | None:
    if not channel:
        return {"ok": False, "error": "channel_not_found"}
    error = slack.channel_errors.get(channel)
    return {"ok": False, "error": error} if error else None


def _conversation_info(slack: FakeSlack, args: Json) -> Json:
    """What Slack tells the bot of a channel: the channel errors it would meet posting."""
    channel = args.get("channel")
    error = slack.channel_errors.get(str(channel)) if channel else "channel_not_found"
    if error == "channel_not_found":
        return {"ok": False, "error": error}
    return {
        "ok": True,
        "channel": {
            "id": channel,
            "is_channel": True,
            "is_archived": error == "is_archived",
            "is_member": error != "not_in_channel",
        },
    }


def _post_message(slack: FakeSlack, args: Json) -> Json:
    channel = args.get("channel")
    if error := _channel_error(slack, channel):
        return error
    message = Message(
        channel=channel,
        ts=slack._next_ts(),
        text=args.get("text") or "",
        blocks=args.get("blocks") or [],
        metadata=args.get("metadata"),
        thread_ts=args.get("thread_ts"),
    )
    slack.messages[channel].append(message)
    return {
        "ok": True,
        "channel": channel,
        "ts": message.ts,
        "message": message.as_json(with_metadata=True),
    }


def _update(slack: FakeSlack, args: Json) -> Json:
    channel = args.get("channel")
    if error := _channel_error(slack, channel):
        return error
    for message in slack.messages[channel]:
        if message.ts == args.get("ts"):
            message.text = args.get("text") or message.text
            message.blocks = args.get("blocks") or message.blocks
            message.metadata = args.get("metadata") or message.metadata
            message.edits += 1
            return {"ok": True, "channel": channel, "ts": message.ts}
    return {"ok": False, "error": "message_not_found"}


def _history(slack: FakeSlack, args: Json) -> Json:
    channel = args.get("channel")
    if error := _channel_error(slack, channel):
        return error
    with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
    limit = int(args.get("limit") or 100)
    start = int(args.get("cursor") or 0)
    newest_first = list(reversed(slack.top_level(channel)))
    page = newest_first[start : start + limit]
    more = start + limit < len(newest_first)
    return {
        "ok": True,
        "messages": [m.as_json(with_metadata=with_metadata) for m in page],
        "has_more": more,
        # Like Slack: an opaque cursor for the next page, empty on the last one.
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def _replies(slack: FakeSlack, args: Json) -> Json:
    channel = args.get("channel")
    if error := _channel_error(slack, channel):
        return error
    parent = args.get("ts")
    with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
    thread = [m for m in slack.messages[channel] if m.ts == parent]
    thread += slack.replies(channel, parent)
    return {"ok": True, "messages": [m.as_json(with_metadata=with_metadata) for m in thread]}


def _users_info(slack: FakeSlack, args: Json, team_id: str) -> Json:
    user = slack.users.get(args.get("user", ""))
    if user is None:
        return {"ok": False, "error": "user_not_found"}
    return {"ok": True, "user": {"id": args["user"], "team_id": team_id, **user}}


def _auth_test(slack: FakeSlack, args: Json, token: str | None = None) -> Json:
    team = slack.team_of(token) or slack.team_id
    return {
        "ok": True,
        "url": "https://fake.slack.local/",
        "team": slack.workspaces[team].name if team in slack.workspaces else "Fake Workspace",
        "team_id": team,
        "user_id": f"UBOT_{team}" if team in slack.workspaces else slack.bot_user_id,
        "bot_id": f"B_{team}" if team in slack.workspaces else "BFAKE",
    }


def _views(slack: FakeSlack, args: Json) -> Json:
    slack.views.append(args)
    return {"ok": True, "view": {"id": f"V{len(slack.views):05d}", **(args.get("view") or {})}}


def _views_update(slack: FakeSlack, args: Json) -> Json:
    view_id = str(args.get("view_id") or "")
    current, sent = slack.view_hashes.get(view_id), args.get("hash")
    if current is not None and sent is not None and sent != current:
        return {"ok": False, "error": "hash_conflict"}
    answer = _views(slack, args)
    answer["view"] |= {"id": view_id, "hash": f"{len(slack.views)}.fakehash"}
    slack.view_hashes[view_id] = answer["view"]["hash"]
    return answer


def _get_upload_url(slack: FakeSlack, args: Json) -> Json:
    file_id = f"F{len(slack.files) + 1:05d}"
    slack.files[file_id] = {
        "id": file_id,
        "name": args.get("filename"),
        "length": args.get("length"),
    }
    return {"ok": True, "file_id": file_id, "upload_url": f"{slack.origin}/upload/{file_id}"}


def _complete_upload(slack: FakeSlack, args: Json) -> Json:
    files = args.get("files") or []
    if not all(f.get("id") in slack.uploads for f in files):
        return {"ok": False, "error": "file_not_found"}
    channel = args.get("channel_id")
    if channel and (error := _channel_error(slack, channel)):
        return error
    shared = [{"id": f["id"], "title": f.get("title")} for f in files]
    for f in files:
        slack.files[f["id"]].update(title=f.get("title"), channel=channel)
        slack.files[f["id"]]["thread_ts"] = args.get("thread_ts")
    if channel:
        # Slack shares the files as a message (in the thread, when one is given).
        slack.messages[channel].append(
            Message(
                channel=channel,
                ts=slack._next_ts(),
                text=args.get("initial_comment") or "",
                blocks=[],
                metadata=None,
                thread_ts=args.get("thread_ts"),
                files=shared,
            )
        )
    return {"ok": True, "files": shared}


_HANDLERS = {
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "conversations.history": _history,
    "conversations.replies": _replies,
    "conversations.info": _conversation_info,
    "auth.test": _auth_test,
    "views.open": _views,
    "views.publish": _views,
    "views.update": _views_update,
    "files.getUploadURLExternal": _get_upload_url,
    "files.completeUploadExternal": _complete_upload,
}
