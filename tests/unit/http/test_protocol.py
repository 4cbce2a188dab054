"""The protocol's writes, as a socket would see them: each response leaves in one write.

The transport below stands in for the socket (the boundary: it records what would be sent);
the protocol, uvicorn's cycle and the ASGI app above it are the real ones."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.server import ServerState

from service.http.protocol import GuardedHttpToolsProtocol

BODY = b"x" * 3000


class Socket(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def big(request: Request) -> Response:
    return PlainTextResponse(BODY)


async def not_modified(request: Request) -> Response:
    return Response(status_code=304, headers={"ETag": '"v1"'})


async def stream(request: Request) -> Response:
    async def chunks() -> Any:
        yield b"first"
        await asyncio.sleep(0)
        yield b"second"

    return StreamingResponse(chunks())


async def echo(request: Request) -> Response:
    return PlainTextResponse(await request.body())


class HeadThenCrash:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": [(b"x-part", b"1")]}
        await send(start)
        raise RuntimeError("broken after the head")


APP = Starlette(
    routes=[
        Route("/big", big, methods=["GET", "HEAD"]),
        Route("/304", not_modified),
        Route("/stream", stream),
        Route("/echo", echo, methods=["POST"]),
        Route("/crash", HeadThenCrash()),
    ]
)


async def exchange(
    *chunks: bytes, settle: float = 0.05, head_timeout_s: float = 5.0, idle_s: float = 0.0
) -> Socket:
    config = uvicorn.Config(APP, loop="asyncio", access_log=False, log_config=None)
    protocol = GuardedHttpToolsProtocol(
        config, ServerState(), {}, max_header_bytes=8192, header_timeout_s=head_timeout_s
    )
    socket = Socket()
    protocol.connection_made(socket)
    for chunk in chunks:
        protocol.data_received(chunk)
        await asyncio.sleep(settle)
    await asyncio.sleep(idle_s)
    protocol.connection_lost(None)
    return socket


def responses(socket: Socket) -> list[bytes]:
    return [w for w in socket.writes if not w.startswith(b"HTTP/1.1 100 ")]


async def test_a_response_head_and_body_leave_in_one_write() -> None:
    socket = await exchange(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")

    (write,) = socket.writes
    assert write.startswith(b"HTTP/1.1 200 OK\r\n")
    assert write.endswith(b"\r\n\r\n" + BODY)


async def test_keep_alive_requests_get_one_write_each_in_order() -> None:
    socket = await exchange(
        b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n"
    )

    first, second = socket.writes
    assert first.startswith(b"HTTP/1.1 200 OK") and first.endswith(BODY)
    assert second.startswith(b"HTTP/1.1 304 Not Modified") and second.endswith(b"\r\n\r\n")
    assert b'etag: "v1"' in second


@pytest.mark.parametrize("path", ["/big", "/304"])
async def test_a_bodiless_response_is_not_held_back(path: str) -> None:
    method = b"HEAD" if path == "/big" else b"GET"
    socket = await exchange(method + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")

    (write,) = socket.writes
    assert write.endswith(b"\r\n\r\n")
    assert BODY not in write


async def test_a_streamed_body_joins_the_head_with_its_first_chunk_only() -> None:
    socket = await exchange(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")

    assert socket.writes[0].startswith(b"HTTP/1.1 200 OK")
    assert socket.writes[0].endswith(b"\r\n\r\n5\r\nfirst\r\n")
    assert b"".join(socket.writes[1:]) == b"6\r\nsecond\r\n0\r\n\r\n"


async def test_100_continue_goes_out_before_the_body_is_read() -> None:
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    socket = await exchange(head, b"hello")

    assert socket.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    (answer,) = responses(socket)
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\nhello")


async def test_a_response_on_a_connection_that_closes_after_it_is_sent_whole() -> None:
    # HTTP/1.0 without keep-alive: the cycle closes the connection right after the body.
    socket = await exchange(b"GET /big HTTP/1.0\r\n\r\n")

    (write,) = socket.writes
    assert write.startswith(b"HTTP/1.1 200 OK") and write.endswith(BODY)


async def test_the_head_deadline_follows_the_last_request_and_then_closes_an_idle_connection() -> (
    None
):
    # Eight requests 0.05 s apart span twice the 0.2 s deadline: none is refused; the idle time
    # after the last one is.
    request = b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n"
    socket = await exchange(*[request] * 8, settle=0.05, head_timeout_s=0.2)
    assert [w[:12] for w in socket.writes] == [b"HTTP/1.1 304"] * 8  # no 408

    socket = await exchange(*[request] * 3, b"", b"", b"", b"", b"", settle=0.1, head_timeout_s=0.2)
    assert [w[:12] for w in socket.writes[:3]] == [b"HTTP/1.1 304"] * 3
    assert socket.writes[3].startswith(b"HTTP/1.1 408 ") and b"request_timeout" in socket.writes[3]


async def test_a_head_already_started_is_sent_when_the_app_then_fails() -> None:
    # As before: the server closes the connection, and the client sees the head it was sent.
    socket = await exchange(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")

    (write,) = socket.writes
    assert write.startswith(b"HTTP/1.1 200 OK") and b"x-part: 1" in write
