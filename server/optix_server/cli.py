"""The `optix` command: `optix serve [--services a,b] [--port N]`, `optix migrate` and
`optix rotate-brokerage-keys`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Sequence

from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from optix_server.infra.app import build_dependencies, close_dependencies, serve
from optix_server.infra.db import Database, DatabaseConfigError, migrate, pending_migrations
from optix_server.infra.env import SettingsError
from optix_server.infra.logging import configure_logging
from optix_server.infra.settings import Settings, parse_services
from optix_server.services import create_modules


class StartupError(Exception):
    """A condition that stops the process with a one-line reason instead of a traceback."""


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


def _describe(exc: BaseException) -> str:
    # The first line of the innermost cause is usually the useful part ("connection refused").
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    text = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
    return text[:300]


async def _check_database(database: Database) -> None:
    try:
        await database.ping()
    except Exception as exc:
        await database.dispose()
        raise StartupError(
            f"cannot reach the database at {_safe_url(database.url)}: {_describe(exc)}"
        ) from None


async def _check_schema(database: Database) -> None:
    at, heads = await pending_migrations(database)
    if at != heads:
        found = ", ".join(sorted(at)) or "no schema"
        raise StartupError(
            f"the database at {_safe_url(database.url)} is not migrated ({found}; the code needs"
            f" {', '.join(sorted(heads))}): run `optix migrate` first"
        )


async def _check_redis(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=5)
    try:
        await client.ping()
    except Exception as exc:
        raise StartupError(f"cannot reach Redis at {_safe_url(url)}: {_describe(exc)}") from None
    finally:
        await client.aclose()


async def _serve(settings: Settings) -> None:
    deps = build_dependencies(settings)
    try:
        await _check_database(deps.database)
        if settings.redis_url:
            await _check_redis(settings.redis_url)
        if deps.database.is_sqlite:
            # The embedded default must just work on a fresh clone.
            await migrate(deps.database)
        else:
            # A shared database is migrated on purpose (`optix migrate`, a deploy job), never
            # by whichever replica starts first; serving an older schema fails call by call.
            await _check_schema(deps.database)
        modules = create_modules(deps, settings.services)
    except BaseException:
        await close_dependencies(deps)
        raise
    await serve(settings, modules, deps)


async def _migrate(settings: Settings) -> None:
    database = Database(settings.database_url)
    try:
        await _check_database(database)
        await migrate(database)
    finally:
        await database.dispose()


async def _rotate_brokerage_keys(settings: Settings) -> int:
    """Re-seal every stored provider token under the current (first) key; 1 when some did not
    open with any configured key (listed by row, never by content)."""
    # Imported here: serving loads slices by name, and the other commands need none of this one.
    from optix_server.brokerage.config import BrokerageSettings
    from optix_server.brokerage.repository import BrokerageRepository
    from optix_server.brokerage.tokens import reseal_all
    from optix_server.brokerage.wiring import token_box

    database = Database(settings.database_url)
    try:
        await _check_database(database)
        box = token_box(settings, BrokerageSettings.from_env(settings.env))
        report = await reseal_all(BrokerageRepository(database), box)
    finally:
        await database.dispose()
    print(
        f"brokerage tokens: {report.scanned} scanned, {report.resealed} re-sealed under key "
        f"{box.current_key_id!r}, {report.skipped} changed meanwhile, "
        f"{len(report.unreadable)} unreadable"
    )
    for row in report.unreadable:
        print(f"  unreadable: {row}", file=sys.stderr)
    return 1 if report.unreadable else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for the `optix` command."""
    parser = argparse.ArgumentParser(prog="optix", description="OPTIX gRPC services")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="serve the gRPC services")
    serve_cmd.add_argument("--services", help="comma-separated subset (default: all)")
    serve_cmd.add_argument("--port", type=int, help="port to listen on (default 50051; 0 = any)")
    serve_cmd.add_argument("--host", help="address to bind (default 127.0.0.1)")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser(
        "rotate-brokerage-keys",
        help="re-seal stored brokerage tokens under the first key of OPTIX_BROKERAGE_TOKEN_KEYS",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `optix` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
        overrides: dict[str, object] = {}
        if getattr(args, "services", None):
            overrides["services"] = parse_services(args.services)
        if getattr(args, "port", None) is not None:
            overrides["port"] = args.port
        if getattr(args, "host", None):
            overrides["host"] = args.host
        settings = dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == "rotate-brokerage-keys":
            return asyncio.run(_rotate_brokerage_keys(settings))
        else:
            asyncio.run(_migrate(settings))
    except (SettingsError, DatabaseConfigError, StartupError) as exc:
        print(f"optix: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"optix: {_describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
