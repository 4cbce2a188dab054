"""The `repository` fixture yields every backend in turn; each test in this folder runs
against all of them. A new backend joins by adding an opener to OPENERS."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from service.repositories.json_store import JsonFileRepository
from tests.integration.postgres.databases import open_repository, scratch_database


@contextlib.asynccontextmanager
async def open_json(tmp_path: Path) -> AsyncIterator[Any]:
    repo = await JsonFileRepository.open(tmp_path / "contract.json")
    try:
        yield repo
    finally:
        await repo.aclose()


@contextlib.asynccontextmanager
async def open_postgres(tmp_path: Path) -> AsyncIterator[Any]:
    async with scratch_database() as dsn, open_repository(dsn) as repo:
        yield repo


OPENERS: dict[str, Callable[[Path], contextlib.AbstractAsyncContextManager[Any]]] = {
    "json": open_json,
    "postgres": open_postgres,
}


@pytest.fixture(params=sorted(OPENERS))
async def repository(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    async with OPENERS[request.param](tmp_path) as repo:
        yield repo
