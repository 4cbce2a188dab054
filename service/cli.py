"""`pickup`: serve, check configuration, seed data."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from service.ai import fake_openai
from service.config import Settings, load_settings, prepare_worker_environment
from service.errors import ConfigError, DataFileError
from service.observability import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pickup", description="Pickup service")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("serve", help="run the HTTP service (uvicorn) from the environment")

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    config_commands.add_parser(
        "check", help="validate the configuration and show it, secrets hidden"
    )

    seed = commands.add_parser("seed", help="load a deterministic demo or scaled dataset")
    seed.add_argument("--stores", type=int, default=5)
    seed.add_argument("--items-per-store", type=int, default=40)
    seed.add_argument("--orders", type=int, default=200)
    seed.add_argument("--seed", type=int, default=42)

    fake = commands.add_parser(
        "fake-openai", help="an OpenAI-compatible Chat Completions server for tests and the lab"
    )
    fake_openai.add_cli_arguments(fake)

    args = parser.parse_args(argv)
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
    except DataFileError as exc:
        print(f"pickup: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


def serve(settings: Settings) -> int:
    import uvicorn

    settings = prepare_worker_environment(settings)
    # Our structlog setup owns every log line (JSON, secrets redacted); uvicorn's own config
    # would add unredacted handlers and a second access log.
    configure_logging(settings.log_level)
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.web_concurrency,
        loop="uvloop",
        http="httptools",
        # Access lines come from our own structured request log; uvicorn's would halve throughput.
        access_log=False,
        log_level=settings.log_level,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        server_header=False,
        log_config=None,
    )
    return 0


def config_check(settings: Settings) -> int:
    print(json.dumps(settings.describe(), indent=2, default=str))
    if settings.openai_api_key is None:
        print(
            "AI recommendations: disabled (no OPENAI_API_KEY): the deterministic fallback answers"
        )
    print("configuration OK")
    return 0


async def seed_data(settings: Settings, args: argparse.Namespace) -> int:
    from service.app import open_repository
    from service.usecases.seed import demo_dataset

    started = time.perf_counter()
    data = demo_dataset(
        stores=args.stores, items_per_store=args.items_per_store, orders=args.orders, seed=args.seed
    )
    repo = await open_repository(settings)
    try:
        await repo.import_dataset(data)
    finally:
        await repo.aclose()
    print(
        f"seeded {len(data.stores)} stores, {len(data.menu_items)} menu items, "
        f"{len(data.orders)} orders into {repo.backend} in {time.perf_counter() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
