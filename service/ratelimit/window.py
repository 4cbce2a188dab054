"""The sliding-window counter in one storage operation per decision.

`limits`' sliding-window counter answers "allowed?" with one call and "how many are left, and
when does that change?" with a second, so every request paid two storage operations (two Redis
round trips) plus building its limit item and keys. Here one call does both:

- in Redis, one Lua script: `limits`' own acquire script (same keys, same arithmetic, so the
  count stays exact across processes sharing Redis) that also returns the window's counts;
- in process, the same arithmetic on a dict, without locks or timers (one event loop per
  worker; each worker counts alone, as `limits`' memory storage does).

The window model is `limits`' Redis one: a window starts at a key's first hit and lasts
`window_s`; when it ends, its count becomes the previous window's, weighted by how much of the
previous window still overlaps the sliding window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import redis.asyncio

# `limits`' acquire_sliding_window.lua, returning the counts after the hit as well.
_HIT_SCRIPT = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local allowed = 1

local current_ttl = tonumber(redis.call('pttl', KEYS[2]))
if current_ttl > 0 and current_ttl < expiry then
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end

local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = tonumber(redis.call('pttl', KEYS[1])) or 0
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
current_ttl = tonumber(redis.call('pttl', KEYS[2])) or 0
if previous_ttl <= 0 then previous_ttl = 0 end
if current_ttl <= 0 then current_ttl = 0 end

if math.floor(previous_count * previous_ttl / expiry) + current_count + 1 > limit then
    allowed = 0
elseif redis.call('exists', KEYS[2]) == 1 then
    current_count = redis.call('incrby', KEYS[2], 1)
else
    redis.call('set', KEYS[2], 1, 'PX', expiry * 2)
    current_count = 1
    current_ttl = expiry * 2
end
return {allowed, previous_count, previous_ttl, current_count, current_ttl}
"""


class WindowHit(NamedTuple):
    allowed: bool
    remaining: int
    reset_after_s: float


def window_hit(
    allowed: bool,
    limit: int,
    window_s: float,
    previous: int,
    previous_left_s: float,
    current: int,
    current_left_s: float,
) -> WindowHit:
    """The decision and `limits`' window stats (SlidingWindowCounterRateLimiter
    .get_window_stats) from the counts one storage call returned."""
    weighted = previous * previous_left_s / window_s + current
    remaining = max(0, limit - math.floor(weighted))
    reset = math.inf
    if previous:
        reset = previous_left_s % (window_s / previous)
    if current:
        # A window read at the very instant it started has a whole window to go, not zero.
        reset = min(reset, current_left_s % window_s or window_s)
    return WindowHit(allowed, remaining, 0.0 if reset == math.inf else reset)


class RedisSlidingWindow:
    """Keys are `limits`' own (`<prefix>:{LIMITER/<key>/<limit>/<window>/second}` and its
    `/-1` twin), so the two implementations can share counters."""

    def __init__(self, pool: redis.asyncio.ConnectionPool, key_prefix: str) -> None:
        from redis.asyncio import Redis  # only where the limiter counts in Redis

        self._client = Redis(connection_pool=pool)
        self._script = self._client.register_script(_HIT_SCRIPT)
        self._prefix = key_prefix

    def keys(self, key: str, limit: int, window_s: int) -> tuple[str, str]:
        current = f"{self._prefix}:{{LIMITER/{key}/{limit}/{window_s}/second}}"
        return f"{current}/-1", current

    async def hit(self, keys: tuple[str, str], limit: int, window_s: int) -> WindowHit:
        allowed, previous, previous_ttl, current, current_ttl = await self._script(
            keys=keys, args=[limit, window_s]
        )
        return window_hit(
            bool(allowed),
            limit,
            window_s,
            int(previous),
            int(previous_ttl) / 1000,
            int(current),
            int(current_ttl) / 1000,
        )


class MemorySlidingWindow:
    # Stale windows are dropped by a sweep at most this often: O(keys) once a minute instead of
    # a timer per key.
    SWEEP_INTERVAL_S = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key -> [current window's start, its window_s, previous count, current count]
        self._windows: dict[str, list[float]] = {}
        self._next_sweep = clock() + self.SWEEP_INTERVAL_S

    def __len__(self) -> int:
        return len(self._windows)

    def keys(self, key: str, limit: int, window_s: int) -> tuple[str, str]:
        return key, f"{key}/{limit}/{window_s}"

    async def hit(self, keys: tuple[str, str], limit: int, window_s: int) -> WindowHit:
        return self.hit_now(keys[1], limit, window_s)

    def hit_now(self, key: str, limit: int, window_s: int) -> WindowHit:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        state = self._windows.get(key)
        if state is None or now >= state[0] + 2 * window_s:
            state = self._windows[key] = [now, window_s, 0, 0]
        elif now >= state[0] + window_s:
            # The current window ended: it becomes the previous one, and the next one starts
            # where it ended (not now), exactly as the Redis script shifts its keys.
            state[0], state[2], state[3] = state[0] + window_s, state[3], 0
        start, _, previous, current = state
        previous_left = start + window_s - now if previous else 0.0
        allowed = math.floor(previous * previous_left / window_s) + current + 1 <= limit
        if allowed:
            current += 1
            state[3] = current
        return window_hit(
            allowed,
            limit,
            window_s,
            int(previous),
            previous_left,
            int(current),
            start + 2 * window_s - now,
        )

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_INTERVAL_S
        stale = [k for k, (start, w, _, _) in self._windows.items() if now >= start + 2 * w]
        for key in stale:
            del self._windows[key]
