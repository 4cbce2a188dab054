"""The naive baseline's database: the same data as a seeded lab database, with the schema as it
was before the hot-path indexes (revision 0002), i.e. what a first implementation would run on.

Copied with CREATE DATABASE ... TEMPLATE (seconds, not a second seeding), then taken back to
revision 0001 with the service's own `pickup db rollback`."""

from __future__ import annotations

import re
import subprocess

from labkit.databases import ADMIN_DSN, LabDatabase
from labkit.procs import PICKUP, base_env

BEFORE_INDEXES = "0001"


def rollback_steps(status: str, target: str = BEFORE_INDEXES) -> int:
    """How many applied revisions `pickup db status` lists after `target` (oldest first)."""
    applied = re.findall(r"^\s*applied\s+(\S+)", status, flags=re.M)
    if target not in applied:
        raise ValueError(f"revision {target} is not applied: {status!r}")
    return len(applied) - applied.index(target) - 1


def _psql(sql: str, dsn: str = ADMIN_DSN) -> None:
    subprocess.run(
        ["psql", dsn, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )


def naive_copy(source: LabDatabase, label: str) -> LabDatabase:
    """A copy of `source` at the revision before the hot-path indexes; drop() it when done."""
    copy = LabDatabase(label)
    _psql(f'CREATE DATABASE "{copy.name}" TEMPLATE "{source.name}"')
    try:
        env = base_env(APP_ENV="test", **copy.settings())
        status = subprocess.run(
            [PICKUP, "db", "status"], env=env, check=True, capture_output=True, text=True
        ).stdout
        steps = rollback_steps(status)
        if steps:
            subprocess.run(
                [PICKUP, "db", "rollback", "--steps", str(steps)],
                env=env,
                check=True,
                capture_output=True,
                timeout=300,
            )
        _psql("ANALYZE", dsn=copy.url)
    except BaseException:
        copy.drop()
        raise
    return copy


def indexes(db: LabDatabase) -> list[str]:
    result = subprocess.run(
        [
            "psql",
            db.url,
            "-Atc",
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.split()
