"""A hot read with Redis behind both the cache and the limiter costs two round trips: one
script for the limiter's decision, one for the cache's version and value. Counted by the
Redis server itself (MONITOR, which tags commands run inside scripts as "lua") on a private
redis-server, so nothing else is counted."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis
from starlette.testclient import TestClient

from tests.integration.cache.conftest import StartRedis
from tests.integration.test_api_cache_metrics import store_with_items

pytestmark = pytest.mark.redis


START, END = "start-of-round-trip-count", "end-of-round-trip-count"


@contextmanager
def client_commands(url: str) -> Iterator[list[str]]:
    """The commands clients send (not those scripts run) while the block runs: everything the
    server saw between two ECHO markers, so nothing sent before the block can slip in."""
    seen: list[str] = []
    admin = redis.Redis.from_url(url)
    monitor = admin.monitor()
    listening, counting = threading.Event(), threading.Event()

    def record() -> None:
        with monitor as m:
            listening.set()
            while True:
                command = m.next_command()
                if START in command["command"]:
                    counting.set()
                elif END in command["command"]:
                    return
                elif counting.is_set() and command["client_type"] != "lua":
                    seen.append(command["command"].split()[0].upper())

    watcher = threading.Thread(target=record, daemon=True)
    watcher.start()
    listening.wait(5)
    admin.echo(START)
    assert counting.wait(5), "MONITOR never saw the start marker"
    try:
        yield seen
    finally:
        admin.echo(END)
        watcher.join(10)
        admin.close()


@pytest.mark.parametrize("headers", [{"Accept-Encoding": "gzip"}, {}], ids=["gzip", "identity"])
def test_a_hot_menu_read_with_the_limiter_is_two_redis_round_trips(
    start_redis: StartRedis,
    make_client: Callable[..., TestClient],
    staff: dict[str, str],
    headers: dict[str, str],
) -> None:
    server = start_redis()
    limited = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_MAX": "1000000"}
    with make_client(REDIS_URL=server.url, **limited) as client:
        store_id = store_with_items(client, staff, 30)
        url = f"/v1/stores/{store_id}/menu"
        warm = client.get(url, headers=headers)
        assert warm.status_code == 200

        with client_commands(server.url) as served:
            hot = client.get(url, headers=headers)
        with client_commands(server.url) as served_304:
            revalidated = client.get(url, headers={**headers, "If-None-Match": hot.headers["etag"]})

    assert hot.status_code == 200
    assert hot.content == warm.content
    assert "ratelimit" in hot.headers
    assert served == ["EVALSHA", "EVALSHA"]
    assert revalidated.status_code == 304
    assert served_304 == ["EVALSHA", "EVALSHA"]
