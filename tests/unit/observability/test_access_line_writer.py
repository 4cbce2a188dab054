"""The access lines' batching, as a reader of the process's output sees it (a real pipe)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import select
from collections.abc import Iterator
from typing import IO, Any

import pytest
import structlog

from service.observability import accesslog
from service.observability.logging import configure_logging


@pytest.fixture
def pipe() -> Iterator[tuple[IO[Any], int]]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    with os.fdopen(write_fd, "w") as stream:
        yield stream, read_fd
    os.close(read_fd)


def drain(fd: int) -> list[dict[str, Any]]:
    chunks = []
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return [json.loads(line) for line in b"".join(chunks).splitlines()]


def write(writer: accesslog.AccessLineWriter, path: str) -> None:
    writer.write("GET", "/v1/stores", path, 200, 0.001, "req")


async def test_the_lines_of_one_loop_turn_arrive_together_after_it(
    pipe: tuple[IO[Any], int],
) -> None:
    stream, fd = pipe
    writer = accesslog.AccessLineWriter(stream, scrub=str)
    for n in range(3):
        write(writer, f"/v1/stores/{n}")
    assert drain(fd) == []  # nothing yet: the turn is not over

    await asyncio.sleep(0)

    assert [line["path"] for line in drain(fd)] == ["/v1/stores/0", "/v1/stores/1", "/v1/stores/2"]


def test_without_an_event_loop_each_line_is_written_at_once(pipe: tuple[IO[Any], int]) -> None:
    stream, fd = pipe
    writer = accesslog.AccessLineWriter(stream, scrub=str)
    write(writer, "/a")
    assert [line["path"] for line in drain(fd)] == ["/a"]


async def test_other_log_lines_never_overtake_pending_access_lines(
    pipe: tuple[IO[Any], int],
) -> None:
    stream, fd = pipe
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", stream=stream)
    try:
        writer = accesslog.current()
        assert writer is not None
        write(writer, "/first")
        structlog.get_logger("service").warning("after the first request")
        logging.getLogger("uvicorn.error").warning("a stdlib line")
        write(writer, "/second")
        await asyncio.sleep(0)
        events = [line.get("path") or line["event"] for line in drain(fd)]
    finally:
        root.handlers, root.level = saved
        structlog.reset_defaults()
        configure_logging("INFO", stream=io.StringIO())
        structlog.reset_defaults()

    assert events == ["/first", "after the first request", "a stdlib line", "/second"]


async def test_pending_lines_are_written_when_the_writer_is_flushed_at_shutdown(
    pipe: tuple[IO[Any], int],
) -> None:
    stream, fd = pipe
    accesslog.install(accesslog.AccessLineWriter(stream, scrub=str))
    try:
        write(accesslog.current(), "/last")  # type: ignore[arg-type]
        accesslog.flush()  # the app's lifespan end, and atexit
        assert [line["path"] for line in drain(fd)] == ["/last"]
    finally:
        accesslog.install(None)
