"""A hot read with Redis behind both the cache and the limiter costs two round trips: one
script for the limiter's decision, one for the cache's version and value. Counted by the
Redis server itself (harness.redis.client_commands: MONITOR, which tags commands run inside
scripts as "lua") on a private redis-server, so nothing else is counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.redis import client_commands
from service.app import create_app
from tests.factories import create_store
from tests.integration.cache.conftest import StartRedis
from tests.integration.test_api_cache_metrics import add_items

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("headers", [{"Accept-Encoding": "gzip"}, {}], ids=["gzip", "identity"])
def test_a_hot_menu_read_with_the_limiter_is_two_redis_round_trips(
    start_redis: StartRedis,
    make_settings: Callable[..., Any],
    staff: dict[str, str],
    clock: Any,
    headers: dict[str, str],
) -> None:
    server = start_redis()
    settings = make_settings(
        REDIS_URL=server.url, RATE_LIMIT_ENABLED="true", RATE_LIMIT_MAX="1000000"
    )
    with TestClient(create_app(settings, clock=clock)) as client:
        store_id = create_store(client, staff)["id"]
        add_items(client, staff, store_id, 30)
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
