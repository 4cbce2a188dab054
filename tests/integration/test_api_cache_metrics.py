"""The cache, compression and metrics as a client and an operator see them."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.metrics import sample_sum
from harness.redis import RedisServer, redis_url
from service.http.caching import MENU_ENTITY, STORE_ENTITY
from tests.factories import create_store

REDIS_URL = redis_url("integration-cache-metrics")


def metric(client: TestClient, name: str, **labels: str) -> float:
    return sample_sum(client.get("/metrics").text, name, **labels)


@pytest.fixture(params=["memory", "redis"])
def cached_client(
    request: pytest.FixtureRequest, make_client: Callable[..., TestClient]
) -> Iterator[TestClient]:
    values = {"REDIS_URL": REDIS_URL} if request.param == "redis" else {}
    with make_client(**values) as c:
        yield c


def store_with_items(c: TestClient, staff: dict[str, str], count: int) -> str:
    """A new store with `count` menu items; returns its id."""
    store_id: str = create_store(c, staff)["id"]
    for n in range(count):
        c.post(
            f"/v1/stores/{store_id}/menu",
            headers=staff,
            json={
                "name": f"Item {n}",
                "category": "coffee",
                "price_cents": 300 + n,
                "currency": "GBP",
                "description": "A description long enough to make the menu worth compressing.",
            },
        ).raise_for_status()
    return store_id


def test_repeated_menu_reads_hit_the_backend_once(
    cached_client: TestClient, staff: dict[str, str]
) -> None:
    store_id = store_with_items(cached_client, staff, 3)
    before = metric(cached_client, "db_queries_total", query="list_menu")
    bodies = {cached_client.get(f"/v1/stores/{store_id}/menu").content for _ in range(20)}
    assert len(bodies) == 1
    assert metric(cached_client, "db_queries_total", query="list_menu") - before == 1
    assert metric(cached_client, "cache_requests_total", cache="menu", result="hit") >= 19


def test_a_write_is_visible_to_the_very_next_read(
    cached_client: TestClient, staff: dict[str, str]
) -> None:
    store_id = store_with_items(cached_client, staff, 2)
    menu_url = f"/v1/stores/{store_id}/menu"
    for round_ in range(5):
        item = cached_client.get(menu_url).json()["items"][0]
        cached_client.patch(
            f"{menu_url}/{item['id']}", json={"price_cents": 1000 + round_}, headers=staff
        ).raise_for_status()
        assert cached_client.get(menu_url).json()["items"][0]["price_cents"] == 1000 + round_
        cached_client.patch(
            f"/v1/stores/{store_id}", json={"name": f"Renamed {round_}"}, headers=staff
        ).raise_for_status()
        assert cached_client.get(f"/v1/stores/{store_id}").json()["name"] == f"Renamed {round_}"
        listed = {
            s["id"]: s["name"] for s in cached_client.get("/v1/stores?limit=100").json()["items"]
        }
        assert listed[store_id] == f"Renamed {round_}"


def test_large_bodies_are_gzipped_for_clients_that_ask(
    client: TestClient, staff: dict[str, str]
) -> None:
    store_id = store_with_items(client, staff, 30)
    url = f"/v1/stores/{store_id}/menu"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    raw_size = int(packed.headers["content-length"])
    assert raw_size < 0.4 * len(plain.content)  # gzip saves well over 60 % on menu JSON
    assert packed.json() == plain.json()  # the client transparently decompressed it


def test_small_bodies_are_never_compressed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in response.headers


def test_metrics_report_requests_by_route_template(
    client: TestClient, staff: dict[str, str]
) -> None:
    store_id = create_store(client, staff)["id"]
    client.get(f"/v1/stores/{store_id}")
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert re.search(
        r'http_requests_total\{method="GET",route="/v1/stores/\{store_id\}",status="200"\} 1', text
    )
    assert store_id not in text  # raw paths never become labels
    assert 'route="unmatched"' in text
    assert "process_resident_memory_bytes" in text
    assert 'circuit_breaker_state{name="openai",state="closed"} 1.0' in text
    assert 'circuit_breaker_state{name="openai",state="open"} 0.0' in text
    assert re.search(r'pickup_build_info\{commit="[0-9a-f]{12}",version="[^"]+"\} 1', text)
    assert 'readiness_check_state{check="database",state="ok"} 1.0' in text  # set by the scrape


def test_metrics_can_require_a_token(make_client: Callable[..., TestClient]) -> None:
    token = "metrics-token-0123456789abcdef"
    with make_client(METRICS_TOKEN=token) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_request_ids_are_echoed_or_generated(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id; drop"}).headers[
        "x-request-id"
    ]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_layers_switch_off_for_the_lab(make_client: Callable[..., TestClient]) -> None:
    values = {
        "CACHE_ENABLED": "false",
        "COMPRESSION_ENABLED": "false",
        "METRICS_ENABLED": "false",
        "SECURITY_HEADERS_ENABLED": "false",
    }
    with make_client(**values) as c:
        response = c.get("/v1/stores", headers={"Accept-Encoding": "gzip"})
        assert "x-request-id" not in response.headers and "x-frame-options" not in response.headers
        assert c.get("/metrics").status_code == 404
        assert c.get("/readyz").json()["checks"]["cache"]["mode"] == "disabled"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[[], RedisServer]]:
    """Starts (and restarts, on the same port) a redis-server of this test's own."""
    server = RedisServer(tmp_path)

    def start() -> RedisServer:
        return server.start()

    start.port = server.port  # type: ignore[attr-defined]
    yield start
    server.close()


