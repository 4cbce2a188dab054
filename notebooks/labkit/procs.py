"""Real processes on loopback: the service in a given configuration, a bare hello app, the
fake OpenAI upstream and a private Redis, each on a free port, each stopped on exit."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
PICKUP = str(BIN / "pickup")
LAB_STAFF_KEY = "lab-staff-key-000000000000001"
LAB_ADMIN_TOKEN = "lab-admin-token-00000000000001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str, timeout: float = 30.0, process: subprocess.Popen[Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def base_env(**values: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
    env.update({k: str(v) for k, v in values.items()})
    return env


class Process:
    """A child process with its own session, so stopping it stops its workers too."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.args, self.env, self.cwd, self.log_path = args, env, cwd, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def tree(self) -> list[int]:
        """This process and its descendants (uvicorn workers)."""
        pids, frontier = [], [self.pid]
        while frontier:
            pid = frontier.pop()
            pids.append(pid)
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            frontier += [int(c) for c in children]
        return pids

    def peak_rss_mib(self) -> float:
        """Sum over the process tree of each process's peak resident memory (VmHWM)."""
        total_kib = 0
        for pid in self.tree():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total_kib += int(line.split()[1])
            except OSError:
                continue
        return total_kib / 1024

    def cpu_seconds(self) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks
            except OSError:
                continue
        return total

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        if hasattr(self, "_log"):
            self._log.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Service(Process):
    """`pickup serve` with the given settings, its data in a private folder."""

    def __init__(
        self, name: str, settings: dict[str, Any], workdir: Path, *, seed: list[str] | None = None
    ) -> None:
        self.name = name
        self.seed_args = seed
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = workdir / name
        home.mkdir(parents=True, exist_ok=True)
        env = base_env(
            APP_ENV="test",
            PORT=self.port,
            JSON_DATA_PATH=home / "pickup.json",
            STAFF_API_KEYS=LAB_STAFF_KEY,
            ADMIN_TOKEN=LAB_ADMIN_TOKEN,
            ACCESS_LOG="false",
            LOG_LEVEL="warning",
            RATE_LIMIT_ENABLED="false",
        )
        env.update({k: str(v) for k, v in settings.items()})
        self.settings = settings
        super().__init__([PICKUP, "serve"], env, home, home / "service.log")

    def start(self) -> Service:
        if self.seed_args is not None:
            # A dataset of the notebook's choosing instead of the small demo one.
            self.env["SEED_DEMO_DATA"] = "false"
            subprocess.run(
                [PICKUP, "seed", *self.seed_args],
                env=self.env,
                cwd=self.cwd,
                check=True,
                capture_output=True,
                timeout=1800,
            )
        super().start()
        wait_http(f"{self.url}/healthz", timeout=60, process=self.process)
        return self


HELLO_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def hello(request):
    return JSONResponse({"hello": "world"})

app = Starlette(routes=[Route("/hello", hello), Route("/healthz", hello)])
"""


class HelloApp(Process):
    """A bare Starlette app with nothing of ours in it: the ceiling the stack is compared to."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = workdir / "hello"
        home.mkdir(parents=True, exist_ok=True)
        (home / "hello_app.py").write_text(HELLO_APP)
        args = [
            str(BIN / "uvicorn"),
            "hello_app:app",
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        super().__init__(args, base_env(), home, home / "hello.log")

    def start(self) -> HelloApp:
        super().start()
        wait_http(f"{self.url}/hello", process=self.process)
        return self


class FakeOpenAI(Process):
    def __init__(self, workdir: Path, **flags: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [PICKUP, "fake-openai", "--port", str(self.port)]
        for key, value in flags.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        super().__init__(args, base_env(), workdir, workdir / "fake-openai.log")

    def start(self) -> FakeOpenAI:
        super().start()
        wait_http(f"{self.url}/_control", process=self.process)
        return self

    def set(self, **behaviour: Any) -> None:
        httpx.post(f"{self.url}/_control", json=behaviour, timeout=5).raise_for_status()


class RedisServer(Process):
    """A private redis-server, so killing it never disturbs anything else on the machine."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
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
            tempfile.mkdtemp(prefix="lab-redis-"),
        ]
        super().__init__(args, base_env(), workdir, workdir / "redis.log")

    def start(self) -> RedisServer:
        super().start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise TimeoutError("redis-server did not start")


def postgres_available(dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres") -> str | None:
    """None when PostgreSQL answers, else the reason a section must be skipped."""
    if shutil.which("psql") is None:
        return "psql is not installed"
    result = subprocess.run(
        ["psql", dsn, "-Atc", "select 1"], capture_output=True, text=True, timeout=10
    )
    return None if result.returncode == 0 else f"PostgreSQL unreachable: {result.stderr.strip()}"


def redis_available() -> str | None:
    return None if shutil.which("redis-server") else "redis-server is not installed"
