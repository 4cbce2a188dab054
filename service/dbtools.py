"""Database and data commands behind `pickup db migrate|rollback|status` and
`pickup data export|import`.

Migrations are alembic revisions of hand-written SQL in service/migrations, run from code with a
`Config` built here, so no alembic.ini is needed. Every migrate and rollback runs in one
transaction that first takes a PostgreSQL advisory lock: two processes migrating at once (two
replicas starting, a deploy hook racing a developer) take turns, and the second finds the schema
already at head and does nothing. PostgreSQL's DDL is transactional, so a failed revision leaves
the schema exactly as it was.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg
import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from service.errors import DataFileError
from service.ports import BulkTransfer, Dataset
from service.repositories import records as rec
from service.repositories.datafile import atomic_write
from service.repositories.postgres import ConnectOptions, DatabaseUnavailableError
from service.repositories.postgres.connection import PoolerMode

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed 64-bit number: the lock only has to mean "migrations" to every process.
MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('pickup:migrations', 0))"
CONNECT_RETRIES = 5

T = TypeVar("T")


class MigrationError(Exception):
    """Raised when a migration command cannot do what was asked (e.g. roll back too far)."""


class DataLossError(MigrationError):
    """Raised when a rollback would drop tables or columns holding data and --force is absent."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def migrate(dsn: str, to: str = "head", *, pooler: PoolerMode = "auto") -> list[str]:
    """Apply every pending revision up to `to` (default: all); returns their ids, oldest first
    (empty when up to date). The lab stops early: its naive baseline runs on the schema before
    the hot-path indexes (`pickup db migrate --to 0001`)."""

    def upgrade(connection: Connection, config: Config) -> list[str]:
        before = _applied(connection, config)
        try:
            command.upgrade(config, to)
        except CommandError as exc:
            raise MigrationError(f"cannot migrate to {to!r}: {exc}") from exc
        return [r for r in _applied(connection, config) if r not in before]

    return await _with_alembic(dsn, upgrade, pooler=pooler)


async def create_database_if_missing(dsn: str) -> str | None:
    """Create the database `dsn` names when the server says it does not exist, as `createdb`
    would, through the server's `postgres` database with the same credentials. Returns its name
    when it was created. A managed database (Neon) already exists, so nothing happens there."""
    options = ConnectOptions.parse(dsn)
    try:
        conn = await options.connect(retries=CONNECT_RETRIES)
    except DatabaseUnavailableError as exc:
        if not isinstance(exc.__cause__, asyncpg.InvalidCatalogNameError):
            raise
    else:
        await conn.close()
        return None
    parts = urlsplit(options.dsn)
    name = unquote(parts.path.lstrip("/"))
    maintenance = replace(options, dsn=urlunsplit(parts._replace(path="/postgres")))
    conn = await maintenance.connect(retries=CONNECT_RETRIES)
    try:
        await conn.execute('CREATE DATABASE "{}"'.format(name.replace('"', '""')))
    except asyncpg.DuplicateDatabaseError:
        return None  # another process created it first
    except asyncpg.InsufficientPrivilegeError as exc:
        raise MigrationError(
            f"database {name!r} does not exist and this role may not create it: "
            f"create it first (createdb {name})"
        ) from exc
    finally:
        await conn.close()
    return name


async def rollback(
    dsn: str, steps: int, *, force: bool = False, pooler: PoolerMode = "auto"
) -> list[str]:
    """Revert the newest `steps` revisions; returns their ids, newest first.

    Refuses (DataLossError) when the reverted revisions would drop a table or column that holds
    data, unless `force`."""
    if steps < 1:
        raise MigrationError("steps must be at least 1")

    def downgrade(connection: Connection, config: Config) -> list[str]:
        applied = _applied(connection, config)
        if steps > len(applied):
            raise MigrationError(
                f"cannot roll back {steps} migrations: only {len(applied)} are applied"
            )
        reverted = applied[::-1][:steps]
        remaining = applied[: len(applied) - steps]
        target = remaining[-1] if remaining else "base"
        if not force:
            lost = _data_dropped_by(connection, config, target)
            if lost:
                raise DataLossError(
                    f"refusing to roll back {', '.join(reverted)}: it would drop "
                    f"{'; '.join(lost)}. Export the data first (`pickup data export "
                    "backup.json`), then run the rollback again with --force."
                )
        command.downgrade(config, target)
        return reverted

    return await _with_alembic(dsn, downgrade, pooler=pooler)


