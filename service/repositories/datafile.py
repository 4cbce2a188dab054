"""The JSON backend's file on disk: the one-writer lock, and atomic writes of the document in
chunks of already-encoded records (temp file, fsync, rename, fsync of the directory)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from service.errors import DataFileLockedError

# Records per writev call: the thread holds the GIL only to slice the list, never to copy data.
CHUNK_RECORDS = 500


def document_chunks(
    header: bytes, parts: list[tuple[str, list[bytes]]], idempotency: list[list[str]]
) -> Iterable[list[bytes]]:
    """The pickup-data document, as lists of buffers for writev:
    `{"format":..,"version":..,"stores":[..],"menu_items":[..],"orders":[..],"idempotency":..}`."""
    yield [header[:-1]]  # without its closing brace
    for name, records in parts:
        yield [b',"' + name.encode() + b'":[']
        for start in range(0, len(records), CHUNK_RECORDS):
            buffers = [b","] if start else []
            for record in records[start : start + CHUNK_RECORDS]:
                buffers += (record, b",")
            if buffers:
                buffers.pop()  # no comma after the chunk's last record
            yield buffers
        yield [b"]"]
    yield [b',"idempotency":' + orjson.dumps(idempotency) + b"}"]


def acquire_write_lock(path: Path) -> int:
    """Take the exclusive lock that every writer of `path` holds; returns its fd (close it to
    release). Raises DataFileLockedError, naming the holder's pid, when another process has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f"{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DataFileLockedError(
            f"the data file {path} is in use by another process (pid {holder}): a running "
            "`pickup serve`, `pickup seed` or `pickup data import`. Only one process may write "
            "it; stop that one first (or point JSON_DATA_PATH at another file)."
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def atomic_write(path: Path, data: bytes) -> None:
    atomic_write_chunks(path, ([data],))


def atomic_write_chunks(path: Path, chunks: Iterable[list[bytes]]) -> None:
    """Write `chunks` (lists of buffers) to `path` atomically (temp file, fsync, rename, fsync
    of the directory), readable and writable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover temp file of ours may have had another mode
        for buffers in chunks:
            _write_all(fd, buffers)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_all(fd: int, buffers: list[bytes]) -> None:
    # writev releases the GIL for the whole copy; a short write resumes where it stopped.
    total = sum(map(len, buffers))
    while buffers:
        written = os.writev(fd, buffers)
        if written == total:
            return
        total -= written
        while buffers and written >= len(buffers[0]):
            written -= len(buffers[0])
            buffers.pop(0)
        if buffers and written:
            buffers[0] = buffers[0][written:]
