"""Switching backends: export from one, import into the other, and nothing is lost or changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest

from service import dbtools
from service.domain import lifecycle
from service.domain.models import OrderStatus
from service.errors import DataFileError
from service.ports import Dataset, IdempotencyKey, NewOrder, PickupRepository
from service.repositories.json_store import JsonFileRepository
from service.repositories.postgres import PostgresRepository
from service.usecases.seed import demo_dataset
from tests.factories import NOW, make_order, make_store

pytestmark = pytest.mark.postgres


async def fill(repo: PickupRepository) -> None:
    """Demo data plus what live traffic adds: idempotent orders and status changes."""
    data = demo_dataset(stores=3, items_per_store=10, orders=200, seed=5)
    await repo.import_dataset(data)
    store, item = data.stores[0], data.menu_items[0]
    for n in range(3):
        order = make_order(store, item, pickup_slot_start=NOW + timedelta(minutes=15 * n))
        await repo.create_order(
            NewOrder(order, capacity=5, idempotency=IdempotencyKey(f"k{n}", f"f{n}"))
        )
    await repo.update_order(
        order.id, lambda o: lifecycle.transition(o, OrderStatus.ACCEPTED, actor="staff", at=NOW)
    )


def document(path: Path) -> dict[str, list[object]]:
    loaded: dict[str, list[object]] = orjson.loads(path.read_bytes())
    return loaded


async def test_a_postgres_export_moves_to_the_json_backend_unchanged(
    repo: PostgresRepository, tmp_path: Path
) -> None:
    await fill(repo)
    exported = await dbtools.export_data(repo, tmp_path / "from-postgres.json")
    assert (len(exported.orders), len(exported.idempotency)) == (203, 3)

    json_repo = await JsonFileRepository.open(tmp_path / "data" / "pickup.json")
    await dbtools.import_data(json_repo, tmp_path / "from-postgres.json")
    await dbtools.export_data(json_repo, tmp_path / "from-json.json")

    assert document(tmp_path / "from-json.json") == document(tmp_path / "from-postgres.json")


async def test_a_json_export_moves_to_postgres_unchanged_and_importing_twice_changes_nothing(
    repo: PostgresRepository, tmp_path: Path
) -> None:
    json_repo = await JsonFileRepository.open(tmp_path / "data" / "pickup.json")
    await fill(json_repo)
    await dbtools.export_data(json_repo, tmp_path / "from-json.json")

    await dbtools.import_data(repo, tmp_path / "from-json.json")
    await dbtools.export_data(repo, tmp_path / "from-postgres.json")
    assert document(tmp_path / "from-postgres.json") == document(tmp_path / "from-json.json")

    await dbtools.import_data(repo, tmp_path / "from-json.json")
    await dbtools.export_data(repo, tmp_path / "again.json")
    assert document(tmp_path / "again.json") == document(tmp_path / "from-json.json")


async def test_orders_stream_into_postgres_in_batches(repo: PostgresRepository) -> None:
    data = demo_dataset(stores=2, items_per_store=5, orders=50, seed=9)
    loaded = await repo.import_dataset(
        Dataset(data.stores, data.menu_items, (o for o in data.orders)), chunk_size=7
    )
    assert loaded == 50
    exported = await repo.export_dataset()
    assert (exported.stores, exported.menu_items, exported.orders) == (
        data.stores,
        data.menu_items,
        data.orders,
    )


async def schema_objects(database: str) -> list[str]:
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
            "UNION ALL SELECT conname FROM pg_constraint WHERE contype = 'f' ORDER BY 1"
        )
    finally:
        await conn.close()
    return [r[0] for r in rows]


@pytest.mark.parametrize("into", ["an empty database", "a database with orders"])
async def test_a_dataset_that_breaks_a_constraint_is_refused_whole(
    repo: PostgresRepository, database: str, into: str
) -> None:
    if into == "a database with orders":
        await repo.import_dataset(demo_dataset(stores=1, items_per_store=3, orders=5, seed=1))
    before = (await repo.export_dataset(), await schema_objects(database))
    data = demo_dataset(stores=1, items_per_store=3, orders=5, seed=2)
    orphan = replace(data.orders[-1], store_id=make_store().id)
    with pytest.raises(DataFileError, match="refused the dataset"):
        await repo.import_dataset(replace(data, orders=[*data.orders[:-1], orphan]))
    # Nothing of it was kept, not even its valid stores, and every index and key is in place.
    assert (await repo.export_dataset(), await schema_objects(database)) == before


async def test_a_file_that_is_not_pickup_data_is_refused(
    repo: PostgresRepository, tmp_path: Path
) -> None:
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    with pytest.raises(DataFileError, match="cannot read"):
        await dbtools.import_data(repo, tmp_path / "notes.json")
    with pytest.raises(DataFileError, match="cannot read"):
        await dbtools.import_data(repo, tmp_path / "missing.json")
