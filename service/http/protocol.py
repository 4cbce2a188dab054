"""uvicorn's httptools protocol with the limits it lacks on the request head.

httptools accepts request headers of any size and uvicorn gives the request line and headers no
deadline, so one client could hold 64 MB of header in memory or keep a connection open for ever by
sending nothing, or a header line now and then (slowloris). This subclass refuses a head larger
than `max_header_bytes` with 431 and closes the connection, and closes a connection whose head has
not arrived `header_timeout_s` after it opened (or after the previous request ended) with 408.
The number of connections is capped by uvicorn's own `limit_concurrency` (503 beyond it).
Both answers use the service's JSON error envelope.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self, *args: Any, max_header_bytes: int, header_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._max_header_bytes = max_header_bytes
        self._header_timeout_s = header_timeout_s
        self._in_head = True  # waiting for (the rest of) a request line and headers
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing, so body bytes that arrived with the end of the head never count.
        if self._in_head and self._head_bytes > self._max_header_bytes:
            self._refuse(
                431,
                "request_header_fields_too_large",
                f"the request line and headers exceed {self._max_header_bytes} bytes",
            )

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next request on this connection gets its own head deadline.
        self._in_head = True
        self._head_bytes = 0
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self._header_timeout_s, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # the previous response is still being written: not idle
            return
        self._refuse(
            408,
            "request_timeout",
            f"the request line and headers did not arrive within {self._header_timeout_s:g} s",
        )

    def _refuse(self, status: int, code: str, message: str) -> None:
        if self.transport.is_closing():
            return
        self._in_head = False
        self._cancel_head_timer()
        body = orjson.dumps({"error": {"code": code, "message": message, "details": {}}})
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(head))
        self.transport.close()
