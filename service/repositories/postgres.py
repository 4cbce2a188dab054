"""The production backend: PostgreSQL through one asyncpg pool.

- Each unit of work is one `pool.acquire()` and, when it writes, one transaction.
- Slot capacity holds across connections and processes: a transaction-scoped advisory lock per
  (store, slot) serialises the bookings of that slot, then one statement counts the live orders
  and inserts only while there is room (see postgres_queries).
- Idempotency rests on the unique key: a retry that waited on the same slot lock finds and
  replays the first order; one that raced it from elsewhere fails on the constraint, then replays.
- Driver, server and socket errors are translated here, at the boundary, into
  ServiceUnavailableError (503) with a fixed message; the details go to the log, never to clients.
- asyncpg's pool replaces dead connections on the next acquire, so it heals by itself after a
  database restart. A read whose connection died under it is repeated once on a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, TypeVar, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import structlog

from service.domain.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    NotFoundError,
    ServiceUnavailableError,
    SlotFullError,
)
from service.domain.ids import canonical_id
from service.domain.models import MenuItem, Order, OrderStatus, Store
from service.errors import DataFileError
from service.repositories import postgres_queries as q
from service.repositories.base import Dataset, IdempotencyKey

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]

T = TypeVar("T")
log = structlog.get_logger("service.postgres")

QueryProfile = Literal["optimized", "naive"]

# Everything that means "the database could not serve this request". PickupError never matches.
DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
# The connection died under the query (restart, failover, pg_terminate_backend). When the
# server's goodbye reaches an idle connection just as a query starts, asyncpg reports the
# collision as an InternalClientError; that connection is gone too.
LOST_CONNECTION = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InternalClientError,
)
# What an import can get wrong in the data itself; reported as a bad dataset, not an outage.
BAD_DATASET = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
    asyncpg.CardinalityViolationError,
    ValueError,
)
# Connect failures that retrying cannot fix: wrong credentials, no such database, bad TLS setup.
FATAL_AT_CONNECT = (
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.ClientConfigurationError,
)
ACQUIRE_TIMEOUT_S = 10.0  # a request waiting longer than this for a connection gets a 503
CLIENT_TIMEOUT_MARGIN_S = 5.0  # client-side deadline beyond the server's statement_timeout
DEFAULT_CONNECT_TIMEOUT_S = 5.0
FIRST_RETRY_DELAY_S, MAX_RETRY_DELAY_S = 0.25, 5.0

SSLMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES: tuple[SSLMode, ...] = get_args(SSLMode)
# libpq client settings with no asyncpg equivalent. Left in the URL, asyncpg would pass them to
# the server as run-time settings and the server would refuse the session: Neon's URLs carry
# `channel_binding=require` (asyncpg negotiates SCRAM by itself).
LIBPQ_ONLY = frozenset(
    {
        "channel_binding",
        "gssencmode",
        "sslcompression",
        "sslsni",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "fallback_application_name",
    }
)


class DatabaseUnavailableError(Exception):
    """Raised at start-up when PostgreSQL is unreachable after every retry, refuses us, or
    DATABASE_URL is malformed. The message names the server but never the password."""


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """DATABASE_URL turned into asyncpg's arguments; `where` names the server, without secrets."""

    dsn: str
    ssl: SSLMode | None
    timeout: float
    where: str

    @classmethod
    def parse(cls, url: str) -> ConnectOptions:
        parts = urlsplit(url)
        # postgres:// (Heroku, Railway) and postgresql+asyncpg:// (SQLAlchemy) mean the same.
        if parts.scheme.partition("+")[0] not in ("postgres", "postgresql"):
            raise DatabaseUnavailableError("DATABASE_URL must be a postgresql:// URL")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        # libpq's sslmode values are exactly the modes asyncpg's ssl= argument accepts.
        mode = query.pop("sslmode", None)
        ssl = next((m for m in SSL_MODES if m == mode), None)
        if mode is not None and ssl is None:
            raise DatabaseUnavailableError(f"DATABASE_URL: sslmode must be one of {SSL_MODES}")
        # libpq's connect_timeout is whole seconds, 0 meaning "wait for ever": we keep a bound.
        timeout = query.pop("connect_timeout", "")
        seconds = float(timeout) if timeout.isdigit() and int(timeout) > 0 else None
        kept = {k: v for k, v in query.items() if k not in LIBPQ_ONLY}
        return cls(
            dsn=urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), "")),
            ssl=ssl,
            timeout=seconds or DEFAULT_CONNECT_TIMEOUT_S,
            where=f"{parts.netloc.rpartition('@')[2] or 'localhost'}{parts.path}",
        )

    async def connect(self, *, retries: int) -> asyncpg.Connection:
        return await self.retrying(
            lambda: asyncpg.connect(self.dsn, ssl=self.ssl, timeout=self.timeout), retries=retries
        )

    async def retrying(self, start: Callable[[], Awaitable[T]], *, retries: int) -> T:
        """Run `start` until it succeeds, backing off exponentially between attempts."""
        failures, delay = 0, FIRST_RETRY_DELAY_S
        while True:
            try:
                return await start()
            except FATAL_AT_CONNECT as exc:
                raise DatabaseUnavailableError(
                    f"PostgreSQL at {self.where} refused the connection: {exc}"
                ) from exc
            except DATABASE_ERRORS as exc:
                failures += 1
                if failures > retries:
                    raise DatabaseUnavailableError(
                        f"cannot reach PostgreSQL at {self.where} after {failures} attempts: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                log.warning(
                    "database_connect_retry",
                    where=self.where,
                    attempt=failures,
                    error=type(exc).__name__,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)


