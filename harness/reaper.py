"""The harness's reaper (stdlib only; run as a script by `session.Session`).

Reads lines on stdin: `group PGID`, `database ADMIN_DSN NAME`, `path DIR`, their `forget-`
forms, and `done`. On end of input without `done` (the owner died), it SIGKILLs the process
groups, drops the databases and removes the directories that were never forgotten."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys


def main() -> None:
    groups: set[int] = set()
    databases: set[tuple[str, str]] = set()
    paths: set[str] = set()
    for line in sys.stdin:
        kind, _, rest = line.strip().partition(" ")
        if kind == "done":
            return
        if kind == "group":
            groups.add(int(rest))
        elif kind == "forget-group":
            groups.discard(int(rest))
        elif kind == "database":
            databases.add(tuple(rest.split(" ", 1)))  # type: ignore[arg-type]
        elif kind == "forget-database":
            databases.discard(tuple(rest.split(" ", 1)))  # type: ignore[arg-type]
        elif kind == "path":
            paths.add(rest)
        elif kind == "forget-path":
            paths.discard(rest)
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    for admin_dsn, name in databases:
        with contextlib.suppress(Exception):
            drop(admin_dsn, name)
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def drop(admin_dsn: str, name: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
