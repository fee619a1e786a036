"""`budget-bot` command line (SPEC §2)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bot import __version__
from bot.commands.words import QUOTES
from bot.config import ConfigError, Settings, load_settings
from bot.scenario.errors import ScenarioError
from bot.store.db import StoreError, migrate, open_db
from bot.store.workspaces import NotConnected

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.commands.requests import BudgetRequest
    from bot.jobs.runtime import Runtime
    from bot.slack.deps import Deps

EXIT_OK = 0
EXIT_CONFIG = 2
T = TypeVar("T")
log = logging.getLogger(__name__)


class UsageFailure(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


def _keygen(args: argparse.Namespace, settings: Settings | None) -> int:
    from bot.crypto import new_key

    print(new_key())
    return EXIT_OK


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    db = open_db(settings.budget_bot_db)
    applied = migrate(db)
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print(f"{settings.budget_bot_db}: up to date, nothing to apply")
    return EXIT_OK


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.jobs.check import run_check
    from bot.jobs.runtime import Runtime
    from bot.messages.terminal import render

    # Missing credentials are a configuration error, found before any work.
    settings.require_serving_credentials()

    async def cycle() -> int:
        runtime = Runtime.open(settings)
        try:
            _fail_early(runtime, args.dry_run)
            now = datetime.now(UTC)
            results = await run_check(
                runtime.db, runtime.scenario_for, runtime.check_settings, now, dry_run=args.dry_run
            )
            if not args.dry_run:
                report = await runtime.deliver(lambda: datetime.now(UTC))
        finally:
            await runtime.aclose()
        for result in results:
            for message in result.enqueued:
                if args.dry_run:
                    print(f"── would post to {message['channel']} ({message['key']})")
                    print(render(message), end="\n\n")
            if result.error:
                print(f"{result.workspace_id}: Scenario could not be read: {result.error}")
        enqueued = sum(len(r.enqueued) for r in results)
        verb = "would post" if args.dry_run else "queued"
        print(f"checked {len(results)} workspace(s): {verb} {enqueued} message(s)")
        if not args.dry_run:
            print(
                f"delivered {report.sent}, retrying {report.retried}, failed {report.failed},"
                f" waiting {report.waiting}"
            )
        return 1 if any(r.error for r in results) else EXIT_OK

    return asyncio.run(cycle())


def _fail_early(runtime: Runtime, dry_run: bool) -> None:
    """Single-workspace mode: a missing token or credential is found before any work
    (each workspace brings its own in multi-workspace mode)."""
    if not runtime.multi_workspace:
        _ = runtime.scenario if dry_run else (runtime.scenario, runtime.slack)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    import uvicorn

    from bot.asgi_server import EmbeddedServer, listen, origin
    from bot.jobs.runtime import Runtime
    from bot.jobs.scheduler import Scheduler
    from bot.slack.app import create_app
    from bot.web import create_health_server, create_server

    # Every check reads Scenario: without credentials, say so now, not once per cycle.
    settings.require_serving_credentials()
    runtime = Runtime.open(settings)
    app_token = settings.slack_app_token
    app, _ = create_app(runtime, socket_mode=app_token is not None)
    port = settings.port if args.port is None else args.port
    try:
        sock = listen(args.host, port)
    except OSError as exc:
        raise UsageFailure(f"cannot listen on {origin(args.host, port)}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    address = origin(args.host, port)
    # HTTP mode serves Slack's events and /healthz; Socket Mode (events over the socket)
    # still serves /healthz on the same host and port, for the same probes.
    web = create_health_server(runtime) if app_token is not None else create_server(app, runtime)
    server = EmbeddedServer(uvicorn.Config(web, host=args.host, port=port, lifespan="off"))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        scheduler = Scheduler(runtime)
        scheduler.start()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            if app_token is None:
                print(f"budget-bot: listening on {address}/slack/events", flush=True)
                if runtime.multi_workspace:
                    print(f"budget-bot: install page on {address}/slack/install", flush=True)
                await _until_stopped(stop, serving)
            else:
                print(f"budget-bot: health check on {address}/healthz", flush=True)
                await _socket_mode(app, app_token.get_secret_value(), stop, serving)
        finally:
            # uvicorn finishes the requests in flight and returns; the scheduler lets its
            # job in flight finish; then the clients are closed and the exit status is 0.
            server.should_exit = True
            await serving
            await scheduler.stop()
            await runtime.aclose()

    try:
        asyncio.run(run())
    finally:
        sock.close()
    return EXIT_OK


async def _until_stopped(stop: asyncio.Event, serving: asyncio.Task[None]) -> None:
    """Until SIGTERM/SIGINT, or until the web server ends by itself."""
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({stopping, serving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()


async def _unless_stopped(
    stop: asyncio.Event, serving: asyncio.Task[None], work: Coroutine[Any, Any, T]
) -> tuple[bool, T | None]:
    """Run `work` to its end (True and its result), or cancel it on stop (False, None)."""
    task = asyncio.create_task(work)
    waiting = asyncio.create_task(_until_stopped(stop, serving))
    try:
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return (True, task.result()) if not task.cancelled() else (False, None)


# Answers of apps.connections.open that no retry mends: the app-level token itself is wrong.
_REFUSED_APP_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type"}
)


async def _socket_mode(
    app: AsyncApp, app_token: str, stop: asyncio.Event, serving: asyncio.Task[None]
) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(app, app_token)
    try:
        opened, url = await _unless_stopped(stop, serving, _socket_url(app, app_token))
        if not opened:
            return
        # The URL just issued is used as is; without one, the handler asks (and retries).
        handler.client.wss_uri = url
        connected, _ = await _unless_stopped(stop, serving, handler.connect_async())
        if not connected:
            return
        print("budget-bot: connected to Slack in Socket Mode; Ctrl-C stops it.", flush=True)
        await _until_stopped(stop, serving)
    finally:
        await handler.close_async()


async def _socket_url(app: AsyncApp, app_token: str) -> str | None:
    """Ask Slack once for a Socket Mode URL, so that a refused SLACK_APP_TOKEN is a
    configuration error (one line, status 2) instead of a traceback every 10 s forever.
    Slack being unreachable is not: None leaves it to the handler, which retries."""
    import aiohttp
    from slack_sdk.errors import SlackApiError

    from bot.jobs.delivery import slack_error

    try:
        response = await app.client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = slack_error(exc)
        if error in _REFUSED_APP_TOKEN:
            raise ConfigError(
                f"Slack refused SLACK_APP_TOKEN ({error}): Socket Mode needs an app-level"
                " token (xapp-…) with the connections:write scope"
            ) from None
        log.warning("Slack did not open a Socket Mode connection (%s); retrying", error)
        return None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("Slack could not be reached for Socket Mode (%s); retrying", type(exc).__name__)
        return None
    url = response.get("url")
    return url if isinstance(url, str) else None


def _digest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.jobs.digest import run_digest
    from bot.jobs.runtime import Runtime
    from bot.messages.terminal import render
    from bot.store.digests import list_digests

    settings.require_serving_credentials()

    async def send() -> int:
        runtime = Runtime.open(settings)
        failed = 0
        try:
            _fail_early(runtime, args.dry_run)
            digests = [
                d
                for d in list_digests(runtime.db)
                if args.channel is None or d.channel_id == args.channel
            ]
            if not digests:
                where = f" for {args.channel}" if args.channel else ""
                print(f"no digest is configured{where} (`/budget digest HH:MM #channel`)")
                return EXIT_OK
            now = datetime.now(UTC)
            for digest in digests:
                tz = runtime.timezone_of(digest.workspace_id)
                try:
                    queued = await run_digest(
                        runtime.db,
                        await runtime.scenario_for_team(digest.workspace_id),
                        digest,
                        tz,
                        now,
                        settings.scenario_app,
                        dry_run=args.dry_run,
                    )
                except ScenarioError as exc:
                    print(f"{digest.channel_id}: Scenario could not be read: {exc.message}")
                    failed += 1
                    continue
                except NotConnected as exc:
                    print(f"{digest.channel_id}: skipped, {exc}")
                    continue
                if not queued:
                    print(
                        f"{digest.channel_id}: the latest digest was already sent"
                        " (or the channel already had a digest today)"
                    )
                for message in queued:
                    if "blocks" in message:
                        verb = "would post" if args.dry_run else "posting"
                        print(f"── {verb} to {message['channel']}")
                        print(render(message), end="\n\n")
                    else:
                        print(f"── and its chart: {message['filename']}")
            if not args.dry_run:
                report = await runtime.deliver(lambda: datetime.now(UTC))
                print(f"delivered {report.sent}, retrying {report.retried}, failed {report.failed}")
        finally:
            await runtime.aclose()
        return 1 if failed else EXIT_OK

    return asyncio.run(send())


# The audit trail's actor for changes made with `budget-bot budget` (shown as a name).
CLI_ACTOR = "cli"
# Single-workspace mode with no Slack token and no workspace yet: where budgets are kept
# until a Slack workspace (its team ID) is known.
LOCAL_WORKSPACE = "T0LOCAL"
_WORKSPACE_ID = re.compile(r"T[A-Z0-9]+")
# A channel ID as typed in a terminal: `#C0123…`, or bare `C0123…` when long enough not to
# be mistaken for a time zone (`CST6CDT`).
_CHANNEL_ID = re.compile(r"(#)?([CG][A-Z0-9]*[0-9][A-Z0-9]*)")
_BARE_CHANNEL_LENGTH = 8


def _budget_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workspace",
        metavar="T…",
        help="Slack workspace ID (required in multi-workspace mode)",
    )
    parser.add_argument("--yes", action="store_true", help="`remove` removes without asking")


def _budget_word(arg: str) -> str:
    """One shell argument as the `/budget` text Slack would have sent for it: a channel ID
    as Slack's `<#C…>`, a name with spaces (`project:Game Art`) quoted."""
    if (m := _CHANNEL_ID.fullmatch(arg)) and (m[1] or len(arg) >= _BARE_CHANNEL_LENGTH):
        return f"<#{m[2]}>"
    if any(c.isspace() for c in arg) and not any(q in arg for q in QUOTES):
        prefix, colon, rest = arg.partition(":")
        return f'{prefix}:"{rest}"' if colon and prefix.isalpha() else f'"{arg}"'
    return arg


