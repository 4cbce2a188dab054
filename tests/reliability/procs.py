"""Private, killable processes on loopback: the service, PostgreSQL, Redis and the fake OpenAI.

Each runs in its own session (process group), so stopping or killing it reaches its children
(uvicorn's workers, PostgreSQL's backends) and nothing else on the machine. The shared servers on
5432 and 6379 are never touched: faults are injected into private instances only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx

if TYPE_CHECKING:
    from tests.reliability.load import Shop

BIN = Path(sys.executable).parent
PICKUP = str(BIN / "pickup")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
STAFF_KEY = "reliability-staff-key-0000000001"
ADMIN_TOKEN = "reliability-admin-token-00000001"
METRICS_TOKEN = "reliability-metrics-token-000001"
STAFF = {"Authorization": f"Bearer {STAFF_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout}s")


def base_env(**values: Any) -> dict[str, str]:
    # Only what a process needs from the machine: the developer's .env and environment never leak
    # in (every process runs in a temporary directory without a .env).
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    env.update({k: str(v) for k, v in values.items()})
    return env


class Process:
    """A child in its own session; `kill()` is SIGKILL to the whole group."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.args, self.env, self.cwd, self.log_path = args, env, cwd, log
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tree(self) -> set[int]:
        """This process and its descendants (uvicorn's workers)."""
        assert self.process is not None
        pids, frontier = set(), [self.process.pid]
        while frontier:
            pid = frontier.pop()
            pids.add(pid)
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            frontier += [int(c) for c in children]
        return pids

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._close_log()

    def stop(self, grace: float = 20.0) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class Service(Process):
    """`pickup serve` configured as in production, its working directory private."""

    def __init__(self, workdir: Path, *, port: int | None = None, **settings: Any) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        metrics_dir = workdir / "metrics"
        metrics_dir.mkdir(exist_ok=True)
        env = base_env(
            APP_ENV="production",
            HOST="127.0.0.1",
            PORT=self.port,
            STAFF_API_KEYS=STAFF_KEY,
            ADMIN_TOKEN=ADMIN_TOKEN,
            METRICS_TOKEN=METRICS_TOKEN,
            OPENAI_API_KEY="sk-reliability-not-a-real-key",
            OPENAI_BASE_URL="http://127.0.0.1:9/v1",  # discard port: tests that use AI override
            JSON_DATA_PATH=workdir / "pickup.json",
            PROMETHEUS_MULTIPROC_DIR=metrics_dir,
            SEED_DEMO_DATA="false",
            ACCESS_LOG="false",
            LOG_LEVEL="warning",
            # One client (this test) sends everything: the limiter stays on, its budget huge.
            RATE_LIMIT_MAX=10_000_000,
            RATE_LIMIT_ORDERS_MAX=10_000_000,
            RATE_LIMIT_AI_MAX=10_000_000,
            SHUTDOWN_GRACE_S=3,
        )
        env.update({k: str(v) for k, v in settings.items()})
        super().__init__([PICKUP, "serve"], env, workdir, workdir / "service.log")

    def start(self, timeout: float = 30.0) -> Service:
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"pickup serve exited:\n{self.log_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    self._wait_for_workers(deadline)
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"pickup serve did not start in {timeout}s:\n{self.log_text()[-3000:]}")

    def _wait_for_workers(self, deadline: float) -> None:
        # With several workers the first one up answers /healthz; wait until every worker has
        # started (their lifespan, i.e. the database pool, is open), so load reaches ready ones.
        workers = int(self.env.get("WEB_CONCURRENCY", "1"))
        if workers == 1:
            return
        seen: set[str] = set()
        while time.monotonic() < deadline and len(seen) < workers:
            text = httpx.get(f"{self.url}/metrics", headers=METRICS, timeout=2).text
            seen = {
                line.split('pid="')[1].split('"')[0]
                for line in text.splitlines()
                if line.startswith("process_resident_memory_bytes{")
            }
            for _ in range(8):  # fresh connections spread over the workers
                httpx.get(f"{self.url}/readyz", timeout=2)
            time.sleep(0.05)

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", headers=METRICS, timeout=5).text

    def worker_cpu_s(self) -> dict[int, float]:
        """CPU seconds used so far by each uvicorn worker process (by pid)."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for pid in self.tree():
            try:
                if b"spawn_main" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[pid] = (int(fields[11]) + int(fields[12])) / ticks
        return used

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


BODY_TIMEOUT_S = 1.0  # REQUEST_BODY_TIMEOUT_S of the production-shaped service


@dataclass(frozen=True)
class Production:
    """The service as deployed: two workers, PostgreSQL, Redis, limiter on, AI configured, and a
    shop (store, menu item, slots) to order from."""

    service: Service
    dsn: str
    shop: Shop


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of every sample of `name` whose labels include `labels` (over all workers)."""
    total = 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, _, value = line.rpartition(" ")
        if all(w in series for w in wanted):
            total += float(value)
    return total


class PrivateRedis(Process):
    """A redis-server of our own on a fixed port, so it can be killed and started again there."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server") or "redis-server"
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
        ]
        super().__init__(args, base_env(), self.dir, self.dir / "redis.log")

    def start(self) -> PrivateRedis:
        self.spawn()
        wait_until(lambda: port_open(self.port), 10, "redis-server did not listen")
        return self

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.kill()


class FakeOpenAI(Process):
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [PICKUP, "fake-openai", "--port", str(self.port)]
        super().__init__(args, base_env(), workdir, workdir / "fake-openai.log")

    def start(self) -> FakeOpenAI:
        self.spawn()

        def answers() -> bool:
            try:
                return httpx.get(f"{self.url}/_control", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, 20, "fake-openai did not answer")
        return self

    def set(self, **behaviour: Any) -> None:
        httpx.post(f"{self.url}/_control", json=behaviour, timeout=5).raise_for_status()

    def requests_total(self) -> int:
        return int(httpx.get(f"{self.url}/_control", timeout=5).json()["requests_total"])

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class PrivatePostgres:
    """A throwaway PostgreSQL 15 cluster we may stop and start at will.

    initdb and postgres refuse to run as root, so as root they run as the `postgres` OS user on a
    directory it owns. fsync is off: durability across an OS crash is not what is tested here
    (a server restart is, and PostgreSQL's shutdown checkpoint covers that)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="pickup-reliability-pg-"))
        self.data = self.home / "data"
        self.log = self.home / "postgres.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.home, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-m", mode, "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")  # fails when it is not running
        shutil.rmtree(self.home, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new database at the latest schema; returns its DSN."""
        from service import dbtools

        name = f"pickup_rel_{uuid.uuid4().hex[:12]}"

        async def create() -> None:
            conn = await asyncpg.connect(self.dsn())
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()
            await dbtools.migrate(self.dsn(name))

        asyncio.run(create())
        return self.dsn(name)

    def fetch(self, dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(dsn)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(run())
