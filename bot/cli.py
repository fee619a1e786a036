"""`budget-bot` command line (SPEC §2)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bot import __version__
from bot.config import ConfigError, Settings, load_settings
from bot.scenario.errors import ScenarioError
from bot.store.db import StoreError, migrate, open_db
from bot.store.workspaces import NotConnected

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.jobs.runtime import Runtime

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

    try:
        response = await app.client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = exc.response.get("error")
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
                    print(f"{digest.channel_id}: the latest digest was already sent")
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
