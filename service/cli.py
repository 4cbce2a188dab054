"""`pickup`: serve, check configuration, seed data."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from service import check404
from service.ai import fake_openai
from service.config import (
    Settings,
    env_keys_markdown,
    load_settings,
    prepare_worker_environment,
)
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
    config_commands.add_parser("docs", help="print docs/env-keys.md, generated from Settings")

    seed = commands.add_parser("seed", help="load a deterministic demo or scaled dataset")
    seed.add_argument("--stores", type=int, default=5)
    seed.add_argument("--items-per-store", type=int, default=40)
    seed.add_argument("--orders", type=int, default=200)
    seed.add_argument("--seed", type=int, default=42)

    check = commands.add_parser(
        "check-404", help="request every documented route and doc link; fail on any 404"
    )
    check.add_argument("--base-url", default=None, help="default: http://127.0.0.1:$PORT")
    check.add_argument("--staff-key", default=None, help="lets order routes use a real order id")
    check.add_argument("--docs", nargs="*", type=Path, default=None,
                       help="markdown files to scan (default: README.md docs/*.md)")  # fmt: skip

    fake = commands.add_parser(
        "fake-openai", help="an OpenAI-compatible Chat Completions server for tests and the lab"
    )
    fake_openai.add_cli_arguments(fake)

    args = parser.parse_args(argv)
    if args.command == "config" and args.config_command == "docs":
        print(env_keys_markdown(), end="")
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
        if args.command == "check-404":
            docs = (
                args.docs
                if args.docs is not None
                else [Path("README.md"), *Path("docs").glob("*.md")]
            )
            base_url = args.base_url or f"http://127.0.0.1:{settings.port}"
            return check404.run(base_url, args.staff_key, [d for d in docs if d.is_file()])
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
