"""`manifest.yml` against Slack's own JSON Schemas, and against what the code really does.

The manifest is what Slack knows about the app: a command, event or scope the code relies
on but the manifest lacks breaks in production only, and a scope the manifest asks for but
no code uses is a needless ask of every installer. So the registered listeners and the Web
API methods the code calls are read from the code itself and compared both ways.

How the registered listeners are read. Bolt keeps them in `AsyncApp._async_listeners`, and
each matcher is a closure over its command name or event type; reading those closure cells
would tie this test to Bolt's private layout twice over. Probing the matchers with
synthetic requests would only tell which *declared* names are handled, never which
undeclared ones are. Instead the public registration API (`app.command`, `app.event`,
`app.action`, …: what listener modules call) is wrapped while `create_app` runs, so every
listener is recorded with the constraint it was registered with, through documented
signatures only. One private attribute is still read, and only its length:
`len(app._async_listeners)` must equal the number of recorded registrations, so that a
listener registered some other way cannot slip past this test unseen.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import load_settings
from bot.jobs.runtime import Runtime
from bot.slack import events as event_listeners
from bot.slack.app import create_app
from bot.slack.oauth import BOT_SCOPES, REDIRECT_PATH

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "manifest.yml"
# Slack's own schemas (MIT, from slackapi/manifest-schema; a copy of shared/'s), kept in
# the repository so that the test never depends on where CI puts shared/.
SCHEMA_DIR = Path(__file__).parent / "manifest_schema"
SCHEMA_VERSIONS = ("1.0.0", "2.0.0")
EVENTS_PATH = "/slack/events"  # bot/web.py serves commands, events and interactivity here
CODE_ROOT = REPO / "bot"

# The Bolt methods that register a listener, and what each kind needs in the manifest.
COMMAND_KINDS = frozenset({"command"})
EVENT_KINDS = frozenset({"event", "message", "function"})
SHORTCUT_KINDS = frozenset({"shortcut", "global_shortcut", "message_shortcut"})
OPTIONS_KINDS = frozenset({"options", "block_suggestion", "dialog_suggestion"})
INTERACTIVE_KINDS = frozenset(
    {
        "action",
        "block_action",
        "attachment_action",
        "view",
        "view_submission",
        "view_closed",
        "dialog_submission",
        "dialog_cancellation",
    }
    | SHORTCUT_KINDS
    | OPTIONS_KINDS
)
REGISTRATION_METHODS = COMMAND_KINDS | EVENT_KINDS | INTERACTIVE_KINDS

# Web API method → bot scopes it needs. A method the code calls that is missing here fails
# the scope test with a request to add it (look the method up on docs.slack.dev).
SCOPES_FOR_METHOD: dict[str, frozenset[str]] = {
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.delete": frozenset({"chat:write"}),
    "chat.getPermalink": frozenset(),
    # The bot reads `profile.email` (a `user:@mention` scope is matched to a Scenario member by
    # email), which Slack only returns with users:read.email.
    "users.info": frozenset({"users:read", "users:read.email"}),
    "users.lookupByEmail": frozenset({"users:read", "users:read.email"}),
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
    "conversations.history": frozenset({"channels:history", "groups:history"}),
    "conversations.replies": frozenset({"channels:history", "groups:history"}),
    "conversations.info": frozenset({"channels:read", "groups:read"}),
    "views.open": frozenset(),
    "views.publish": frozenset(),
    "views.update": frozenset(),
    "views.push": frozenset(),
    "auth.test": frozenset(),
    "team.info": frozenset({"team:read"}),
    # Socket Mode: called with the app-level token, whose `connections:write` is an app
    # scope (Basic Information → App-Level Tokens), not a bot scope of the manifest.
    "apps.connections.open": frozenset(),
}
# Bot events → the scopes Slack requires before it delivers them.
SCOPES_FOR_EVENT: dict[str, frozenset[str]] = {
    "app_home_opened": frozenset(),
    "app_uninstalled": frozenset(),
    "tokens_revoked": frozenset(),
    "app_mention": frozenset({"app_mentions:read"}),
    "message.channels": frozenset({"channels:history"}),
    "message.groups": frozenset({"groups:history"}),
    "message.im": frozenset({"im:history"}),
    "message.mpim": frozenset({"mpim:history"}),
}
COMMANDS_SCOPE = "commands"
# Bolt's listener argument `say(...)` posts with chat.postMessage (`respond` uses the
# response_url and `ack` the HTTP answer: neither needs a scope).
SAY_METHOD = "chat.postMessage"


# -- the manifest and Slack's schemas ------------------------------------------------------


def load_manifest() -> dict[str, Any]:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(manifest, dict), f"{MANIFEST} is not a YAML mapping"
    return manifest


def load_schema(version: str) -> dict[str, Any]:
    path = SCHEMA_DIR / f"manifest.schema.{version}.json"
    if not path.is_file():
        pytest.fail(
            f"Slack's manifest schema is missing: expected {path} (copied from"
            " shared/slack-manifest-schema/)."
        )
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def schema_errors(manifest: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    ]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_manifest_validates_against_slack_schema(version: str) -> None:
    errors = schema_errors(load_manifest(), load_schema(version))
    assert not errors, f"manifest.yml breaks Slack's schema {version}:\n" + "\n".join(errors)


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_schema_rejects_a_broken_manifest(version: str) -> None:
    """The schema really checks something (an empty or wrong file would pass anything)."""
    broken = copy.deepcopy(load_manifest())
    del broken["display_information"]["name"]
    broken["features"]["slash_commands"][0]["unknown_key"] = True
    errors = schema_errors(broken, load_schema(version))
    assert any("'name' is a required property" in e for e in errors), errors
    assert any("unknown_key" in e for e in errors), errors


def declared_commands(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return list(manifest.get("features", {}).get("slash_commands") or [])


def declared_events(manifest: dict[str, Any]) -> list[str]:
    subscriptions = manifest.get("settings", {}).get("event_subscriptions") or {}
    return list(subscriptions.get("bot_events") or []) + list(
        subscriptions.get("user_events") or []
    )


def declared_bot_scopes(manifest: dict[str, Any]) -> list[str]:
    return list(manifest.get("oauth_config", {}).get("scopes", {}).get("bot") or [])


def socket_mode(manifest: dict[str, Any]) -> bool:
    return bool(manifest.get("settings", {}).get("socket_mode_enabled"))


def test_every_command_is_described_and_escaped() -> None:
    commands = declared_commands(load_manifest())
    assert commands, "manifest.yml declares no slash command (SPEC §4 names /usage and /budget)"
    problems = []
    for entry in commands:
        name = entry.get("command", "")
        if not name.startswith("/") or len(name) > 32:
            problems.append(f"{name!r}: a command is '/' + name, at most 32 characters")
        if not str(entry.get("description") or "").strip():
            problems.append(f"{name}: no description")
        if not str(entry.get("usage_hint") or "").strip():
            problems.append(f"{name}: no usage_hint")
        if entry.get("should_escape") is not True:
            problems.append(f"{name}: should_escape must be true (mentions and channels as IDs)")
    names = [entry.get("command") for entry in commands]
    if len(names) != len(set(names)):
        problems.append(f"a command is declared twice: {names}")
    assert not problems, "\n".join(problems)


def test_request_urls_point_at_the_events_route() -> None:
    manifest = load_manifest()
    settings = manifest.get("settings", {})
    urls = {f"command {c.get('command')}": c.get("url") for c in declared_commands(manifest)}
    if declared_events(manifest):
        urls["event_subscriptions"] = (settings.get("event_subscriptions") or {}).get("request_url")
    interactivity = settings.get("interactivity") or {}
    if interactivity.get("is_enabled"):
        urls["interactivity"] = interactivity.get("request_url")
    if socket_mode(manifest):
        present = {where: url for where, url in urls.items() if url}
        assert not present, f"Socket Mode takes no request URLs: {present}"
        return
    wrong = {
        where: url
        for where, url in urls.items()
        if not url or urlparse(url).scheme != "https" or urlparse(url).path != EVENTS_PATH
    }
    assert not wrong, f"every request URL must be https://…{EVENTS_PATH} in HTTP mode: {wrong}"


def test_the_install_flow_asks_for_the_manifest_scopes() -> None:
    """The OAuth flow asks installers for its own list: it must be the manifest's."""
    assert sorted(BOT_SCOPES) == sorted(declared_bot_scopes(load_manifest()))


