"""The production backend: PostgreSQL through one asyncpg pool.

- Each unit of work is one `pool.acquire()` and, when it writes, one transaction.
- Slot capacity holds across connections and processes: a transaction-scoped advisory lock per
  (store, slot) serialises the bookings of that slot; under it, the live orders are counted,
  `domain.booking.ensure_room` decides, and the order is inserted.
- Idempotency rests on the unique key: a retry that waited on the same slot lock finds and
  replays the first order; one that raced it from elsewhere fails on the constraint, then replays.
- Driver, server and socket errors are translated here, at the boundary, into
  ServiceUnavailableError (503) with a fixed message; the details go to the log, never to clients.
- Behind a transaction pooler (Neon's `-pooler` endpoint, PgBouncer in transaction mode; see
  `connection.behind_transaction_pooler`) nothing may live in the session: no statement cache,
  no `statement_timeout` startup setting. Every unit of work is then one transaction that starts
  with `SET LOCAL statement_timeout`, so all its statements run on one server connection.
- asyncpg's pool replaces dead connections on the next acquire, so it heals by itself after a
  database restart. A read whose connection died under it is repeated once on a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

import asyncpg
import structlog

from service.domain.errors import InvalidInputError, NotFoundError
from service.domain.ids import canonical_id
from service.domain.models import MenuItem, Order, Store
from service.errors import DataFileError
from service.ports import Dataset, NewOrder, OrderQuery
from service.repositories.postgres import bulk
from service.repositories.postgres import mappers as m
from service.repositories.postgres import sql as q
from service.repositories.postgres.booking import book, idempotent
from service.repositories.postgres.connection import (
    ACQUIRE_TIMEOUT_S,
    BAD_DATASET,
    CLIENT_TIMEOUT_MARGIN_S,
    DATABASE_ERRORS,
    LOST_CONNECTION,
    ConnectOptions,
    DatabaseUnavailableError,
    PoolerMode,
    unavailable,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]

T = TypeVar("T")
log = structlog.get_logger("service.postgres")
StatementObserver = Callable[[], None]
Isolation = Literal["read_committed", "repeatable_read", "serializable"]


class PostgresRepository:
    backend = "postgres"

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        queries: q.Queries = q.OPTIMIZED,
        per_transaction_timeout_ms: int | None = None,
    ) -> None:
        """`per_transaction_timeout_ms`: set when behind a transaction pooler; each unit of work
        is then one transaction opening with `SET LOCAL statement_timeout` to this value."""
        self._pool = pool
        self._q = queries
        self._local_timeout = (
            None
            if per_transaction_timeout_ms is None
            else f"SET LOCAL statement_timeout = {int(per_transaction_timeout_ms)}"
        )

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        min_size: int,
        max_size: int,
        statement_timeout_ms: int,
        queries: q.Queries = q.OPTIMIZED,
        on_statement: StatementObserver | None = None,
        connect_retries: int = 5,
        pooler: PoolerMode = "auto",
    ) -> PostgresRepository:
        """`queries`: the SQL profile (production's unless the lab passes its baseline).
        `on_statement`: called once per SQL statement a pooled connection executes.
        `pooler`: DB_POOLER (see `connection.behind_transaction_pooler`)."""
        options = ConnectOptions.parse(dsn, pooler)
        # asyncpg adds these to any settings the URL carries (e.g. options=-c ...). A transaction
        # pooler refuses startup settings it does not know: there the timeout is per transaction.
        settings = {} if options.pooled else {"statement_timeout": str(statement_timeout_ms)}
        local_timeout = statement_timeout_ms if options.pooled else None
        command_timeout = (
            statement_timeout_ms / 1000 + CLIENT_TIMEOUT_MARGIN_S if statement_timeout_ms else None
        )

        async def init(conn: asyncpg.Connection) -> None:
            if on_statement is not None:
                conn.add_query_logger(lambda _record: on_statement())

        async def start() -> asyncpg.Pool:
            pool = asyncpg.create_pool(
                options.dsn,
                init=init,
                ssl=options.ssl,
                timeout=options.timeout,
                server_settings=settings,
                statement_cache_size=options.statement_cache_size,
                min_size=min_size,
                max_size=max_size,
                command_timeout=command_timeout,
            )
            try:
                await pool
                # Also proves that a connection works, which min_size=0 would not have.
                async with pool.acquire() as conn, conn.transaction():
                    has_schema = await conn.fetchval(q.HAS_SCHEMA)
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
        log.info(
            "database_pool_open",
            where=options.where,
            min_size=min_size,
            max_size=max_size,
            transaction_pooler=options.pooled,
        )
        return cls(pool, queries=queries, per_transaction_timeout_ms=local_timeout)

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
        return [m.store_from_row(r) for r in rows]

    async def get_store(self, store_id: str) -> Store | None:
        return await self._get_row("get_store", self._q.store, store_id, m.store_from_row)

    async def save_store(self, store: Store) -> None:
        await self._write("save_store", lambda c: c.execute(q.SAVE_STORE, *m.store_args(store)))

    async def update_store(self, store_id: str, change: Callable[[Store], Store]) -> Store:
        return await self._update_row("update_store", _STORES, store_id, change)

    async def list_menu(self, store_id: str) -> list[MenuItem]:
        if (sid := canonical_id(store_id)) is None:
            return []
        rows = await self._read("list_menu", lambda c: c.fetch(self._q.menu, sid))
        return [m.item_from_row(r) for r in rows]

    async def get_menu_item(self, item_id: str) -> MenuItem | None:
        return await self._get_row("get_menu_item", self._q.menu_item, item_id, m.item_from_row)

    async def save_menu_item(self, item: MenuItem) -> None:
        await self._write(
            "save_menu_item", lambda c: c.execute(q.SAVE_MENU_ITEM, *m.item_args(item))
        )

    async def update_menu_item(
        self, item_id: str, change: Callable[[MenuItem], MenuItem]
    ) -> MenuItem:
        return await self._update_row("update_menu_item", _MENU_ITEMS, item_id, change)

    async def held_by_slot(
        self, store_id: str, start: datetime, end: datetime
    ) -> dict[datetime, int]:
        if (sid := canonical_id(store_id)) is None:
            return {}
        rows = await self._read(
            "held_by_slot", lambda c: c.fetch(self._q.held_by_slot, sid, start, end)
        )
        return {r["pickup_slot_start"]: r["held"] for r in rows}

    # -- orders -------------------------------------------------------------------------------

    async def create_order(self, new: NewOrder) -> tuple[Order, bool]:
        return await self._write("create_order", lambda conn: book(conn, self._q, new))

    async def get_order(self, order_id: str) -> Order | None:
        if (oid := canonical_id(order_id)) is None:
            return None

        async def load(conn: Connection) -> Order | None:
            row = await conn.fetchrow(self._q.order, oid)
            return None if row is None else (await self._q.orders_from_rows(conn, [row]))[0]

        return await self._read("get_order", load)

    async def get_idempotent(self, key: str) -> tuple[str, Order] | None:
        return await self._read("get_idempotent", lambda conn: idempotent(conn, self._q, key))

    async def update_order(self, order_id: str, change: Callable[[Order], Order]) -> Order:
        if (oid := canonical_id(order_id)) is None:
            raise NotFoundError("no order with this id")

        async def apply(conn: Connection) -> Order:
            async with conn.transaction():
                row = await conn.fetchrow(self._q.order_for_update, oid)  # locks the row
                if row is None:
                    raise NotFoundError("no order with this id")
                current = (await self._q.orders_from_rows(conn, [row]))[0]
                updated = change(current)
                await conn.execute(q.UPDATE_ORDER, oid, *m.order_args(updated)[1:])
                if updated.lines != current.lines:
                    await conn.execute(q.DELETE_LINES, oid)
                    await conn.execute(q.INSERT_LINES, oid, *m.line_arrays(updated.lines))
                return updated

        return await self._write("update_order", apply)

    async def list_orders(self, query: OrderQuery) -> list[Order]:
        if (sid := canonical_id(query.store_id)) is None:
            return []
        after = query.after
        if after is not None:
            after = (after[0], _cursor_id(after[1]))
        sql, args = self._q.list_orders(replace(query, store_id=sid, after=after))

        async def load(conn: Connection) -> list[Order]:
            return await self._q.orders_from_rows(conn, await conn.fetch(sql, *args))

        return await self._read("list_orders", load)

    # -- datasets -----------------------------------------------------------------------------

    async def import_dataset(self, data: Dataset, *, chunk_size: int = bulk.BULK_CHUNK) -> int:
        """Upsert everything by id in one transaction, streaming `data.orders` in COPY batches.

        The orders may be any iterable, e.g. a generator, so a dataset larger than memory loads.
        Returns the number of orders loaded. Raises DataFileError when the data breaks a
        constraint (an order of an unknown store, a negative price, an id listed twice).
        """

        async def load(conn: Connection) -> int:
            async with conn.transaction():
                try:
                    return await bulk.load(conn, data, chunk_size)
                except BAD_DATASET as exc:
                    raise DataFileError(f"the database refused the dataset: {exc}") from exc

        return await self._write("import_dataset", load)

    async def export_dataset(self) -> Dataset:
        return await self._read("export_dataset", bulk.export, isolation="repeatable_read")

    # -- units of work ------------------------------------------------------------------------

    async def _get_row(
        self,
        operation: str,
        sql: str,
        row_id: str,
        from_row: Callable[[asyncpg.Record], T],
    ) -> T | None:
        # An id that is not a UUID names no row; asking the database would only fail the cast.
        if (rid := canonical_id(row_id)) is None:
            return None
        row = await self._read(operation, lambda c: c.fetchrow(sql, rid))
        return None if row is None else from_row(row)

    async def _update_row(
        self, operation: str, rows: _Rows[T], row_id: str, change: Callable[[T], T]
    ) -> T:
        """Read-modify-write of one row in one transaction; the row stays locked until it ends,
        so concurrent edits take turns and each applies to the other's result."""
        missing = NotFoundError(f"no {rows.noun} with this id", details={rows.id_field: row_id})
        if (rid := canonical_id(row_id)) is None:
            raise missing

        async def apply(conn: Connection) -> T:
            async with conn.transaction():
                row = await conn.fetchrow(rows.for_update, rid)  # locks the row
                if row is None:
                    raise missing
                updated = change(rows.from_row(row))
                await conn.execute(rows.save, *rows.args(updated))
                return updated

        return await self._write(operation, apply)

    # -- the boundary -------------------------------------------------------------------------

    async def _run(
        self, work: Callable[[Connection], Awaitable[T]], isolation: Isolation | None = None
    ) -> T:
        """One unit of work on one connection. `isolation`: the level `work` opens its own
        transaction with, which the outer one must share behind a transaction pooler."""
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            if self._local_timeout is None:
                return await work(conn)
            async with conn.transaction(isolation=isolation):
                await conn.execute(self._local_timeout)
                return await work(conn)

    async def _read(
        self,
        operation: str,
        work: Callable[[Connection], Awaitable[T]],
        isolation: Isolation | None = None,
    ) -> T:
        try:
            try:
                return await self._run(work, isolation)
            except LOST_CONNECTION as exc:
                # Reads are safe to repeat; the pool hands out a fresh connection this time.
                log.info("database_connection_lost", operation=operation, error=type(exc).__name__)
                return await self._run(work, isolation)
        except DATABASE_ERRORS as exc:
            raise unavailable(operation, exc) from exc

    async def _write(self, operation: str, work: Callable[[Connection], Awaitable[T]]) -> T:
        # Never repeated here: a commit whose answer was lost may have happened. Clients retry
        # with their Idempotency-Key instead.
        try:
            return await self._run(work)
        except DATABASE_ERRORS as exc:
            raise unavailable(operation, exc) from exc


@dataclass(frozen=True, slots=True)
class _Rows(Generic[T]):
    """How one kind of record is locked, read and saved as a single row, and named when absent."""

    noun: str
    id_field: str
    for_update: str
    from_row: Callable[[asyncpg.Record], T]
    save: str
    args: Callable[[T], Sequence[object]]


_STORES = _Rows(
    "store", "store_id", q.STORE_FOR_UPDATE, m.store_from_row, q.SAVE_STORE, m.store_args
)
_MENU_ITEMS = _Rows(
    "menu item", "item_id", q.MENU_ITEM_FOR_UPDATE, m.item_from_row, q.SAVE_MENU_ITEM, m.item_args
)


def _cursor_id(value: str) -> str:
    if (found := canonical_id(value)) is None:
        raise InvalidInputError(
            "cursor is not valid; pass back next_cursor exactly as received",
            details=[{"field": "cursor", "message": "invalid cursor"}],
        )
    return found
