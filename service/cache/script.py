"""A Lua script run straight on connections of its own, for the two scripts of every hot read.

Through redis-py's client each call paid for the command machinery: `Redis.execute_command`,
its `Retry` wrapper, the pool's lock and connection-count instrumentation on get and release,
`AsyncScript`'s bookkeeping. That was about half of the CPU a Redis-backed hot read cost
(a micro-benchmark: ~210 µs per script call through the client, ~110 µs on a held connection).
Here a call takes an idle connection from a plain list (or dials one with the pool's class and
options, so URL options, TLS, AUTH and our connect deadline all still apply), sends EVALSHA
packed by `pack`, reads the reply, and puts the connection back.

These connections have no socket timeout: redis-py would bound each write with `wait_for` (a
task per command on Python 3.11) and each read with a timeout of its own, and every caller
already bounds the whole call with its own deadline (`asyncio.timeout`), connecting included.

Failures stay the caller's to answer (the cache degrades to a miss, the limiter fails open or
closed): any error other than a reply error drops the connection, so a half-read reply is never
read by the next call and a dead server's connections are replaced on the next call. With
`retries=1`, a reused connection that fails is replaced at once within the same call, as
redis-py's `Retry` did for a pooled connection that died with a restarted server. A server that
lost its scripts (restart, SCRIPT FLUSH) answers NOSCRIPT; the call then sends the source once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Arg = str | bytes | int

# Connections kept idle between calls; more concurrent calls dial more and close the surplus.
MAX_IDLE = 32


class DirectScript:
    def __init__(self, pool: ConnectionPool, source: str, *, retries: int = 0) -> None:
        self._pool = pool
        self._source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (how Redis names scripts)
        self._retries = retries
        self._idle: list[AbstractConnection] = []
        self._options = {**pool.connection_kwargs, "socket_timeout": None}

    async def __call__(self, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        attempt = 0
        while True:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else self._pool.connection_class(**self._options)
            try:
                result = await self._run(conn, keys, args)
            except ResponseError:
                # The reply was read whole: the connection is fine.
                await self._put_back(conn)
                raise
            except BaseException as exc:
                # Timed out, cancelled or cut off mid-reply: never reuse it.
                await conn.disconnect(nowait=True)
                retriable = isinstance(exc, RedisConnectionError | OSError) and reused
                if retriable and attempt < self._retries:
                    attempt += 1
                    continue
                raise
            await self._put_back(conn)
            return result

    async def _run(self, conn: AbstractConnection, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        await conn.connect()  # type: ignore[no-untyped-call]  # nothing to do when connected
        await conn.send_packed_command(
            pack("EVALSHA", self.sha, len(keys), *keys, *args), check_health=False
        )
        try:
            return await conn.read_response()
        except NoScriptError:
            await conn.send_packed_command(
                pack("EVAL", self._source, len(keys), *keys, *args), check_health=False
            )
            return await conn.read_response()

    async def _put_back(self, conn: AbstractConnection) -> None:
        if len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            await conn.disconnect(nowait=True)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()


def pack(*parts: Arg) -> bytes:
    """One command in RESP: an array of bulk strings (what redis-py's pack_command builds, in one
    pass over arguments that are only ever str, bytes or int here)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)
