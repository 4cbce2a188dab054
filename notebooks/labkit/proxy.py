"""A real reverse proxy for the lab: HAProxy (Debian's package) in front of service instances,
steered at run time over its stats socket, as a platform's edge switches deployments.

`render_config` and `parse_stat` are pure (unit-tested); `HAProxy` starts the binary in the
foreground in its own session, so stopping it never touches anything else. The integrator can
move the class into the shared process harness unchanged: it only needs `Process`.
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from labkit.procs import Process, base_env, free_port

BACKEND = "app"
STATES = ("ready", "drain", "maint")


def haproxy_available() -> str | None:
    return None if shutil.which("haproxy") else "haproxy is not installed (apt-get install haproxy)"


def render_config(
    *, listen_port: int, socket_path: Path, slots: dict[str, int], health_path: str = "/readyz"
) -> str:
    """HAProxy configuration: one HTTP frontend on loopback, one backend with a server per slot.

    Every slot starts in maintenance (`disabled`) and is switched in over the stats socket once
    its instance answers the health check. Each response names the slot that served it
    (`X-Served-By`), so a client can see the switch. A connection refused or closed before any
    response is retried on the other server (`redispatch`), as an edge would.
    """
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{port} check disabled" for name, port in slots.items()
    )
    return f"""global
    stats socket {socket_path} mode 600 level admin
    maxconn 1024

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    timeout queue 10s
    retries 3
    option redispatch
    retry-on conn-failure empty-response

frontend edge
    bind 127.0.0.1:{listen_port}
    option forwardfor
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    option httpchk GET {health_path}
    http-check expect status 200
    # Railway gates only the switch on its health check; here the drill gates it (first
    # /readyz 200) and HAProxy's own checks only take a dead instance out, so they tolerate a
    # busy machine rather than flap a live instance out of service.
    timeout check 5s
    default-server inter 1s fall 3 rise 1
    http-response set-header X-Served-By %s
{servers}
"""


def parse_stat(text: str) -> dict[str, dict[str, str]]:
    """`show stat` CSV (header line starts with '# ') -> {server name: row} for the backend's
    servers (FRONTEND/BACKEND summary rows left out)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise ValueError(f"not HAProxy stat CSV: {text[:80]!r}")
    rows = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    return {
        row["svname"]: row
        for row in rows
        if row.get("pxname") == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
    }


class HAProxy(Process):
    """HAProxy in the foreground (`-db`) on a free loopback port, admin socket in its folder."""

    def __init__(self, workdir: Path, slots: dict[str, int]) -> None:
        home = workdir / "haproxy"
        home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket_path = home / "admin.sock"
        self.config_path = home / "haproxy.cfg"
        self.slots = dict(slots)
        self.config_path.write_text(
            render_config(listen_port=self.port, socket_path=self.socket_path, slots=self.slots)
        )
        binary = shutil.which("haproxy") or "haproxy"
        super().__init__(
            [binary, "-db", "-f", str(self.config_path)], base_env(), home, home / "haproxy.log"
        )

    def start(self) -> HAProxy:
        check = subprocess.run(
            [self.args[0], "-c", "-q", "-f", str(self.config_path)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused its configuration: {check.stderr.strip()}")
        super().start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"haproxy exited {self.process.returncode}: {self.log_path.read_text()[-500:]}"
                )
            if self.socket_path.exists():
                try:
                    self.command("show info")
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise TimeoutError("haproxy did not open its admin socket")

    def command(self, line: str) -> str:
        """One runtime-API command; returns HAProxy's answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def set_state(self, slot: str, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        answer = self.command(f"set server {BACKEND}/{slot} state {state}").strip()
        if answer:
            raise RuntimeError(f"haproxy: set server {slot} state {state}: {answer}")

    def stat(self) -> dict[str, dict[str, str]]:
        return parse_stat(self.command("show stat"))

    def wait_status(self, slot: str, status: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stat()[slot]["status"].startswith(status):
                return
            time.sleep(0.05)
        raise TimeoutError(
            f"haproxy server {slot} not {status} within {timeout}s: {self.stat()[slot]['status']}"
        )

    def wait_idle(self, slot: str, timeout: float) -> float:
        """Wait until the slot holds no request in flight; returns how long that took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if int(self.stat()[slot]["scur"] or 0) == 0:
                return time.monotonic() - started
            time.sleep(0.05)
        return time.monotonic() - started

    def served_by(self, path: str = "/healthz", client: httpx.Client | None = None) -> str:
        """Which slot answered one request through the proxy."""
        response = (client or httpx).get(f"{self.url}{path}", timeout=5)  # type: ignore[attr-defined]
        return str(response.headers.get("X-Served-By", ""))

    def wait_served_by(self, slot: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                try:
                    if self.served_by(client=client) == slot:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
        raise TimeoutError(f"no response through the proxy came from {slot} within {timeout}s")


def describe(stat: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Per slot: status, sessions now and in total, and responses by class (for the notebook)."""
    return [
        {
            "slot": name,
            "status": row["status"],
            "current": int(row["scur"] or 0),
            "sessions": int(row["stot"] or 0),
            "2xx": int(row.get("hrsp_2xx") or 0),
            "5xx": int(row.get("hrsp_5xx") or 0),
            "retries": int(row.get("wretr") or 0),
            "redispatched": int(row.get("wredis") or 0),
        }
        for name, row in stat.items()
    ]