def test_the_oauth_redirect_url_is_the_route_the_bot_serves() -> None:
    """Slack sends an installer back only to a listed redirect URL; on the same host as the
    request URLs, at the path bot/web.py serves in multi-workspace mode."""
    manifest = load_manifest()
    redirects = (manifest.get("oauth_config") or {}).get("redirect_urls") or []
    assert redirects, "oauth_config.redirect_urls must list the OAuth redirect URL"
    events_url = (manifest["settings"].get("event_subscriptions") or {}).get("request_url")
    for url in redirects:
        parsed = urlparse(url)
        assert parsed.scheme == "https" and parsed.path == REDIRECT_PATH, url
        assert parsed.netloc == urlparse(events_url).netloc, (url, events_url)


# -- what the code registers ------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    kind: str  # the AsyncApp method used: "command", "event", "action", …
    constraint: Any  # its first argument: a name, a re.Pattern or (events…) a dict


@dataclass
class BuiltApp:
    app: AsyncApp
    registrations: list[Registration]

    def of(self, kinds: Iterable[str]) -> list[Registration]:
        wanted = frozenset(kinds)
        return [r for r in self.registrations if r.kind in wanted]


def record_registrations(monkeypatch: pytest.MonkeyPatch, seen: list[Registration]) -> None:
    """Wrap AsyncApp's registration methods: record each listener as it is registered
    (when the decorator is applied, as that is when Bolt adds the listener)."""
    for kind in sorted(REGISTRATION_METHODS):
        original = getattr(AsyncApp, kind)
        monkeypatch.setattr(AsyncApp, kind, _recording(kind, original, seen))