def _budget(args: argparse.Namespace, settings: Settings) -> int:
    """`budget-bot budget …`: the `/budget` subcommands that need no Slack UI, parsed by
    the same parser and answered by the same code, audited as the command line."""
    from bot.commands.budget import parse_budget
    from bot.commands.requests import (
        BudgetConnect,
        BudgetDisconnect,
        BudgetList,
        BudgetTest,
        GrammarError,
        OpenBudgetModal,
    )
    from bot.messages.terminal import mrkdwn_to_text
    from bot.slack.commands.budget import needs_scenario

    # `remove 3 --yes` as well as `--yes remove 3`: the flags may follow the words.
    flags = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _budget_flags(flags)
    later, words = flags.parse_known_args(args.words)
    parsed = parse_budget(" ".join(_budget_word(word) for word in words))
    if isinstance(parsed, GrammarError):
        raise UsageFailure(mrkdwn_to_text(f"{parsed.message} Usage: {parsed.usage}"))
    if isinstance(parsed, OpenBudgetModal):
        raise UsageFailure(
            "without options `add` and `edit` open a form in Slack; here, give them: like"
            " `budget-bot budget add 5k monthly C0123ABCD` or `budget-bot budget edit 3 8k`"
        )
    if isinstance(parsed, BudgetTest):
        raise UsageFailure(
            "`test` posts a sample alert to Slack: use `/budget test` there"
            " (`budget-bot check --dry-run` prints what a check would post)"
        )
    if isinstance(parsed, BudgetConnect | BudgetDisconnect):
        raise UsageFailure(
            "a workspace connects to Scenario in Slack, with `/budget connect` (in"
            " single-workspace mode the SCENARIO_* settings are the connection)"
        )
    # Like a workspace not connected yet (the list shows the budgets, without spend).
    if (
        not settings.multi_workspace
        and needs_scenario(parsed)
        and not isinstance(parsed, BudgetList)
    ):
        settings.require_scenario_credentials()
    return asyncio.run(
        _budget_request(settings, parsed, later.workspace or args.workspace, args.yes or later.yes)
    )


