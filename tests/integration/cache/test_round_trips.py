"""A hot read with Redis behind both the cache and the limiter costs two round trips: one
script for the limiter's decision, one for the cache's version and value. Counted by the
Redis server itself (harness.redis.client_commands: MONITOR, which tags commands run inside
scripts as "lua") on a private redis-server, so nothing else is counted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from harness.redis import client_commands
from tests.integration.cache.conftest import StartRedis
from tests.integration.test_api_cache_metrics import store_with_items

pytestmark = pytest.mark.redis


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