class PostgresRepository:
    backend = "postgres"

    def __init__(self, pool: asyncpg.Pool, *, query_profile: QueryProfile) -> None:
        self._pool = pool
        self._q = q.PROFILES[query_profile]
        self.query_profile: QueryProfile = query_profile

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        min_size: int,
        max_size: int,
        statement_timeout_ms: int,
        query_profile: QueryProfile = "optimized",
        connect_retries: int = 5,
    ) -> PostgresRepository:
        if query_profile not in q.PROFILES:
            raise ValueError(f"query_profile must be one of {sorted(q.PROFILES)}")
        options = ConnectOptions.parse(dsn)
        # asyncpg adds these to any settings the URL carries (e.g. options=-c ...).
        settings = {"statement_timeout": str(statement_timeout_ms)}
        command_timeout = (
            statement_timeout_ms / 1000 + CLIENT_TIMEOUT_MARGIN_S if statement_timeout_ms else None
        )

        async def start() -> asyncpg.Pool:
            pool = asyncpg.create_pool(
                options.dsn,
                ssl=options.ssl,
                timeout=options.timeout,
                server_settings=settings,
                min_size=min_size,
                max_size=max_size,
                command_timeout=command_timeout,
            )
            try:
                await pool
                # Also proves that a connection works, which min_size=0 would not have.
                has_schema = await pool.fetchval(q.HAS_SCHEMA)
            except BaseException:
                pool.terminate()
                raise
            if not has_schema:
                pool.terminate()
                raise DatabaseUnavailableError(
                    f"PostgreSQL at {options.where} has no pickup tables yet: "
                    "run `pickup db migrate` first"
                )
            return pool

        pool = await options.retrying(start, retries=connect_retries)
        log.info("database_pool_open", where=options.where, min_size=min_size, max_size=max_size)
        return cls(pool, query_profile=query_profile)

    async def ping(self) -> None:
        await self._read("ping", lambda conn: conn.fetchval(q.PING))

    def pool_stats(self) -> dict[str, int]:
        """Connections by state, for the metrics gauge; their sum is the pool's size."""
        idle = self._pool.get_idle_size()
        return {"idle": idle, "in_use": self._pool.get_size() - idle}

    async def aclose(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), timeout=ACQUIRE_TIMEOUT_S)
        except TimeoutError:
            log.warning("database_pool_close_timeout")
            self._pool.terminate()

    async def is_empty(self) -> bool:
        return bool(await self._read("is_empty", lambda conn: conn.fetchval(q.IS_EMPTY)))

    # -- stores and menus ---------------------------------------------------------------------

    async def list_stores(self, *, limit: int, after: str | None) -> list[Store]:
        if after is None:
            rows = await self._read("list_stores", lambda c: c.fetch(self._q.stores_first, limit))
        else:
            after_id = _cursor_id(after)
            rows = await self._read(
                "list_stores", lambda c: c.fetch(self._q.stores_after, after_id, limit)
            )
        return [q.store_from_row(r) for r in rows]

    async def get_store(self, store_id: str) -> Store | None:
        if (sid := _uuid(store_id)) is None:
            return None
        row = await self._read("get_store", lambda c: c.fetchrow(self._q.store, sid))
        return None if row is None else q.store_from_row(row)

    async def save_store(self, store: Store) -> None:
        await self._write("save_store", lambda c: c.execute(q.SAVE_STORE, *q.store_args(store)))

    async def list_menu(self, store_id: str) -> list[MenuItem]:
        if (sid := _uuid(store_id)) is None:
            return []
        rows = await self._read("list_menu", lambda c: c.fetch(self._q.menu, sid))
        return [q.item_from_row(r) for r in rows]

    async def get_menu_item(self, item_id: str) -> MenuItem | None:
        if (iid := _uuid(item_id)) is None:
            return None
        row = await self._read("get_menu_item", lambda c: c.fetchrow(self._q.menu_item, iid))
        return None if row is None else q.item_from_row(row)

    async def save_menu_item(self, item: MenuItem) -> None:
        await self._write(
            "save_menu_item", lambda c: c.execute(q.SAVE_MENU_ITEM, *q.item_args(item))
        )

    async def held_by_slot(
        self, store_id: str, start: datetime, end: datetime
    ) -> dict[datetime, int]:
        if (sid := _uuid(store_id)) is None:
            return {}
        rows = await self._read(
            "held_by_slot", lambda c: c.fetch(self._q.held_by_slot, sid, start, end)
        )
        return {r["pickup_slot_start"]: r["held"] for r in rows}

    # -- orders -------------------------------------------------------------------------------

    async def create_order(
        self, order: Order, *, capacity: int, idempotency: IdempotencyKey | None
    ) -> tuple[Order, bool]:
        return await self._write(
            "create_order", lambda conn: self._book(conn, order, capacity, idempotency)
        )

    async def get_order(self, order_id: str) -> Order | None:
        if (oid := _uuid(order_id)) is None:
            return None

        async def load(conn: Connection) -> Order | None:
            row = await conn.fetchrow(self._q.order, oid)
            return None if row is None else (await self._orders(conn, [row]))[0]

        return await self._read("get_order", load)

    async def get_idempotent(self, key: str) -> tuple[str, Order] | None:
        return await self._read("get_idempotent", lambda conn: self._idempotent(conn, key))

    async def update_order(self, order_id: str, change: Callable[[Order], Order]) -> Order:
        if (oid := _uuid(order_id)) is None:
            raise NotFoundError("no order with this id")

        async def apply(conn: Connection) -> Order:
            async with conn.transaction():
                row = await conn.fetchrow(self._q.order_for_update, oid)  # locks the row
                if row is None:
                    raise NotFoundError("no order with this id")
                current = (await self._orders(conn, [row]))[0]
                updated = change(current)
                await conn.execute(q.UPDATE_ORDER, oid, *q.order_args(updated)[1:])
                if updated.lines != current.lines:
                    await conn.execute(q.DELETE_LINES, oid)
                    await conn.execute(q.INSERT_LINES, oid, *q.line_arrays(updated.lines))
                return updated

        return await self._write("update_order", apply)

    async def list_orders(
        self,
        store_id: str,
        *,
        status: OrderStatus | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> list[Order]:
        if (sid := _uuid(store_id)) is None:
            return []
        if after is not None:
            after = (after[0], _cursor_id(after[1]))
        sql, args = self._q.list_orders(sid, status, start, end, after, limit)

        async def load(conn: Connection) -> list[Order]:
            return await self._orders(conn, await conn.fetch(sql, *args))

        return await self._read("list_orders", load)

    # -- datasets -----------------------------------------------------------------------------

    async def import_dataset(self, data: Dataset) -> None:
        await self.bulk_load(data.stores, data.menu_items, data.orders, data.idempotency)

    async def bulk_load(
        self,
        stores: Iterable[Store],
        menu_items: Iterable[MenuItem],
        orders: Iterable[Order],
        idempotency: Iterable[tuple[IdempotencyKey, str]] = (),
        *,
        chunk_size: int = q.BULK_CHUNK,
    ) -> int:
        """Upsert everything by id in one transaction, streaming `orders` in COPY batches.

        `orders` may be any iterable, e.g. a generator, so a dataset larger than memory loads.
        Returns the number of orders loaded. Raises DataFileError when the data breaks a
        constraint (an order of an unknown store, a negative price, an id listed twice).
        """

        async def load(conn: Connection) -> int:
            async with conn.transaction():
                try:
                    return await q.load(conn, stores, menu_items, orders, idempotency, chunk_size)
                except BAD_DATASET as exc:
                    raise DataFileError(f"the database refused the dataset: {exc}") from exc

        return await self._write("import_dataset", load)

    async def export_dataset(self) -> Dataset:
        return await self._read("export_dataset", q.export)

    # -- units of work ------------------------------------------------------------------------

    async def _book(
        self,
        conn: Connection,
        order: Order,
        capacity: int,
        idempotency: IdempotencyKey | None,
    ) -> tuple[Order, bool]:
        key = None if idempotency is None else idempotency.key
        fingerprint = None if idempotency is None else idempotency.fingerprint
        try:
            async with conn.transaction():
                await conn.execute(q.LOCK_SLOT, order.store_id, order.pickup_slot_start)
                if idempotency is not None:
                    earlier = await self._idempotent(conn, idempotency.key)
                    if earlier is not None:
                        return _replay(earlier, idempotency)
                inserted = await conn.fetchval(
                    self._q.insert_order,
                    *q.order_args(order),
                    capacity,
                    *q.line_arrays(order.lines),
                    key,
                    fingerprint,
                )
                if not inserted:
                    raise SlotFullError(
                        "this pickup slot is full; choose another",
                        details={
                            "pickup_slot_start": order.pickup_slot_start.isoformat(),
                            "capacity": capacity,
                        },
                    )
                return order, True
        except asyncpg.UniqueViolationError as exc:
            if idempotency is None or exc.constraint_name != "idempotency_keys_pkey":
                raise
            # The same key was booked at the same moment for another slot (so not under our
            # lock). Our insert waited for that transaction to commit, so its order is visible.
            earlier = await self._idempotent(conn, idempotency.key)
            if earlier is None:
                raise
            return _replay(earlier, idempotency)

    async def _idempotent(self, conn: Connection, key: str) -> tuple[str, Order] | None:
        row = await conn.fetchrow(self._q.idempotent, key)
        if row is None:
            return None
        return row["fingerprint"], (await self._orders(conn, [row]))[0]

    async def _orders(self, conn: Connection, rows: Sequence[asyncpg.Record]) -> list[Order]:
        if self._q.lines_of_order is None:
            return [q.order_from_row(r, r["lines"]) for r in rows]
        lines_sql = self._q.lines_of_order  # the naive profile: one more query per order
        return [
            q.order_from_row(r, q.line_tuples(await conn.fetch(lines_sql, r["id"]))) for r in rows
        ]

    # -- the boundary -------------------------------------------------------------------------

    async def _run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            return await work(conn)

    async def _read(self, operation: str, work: Callable[[Connection], Awaitable[T]]) -> T:
        try:
            try:
                return await self._run(work)
            except LOST_CONNECTION as exc:
                # Reads are safe to repeat; the pool hands out a fresh connection this time.
                log.info("database_connection_lost", operation=operation, error=type(exc).__name__)
                return await self._run(work)
        except DATABASE_ERRORS as exc:
            raise _unavailable(operation, exc) from exc

    async def _write(self, operation: str, work: Callable[[Connection], Awaitable[T]]) -> T:
        # Never repeated here: a commit whose answer was lost may have happened. Clients retry
        # with their Idempotency-Key instead.
        try:
            return await self._run(work)
        except DATABASE_ERRORS as exc:
            raise _unavailable(operation, exc) from exc


def _unavailable(operation: str, exc: BaseException) -> ServiceUnavailableError:
    log.warning(
        "database_error",
        operation=operation,
        error_type=type(exc).__name__,
        sqlstate=getattr(exc, "sqlstate", None),
        error=str(exc),
    )
    return ServiceUnavailableError("the database is unavailable; please retry shortly")


def _replay(earlier: tuple[str, Order], idempotency: IdempotencyKey) -> tuple[Order, bool]:
    fingerprint, order = earlier
    if fingerprint != idempotency.fingerprint:
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used with a different request"
        )
    return order, False


def _uuid(value: str) -> str | None:
    # Ids are UUIDs, so anything else names nothing (as a lookup in the JSON backend would).
    return canonical_id(value)


def _cursor_id(value: str) -> str:
    if (found := _uuid(value)) is None:
        raise InvalidInputError(
            "cursor is not valid; pass back next_cursor exactly as received",
            details=[{"field": "cursor", "message": "invalid cursor"}],
        )
    return found