async def _budget_request(
    settings: Settings, request: BudgetRequest, workspace: str | None, yes: bool
) -> int:
    import aiohttp

    from bot.commands.requests import BudgetRemove
    from bot.jobs.runtime import Runtime
    from bot.messages.terminal import mrkdwn_to_text
    from bot.slack.changes import Refusal
    from bot.slack.commands.budget import BudgetCommand, dispatch, not_connected, not_found
    from bot.slack.deps import Deps, utc_now
    from bot.store.budgets import BudgetNotFound

    runtime = Runtime.open(settings)
    try:
        team_id = await _cli_workspace(runtime, workspace)
        slack = await _cli_slack(runtime, team_id)
        deps = Deps.of(runtime, utc_now, can_post=slack is not None)
        if not_connected(deps, team_id, request):
            raise UsageFailure(
                f"workspace {team_id} is not connected to Scenario yet: an admin runs"
                " `/budget connect` in Slack"
            )
        asked = BudgetCommand(
            deps=deps,
            client=slack,
            respond=_print_answer,
            team_id=team_id,
            user_id=CLI_ACTOR,
            channel_id=_cli_channel(deps, team_id, request),
            trigger_id="",
            public=False,
        )
        try:
            if isinstance(request, BudgetRemove):
                _cli_remove(deps, team_id, request.budget_id, yes)
            else:
                await dispatch(asked, request)
                if slack is None and (channel := getattr(request, "channel", None)):
                    print(
                        f"budget-bot: no Slack token, so whether the bot can post in"
                        f" {channel.id} was not checked",
                        file=sys.stderr,
                    )
        except Refusal as refusal:
            raise UsageFailure(mrkdwn_to_text(str(refusal))) from None
        except BudgetNotFound as missing:
            raise UsageFailure(mrkdwn_to_text(not_found(missing))) from None
        except (aiohttp.ClientError, OSError) as exc:  # Scenario's are ScenarioErrors
            raise UsageFailure(
                f"Slack could not be reached ({type(exc).__name__}): nothing was changed"
            ) from None
    finally:
        await runtime.aclose()
    return EXIT_OK