async def status(dsn: str, *, pooler: PoolerMode = "auto") -> str:
    """Which revisions are applied and which are pending, one line each."""

    def describe(connection: Connection, config: Config) -> str:
        applied = _applied(connection, config)
        script = ScriptDirectory.from_config(config)
        revisions = list(reversed(list(script.walk_revisions())))
        pending = sum(1 for r in revisions if r.revision not in applied)
        current = applied[-1] if applied else "none (empty database)"
        lines = [f"current: {current}{' (head)' if applied and not pending else ''}"]
        lines.append(f"pending: {pending}")
        for r in revisions:
            mark = "applied" if r.revision in applied else "pending"
            summary = (r.doc or "").partition("\n")[0]
            lines.append(f"  {mark:8} {r.revision}  {summary}")
        return "\n".join(lines)

    return await _with_alembic(dsn, describe, lock=False, pooler=pooler)


async def export_data(repo: BulkTransfer, path: Path) -> Dataset:
    """Write everything in `repo` to `path` as a pickup-data JSON document; returns the data."""
    data = await repo.export_dataset()
    document = orjson.dumps(rec.dataset_to_document(data))
    await asyncio.to_thread(atomic_write, path, document)
    return data


async def import_data(repo: BulkTransfer, path: Path) -> Dataset:
    """Upsert the pickup-data JSON document at `path` into `repo`; returns what it read."""
    try:
        raw = await asyncio.to_thread(path.read_bytes)
        data = rec.dataset_from_document(orjson.loads(raw))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataFileError(f"cannot read {path} as pickup data: {exc}") from exc
    await repo.import_dataset(data)
    return data


def _columns(connection: Connection) -> set[tuple[str, str]]:
    rows = connection.execute(
        text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name <> 'alembic_version'"
        )
    )
    return {(str(table), str(column)) for table, column in rows}


def _data_dropped_by(connection: Connection, config: Config, target: str) -> list[str]:
    """What a downgrade to `target` would destroy, e.g. ["table orders (1200 rows)"].

    The downgrade is tried inside a savepoint and undone (PostgreSQL DDL is transactional), so
    any revision's effect is seen as it is, not as a list kept by hand beside it."""
    before = _columns(connection)
    trial = connection.begin_nested()
    try:
        command.downgrade(config, target)
        after = _columns(connection)
    finally:
        trial.rollback()
    tables_after = {table for table, _ in after}
    dropped_tables = sorted({table for table, _ in before} - tables_after)
    dropped_columns = sorted((t, c) for t, c in before - after if t in tables_after)
    lost = []
    for table in dropped_tables:
        rows = connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()  # noqa: S608
        if rows:
            lost.append(f"table {table} ({rows} rows)")
    for table, column in dropped_columns:
        rows = connection.execute(
            text(f'SELECT count("{column}") FROM "{table}"')  # noqa: S608
        ).scalar_one()
        if rows:
            lost.append(f"column {table}.{column} ({rows} rows with a value)")
    return lost


def _applied(connection: Connection, config: Config) -> list[str]:
    """Applied revision ids, oldest first."""
    heads = MigrationContext.configure(connection).get_current_heads()
    if not heads:
        return []
    script = ScriptDirectory.from_config(config)
    return [r.revision for r in script.iterate_revisions(heads, "base")][::-1]


async def _with_alembic(
    dsn: str,
    work: Callable[[Connection, Config], T],
    *,
    lock: bool = True,
    pooler: PoolerMode = "auto",
) -> T:
    options = ConnectOptions.parse(dsn, pooler)

    async def connect() -> asyncpg.Connection:
        return await options.connect(retries=CONNECT_RETRIES)

    # alembic drives SQLAlchemy; its asyncpg dialect runs on our own connection, so the URL's
    # parameters are read the same way the service reads them.
    # Behind a transaction pooler (no DATABASE_DIRECT_URL) SQLAlchemy's own statement cache is
    # off too, and each statement it prepares gets a name no other client can have taken.
    def creator() -> Any:
        extra: dict[str, Any] = {}
        if options.pooled:
            extra = {
                "prepared_statement_cache_size": 0,
                "prepared_statement_name_func": lambda: f"__pickup_{uuid.uuid4().hex}__",
            }
        assert engine.sync_engine.dialect.dbapi is not None
        return engine.sync_engine.dialect.dbapi.connect(async_creator_fn=connect, **extra)

    engine = create_async_engine("postgresql+asyncpg://", creator=creator, poolclass=NullPool)
    config = alembic_config()
    try:
        async with engine.begin() as conn:
            if lock:
                await conn.execute(text(MIGRATION_LOCK))

            def run(sync_connection: Connection) -> T:
                config.attributes["connection"] = sync_connection
                return work(sync_connection, config)

            return await conn.run_sync(run)
    finally:
        await engine.dispose()
