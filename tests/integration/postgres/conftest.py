from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from service.repositories.postgres import PostgresRepository
from tests.integration.postgres.databases import open_repository, scratch_database


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """The DSN of this test's own, freshly migrated database."""
    async with scratch_database() as dsn:
        yield dsn


@pytest.fixture
async def repo(database: str) -> AsyncIterator[PostgresRepository]:
    async with open_repository(database) as repo:
        yield repo
