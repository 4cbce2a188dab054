"""Probes for the low-severity findings of the hardening review (issue 14), against real
processes: what production refuses to start with, what a client can learn or break through
input, caching, redirects and credentials, and whether one phone can hoard a store's slots.
Each failed before its fix (the fixes' commits say which mechanism they use)."""

from __future__ import annotations

import base64
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.hostile import envelope_problems, from_httpx
from tests.reliability.load import open_shop
from tests.reliability.procs import (
    BIN,
    STAFF,
    STAFF_KEY,
    PrivatePostgres,
    Production,
    Service,
    free_port,
    production_env,
)
from tests.reliability.table import Summary, fixed_bug

STRONG = "Zq8vN3sLw7pXk2RtHm5B"


def serve_refused(tmp_path: Path, **settings: Any) -> str:
    """Run `pickup serve` as production would; it must exit before binding. Returns its output."""
    port = free_port()
    result = subprocess.run(
        [str(BIN / "pickup"), "serve"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        env=production_env(tmp_path, **{"PORT": port, "DATA_BACKEND": "json", **settings}),
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 2, output[-2000:]
    with socket.socket() as sock:  # the port was never bound
        sock.bind(("127.0.0.1", port))
    return output


@pytest.mark.parametrize(
    ("settings", "named", "secret"),
    [
        ({"ADMIN_TOKEN": "aaaaaaaaaaaaaaaa"}, "ADMIN_TOKEN", "aaaaaaaaaaaaaaaa"),
        ({"ADMIN_TOKEN": "password12345678"}, "ADMIN_TOKEN", "password12345678"),
        ({"STAFF_API_KEYS": "changemechangeme"}, "STAFF_API_KEYS", "changemechangeme"),
        ({"METRICS_TOKEN": "qwertyuiopasdfgh"}, "METRICS_TOKEN", "qwertyuiopasdfgh"),
        ({"ADMIN_TOKEN": STAFF_KEY}, "ADMIN_TOKEN", STAFF_KEY),
        ({"STAFF_API_KEYS": f"store-1:{STRONG}"}, "STAFF_API_KEYS", STRONG),
        ({"METRICS_TOKEN": ""}, "METRICS_TOKEN", None),
        (
            {
                "DATA_BACKEND": "postgres",
                "DATABASE_URL": "postgresql://u@127.0.0.1:9/x",
                "WEB_CONCURRENCY": 2,
            },
            "WEB_CONCURRENCY",
            None,
        ),
    ],
)
def test_production_refuses_weak_or_unsafe_configuration_without_printing_it(
    settings: dict[str, Any], named: str, secret: str | None, tmp_path: Path, summary: Summary
) -> None:
    fixed_bug(summary, requests=0)
    output = serve_refused(tmp_path, **settings)
    assert f"{named}:" in output
    if secret is not None:
        assert secret not in output


def test_several_workers_without_redis_outside_production_are_warned_about_loudly(
    private_postgres: PrivatePostgres, tmp_path: Path, summary: Summary
) -> None:
    fixed_bug(summary, requests=1)
    dsn = private_postgres.create_database()
    with Service(
        tmp_path / "service",
        APP_ENV="test",
        WEB_CONCURRENCY=2,
        DATA_BACKEND="postgres",
        DATABASE_URL=dsn,
    ) as service:
        assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200
        log = service.log_text()
    assert "WARNING" in log and "REDIS_URL" in log and "WEB_CONCURRENCY=2" in log


ISSUED_ID = "0b6c5f64-6a42-4a8b-9a2e-0f1b2c3d4e5f"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


CRAFTED_CURSORS = [
    b64(f"2026-12-01T12:00:00|{ISSUED_ID}"),  # naive instant
    b64(f"9999-12-31T23:59:59-23:59|{ISSUED_ID}"),  # overflows UTC
    b64("2026-12-01T12:00:00+00:00|not-an-id"),  # not a uuid for PostgreSQL
    b64("2026-12-01T12:00:00+00:00|" + "9" * 150),
    b64("not-an-id"),
    b64(ISSUED_ID.upper()),
    "A" * 200,
]


@pytest.mark.parametrize("cursor", CRAFTED_CURSORS)
def test_a_crafted_cursor_is_a_422_on_postgresql_never_a_5xx(
    cursor: str, production: Production, summary: Summary
) -> None:
    fixed_bug(summary, requests=2)
    url = production.service.url
    for path in (f"/v1/stores/{production.shop.store_id}/orders", "/v1/stores"):
        answer = from_httpx(
            httpx.get(f"{url}{path}", params={"cursor": cursor}, headers=STAFF, timeout=10)
        )
        assert answer.status == 422, (path, answer.body[:200])
        assert envelope_problems(answer) == []


@pytest.mark.parametrize("zone", ["America", "Europe/", "localtime", "../../etc/passwd", "Etc"])
def test_a_time_zone_that_names_no_zone_is_a_422(
    zone: str, production: Production, summary: Summary
) -> None:
    fixed_bug(summary, requests=1)
    body = {
        "name": "Zone probe",
        "address": "1 Probe Street",
        "timezone": zone,
        "opening_hours": {"mon": [{"opens": "07:00", "closes": "20:00"}]},
    }
    answer = httpx.post(f"{production.service.url}/v1/stores", json=body, headers=STAFF)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == "timezone"


@pytest.mark.parametrize(
    "text",
    ["\u202eevil", "\u200b\u200d\ufeff", "\x1b[2J", "bell\x07", "   ", "a\u2028b"],
)
def test_names_and_notes_a_person_cannot_read_back_are_422(
    text: str, production: Production, summary: Summary
) -> None:
    fixed_bug(summary, requests=2)
    url = f"{production.service.url}/v1/orders"
    note = httpx.post(url, json=production.shop.order(note=text), timeout=10)
    name = httpx.post(
        url, json=production.shop.order(customer={"name": text, "phone": "+15550199"}), timeout=10
    )
    assert (note.status_code, name.status_code) == (422, 422), (note.text, name.text)


def test_a_slash_redirect_never_echoes_the_host_header(
    production: Production, summary: Summary
) -> None:
    fixed_bug(summary, requests=1)
    answer = httpx.get(
        f"{production.service.url}/v1/stores/",
        headers={"Host": "attacker.example"},
        follow_redirects=False,
    )
    assert "attacker.example" not in answer.headers.get("location", "")
    assert answer.status_code == 404


def test_anonymous_callers_cannot_tell_a_known_order_from_an_unknown_one(
    production: Production, summary: Summary
) -> None:
    fixed_bug(summary, requests=8)
    url = production.service.url
    placed = httpx.post(f"{url}/v1/orders", json=production.shop.order(), timeout=10)
    assert placed.status_code == 201, placed.text
    known, unknown = placed.json()["id"], ISSUED_ID
    for suffix, method in (
        ("", "GET"),
        ("/cancel", "POST"),
        ("/status", "POST"),
        ("/pickup", "POST"),
    ):
        answers = [
            httpx.request(method, f"{url}/v1/orders/{order_id}{suffix}", timeout=10)
            for order_id in (known, unknown)
        ]
        assert [a.status_code for a in answers] == [401, 401], suffix


@pytest.mark.parametrize("refusal", ["gzip;q=0", "gzip; q=0.000, identity", "*;q=0"])
def test_a_client_that_refuses_gzip_never_gets_it(
    refusal: str, production: Production, summary: Summary
) -> None:
    fixed_bug(summary, requests=3)
    url = production.service.url
    for path in (
        f"/v1/stores/{production.shop.store_id}/menu",
        f"/v1/stores/{production.shop.store_id}/slots?date={production.shop.slots[0][:10]}",
        "/openapi.json",
    ):
        answer = httpx.get(f"{url}{path}", headers={"Accept-Encoding": refusal}, timeout=10)
        assert answer.status_code == 200
        assert "content-encoding" not in answer.headers, path


def test_one_phone_cannot_hoard_a_stores_slots_even_all_at_once(
    tmp_path: Path, summary: Summary
) -> None:
    fixed_bug(summary, requests=24)
    with Service(
        tmp_path / "service", DATA_BACKEND="json", WEB_CONCURRENCY=1, MAX_LIVE_ORDERS_PER_PHONE=3
    ) as service:
        shop = open_shop(service.url)

        def place(n: int) -> httpx.Response:
            body = shop.order(slot=shop.slots[n % len(shop.slots)])
            return httpx.post(f"{service.url}/v1/orders", json=body, timeout=20)

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(place, range(24)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 3 + [409] * 21, statuses
    refused = [a for a in answers if a.status_code == 409]
    assert {a.json()["error"]["code"] for a in refused} == {"too_many_live_orders"}