def _recording(
    kind: str, original: Callable[..., Any], seen: list[Registration]
) -> Callable[..., Any]:
    signature = inspect.signature(original)
    first = list(signature.parameters)[1]  # after `self`: the command, event, action_id…

    @functools.wraps(original)
    def registering(self: AsyncApp, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        constraint = bound.arguments[first]
        register = original(self, *args, **kwargs)

        @functools.wraps(register)
        def recorded(*fargs: Any, **fkwargs: Any) -> Any:
            seen.append(Registration(kind, constraint))
            return register(*fargs, **fkwargs)

        return recorded

    return registering


async def build_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[BuiltApp]:
    seen: list[Registration] = []
    record_registrations(monkeypatch, seen)
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing here may leave the machine
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-test",
        slack_signing_secret="test",
        slack_api_url=f"{nowhere}/api/",
        scenario_base_url=f"{nowhere}/v1",
        scenario_sdk_api_key="test-key",
        scenario_sdk_api_secret="test-secret",
        budget_bot_db=tmp_path / "bot.db",
    )
    runtime = Runtime.open(settings)
    try:
        app, _deps = create_app(runtime)
        yield BuiltApp(app, seen)
    finally:
        await runtime.aclose()


@pytest.fixture
async def built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[BuiltApp]:
    async for value in build_app(monkeypatch, tmp_path):
        yield value


def covers(constraint: Any, name: str) -> bool:
    """Bolt's own rule: a string matches exactly, a pattern by `search`."""
    if isinstance(constraint, re.Pattern):
        return constraint.search(name) is not None
    return constraint == name


def event_type_of(registration: Registration) -> Any:
    if registration.kind == "message":
        return "message"
    if registration.kind == "function":
        return "function_executed"
    constraint = registration.constraint
    return constraint.get("type") if isinstance(constraint, dict) else constraint


def bolt_event_type(manifest_event: str) -> str:
    """`message.channels`, `message.im`, … all reach Bolt as events of type `message`."""
    return (
        manifest_event.split(".", 1)[0]
        if manifest_event.startswith("message.")
        else (manifest_event)
    )


def shortcut_id_of(registration: Registration) -> Any:
    constraint = registration.constraint
    return constraint.get("callback_id") if isinstance(constraint, dict) else constraint


def mismatch(
    what: str, registered: list[Any], declared: list[str]
) -> tuple[list[Any], list[str], str]:
    undeclared = [c for c in registered if not any(covers(c, d) for d in declared)]
    unhandled = [d for d in declared if not any(covers(c, d) for c in registered)]
    message = (
        f"{what}: registered in code but not declared in manifest.yml: {undeclared}; "
        f"declared in manifest.yml but no listener handles them: {unhandled} "
        f"(registered: {registered}, declared: {declared})"
    )
    return undeclared, unhandled, message


