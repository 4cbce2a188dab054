"""What one layer costs per request, measured inside one process: the service's real uvicorn
protocol (service/http/protocol.py) and app, fed requests from memory instead of a socket. The
lab's instrument for layer costs (notebooks/labkit/inproc.py builds the spec and runs this as
`python -m service.measure SPEC.json OUT.json`); nothing in the service imports it.

Every configuration (settings as `pickup serve` takes them) is an app in this one process on
one event loop (uvloop, as served); each round runs one batch of every configuration in a
rotated order, and a batch's cost is the process's CPU time over its requests. Requests go
through `CONNECTIONS` keep-alive connections at once, as a loaded server sees them, so the
access lines of the responses finished in one loop turn are written together, to a real file
(SPEC's `log`), as in production. OUT gets the CPU µs per request of every batch and the
statuses answered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from uvicorn.server import ServerState

from service.app import create_app
from service.config import load_settings
from service.http.protocol import GuardedHttpToolsProtocol

CONNECTIONS = 8


class _Socket(asyncio.Transport):
    """The connection's far end: counts the responses it is sent by status, keeps nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: dict[str, int] = {}
        self.closed = False

    def write(self, data: Any) -> None:
        if bytes(data[:9]) == b"HTTP/1.1 ":
            status = bytes(data[9:12]).decode()
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _serve(app: Any, settings: Any) -> tuple[list[tuple[Any, _Socket]], ServerState]:
    # As `pickup serve` configures uvicorn (service/cli.py), minus the socket.
    config = uvicorn.Config(
        app,
        loop="none",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive_timeout_s,
    )
    config.load()
    state = ServerState()
    connections = []
    for _ in range(CONNECTIONS):
        protocol = GuardedHttpToolsProtocol(
            config,
            state,
            {},
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=settings.header_timeout_s,
        )
        socket = _Socket()
        protocol.connection_made(socket)
        connections.append((protocol, socket))
    return connections, state


async def _batch(
    connections: list[tuple[Any, _Socket]], state: ServerState, request: bytes, n: int
) -> int:
    done = 0
    while done < n:
        for protocol, _ in connections:
            protocol.data_received(request)
        while state.tasks:
            await asyncio.wait(set(state.tasks))
        await asyncio.sleep(0)  # the turn after: the access lines are written
        done += len(connections)
    return done


async def measure(spec: dict[str, Any]) -> dict[str, Any]:
    request = f"GET {spec['path']} HTTP/1.1\r\nHost: lab\r\n".encode()
    request += b"".join(f"{k}: {v}\r\n".encode() for k, v in spec.get("headers", {}).items())
    request += b"\r\n"
    apps = {}
    async with contextlib.AsyncExitStack() as lifespans:
        for name, values in spec["configs"].items():
            settings = load_settings(values, env_file=None)
            app = create_app(settings)
            await lifespans.enter_async_context(app.router.lifespan_context(app))
            connections, state = _serve(app, settings)
            await _batch(connections, state, request, spec["batch"] // 4)  # warm: fill the cache
            apps[name] = (connections, state)
        names = list(apps)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(spec["rounds"]):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                connections, state = apps[name]
                before = time.process_time()
                served = await _batch(connections, state, request, spec["batch"])
                samples[name].append((time.process_time() - before) / served * 1e6)
    statuses = {
        name: dict(sum((Counter(socket.statuses) for _, socket in apps[name][0]), Counter()))
        for name in names
    }
    return {"cpu_us_per_request": samples, "statuses": statuses}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    # The access lines go where a served process's stdout goes in the lab: a file.
    log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    result = uvloop.run(measure(spec))
    Path(argv[2]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