def test_redis_outage_degrades_but_serves_and_recovers_by_itself(
    own_redis: Any, make_client: Callable[..., TestClient], staff: dict[str, str]
) -> None:
    server = own_redis()
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    with make_client(REDIS_URL=url) as c:
        store_id = create_store(c, staff)["id"]
        menu = f"/v1/stores/{store_id}/menu"
        c.get(menu)
        assert c.get("/readyz").json()["checks"]["cache"]["status"] == "ok"
        server.kill()
        started = time.monotonic()
        assert [c.get(menu).status_code for _ in range(5)] == [200] * 5
        assert time.monotonic() - started < 3  # each cache call gives up after its deadline
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["cache"]["status"] == "degraded"
        assert metric(c, "cache_store_errors_total") > 0
        own_redis()
        for _ in range(50):
            if c.get("/readyz").json()["checks"]["cache"]["status"] == "ok":
                break
            time.sleep(0.1)
        c.get(menu)
        hits = metric(c, "cache_requests_total", cache="menu", result="hit")
        c.get(menu)
        assert metric(c, "cache_requests_total", cache="menu", result="hit") == hits + 1


def test_uncached_large_responses_are_compressed_only_for_clients_that_ask(
    client: TestClient, staff: dict[str, str]
) -> None:
    store_id = create_store(client, staff)["id"]
    url = f"/v1/stores/{store_id}/slots?date=2026-12-01"  # not cached, several KB of JSON
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert (
        packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    )
    assert "content-encoding" not in plain.headers
    assert packed.json() == plain.json()


def test_reads_of_ids_that_do_not_exist_leave_nothing_in_the_cache(
    cached_client: TestClient,
) -> None:
    store = cached_client.app.state.ctx.cache.store  # type: ignore[attr-defined]
    unknown = [str(uuid.uuid4()) for _ in range(20)]
    for store_id in unknown:
        for path in (f"/v1/stores/{store_id}", f"/v1/stores/{store_id}/menu"):
            assert cached_client.get(path).status_code == 404
    assert cached_client.portal is not None
    for store_id in unknown:
        for entity in (STORE_ENTITY, MENU_ENTITY):
            key = f"v:{entity.format(store_id=store_id)}"
            assert cached_client.portal.call(store.get, key) is None


def test_a_crafted_variant_cannot_read_another_encodings_entry(
    cached_client: TestClient, staff: dict[str, str]
) -> None:
    for _ in range(3):
        create_store(cached_client, staff)
    cursor = cached_client.get("/v1/stores?limit=1").json()["next_cursor"]
    gzipped = cached_client.get(
        "/v1/stores", params={"limit": 1, "cursor": cursor}, headers={"Accept-Encoding": "gzip"}
    )
    assert gzipped.status_code == 200
    crafted = cached_client.get(
        "/v1/stores",
        params={"limit": 1, "cursor": cursor + ".gz"},
        headers={"Accept-Encoding": "identity"},
    )
    assert crafted.status_code == 422, crafted.content[:80]


@pytest.mark.parametrize("refusal", ["gzip;q=0", "gzip; q=0.0, identity", "*;q=0"])
def test_a_client_that_weights_gzip_zero_never_gets_gzip(
    refusal: str, cached_client: TestClient, staff: dict[str, str]
) -> None:
    store_id = store_with_items(cached_client, staff, 30)
    for url in (f"/v1/stores/{store_id}/menu", f"/v1/stores/{store_id}/slots?date=2026-12-01"):
        for _ in range(2):  # the cached path: a miss, then a hit
            answer = cached_client.get(url, headers={"Accept-Encoding": refusal})
            assert answer.status_code == 200
            assert "content-encoding" not in answer.headers, url
            assert answer.json()["items"]


def test_a_first_read_caches_under_a_version_it_claims_after_loading(
    cached_client: TestClient, staff: dict[str, str]
) -> None:
    store_id = create_store(cached_client, staff)["id"]
    store = cached_client.app.state.ctx.cache.store  # type: ignore[attr-defined]
    assert cached_client.portal is not None
    cached_client.portal.call(store.delete, f"v:{MENU_ENTITY.format(store_id=store_id)}")
    before = metric(cached_client, "db_queries_total", query="list_menu")
    for _ in range(3):
        assert cached_client.get(f"/v1/stores/{store_id}/menu").status_code == 200
    assert metric(cached_client, "db_queries_total", query="list_menu") - before == 1


def test_build_info_names_the_configured_commit(make_client: Callable[..., TestClient]) -> None:
    with make_client(BUILD_COMMIT="0123abcd") as c:
        text = c.get("/metrics").text
    assert re.search(r'pickup_build_info\{commit="0123abcd",version="[^"]+"\} 1', text)
