"""PostgreSQL for tests and the lab, and where it comes from.

`postgres()` walks the chain once per session, first match wins:
1. `PICKUP_TEST_DATABASE_URL` (default `postgresql://postgres@127.0.0.1:5432/postgres`, trust)
   when it answers: a server on which the session may create and drop databases;
2. else a private cluster (`PrivatePostgres`) from the machine's server binaries: the directory of
   `initdb` on PATH, then /usr/lib/postgresql/*/bin (skipped when `PICKUP_TEST_SYSTEM_SERVERS=0`);
3. else a private cluster from the binaries in the `pgserver` wheel (dependency group `servers`).

Databases made through it (`create_database`) have random names and are dropped when the session
closes, or by its reaper when the process dies first, so nothing is left on a shared server."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from harness.procs import Process, base_env, free_port, wait_until
from harness.redis import system_servers_allowed
from harness.session import Session, session

T = TypeVar("T")
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, also from code that is already inside an event loop (in a thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def execute(dsn: str, sql: str, *args: Any) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def _answers(dsn: str) -> bool:
    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()

    try:
        run_sync(probe())
    except (TimeoutError, OSError, asyncpg.PostgresError, ValueError):
        return False
    return True


def server_binaries() -> list[Path]:
    """Directories holding initdb and postgres, in the order of the chain."""
    found: list[Path] = []
    if system_servers_allowed():
        if initdb := shutil.which("initdb"):
            found.append(Path(initdb).resolve().parent)
        found += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    # Located, not imported: importing pgserver has side effects we do not need.
    if (spec := importlib.util.find_spec("pgserver")) and spec.submodule_search_locations:
        found.append(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin")
    return [
        d for d in dict.fromkeys(found) if (d / "initdb").exists() and (d / "postgres").exists()
    ]


class Server:
    """A PostgreSQL server on which the session creates and drops databases."""

    def __init__(self, admin_dsn: str, owner: Session, cluster: PrivatePostgres | None) -> None:
        self.admin_dsn = admin_dsn
        self.owner = owner
        self.cluster = cluster
        self.base = admin_dsn.rsplit("/", 1)[0]

    @property
    def origin(self) -> str:
        if self.cluster is None:
            return f"server at {self.base.split('@')[-1]}"
        return f"private cluster from {self.cluster.bin_dir}"

    @property
    def kind(self) -> str:
        """Which step of the chain served, in words without machine paths (for reports)."""
        if self.cluster is None:
            return "the server at PICKUP_TEST_DATABASE_URL (or 127.0.0.1:5432)"
        if "pgserver" in self.cluster.bin_dir.parts:
            return "a private cluster of the embedded pgserver wheel"
        return "a private cluster of the machine's PostgreSQL binaries"

    def dsn(self, database: str) -> str:
        return f"{self.base}/{database}"

    async def create_database_async(
        self, prefix: str = "pickup_test", *, migrated: bool = True, to: str = "head"
    ) -> str:
        """A new database, at revision `to` (default the latest schema) or empty with
        `migrated=False`; returns its DSN. It is dropped when the session closes (or earlier,
        with `drop_database`)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        await execute(self.admin_dsn, f'CREATE DATABASE "{name}"')
        self.owner.guard_database(self.admin_dsn, name)
        self.owner.callback(self.drop_database, name)
        if migrated:
            try:
                from service import dbtools

                await dbtools.migrate(self.dsn(name), to)
            except BaseException:
                await self.drop_database_async(name)
                raise
        return self.dsn(name)

    def create_database(
        self, prefix: str = "pickup_test", *, migrated: bool = True, to: str = "head"
    ) -> str:
        return run_sync(self.create_database_async(prefix, migrated=migrated, to=to))

    async def drop_database_async(self, name: str) -> None:
        name = name.rsplit("/", 1)[-1]
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncio.TimeoutError):
            await execute(self.admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.owner.release_database(self.admin_dsn, name)

    def drop_database(self, name: str) -> None:
        if self.cluster is not None and not self.cluster.running:
            return  # its cluster is gone, and the database with it
        run_sync(self.drop_database_async(name))

    @contextlib.asynccontextmanager
    async def scratch_database(
        self, prefix: str = "pickup_test", *, migrated: bool = True, to: str = "head"
    ) -> AsyncIterator[str]:
        dsn = await self.create_database_async(prefix, migrated=migrated, to=to)
        try:
            yield dsn
        finally:
            await self.drop_database_async(dsn)


_servers: dict[int, Server] = {}
# Threads (a notebook preparing several databases at once) must not each start a server of their
# own: the second one's databases would live where the first one's caller never looks.
_choosing = threading.Lock()


def postgres(owner: Session | None = None) -> Server:
    """This session's PostgreSQL (see the module docstring); started on first use, once even
    when several threads ask at the same time."""
    owner = owner or session()
    with _choosing:
        if id(owner) not in _servers:
            _servers[id(owner)] = _choose(owner)
        return _servers[id(owner)]


def _choose(owner: Session) -> Server:
    candidate = os.environ.get("PICKUP_TEST_DATABASE_URL", DEFAULT_URL)
    if _answers(candidate):
        server = Server(candidate, owner, None)
    else:
        binaries = server_binaries()
        if not binaries:
            raise RuntimeError(
                f"no PostgreSQL at {candidate.split('@')[-1]}, no server binaries and no pgserver:"
                " install the `servers` group (make install)"
            )
        cluster = PrivatePostgres(binaries[0], owner=owner).init()
        cluster.start()
        server = Server(cluster.dsn(), owner, cluster)
    return server


def used(owner: Session | None = None) -> list[str]:
    """`Server.kind` of the PostgreSQL this session chose, if it has used one (for reports)."""
    with _choosing:
        server = _servers.get(id(owner or session()))
    return [server.kind] if server else []


def postgres_unavailable() -> str | None:
    """None when the chain yields a PostgreSQL, else why not (without starting anything)."""
    if _answers(os.environ.get("PICKUP_TEST_DATABASE_URL", DEFAULT_URL)) or server_binaries():
        return None
    return "no PostgreSQL answers, no server binaries are installed and pgserver is missing"


class PrivatePostgres:
    """A throwaway cluster we may stop and start at will (`postgres` runs as our child, not
    daemonized, so it dies with us). initdb and postgres refuse to run as root, so as root they
    run as the `postgres` OS user on a directory it owns. fsync is off: durability across an OS
    crash is not what is tested (a server restart is, and the shutdown checkpoint covers that)."""

    def __init__(
        self, bin_dir: Path | None = None, *, port: int | None = None, owner: Session | None = None
    ) -> None:
        if bin_dir is None:
            dirs = server_binaries()
            if not dirs:
                raise RuntimeError("no PostgreSQL server binaries (make install adds pgserver)")
            bin_dir = dirs[0]
        self.bin_dir = bin_dir
        self.owner = owner or session()
        self.port = port or free_port()
        self.home = Path(tempfile.mkdtemp(prefix="pickup-harness-pg-"))
        self.owner.guard_path(self.home)
        self.data = self.home / "data"
        self.user = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "as root, a private cluster needs a `postgres` OS user"
                ) from None
            self.user = "postgres"
            shutil.chown(self.home, "postgres", "postgres")
        options = ["-p", str(self.port), "-k", str(self.home), "-c", "listen_addresses=127.0.0.1"]
        options += ["-c", "fsync=off", "-c", "max_connections=200"]
        self.process = Process(
            [str(bin_dir / "postgres"), "-D", str(self.data), *options],
            base_env(),
            self.home,
            self.home / "postgres.log",
            user=self.user,
            owner=self.owner,
        )
        self.owner.callback(self.destroy)

    def init(self) -> PrivatePostgres:
        args = [str(self.bin_dir / "initdb"), "-D", str(self.data), "-A", "trust"]
        args += ["-U", "postgres", "-N", "-E", "UTF8", "--locale=C"]
        initdb = Process(
            args,
            base_env(),
            self.home,
            self.home / "initdb.log",
            user=self.user,
            owner=self.owner,
        ).start()
        assert initdb.process is not None
        if initdb.process.wait(120) != 0:
            raise RuntimeError(f"initdb failed:\n{initdb.log_text()[-3000:]}")
        return self

    @property
    def running(self) -> bool:
        return self.process.running

    def start(self) -> None:
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        self.process.spawn()
        wait_until(self._ready, 30, "PostgreSQL did not become ready")

    def _ready(self) -> bool:
        if not self.process.running:
            raise RuntimeError(f"postgres exited:\n{self.process.log_text()[-3000:]}")
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def stop(self, mode: str = "fast") -> None:
        proc = self.process.process
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, STOP_SIGNALS[mode])  # the postmaster; it stops its backends
        try:
            proc.wait(30)
        except Exception:
            self.process.kill()
        self.process.kill()  # and whatever of its group is left

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new database at the latest schema; returns its DSN."""
        return Server(self.dsn(), self.owner, self).create_database("pickup_rel")

    def fetch(self, dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        return run_sync(fetch(dsn, sql, *args))


def wait_accepting(dsn: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(dsn):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dsn} did not accept connections")
        time.sleep(0.1)
