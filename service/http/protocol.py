"""uvicorn's httptools protocol with the limits it lacks on the request head.

httptools accepts request headers of any size and uvicorn gives the request line and headers no
deadline, so one client could hold 64 MB of header in memory or keep a connection open for ever by
sending nothing, or a header line now and then (slowloris). This subclass refuses a head larger
than `max_header_bytes` with 431 and closes the connection, and closes a connection whose head has
not arrived `header_timeout_s` after it opened (or after the previous request ended) with 408.
The number of connections is capped by uvicorn's own `limit_concurrency` (503 beyond it).
Both answers use the service's JSON error envelope.

It also sends each response's head and the first part of its body in one write. uvicorn writes the
status line and headers, then the body, and uvloop sends each write at once: two send syscalls per
response where one does (a hot cached read is a 2 KB body; the second send was ~5 % of its CPU).
The head is held until the first body write, the end of the response (HEAD, a bodiless 304), or
the connection's close, whichever comes first; a `100 Continue`, written before any response
starts, goes out at once as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

# A timer may fire this much before its time (the loop's clock resolution): then it is due.
TIMER_SLACK_S = 0.01


class _HeadWithBody(asyncio.Transport):
    """One response's view of the connection: the response head is held and sent together with
    what is written next. Everything else is the connection's own transport."""

    __slots__ = ("_cycle", "_head", "_head_written", "_on_response", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._head_written = False
        self._on_response = cycle.on_response

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif not self._head_written and self._cycle.response_started:
            # The first write after the response started is its status line and headers.
            self._head_written = True
            self._head = bytes(data)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def response_done(self) -> None:
        # The cycle's on_response: the response is complete (a HEAD or a 304 may have written
        # no body at all), so nothing may stay held.
        self.flush()
        self._on_response()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


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
        self._head_deadline: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
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
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:  # not an upgrade
            view = _HeadWithBody(self.transport, cycle)
            cycle.transport = view
            cycle.on_response = view.response_done

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next request on this connection gets its own head deadline.
        self._in_head = True
        self._head_bytes = 0
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        # A deadline per request, one timer per connection: moving the deadline costs no timer,
        # and the timer, when it fires, waits on for a deadline that moved (a keep-alive client
        # sends thousands of requests per timeout).
        self._head_deadline = self.loop.time() + self._header_timeout_s
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(self._head_deadline, self._head_timer_fired)

    def _cancel_head_timer(self) -> None:
        self._head_deadline = None  # the head arrived: the timer finds nothing to do

    def _stop_head_timer(self) -> None:
        self._head_deadline = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timer_fired(self) -> None:
        self._head_timer = None
        deadline = self._head_deadline
        if deadline is None or not self._in_head or self.transport.is_closing():
            return  # no head awaited now; the next request end arms the timer again
        if deadline - self.loop.time() > TIMER_SLACK_S:
            self._head_timer = self.loop.call_at(deadline, self._head_timer_fired)
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
        self._stop_head_timer()
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