async def _print_answer(*, text: str, blocks: list[dict[str, Any]], **_: object) -> None:
    """Where `/budget` answers through Slack's response_url, the command line prints."""
    from bot.messages.terminal import render

    print(render({"text": text, "blocks": blocks}))


NOT_SLACK = (
    "what answered at SLACK_API_URL isn't Slack (a proxy's or captive portal's page?); give"
    " the workspace with --workspace T…"
)


async def _cli_workspace(runtime: Runtime, given: str | None) -> str:
    """The workspace the command is about: `--workspace`; in single-workspace mode, the
    one SLACK_BOT_TOKEN is for (Slack says), else the only one in the database."""
    import aiohttp
    from slack_sdk.errors import SlackApiError

    from bot.jobs.delivery import slack_error
    from bot.store.workspaces import list_workspaces

    if given is not None:
        if not _WORKSPACE_ID.fullmatch(given):
            raise UsageFailure(f"{given!r} isn't a Slack workspace ID (like T0123ABCD)")
        return given
    known = [w.team_id for w in list_workspaces(runtime.db)]
    if runtime.multi_workspace:
        listed = f" (this database knows {', '.join(known)})" if known else ""
        raise UsageFailure(f"multi-workspace mode: say which workspace, --workspace T…{listed}")
    if runtime.settings.slack_bot_token is not None:
        try:
            answer = await runtime.slack.auth_test()
        except SlackApiError as exc:
            if (error := slack_error(exc)) is not None:
                raise UsageFailure(
                    f"Slack refused SLACK_BOT_TOKEN ({error}); give the workspace with"
                    " --workspace T…"
                ) from None
            raise UsageFailure(NOT_SLACK) from None
        except (aiohttp.ClientError, OSError, TimeoutError):
            raise UsageFailure(
                "Slack could not be reached to learn SLACK_BOT_TOKEN's workspace; give it"
                " with --workspace T…"
            ) from None
        except (AttributeError, TypeError, ValueError):  # slack_sdk on a page it can't read
            raise UsageFailure(NOT_SLACK) from None
        return str(answer["team_id"])
    if len(known) > 1:
        raise UsageFailure(f"say which workspace, --workspace T… (one of {', '.join(known)})")
    if known:
        return known[0]
    print(
        f"budget-bot: no SLACK_BOT_TOKEN and no workspace yet: using {LOCAL_WORKSPACE}"
        " (--workspace T… picks your Slack workspace instead)",
        file=sys.stderr,
    )
    return LOCAL_WORKSPACE


