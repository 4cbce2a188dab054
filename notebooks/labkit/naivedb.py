"""The naive baseline's database: the same data as a seeded lab database, with the schema as it
was before the hot-path indexes (revision 0002), i.e. what a first implementation would run on.

Copied with CREATE DATABASE ... TEMPLATE on the harness's server (seconds, not a second
seeding; dropped with the harness session at the latest), then taken back to revision 0001 with
the service's own `pickup db rollback`."""

from __future__ import annotations

import re
import subprocess
import uuid

from harness.postgres import execute, fetch, postgres, run_sync
from labkit.databases import LabDatabase
from labkit.procs import PICKUP, base_env

BEFORE_INDEXES = "0001"


def rollback_steps(status: str, target: str = BEFORE_INDEXES) -> int:
    """How many applied revisions `pickup db status` lists after `target` (oldest first)."""
    applied = re.findall(r"^\s*applied\s+(\S+)", status, flags=re.M)
    if target not in applied:
        raise ValueError(f"revision {target} is not applied: {status!r}")
    return len(applied) - applied.index(target) - 1


def naive_copy(source: LabDatabase, label: str) -> LabDatabase:
    """A copy of `source` at the revision before the hot-path indexes; drop() it when done."""
    server = postgres()
    copy = LabDatabase(label)
    name = f"lab_{label}_{uuid.uuid4().hex[:12]}"
    run_sync(execute(server.admin_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{source.name}"'))
    server.owner.guard_database(server.admin_dsn, name)
    server.owner.callback(server.drop_database, name)
    copy.name, copy.url = name, server.dsn(name)
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
        run_sync(execute(copy.url, "ANALYZE"))
    except BaseException:
        copy.drop()
        raise
    return copy


def indexes(db: LabDatabase) -> list[str]:
    rows = run_sync(
        fetch(db.url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
    )
    return [row[0] for row in rows]
