"""Throwaway PostgreSQL databases for tests, on the server the harness chose (see
harness/postgres.py: PICKUP_TEST_DATABASE_URL, the server on loopback, or a private cluster).
Each gets a random name and is dropped afterwards, so tests run beside each other and beside a
developer's own data on the same server. A fresh database plus `dbtools.migrate` takes about
0.1 s, so no template is needed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from harness.postgres import execute, postgres
from service.repositories.postgres import PostgresRepository

SERVER = postgres()
ADMIN_DSN = SERVER.admin_dsn
HOST, PORT = urlsplit(ADMIN_DSN).hostname or "127.0.0.1", urlsplit(ADMIN_DSN).port or 5432


def dsn_for(name: str) -> str:
    return SERVER.dsn(name)


async def admin(sql: str) -> None:
    await execute(ADMIN_DSN, sql)


def scratch_database(
    *, migrated: bool = True, to: str = "head"
) -> contextlib.AbstractAsyncContextManager[str]:
    """Yields the DSN of a new database, at revision `to` (default the latest schema), or empty
    with `migrated=False`."""
    return SERVER.scratch_database(migrated=migrated, to=to)


@contextlib.asynccontextmanager
async def open_repository(dsn: str, **overrides: Any) -> AsyncIterator[PostgresRepository]:
    settings: dict[str, Any] = {
        "min_size": 1,
        "max_size": 10,
        "statement_timeout_ms": 5000,
        "connect_retries": 0,
    }
    settings.update(overrides)
    repo = await PostgresRepository.open(dsn, **settings)
    try:
        yield repo
    finally:
        await repo.aclose()
