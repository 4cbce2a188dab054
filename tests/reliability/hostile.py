"""Sending what no well-behaved client sends: raw sockets for what httpx refuses to build."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson


@dataclass
class Answer:
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    closed: bool = False  # the server closed the connection after answering
    elapsed_s: float = 0.0

    def json(self) -> Any:
        return orjson.loads(self.body)


def from_httpx(response: httpx.Response, elapsed_s: float = 0.0) -> Answer:
    return Answer(
        response.status_code,
        {k.lower(): v for k, v in response.headers.items()},
        response.content,
        response.headers.get("connection", "").lower() == "close",
        elapsed_s,
    )


def exchange(
    port: int,
    data: bytes,
    *,
    timeout: float = 5.0,
    then: Callable[[socket.socket], None] | None = None,
) -> Answer:
    """Write `data` on a fresh connection (then let `then` go on writing), read one response."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if then is not None:
            then(sock)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            return Answer(None, elapsed_s=time.monotonic() - started)
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/"):
            return Answer(None, body=received, closed=True, elapsed_s=time.monotonic() - started)
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        elapsed = time.monotonic() - started
        sock.settimeout(1.0)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False  # kept alive for the next request
        except ConnectionResetError:
            closed = True
        return Answer(status, headers, body[:length], closed, elapsed)


def request_bytes(
    method: str,
    path: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> bytes:
    """An HTTP/1.1 request exactly as given (no validation of names, values or lengths)."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if body is not None and not any(k.lower() == "content-length" for k, _ in items):
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in items)
    return head.encode("latin-1") + b"\r\n" + (body or b"")


def envelope_problems(answer: Answer) -> list[str]:
    """Why this answer is not a clear JSON error, or [] when it is one."""
    problems = []
    if not answer.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"content-type {answer.headers.get('content-type')!r}, not JSON")
        return problems
    try:
        document = answer.json()
    except orjson.JSONDecodeError:
        return ["the body is not JSON"]
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
        return [f"not the error envelope: {document!r:.200}"]
    if not isinstance(error["code"], str) or not error["code"]:
        problems.append("no error code")
    if not isinstance(error["message"], str) or not 0 < len(error["message"]) <= 300:
        problems.append(f"message not a short sentence: {error['message']!r:.100}")
    text = answer.body.decode("utf-8", "replace")
    for leak in ("Traceback", 'File "', "asyncpg", "psycopg", "SELECT ", "/work/"):
        if leak in text:
            problems.append(f"leaks {leak!r}")
    return problems
