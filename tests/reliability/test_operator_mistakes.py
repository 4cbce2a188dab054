"""What an unlucky operator does to a live system: roll back a migration over a full database,
start a second writer on a data file a server owns. The commands must refuse, say why and what to
do instead, and leave the data as it was."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.reliability.procs import PICKUP, PrivatePostgres, base_env
from tests.reliability.table import Summary

SCENARIO = "operator mistakes"


def pickup(*args: str, cwd: Path, **settings: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PICKUP, *args],
        env=base_env(**settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_db_rollback_over_tables_holding_rows_is_refused_until_forced(
    tmp_path: Path, private_postgres: PrivatePostgres, summary: Summary
) -> None:
    row = summary(
        SCENARIO,
        done="`pickup db rollback` over a seeded database",
    )
    dsn = private_postgres.create_database()
    database = {"DATA_BACKEND": "postgres", "DATABASE_URL": dsn}
    seeded = pickup("seed", "--stores", "2", "--orders", "40", cwd=tmp_path, **database)
    assert seeded.returncode == 0, seeded.stderr
    assert pickup("db", "rollback", cwd=tmp_path, **database).returncode == 0  # indexes only

    refused = pickup("db", "rollback", cwd=tmp_path, **database)
    tables = {
        r["t"]
        for r in private_postgres.fetch(
            dsn, "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'"
        )
    }
    orders = private_postgres.fetch(dsn, "SELECT count(*) AS n FROM orders")[0]["n"]
    forced = pickup("db", "rollback", "--force", cwd=tmp_path, **database)
    row.add(requests=3, failures=int(refused.returncode == 0))
    row.held = (
        "rollback over 40 orders refused (exit 1) naming each table and its rows, pointing to "
        "`pickup data export`; data untouched; --force goes through"
    )
    assert refused.returncode == 1
    assert "table orders (40 rows)" in refused.stderr
    assert "pickup data export" in refused.stderr and "--force" in refused.stderr
    assert {"stores", "orders", "menu_items"} <= tables and orders == 40
    assert forced.returncode == 0, forced.stderr
    assert "reverted 0001" in forced.stdout