async def _cli_slack(runtime: Runtime, team_id: str) -> AsyncWebClient | None:
    """The workspace's Slack client for the channel check, or None without a token."""
    from bot.store.installations import NotInstalled

    if not runtime.multi_workspace and runtime.settings.slack_bot_token is None:
        return None
    try:
        return await runtime.slack_for(team_id)
    except NotInstalled as exc:
        raise UsageFailure(str(exc)) from None


def _cli_channel(deps: Deps, team_id: str, request: BudgetRequest) -> str:
    """The channel a request without one is about: in Slack, the one it was typed in; here,
    the watch's own (a new sensitivity) or none (refused: say which)."""
    from bot.commands.requests import BudgetAdd, BudgetDigest, BudgetWatch
    from bot.store.watch import get_watch

    channel = getattr(request, "channel", None)
    if channel is not None and channel.id is None:
        raise UsageFailure(
            f"give channels by ID here (like C0123ABCD): #{channel.name} is a name, and only"
            " Slack knows which channel it is"
        )
    if channel is not None or (isinstance(request, BudgetWatch) and request.off):
        return ""
    if isinstance(request, BudgetWatch) and (watch := get_watch(deps.db, team_id)):
        return watch.channel_id
    if isinstance(request, BudgetAdd | BudgetDigest | BudgetWatch):
        raise UsageFailure(
            "say which channel, by ID (like C0123ABCD): here there is no channel the command"
            " was typed in"
        )
    return ""


