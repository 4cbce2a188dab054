"""The PostgreSQL mapping of each entity, once: its columns (its domain fields, by name), its
query arguments (domain -> row) and its row conversion (row -> domain), both by way of the JSON
record in records.py. A new field is a field of the domain model and a migration adding its
column; nothing here changes unless the field needs a conversion."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from asyncpg import Record

from service.domain.models import MenuItem, Order, OrderLine, Store
from service.repositories import records


def _columns(entity: type, *, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    """An entity's table has one column per field, of the same name, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(entity) if f.name not in without)


STORE_COLUMNS = _columns(Store)
ITEM_COLUMNS = _columns(MenuItem)
ORDER_COLUMNS = _columns(Order, without=("lines",))  # an order's lines are rows of order_lines
LINE_COLUMNS = ("order_id", "line_no", *_columns(OrderLine))
KEY_COLUMNS = ("key", "fingerprint", "order_id")


# -- domain -> query arguments -----------------------------------------------------------------
# A row holds what the JSON record holds (records.py is the one field list per entity), with
# timestamps as native values and the nested lists as JSON text.


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def store_args(store: Store) -> tuple[Any, ...]:
    rec = records.store_to_record(store)
    rec["opening_hours"] = _json(rec["opening_hours"])
    return tuple(rec[c] for c in STORE_COLUMNS)


def item_args(item: MenuItem) -> tuple[Any, ...]:
    rec = records.item_to_record(item)
    return tuple(rec[c] for c in ITEM_COLUMNS)


def order_args(order: Order) -> tuple[Any, ...]:
    rec = records.order_to_record(order)
    rec.update(
        pickup_slot_start=order.pickup_slot_start,
        created_at=order.created_at,
        updated_at=order.updated_at,
        history=_json(rec["history"]),
    )
    return tuple(rec[c] for c in ORDER_COLUMNS)


def line_arrays(lines: Sequence[OrderLine]) -> tuple[list[str], list[str], list[int], list[int]]:
    return (
        [ln.menu_item_id for ln in lines],
        [ln.name for ln in lines],
        [ln.unit_price_cents for ln in lines],
        [ln.quantity for ln in lines],
    )


def line_records(order: Order) -> Iterable[tuple[Any, ...]]:
    for no, ln in enumerate(order.lines, start=1):
        yield (order.id, no, ln.menu_item_id, ln.name, ln.unit_price_cents, ln.quantity)


# -- rows -> domain ----------------------------------------------------------------------------


def _fields(row: Record, columns: tuple[str, ...], *ids: str) -> dict[str, Any]:
    fields = {c: row[c] for c in columns}
    fields.update((k, str(row[k])) for k in ids)
    return fields


def store_from_row(row: Record) -> Store:
    fields = _fields(row, STORE_COLUMNS, "id")
    fields["opening_hours"] = orjson.loads(row["opening_hours"])
    return records.store_from_record(fields)


def item_from_row(row: Record) -> MenuItem:
    return records.item_from_record(_fields(row, ITEM_COLUMNS, "id", "store_id"))


def order_from_row(row: Record, lines: Iterable[Sequence[Any]]) -> Order:
    """`lines`: (menu_item_id, name, unit_price_cents, quantity) in line order."""
    fields = _fields(row, ORDER_COLUMNS, "id", "store_id")
    fields["lines"] = [(str(i), n, p, q) for i, n, p, q in lines]
    fields["history"] = orjson.loads(row["history"])
    return records.order_from_record(fields)


def line_tuples(rows: Iterable[Record]) -> list[tuple[Any, ...]]:
    return [(r["menu_item_id"], r["name"], r["unit_price_cents"], r["quantity"]) for r in rows]
