"""`pickup`: serve, check configuration, seed data."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import time
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import structlog

from service.ai import fake_openai
from service.config import (
    Settings,
    load_settings,
    prepare_worker_environment,
)
from service.config_keys import env_keys_markdown
from service.errors import ConfigError, DataFileError, DataFileLockedError
from service.observability import configure_logging
from service.ports import Dataset
from service.repositories.postgres import DatabaseUnavailableError
from service.usecases.seed import DemoCatalog

HELP_FORMAT = argparse.ArgumentDefaultsHelpFormatter


class Subcommands:
    """add_subparsers' action, whose parsers all show their defaults in --help."""

    def __init__(self, action: Any) -> None:
        self._action = action

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._action.add_parser(
            name, formatter_class=HELP_FORMAT, **kwargs
        )
        return parser


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """Every command and option of `pickup`, each with help and its default shown."""
    parser = argparse.ArgumentParser(
        prog="pickup", description="Pickup service", formatter_class=HELP_FORMAT
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {package_version('pickup-service')}"
    )
    commands = Subcommands(parser.add_subparsers(dest="command", required=True))

    commands.add_parser("serve", help="run the HTTP service (uvicorn) from the environment")

    config = commands.add_parser("config", help="configuration tools")
    config_commands = Subcommands(config.add_subparsers(dest="config_command", required=True))
    config_commands.add_parser(
        "check", help="validate the configuration and show it, secrets hidden"
    )
    config_commands.add_parser("docs", help="print docs/env-keys.md, generated from Settings")

    seed = commands.add_parser("seed", help="load a deterministic demo or scaled dataset")
    seed.add_argument("--stores", type=positive, default=5, help="stores to create")
    seed.add_argument("--items-per-store", type=positive, default=40, help="menu items per store")
    seed.add_argument("--orders", type=non_negative, default=200, help="orders to create")
    seed.add_argument("--seed", type=int, default=42, help="random seed: same seed, same data")

    db = commands.add_parser("db", help="PostgreSQL schema migrations")
    db_commands = Subcommands(db.add_subparsers(dest="db_command", required=True))
    migrate = db_commands.add_parser(
        "migrate", help="apply pending migrations (safe to run concurrently)"
    )
    migrate.add_argument(
        "--to", default="head", help="stop at this revision (the lab's naive baseline: 0001)"
    )
    rollback = db_commands.add_parser("rollback", help="revert the latest migrations")
    rollback.add_argument("--steps", type=positive, default=1, help="migrations to revert")
    rollback.add_argument(
        "--force",
        action="store_true",
        help="roll back even when that drops tables or columns holding data",
    )
    db_commands.add_parser("status", help="show applied and pending migrations")

    data = commands.add_parser("data", help="move all data between backends")
    data_commands = Subcommands(data.add_subparsers(dest="data_command", required=True))
    export = data_commands.add_parser("export", help="write every record to a JSON document")
    export.add_argument("file", type=Path, help="the JSON document to write")
    load = data_commands.add_parser("import", help="upsert every record of an exported document")
    load.add_argument("file", type=Path, help="a document written by `pickup data export`")

    setup_dev = commands.add_parser(
        "setup-dev", help="create .env, the dev database and demo data (idempotent)"
    )
    setup_dev.add_argument("--database", default="pickup_dev", help="local database name")

    check = commands.add_parser(
        "check-404", help="request every documented route and doc link; fail on any 404"
    )
    check.add_argument(
        "--base-url", default=None, help="the server to check; unset: http://127.0.0.1:$PORT"
    )
    check.add_argument("--staff-key", default=None, help="lets order routes use a real order id")
    check.add_argument(
        "--docs",
        nargs="*",
        type=Path,
        default=None,
        help="markdown files to scan; unset: README.md docs/*.md",
    )

    fake = commands.add_parser(
        "fake-openai", help="an OpenAI-compatible Chat Completions server for tests and the lab"
    )
    fake_openai.add_cli_arguments(fake)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.command == "config" and args.config_command == "docs":
        print(env_keys_markdown(), end="")
        return 0
    if args.command == "setup-dev":
        # Runs before a .env exists, so it loads settings itself once it has written one.
        from service import devsetup

        for line in asyncio.run(devsetup.setup(Path.cwd(), database=args.database)):
            print(f"setup-dev: {line}")
        return 0
    if args.command == "fake-openai":
        # Needs no service configuration: it stands in for an upstream, not for us.
        return fake_openai.main_from_args(args)
    try:
        settings = load_settings()
    except ConfigError as exc:
        # Names every problem; values are never printed, so no secret can leak here.
        print(f"pickup: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "serve":
            return serve(settings)
        if args.command == "config":
            return config_check(settings)
        if args.command == "seed":
            return asyncio.run(seed_data(settings, args))
        if args.command == "db":
            return asyncio.run(database_command(settings, args))
        if args.command == "data":
            return asyncio.run(data_command(settings, args))
        if args.command == "check-404":
            # httpx loads only for this command, not in every served worker.
            from service import check404

            docs = (
                args.docs
                if args.docs is not None
                else [Path("README.md"), *Path("docs").glob("*.md")]
            )
            base_url = args.base_url or f"http://127.0.0.1:{settings.port}"
            return check404.run(base_url, args.staff_key, [d for d in docs if d.is_file()])
    except DataFileLockedError as exc:
        print(f"pickup: {exc}", file=sys.stderr)
        return EXIT_DATA_FILE_LOCKED
    except (DataFileError, DatabaseUnavailableError) as exc:
        print(f"pickup: {exc}", file=sys.stderr)
        return 1
    print(f"pickup: unknown command {args.command}", file=sys.stderr)
    return 2


WORKER_HEALTHCHECK_S = 30
# sysexits' EX_TEMPFAIL: another process writes the JSON data file; retry once it has stopped.
EXIT_DATA_FILE_LOCKED = 75


def serve(settings: Settings) -> int:
    import functools

    import uvicorn

    from service.http.protocol import GuardedHttpToolsProtocol
    from service.preflight import EXIT_DEPENDENCY, preflight

    own_metrics_dir = settings.prometheus_multiproc_dir is None
    settings = prepare_worker_environment(settings)
    if settings.data_backend == "json":
        # Refuse before binding the port when another process writes the file; the worker takes
        # the lock for good when it opens the repository (and fails its start-up if it lost it).
        from service.repositories.datafile import acquire_write_lock

        os.close(acquire_write_lock(settings.json_data_path))
    # Our structlog setup owns every log line (JSON, secrets redacted); uvicorn's own config
    # would add unredacted handlers and a second access log.
    configure_logging(settings.log_level)
    for warning in settings.warnings():
        # Loud on purpose: the process works, but not as the operator probably believes.
        print(f"pickup: WARNING: {warning}", file=sys.stderr)
    # Each dependency once, before the port is bound: a failure is one event and exit code 3.
    problem = asyncio.run(preflight(settings))
    if problem is not None:
        problem.log()
        return EXIT_DEPENDENCY
    config = uvicorn.Config(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.web_concurrency,
        loop="uvloop",
        # httptools with a size limit and a deadline on the request head (431 / 408).
        # uvicorn instantiates whatever it is given with (config, server_state, app_state).
        http=functools.partial(  # type: ignore[arg-type]
            GuardedHttpToolsProtocol,
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=settings.header_timeout_s,
        ),
        limit_concurrency=settings.max_connections,
        # Access lines come from our own structured request log; uvicorn's would halve throughput.
        access_log=False,
        log_level=settings.log_level,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        # uvicorn kills a worker that has not answered its supervisor's ping within this time; its
        # 5 s default also kills workers still importing on a busy host, over and over.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        server_header=False,
        log_config=None,
        # Client identity behind proxies is decided once, by ClientIdentity (TRUST_PROXY,
        # TRUSTED_PROXIES). uvicorn's default would trust X-Forwarded-For from 127.0.0.1 and
        # rewrite the client address first, letting a local client rotate it to dodge limits.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    # uvicorn binds "::" with IPV6_V6ONLY (asyncio's default), i.e. IPv6 only: the socket is made
    # here so that "::" really is dual stack and IPv4 clients still get through.
    sock = dual_stack_socket(settings.port) if settings.host == "::" else config.bind_socket()
    try:
        if config.workers > 1:
            from uvicorn.supervisors import Multiprocess

            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if own_metrics_dir and settings.prometheus_multiproc_dir is not None:
            # The workers' metric files lived in a folder made for this run (several workers,
            # no PROMETHEUS_MULTIPROC_DIR given): nothing reads them once the server is gone.
            shutil.rmtree(settings.prometheus_multiproc_dir, ignore_errors=True)
    if config.workers == 1 and not server.started:
        return 3  # as uvicorn.run: the application failed to start
    return 0


def dual_stack_socket(port: int) -> socket.socket:
    """A listening TCP socket on every IPv6 and IPv4 address (IPv4 as ::ffff:a.b.c.d)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    sock.set_inheritable(True)
    log = structlog.get_logger("service")
    log.info("listening", address=f"http://[::]:{port}", dual_stack=True)
    return sock


def config_check(settings: Settings) -> int:
    print(json.dumps(settings.describe(), indent=2, default=str))
    if settings.openai_api_key is None:
        print(
            "AI recommendations: disabled (no OPENAI_API_KEY): the deterministic fallback answers"
        )
    print("configuration OK")
    return 0


async def seed_data(settings: Settings, args: argparse.Namespace) -> int:
    from service.bootstrap import invalidate_after_cli_write, open_storage

    started = time.perf_counter()
    catalog = DemoCatalog(stores=args.stores, items_per_store=args.items_per_store, seed=args.seed)
    storage = await open_storage(settings)
    try:
        # A backend may stream the orders (PostgreSQL COPYs them in batches, so a million
        # orders never sit in memory at once).
        await storage.repo.import_dataset(
            Dataset(catalog.stores, catalog.menu_items, catalog.orders(args.orders))
        )
    finally:
        await storage.aclose()
    print(
        f"seeded {len(catalog.stores)} stores, {len(catalog.menu_items)} menu items, "
        f"{args.orders} orders into {storage.backend} in {time.perf_counter() - started:.1f}s"
    )
    print(await invalidate_after_cli_write(settings, [s.id for s in catalog.stores]))
    return 0


async def database_command(settings: Settings, args: argparse.Namespace) -> int:
    if settings.data_backend != "postgres" or settings.database_url is None:
        # A deploy hook runs `db migrate` whatever the backend: with JSON there is nothing to do.
        print("DATA_BACKEND is not postgres: no database to migrate")
        return 0
    # alembic and SQLAlchemy load only for these commands, not on every `pickup` start.
    from service import dbtools

    # Migrations want a session of their own: the direct URL when a pooler fronts DATABASE_URL.
    url = settings.database_direct_url or settings.database_url
    dsn = url.get_secret_value()
    pooler = "auto" if settings.database_direct_url else settings.db_pooler
    try:
        # As `createdb` would: README's `DATABASE_URL=…/pickup pickup db migrate` just works.
        if args.db_command == "migrate" and (
            created := await dbtools.create_database_if_missing(dsn)
        ):
            print(f"created database {created}")
        return await _run_database_command(dbtools, dsn, args, pooler)
    except dbtools.MigrationError as exc:
        print(f"pickup: {exc}", file=sys.stderr)
        return 1


async def _run_database_command(
    dbtools: Any, dsn: str, args: argparse.Namespace, pooler: str
) -> int:
    if args.db_command == "migrate":
        applied = await dbtools.migrate(dsn, args.to, pooler=pooler)
        print(f"applied {', '.join(applied)}" if applied else "database is up to date")
    elif args.db_command == "rollback":
        reverted = await dbtools.rollback(dsn, args.steps, force=args.force, pooler=pooler)
        print(f"reverted {', '.join(reverted)}" if reverted else "nothing to roll back")
    else:
        print(await dbtools.status(dsn, pooler=pooler))
    return 0


async def data_command(settings: Settings, args: argparse.Namespace) -> int:
    from service import dbtools
    from service.bootstrap import invalidate_after_cli_write, open_storage

    # An export only reads, so it works beside a running server on the same JSON file.
    storage = await open_storage(settings, writable=args.data_command != "export")
    try:
        if args.data_command == "export":
            data = await dbtools.export_data(storage.repo, args.file)
            verb = "exported"
        else:
            data = await dbtools.import_data(storage.repo, args.file)
            verb = "imported"
    finally:
        await storage.aclose()
    order_ids = [o.id for o in data.orders]  # the list the file or the export held
    print(
        f"{verb} {len(data.stores)} stores, {len(data.menu_items)} menu items, "
        f"{len(order_ids)} orders ({storage.backend} <-> {args.file})"
    )
    if args.data_command == "import":
        print(await invalidate_after_cli_write(settings, [s.id for s in data.stores], order_ids))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