def _cli_remove(deps: Deps, team_id: str, budget_id: int, yes: bool) -> None:
    """Removing has no buttons here: `--yes` is the answer to the question."""
    from bot.messages import budgets as budget_messages
    from bot.messages.terminal import mrkdwn_to_text, render
    from bot.store.budgets import delete_budget, get_budget

    budget = get_budget(deps.db, team_id, budget_id)
    if not yes:
        print(mrkdwn_to_text(budget_messages.removal_question(budget)))
        raise UsageFailure(f"nothing removed: `budget-bot budget remove {budget_id} --yes` does it")
    removed = delete_budget(deps.db, team_id, budget_id, actor=CLI_ACTOR, now=deps.clock())
    print(render(budget_messages.removed(removed, CLI_ACTOR)))


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from bot.demo import run_demo

    if not args.verbose:
        # The alerts say themselves when a job list is partial; no need to warn twice.
        logging.getLogger("bot.scenario.client").setLevel(logging.ERROR)
    return asyncio.run(run_demo(settings, as_json=args.json, out_dir=Path.cwd()))


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from bot.sim.scenario import run_from_cli

    return run_from_cli(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="budget-bot",
        description="Scenario Compute Unit spend, budgets and alerts in Slack.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the Slack app, the scheduler and migrations")
    serve.add_argument(
        "--port",
        type=int,
        help="HTTP port, also of /healthz in Socket Mode (default: PORT or 3000; 0: any free one)",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default: %(default)s)")
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check", help="run one budget-check cycle now")
    check.add_argument("--dry-run", action="store_true", help="print alerts instead of posting")
    check.set_defaults(run=_check)

    digest = commands.add_parser("digest", help="post (or print) the digests now")
    digest.add_argument("--dry-run", action="store_true", help="print instead of posting")
    digest.add_argument("--channel", help="only the digest of this channel ID")
    digest.set_defaults(run=_digest)

    demo = commands.add_parser("demo", help="try everything locally, no accounts needed")
    demo.add_argument("--json", action="store_true", help="print raw Block Kit JSON")
    demo.set_defaults(run=_demo)

    simulate = commands.add_parser("simulate", help="serve the Scenario API simulator locally")
    _simulate_flags(simulate)
    simulate.set_defaults(run=_simulate)

    migrate_cmd = commands.add_parser("migrate", help="apply pending database migrations")
    migrate_cmd.set_defaults(run=_migrate)

    budget = commands.add_parser(
        "budget",
        help="the /budget subcommands, from here",
        description="The /budget subcommands that need no Slack form or button (list, add,"
        " edit, remove, snooze, unsnooze, digest, watch, timezone, history), with the same"
        " words; channels by ID (C0123ABCD). Changes are audited as `cli`.",
    )
    _budget_flags(budget)
    budget.add_argument(
        "words",
        nargs=argparse.REMAINDER,
        metavar="SUBCOMMAND …",
        help="as after /budget, e.g. `add 5k monthly C0123ABCD`, `list`, `remove 3 --yes`",
    )
    budget.set_defaults(run=_budget)

    keygen = commands.add_parser("keygen", help="print a new random BUDGET_BOT_SECRET_KEY")
    # Reads no settings: it is what fixes a missing or unusable key.
    keygen.set_defaults(run=_keygen, reads_settings=False)
    return parser


def _anchor(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {raw!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _simulate_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of ``budget-bot simulate``, here so that parsing any command loads no fake."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, help="port to bind (default: 8790)")
    parser.add_argument(
        "--seed", type=int, default=7, help="synthetic team seed (default: %(default)s)"
    )
    parser.add_argument(
        "--anchor",
        type=_anchor,
        help="ISO 8601 time the synthetic timeline is built around (default: this hour)",
    )
    parser.add_argument(
        "--frozen",
        action="store_true",
        help="freeze the clock at the anchor instead of following the wall clock",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    parser.add_argument(
        "--failure-rate", type=float, default=0.0, help="share of random 500 answers (0-1)"
    )
    parser.add_argument(
        "--unknown-enums", action="store_true", help="serve enum values the SDK does not know"
    )
    parser.add_argument(
        "--extra-keys", action="store_true", help="add an unknown key to every JSON object"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # One line per HTTP request drowns what the command has to say.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    # Even with --verbose: slack_sdk's debug lines carry request and response bodies, and
    # those of oauth.v2.access hold tokens.
    logging.getLogger("slack_sdk").setLevel(logging.INFO)
    if not getattr(args, "reads_settings", True):
        return int(args.run(args, None))
    try:
        settings = load_settings()
        return int(args.run(args, settings))
    except (ConfigError, StoreError, UsageFailure) as exc:
        print(f"budget-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