async def test_every_listener_is_seen(built: BuiltApp) -> None:
    listeners_in_app = len(built.app._async_listeners)  # the one private read (see top)
    assert listeners_in_app == len(built.registrations), (
        f"the app has {listeners_in_app} listeners but only {len(built.registrations)} were "
        f"registered through AsyncApp's public methods ({built.registrations}): register "
        "listeners with app.command/app.event/app.action/app.view/… so this test can read them"
    )


async def test_registered_commands_match_the_manifest(built: BuiltApp) -> None:
    registered = [r.constraint for r in built.of(COMMAND_KINDS)]
    declared = [c["command"] for c in declared_commands(load_manifest())]
    undeclared, unhandled, message = mismatch("slash commands", registered, declared)
    assert not undeclared and not unhandled, message


async def test_registered_events_match_the_manifest(built: BuiltApp) -> None:
    manifest = load_manifest()
    registered = [event_type_of(r) for r in built.of(EVENT_KINDS)]
    declared = sorted({bolt_event_type(e) for e in declared_events(manifest)})
    undeclared, unhandled, message = mismatch("events", registered, declared)
    assert not undeclared and not unhandled, message
    if any(covers(c, "app_home_opened") for c in registered):
        app_home = manifest.get("features", {}).get("app_home") or {}
        assert app_home.get("home_tab_enabled") is True, (
            "an app_home_opened listener is registered: features.app_home.home_tab_enabled "
            "must be true or Slack shows no Home tab"
        )


async def test_interactivity_matches_the_listeners(built: BuiltApp) -> None:
    manifest = load_manifest()
    interactivity = manifest.get("settings", {}).get("interactivity") or {}
    interactive = built.of(INTERACTIVE_KINDS)
    enabled = bool(interactivity.get("is_enabled"))
    assert enabled == bool(interactive), (
        f"settings.interactivity.is_enabled is {enabled} but the code registers "
        f"{len(interactive)} button/modal/shortcut listeners: "
        f"{[f'{r.kind} {r.constraint!r}' for r in interactive]}"
    )
    if built.of(OPTIONS_KINDS) and not socket_mode(manifest):
        assert interactivity.get("message_menu_options_url"), (
            "options listeners are registered: settings.interactivity.message_menu_options_url "
            "is needed in HTTP mode"
        )
    registered = [shortcut_id_of(r) for r in built.of(SHORTCUT_KINDS)]
    declared = [s["callback_id"] for s in manifest.get("features", {}).get("shortcuts") or []]
    undeclared, unhandled, message = mismatch("shortcuts", registered, declared)
    assert not undeclared and not unhandled, message


