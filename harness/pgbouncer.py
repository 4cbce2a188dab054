"""A real PgBouncer in transaction mode in front of the session's PostgreSQL, as Neon's pooled
(`-pooler`) endpoint is: each transaction may run on another server connection, so session
state (startup settings, named prepared statements) does not survive between transactions.

The binary comes from Debian's `pgbouncer` package (/usr/sbin/pgbouncer); `pgbouncer_missing()`
says why not when it is absent, so tests can skip with that reason. PgBouncer refuses to run as
root, so as root it runs as the `postgres` OS user on a directory it owns."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from harness.procs import Process, base_env, free_port, wait_until
from harness.session import Session, session

CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next((p for p in CANDIDATES if Path(p).exists()), None)


def pgbouncer_missing() -> str | None:
    """None when PgBouncer can run here, else why not."""
    if pgbouncer_binary() is None:
        return "PgBouncer is not installed (Debian: apt-get install -y pgbouncer)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "as root, PgBouncer needs a `postgres` OS user to run as"
    return None


class PgBouncer:
    """`PgBouncer(server_dsn).start()`; `dsn(database)` is the pooled URL of a database on the
    server behind it. Stopped when the owning session closes."""

    def __init__(
        self,
        server_dsn: str,
        *,
        pool_mode: str = "transaction",
        pool_size: int = 5,
        owner: Session | None = None,
    ) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError(pgbouncer_missing() or "no pgbouncer")
        self.owner = owner or session()
        server = urlsplit(server_dsn)
        self.user = server.username or "postgres"
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="pickup-harness-pgbouncer-"))
        self.owner.guard_path(self.home)
        self.owner.callback(lambda: shutil.rmtree(self.home, ignore_errors=True))
        (self.home / "users.txt").write_text(f'"{self.user}" ""\n')
        # Any database name is forwarded to the same server; the server trusts loopback.
        (self.home / "pgbouncer.ini").write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={server.hostname} port={server.port or 5432}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {self.home / 'users.txt'}",
                    f"pool_mode = {pool_mode}",
                    f"default_pool_size = {pool_size}",
                    "max_client_conn = 500",
                    "",
                ]
            )
        )
        run_as = None
        if os.geteuid() == 0:
            run_as = "postgres"
            for path in (self.home, *self.home.iterdir()):
                shutil.chown(path, "postgres", "postgres")
        self.process = Process(
            [binary, str(self.home / "pgbouncer.ini")],
            base_env(),
            self.home,
            self.home / "pgbouncer.log",
            user=run_as,
            owner=self.owner,
        )
        self._base = urlunsplit(("postgresql", f"{self.user}@127.0.0.1:{self.port}", "", "", ""))

    def start(self) -> PgBouncer:
        self.process.spawn()
        wait_until(self._listening, 15, "PgBouncer did not start listening")
        return self

    def _listening(self) -> bool:
        if not self.process.running:
            raise RuntimeError(f"pgbouncer exited:\n{self.process.log_text()[-3000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def dsn(self, database: str) -> str:
        return f"{self._base}/{database}"

    def pooled(self, server_dsn: str) -> str:
        """The pooled URL of the database that `server_dsn` names."""
        return self.dsn(urlsplit(server_dsn).path.lstrip("/"))

    def stop(self) -> None:
        self.process.stop()

    def log_text(self) -> str:
        return self.process.log_text()
