"""`budget-bot` command line (SPEC §2)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from bot import __version__
from bot.config import ConfigError, Settings, load_settings
from bot.scenario.errors import ScenarioError
from bot.store.db import StoreError, migrate, open_db

EXIT_OK = 0
EXIT_CONFIG = 2


class UsageFailure(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


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
    from bot.jobs.delivery import drain
    from bot.runtime import Runtime
    from bot.slack.terminal import render

    async def cycle() -> int:
        runtime = Runtime.open(settings)
        try:
            # Missing credentials are a configuration error, found before any work.
            _ = runtime.scenario if args.dry_run else (runtime.scenario, runtime.slack)
            now = datetime.now(UTC)
            results = await run_check(
                runtime.db, runtime.scenario_for, runtime.check_settings, now, dry_run=args.dry_run
            )
            if not args.dry_run:
                report = await drain(runtime.db, runtime.slack_for, lambda: datetime.now(UTC))
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


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    import uvicorn
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.jobs.scheduler import Scheduler
    from bot.runtime import Runtime
    from bot.server import create_server
    from bot.serving import EmbeddedServer
    from bot.slack.app import create_app

    runtime = Runtime.open(settings)
    app_token = settings.slack_app_token
    app, _ = create_app(runtime, socket_mode=app_token is not None)

    async def run() -> None:
        scheduler = Scheduler(runtime)
        scheduler.start()
        try:
            if app_token is not None:
                handler = AsyncSocketModeHandler(app, app_token.get_secret_value())
                await handler.connect_async()
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, stop.set)
                print("budget-bot: connected to Slack in Socket Mode; Ctrl-C stops it.")
                await stop.wait()
                await handler.close_async()
            else:
                port = args.port or settings.port
                config = uvicorn.Config(
                    create_server(app, runtime), host=args.host, port=port, lifespan="off"
                )
                server = EmbeddedServer(config)
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    # uvicorn then finishes the requests in flight and returns; the
                    # scheduler and clients are closed below, and the exit status is 0.
                    loop.add_signal_handler(signum, setattr, server, "should_exit", True)
                print(f"budget-bot: listening on http://{args.host}:{port}/slack/events")
                await server.serve()
        finally:
            await scheduler.stop()
            await runtime.aclose()

    asyncio.run(run())
    return EXIT_OK


def _digest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.jobs.delivery import drain
    from bot.jobs.digest import run_digest
    from bot.runtime import Runtime
    from bot.slack.terminal import render
    from bot.store.digests import list_digests

    async def send() -> int:
        runtime = Runtime.open(settings)
        failed = 0
        try:
            _ = runtime.scenario if args.dry_run else (runtime.scenario, runtime.slack)
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
                        runtime.scenario,
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
                if not queued:
                    print(f"{digest.channel_id}: today's digest was already sent")
                for message in queued:
                    if "blocks" in message:
                        verb = "would post" if args.dry_run else "posting"
                        print(f"── {verb} to {message['channel']}")
                        print(render(message), end="\n\n")
                    else:
                        print(f"── and its chart: {message['filename']}")
            if not args.dry_run:
                report = await drain(runtime.db, runtime.slack_for, lambda: datetime.now(UTC))
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
    from bot.scenario.simulator import run_from_cli

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
    serve.add_argument("--port", type=int, help="HTTP port (default: PORT or 3000)")
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default: %(default)s)")
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check", help="run one budget-check cycle now")
    check.add_argument("--dry-run", action="store_true", help="print alerts instead of posting")
    check.set_defaults(run=_check)

    digest = commands.add_parser("digest", help="post (or print) the daily digest now")
    digest.add_argument("--dry-run", action="store_true", help="print instead of posting")
    digest.add_argument("--channel", help="only the digest of this channel ID")
    digest.set_defaults(run=_digest)

    demo = commands.add_parser("demo", help="try everything locally, no accounts needed")
    demo.add_argument("--json", action="store_true", help="print raw Block Kit JSON")
    demo.set_defaults(run=_demo)

    simulate = commands.add_parser("simulate", help="serve the Scenario API simulator locally")
    from bot.scenario.simulator import add_cli_arguments

    add_cli_arguments(simulate)
    simulate.set_defaults(run=_simulate)

    migrate_cmd = commands.add_parser("migrate", help="apply pending database migrations")
    migrate_cmd.set_defaults(run=_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # One line per HTTP request drowns what the command has to say.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        return int(args.run(args, settings))
    except (ConfigError, StoreError, UsageFailure) as exc:
        print(f"budget-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