async def test_introspection_sees_what_listener_modules_register(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The recording itself works: listeners added through a package's `register`, in the
    ways listener modules add them, are all read back (else the tests above prove nothing).
    """
    real_register = event_listeners.register

    def register_more(app: AsyncApp, deps: Any) -> None:
        real_register(app, deps)

        @app.command("/probe-command")
        async def probe_command(ack: Any) -> None:
            await ack()

        async def probe_ack(ack: Any) -> None:
            await ack()

        async def probe_work() -> None:
            return None

        app.command(re.compile(r"^/probe-lazy$"))(ack=probe_ack, lazy=[probe_work])
        app.event({"type": "team_join"})(probe_work)
        app.message("hello")(probe_work)
        app.action("probe_button")(probe_ack)
        app.global_shortcut("probe_shortcut")(probe_ack)

    monkeypatch.setattr(event_listeners, "register", register_more)
    async for built in build_app(monkeypatch, tmp_path):
        assert len(built.app._async_listeners) == len(built.registrations)
        probes = built.registrations[-6:]
        assert [r.kind for r in probes] == [
            "command",
            "command",
            "event",
            "message",
            "action",
            "global_shortcut",
        ]
        commands = [r.constraint for r in built.of(COMMAND_KINDS)]
        assert "/probe-command" in commands
        undeclared, unhandled, _ = mismatch("commands", commands, ["/probe-lazy"])
        assert "/probe-command" in undeclared  # seen, and reported as undeclared
        assert unhandled == []  # the pattern covers the declared command
        events = [event_type_of(r) for r in built.of(EVENT_KINDS)]
        assert "team_join" in events
        assert "message" in events
        assert [shortcut_id_of(r) for r in built.of(SHORTCUT_KINDS)][-1] == "probe_shortcut"


# -- scopes from the Web API methods the code calls ---------------------------------------


@dataclass(frozen=True)
class ApiCall:
    method: str  # Web API method, e.g. "chat.postMessage"
    where: str  # file:line


CLIENT_METHODS = frozenset(name for name in vars(AsyncWebClient) if not name.startswith("_"))


@functools.cache
def api_methods_of(client_method: str) -> frozenset[str]:
    """The Web API methods one slack_sdk client method calls, read from slack_sdk's source
    (`chat_postMessage` → chat.postMessage; `files_upload_v2` → the two upload methods)."""
    source = inspect.getsource(getattr(AsyncWebClient, client_method))
    methods = set(re.findall(r"api_call\(\s*\"([\w.]+)\"", source))
    for called in re.findall(r"self\.(\w+)\(", source):
        if called in CLIENT_METHODS and called != client_method:
            methods |= api_methods_of(called)
    return frozenset(methods)


def api_calls_in(source: str, filename: str) -> list[ApiCall]:
    """Web API calls in Python source: `<anything>.chat_postMessage(…)` (any slack_sdk
    client method), `<anything>.api_call("chat.postMessage", …)` and Bolt's `say(…)`."""
    found: list[ApiCall] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.Call):
            continue
        where = f"{filename}:{node.lineno}"
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name == "say":
            found.append(ApiCall(SAY_METHOD, where))
        elif isinstance(func, ast.Attribute) and name in CLIENT_METHODS:
            found.extend(ApiCall(m, where) for m in sorted(api_methods_of(name)))
        elif name == "api_call":
            method = node.args[0] if node.args else None
            for keyword in node.keywords:
                if keyword.arg == "api_method":
                    method = keyword.value
            if isinstance(method, ast.Constant) and isinstance(method.value, str):
                found.append(ApiCall(method.value, where))
            else:
                found.append(ApiCall(f"<api_call with a computed method name> {where}", where))
    return found


def api_calls_in_code() -> list[ApiCall]:
    calls: list[ApiCall] = []
    for path in sorted(CODE_ROOT.rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        calls.extend(api_calls_in(path.read_text(encoding="utf-8"), relative))
    return calls


def test_scope_scanner_finds_calls() -> None:
    source = (
        "async def f(client, say, app):\n"
        "    await client.chat_postMessage(channel='C', text='t')\n"
        "    await app.client.files_upload_v2(channel='C', content=b'x')\n"
        "    await client.api_call('users.info', params={})\n"
        "    await say('hi')\n"
        "    await client.usages(start=1)\n"  # not Slack: Scenario's client
    )
    methods = sorted({c.method for c in api_calls_in(source, "probe.py")})
    assert methods == [
        "chat.postMessage",
        "files.completeUploadExternal",
        "files.getUploadURLExternal",
        "users.info",
    ]


async def test_scopes_are_exactly_what_the_code_uses(built: BuiltApp) -> None:
    manifest = load_manifest()
    needed: dict[str, list[str]] = {}  # scope → why
    unmapped: list[str] = []
    for call in api_calls_in_code():
        if call.method not in SCOPES_FOR_METHOD:
            unmapped.append(f"{call.method} ({call.where})")
            continue
        for scope in SCOPES_FOR_METHOD[call.method]:
            needed.setdefault(scope, []).append(f"{call.method} at {call.where}")
    for event in declared_events(manifest):
        if event not in SCOPES_FOR_EVENT:
            unmapped.append(f"event {event}")
            continue
        for scope in SCOPES_FOR_EVENT[event]:
            needed.setdefault(scope, []).append(f"event {event}")
    if built.of(COMMAND_KINDS):
        needed.setdefault(COMMANDS_SCOPE, []).append("registered slash commands")
    assert not unmapped, (
        "no scope known for these Web API methods/events: add them to SCOPES_FOR_METHOD or "
        f"SCOPES_FOR_EVENT in {Path(__file__).name}: {unmapped}"
    )
    declared = declared_bot_scopes(manifest)
    unused = sorted(set(declared) - set(needed))
    missing = {scope: needed[scope][:3] for scope in sorted(set(needed) - set(declared))}
    assert not unused and not missing, (
        f"manifest.yml asks for scopes no code uses: {unused}; code needs scopes the "
        f"manifest lacks (with where): {missing}"
    )
    assert len(declared) == len(set(declared)), f"a scope is listed twice: {declared}"
