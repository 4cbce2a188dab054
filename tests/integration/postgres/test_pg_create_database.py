"""`pickup db migrate` creates a missing database, as README's first PostgreSQL step assumes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from service import dbtools
from tests.integration.postgres.databases import admin, dsn_for

pytestmark = pytest.mark.postgres

PICKUP = str(Path(sys.executable).with_name("pickup"))


def pickup_db(tmp_path: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "DATA_BACKEND": "postgres", "DATABASE_URL": dsn}
    return subprocess.run(
        [PICKUP, "db", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


async def test_migrate_creates_the_database_it_is_pointed_at_then_leaves_it_alone(
    tmp_path: Path,
) -> None:
    name = f"pickup_test_{uuid.uuid4().hex[:16]}"
    dsn = dsn_for(name)
    try:
        first = pickup_db(tmp_path, dsn, "migrate")
        second = pickup_db(tmp_path, dsn, "migrate")
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines() == [f"created database {name}", "applied 0001, 0002"]
        assert second.returncode == 0, second.stderr
        assert second.stdout.splitlines() == ["database is up to date"]
        assert (await dbtools.status(dsn)).startswith("current: 0002 (head)")
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_status_does_not_create_a_database() -> None:
    name = f"pickup_test_{uuid.uuid4().hex[:16]}"
    assert await dbtools.create_database_if_missing(dsn_for("postgres")) is None
    with pytest.raises(Exception, match="does not exist"):
        await dbtools.status(dsn_for(name))
