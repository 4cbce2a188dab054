"""Limits on the request head and on connections, over raw sockets against a real `pickup serve`.

Before the fix a 64 MB request header was accepted, a connection that sent nothing stayed open
past 100 s and a slowloris connection never closed.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.reliability.hostile import exchange, request_bytes
from tests.reliability.procs import Service
from tests.reliability.table import Summary

SCENARIO = "request head limits"
MAX_HEADER_BYTES = 8192
HEADER_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 20
SLACK_S = 2.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with Service(
        tmp_path_factory.mktemp("head-limits") / "service",
        DATA_BACKEND="json",
        WEB_CONCURRENCY=1,
        MAX_HEADER_BYTES=MAX_HEADER_BYTES,
        HEADER_TIMEOUT_S=HEADER_TIMEOUT_S,
        MAX_CONNECTIONS=MAX_CONNECTIONS,
    ) as running:
        yield running


def closed_after(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Reads until the server closes the connection; returns what it sent and how long it took."""
    started = time.monotonic()
    sock.settimeout(limit_s)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received, time.monotonic() - started


def test_an_oversized_request_head_gets_431_and_a_closed_connection(
    service: Service, summary: Summary
) -> None:
    row = summary(
        SCENARIO,
        done=f"raw sockets: a 1 MB header, a silent connection, a slowloris header trickle, "
        f"{MAX_CONNECTIONS + 1} connections (limits {MAX_HEADER_BYTES} B, "
        f"{HEADER_TIMEOUT_S:g} s, {MAX_CONNECTIONS} connections)",
    )
    huge = exchange(
        service.port,
        request_bytes("GET", "/healthz", {"X-Padding": "a" * 1_000_000}),
        timeout=10,
    )
    body = b'{"customer": "' + b"x" * 60_000 + b'"}'  # a large body after a small head is fine
    normal = exchange(
        service.port,
        request_bytes("POST", "/v1/orders", {"Content-Type": "application/json"}, body),
    )
    row.add(requests=2, failures=int(huge.status != 431))
    assert huge.status == 431 and huge.closed
    assert huge.json()["error"]["code"] == "request_header_fields_too_large"
    assert normal.status == 422  # reached the app's validation


def test_a_silent_connection_and_a_slowloris_trickle_are_closed_at_the_header_deadline(
    service: Service, summary: Summary
) -> None:
    row = summary(SCENARIO)
    with socket.create_connection(("127.0.0.1", service.port)) as silent:
        said, silent_s = closed_after(silent, HEADER_TIMEOUT_S + 10)
    with socket.create_connection(("127.0.0.1", service.port)) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        trickled = 0
        try:
            while time.monotonic() - started < HEADER_TIMEOUT_S + 10:
                slow.sendall(f"X-Trickle-{trickled}: a\r\n".encode())
                trickled += 1
                time.sleep(0.25)
        except (BrokenPipeError, ConnectionResetError):
            pass
        _, _ = closed_after(slow, 5)
        slow_s = time.monotonic() - started
    row.add(requests=2, failures=int(silent_s > HEADER_TIMEOUT_S + SLACK_S))
    row.held = (
        f"1 MB header: 431 + close; silent connection closed after {silent_s:.1f} s, slowloris "
        f"after {slow_s:.1f} s ({trickled} header lines), both with 408"
    )
    assert said.startswith(b"HTTP/1.1 408") and b"request_timeout" in said
    assert HEADER_TIMEOUT_S - 0.5 <= silent_s <= HEADER_TIMEOUT_S + SLACK_S
    assert slow_s <= HEADER_TIMEOUT_S + SLACK_S


def test_connections_beyond_the_cap_are_answered_503(service: Service, summary: Summary) -> None:
    row = summary(SCENARIO)
    held = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        over = exchange(service.port, request_bytes("GET", "/healthz"))
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    after = exchange(service.port, request_bytes("GET", "/healthz"))
    row.add(requests=2, failures=int(over.status != 503))
    row.held += f"; connection {MAX_CONNECTIONS + 1} got {over.status}, then 200 once they closed"
    assert over.status == 503
    assert after.status == 200
