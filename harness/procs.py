"""Processes on loopback: each in its own process group (so stopping it reaches uvicorn's workers
and nothing else), dying with its parent (PR_SET_PDEATHSIG), and owned by a `Session` (stopped
when the session closes, killed by its reaper when this process dies first)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from harness.session import Session, session

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PICKUP = str(BIN / "pickup")
PASSED_THROUGH = ("PATH", "HOME", "LANG", "TZ")
PR_SET_PDEATHSIG = 1

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # not Linux: the session and its reaper still clean up
    _libc = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout}s")


def answers(url: str, headers: Mapping[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_http(url: str, timeout: float = 30.0, process: Process | None = None) -> None:
    """Until `url` answers 200; fails early, with the log, when `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.running:
            raise RuntimeError(f"{process.args[0]} exited:\n{process.log_text()[-3000:]}")
        if answers(url):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def base_env(**values: Any) -> dict[str, str]:
    """Only what a process needs from the machine plus the given settings: the developer's
    environment and .env never leak in (processes run in directories without a .env)."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_THROUGH}
    env.update({k: str(v) for k, v in values.items()})
    return env


def _child_setup(user: str | None, die_with_parent: bool) -> Callable[[], None]:
    ids = None
    if user is not None:
        entry = pwd.getpwnam(user)
        ids = (entry.pw_uid, entry.pw_gid)

    def setup() -> None:  # runs in the child between fork and exec
        if ids is not None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
        if die_with_parent and _libc is not None:  # after setuid, which clears the setting
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return setup


class Process:
    """A child in its own process group; `stop()` is SIGTERM to the group (then SIGKILL),
    `kill()` SIGKILL. It can be started again after either. Output goes to `log`."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        cwd: Path,
        log: Path,
        *,
        user: str | None = None,
        owner: Session | None = None,
    ) -> None:
        self.args, self.env, self.cwd, self.log_path = args, env, Path(cwd), Path(log)
        self.user = user
        self.owner = owner or session()
        self.process: subprocess.Popen[bytes] | None = None
        self._owned = False

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
                # PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the
                # process: a child started from a short-lived thread (a chaos thread restarting
                # Redis mid-run) would be killed as soon as that thread returned. Those are left
                # to the session's reaper, which kills their group when this process dies.
                preexec_fn=_child_setup(
                    self.user, threading.current_thread() is threading.main_thread()
                ),
            )
        self.owner.guard_group(self.process.pid)
        if not self._owned:
            self.owner.callback(self.stop)
            self._owned = True

    def start(self) -> Process:
        self.spawn()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def tree(self) -> list[int]:
        """This process and its descendants (uvicorn's workers)."""
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
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total_kib += int(line.split()[1])
        return total_kib / 1024

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the whole process tree."""
        return sum(self.cpu_seconds_by_pid().values())

    def cpu_seconds_by_pid(self, only: bytes | None = None) -> dict[int, float]:
        """CPU seconds used so far per process of the tree (those whose command line contains
        `only`, when given)."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for pid in self.tree():
            try:
                if only is not None and only not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[pid] = (int(fields[11]) + int(fields[12])) / ticks
        return used

    def _signal_group(self, signum: int, grace: float) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        # Leftovers of the group (a worker that outlived its supervisor) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.owner.release_group(self.process.pid)

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL, 10)

    def stop(self, grace: float = 20.0) -> None:
        self._signal_group(signal.SIGTERM, grace)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> Any:
        return self if self.running else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Service(Process):
    """`pickup serve` with exactly the environment `env` (build it with `base_env` or one of the
    builders below) in the working directory `cwd`, on `port` or a free one."""

    def __init__(
        self,
        env: dict[str, str],
        cwd: Path,
        *,
        port: int | None = None,
        seed: list[str] | None = None,
        owner: Session | None = None,
    ) -> None:
        self.port = int(env.get("PORT") or port or free_port())
        env["PORT"] = str(self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.seed_args = seed
        super().__init__([PICKUP, "serve"], env, cwd, Path(cwd) / "service.log", owner=owner)

    def start(self, timeout: float = 60.0) -> Any:
        if self.seed_args is not None:
            # A dataset of the caller's choosing instead of the small demo one.
            self.env["SEED_DEMO_DATA"] = "false"
            Path(self.cwd).mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [PICKUP, "seed", *self.seed_args],
                env=self.env,
                cwd=self.cwd,
                check=True,
                capture_output=True,
                timeout=1800,
            )
        self.spawn()
        try:
            wait_http(f"{self.url}/healthz", timeout=timeout, process=self)
            self._wait_for_workers(time.monotonic() + timeout)
        except BaseException:
            self.kill()
            raise
        return self

    @property
    def metrics_headers(self) -> dict[str, str]:
        token = self.env.get("METRICS_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", headers=self.metrics_headers, timeout=5).text

    def _wait_for_workers(self, deadline: float) -> None:
        # With several workers the first one up answers /healthz; wait until every worker has
        # started (its lifespan, i.e. the database pool, is open), so load reaches ready ones.
        workers = int(self.env.get("WEB_CONCURRENCY", "1") or 1)
        if workers <= 1:
            return
        seen: set[str] = set()
        while time.monotonic() < deadline and len(seen) < workers:
            seen = {
                line.split('pid="')[1].split('"')[0]
                for line in self.metrics().splitlines()
                if line.startswith("process_resident_memory_bytes{")
            }
            for _ in range(8):  # fresh connections spread over the workers
                httpx.get(f"{self.url}/readyz", timeout=2)
            time.sleep(0.05)

    def worker_cpu_s(self) -> dict[int, float]:
        """CPU seconds used so far by each uvicorn worker process (by pid)."""
        return self.cpu_seconds_by_pid(only=b"spawn_main")

    def output(self) -> str:
        return self.log_text()


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

    def __init__(self, workdir: Path, *, owner: Session | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = Path(workdir) / "hello"
        home.mkdir(parents=True, exist_ok=True)
        (home / "hello_app.py").write_text(HELLO_APP)
        args = [str(BIN / "uvicorn"), "hello_app:app", "--port", str(self.port)]
        args += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        args += ["--log-level", "warning"]
        super().__init__(args, base_env(), home, home / "hello.log", owner=owner)

    def start(self) -> Any:
        self.spawn()
        wait_http(f"{self.url}/hello", process=self)
        return self


class FakeOpenAI(Process):
    """`pickup fake-openai`: the OpenAI upstream stand-in, steered through `/_control`."""

    def __init__(self, workdir: Path, *, owner: Session | None = None, **flags: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [PICKUP, "fake-openai", "--port", str(self.port)]
        for key, value in flags.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        workdir = Path(workdir)
        super().__init__(args, base_env(), workdir, workdir / "fake-openai.log", owner=owner)

    def start(self) -> Any:
        self.spawn()
        wait_http(f"{self.url}/_control", timeout=20, process=self)
        return self

    def set(self, **behaviour: Any) -> None:
        httpx.post(f"{self.url}/_control", json=behaviour, timeout=5).raise_for_status()

    def requests_total(self) -> int:
        return int(httpx.get(f"{self.url}/_control", timeout=5).json()["requests_total"])
