"""The JSON data file has one writer, keeps its secrets to its owner, and a large file's writes
do not stall the server.

Before the fix two servers on one file each rewrote it from their own memory (20 of 40
acknowledged orders lost), `pickup seed` into a live file was overwritten by the server's next
write, a starting server deleted the live one's temp files, the files were world-readable, and
each write serialised the whole dataset on the event loop (`/healthz` 138 ms at 100,000 orders).
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.reliability.load import open_shop
from tests.reliability.procs import PICKUP, Service, free_port, production_env
from tests.reliability.table import Summary

SCENARIO = "one writer per JSON data file"
EXIT_DATA_FILE_LOCKED = 75  # documented in README.md ("One writer per data file")
LARGE_ORDERS = 100_000
HEALTHZ_P99_TARGET_MS = 20.0


def json_service(home: Path, **settings: object) -> Service:
    return Service(home, DATA_BACKEND="json", WEB_CONCURRENCY=1, **settings)


def pickup(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = production_env(home, DATA_BACKEND="json", WEB_CONCURRENCY=1, PORT=free_port())
    return subprocess.run(
        [PICKUP, *args], env=env, cwd=home, capture_output=True, text=True, timeout=120
    )


@pytest.mark.timeout(240)
def test_a_second_writer_on_a_live_data_file_refuses_and_nothing_is_lost(
    tmp_path: Path, summary: Summary
) -> None:
    row = summary(
        SCENARIO,
        done="a server owns pickup.json; a 2nd `pickup serve`, `pickup seed`, `pickup data "
        "import` on it; `pickup data export` beside it; 100,000-order file: /healthz timed "
        "while orders are written",
    )
    home = tmp_path / "service"
    data = home / "pickup.json"
    with json_service(home) as first:
        shop = open_shop(first.url)
        placed = [httpx.post(f"{first.url}/v1/orders", json=shop.order(), timeout=10)]
        # A temp file as a write in flight leaves it: the second process must not touch it.
        in_flight = home / f".pickup.json.{os.getpid()}.tmp"
        in_flight.write_bytes(b"{")

        second = pickup(home, "serve")
        seeded = pickup(home, "seed", "--stores", "3", "--orders", "5")
        exported = pickup(home, "data", "export", str(tmp_path / "backup.json"))
        imported = pickup(home, "data", "import", str(tmp_path / "backup.json"))
        placed.append(httpx.post(f"{first.url}/v1/orders", json=shop.order(), timeout=10))
        temp_kept = in_flight.exists()
        in_flight.unlink()
        placed.append(httpx.post(f"{first.url}/v1/orders", json=shop.order(), timeout=10))
    refused = [second, seeded, imported]
    on_disk = {o["id"] for o in httpx.Response(200, content=data.read_bytes()).json()["orders"]}
    row.add(requests=len(placed) + 4, failures=sum(p.returncode == 0 for p in refused))
    assert [p.returncode for p in refused] == [EXIT_DATA_FILE_LOCKED] * 3, [
        p.stderr for p in refused
    ]
    for p in refused:
        assert f"data file {data} is in use by another process (pid {first.pid})" in p.stderr
    assert exported.returncode == 0, exported.stderr
    assert temp_kept
    assert [r.status_code for r in placed] == [201, 201, 201]
    assert {r.json()["id"] for r in placed} <= on_disk
    for written in (data, tmp_path / "backup.json"):
        assert stat.S_IMODE(os.stat(written).st_mode) == 0o600, written


async def time_healthz_while_ordering(
    url: str, shop_order: object, seconds: float, n_writers: int = 4
) -> dict:
    """One client loop times /healthz back to back while `n_writers` customers place orders."""
    latencies: list[float] = []
    acked: list[str] = []
    stop = time.monotonic() + seconds

    async def customer(client: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            r = await client.post("/v1/orders", json=shop_order())  # type: ignore[operator]
            assert r.status_code == 201, r.text
            acked.append(r.json()["id"])

    async def prober(client: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            r = await client.get("/healthz")
            latencies.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
            await asyncio.sleep(0.005)

    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as writers,
        httpx.AsyncClient(base_url=url, timeout=30) as probe,
    ):
        await asyncio.gather(prober(probe), *(customer(writers) for _ in range(n_writers)))
    latencies.sort()
    return {
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
        "max": latencies[-1],
        "probes": len(latencies),
        "acked": acked,
    }


@pytest.mark.timeout(600)
def test_healthz_stays_fast_while_orders_are_written_to_a_100k_order_file(
    tmp_path: Path, summary: Summary
) -> None:
    row = summary(SCENARIO)
    home = tmp_path / "service"
    home.mkdir(parents=True)
    seeded = pickup(home, "seed", "--stores", "5", "--orders", str(LARGE_ORDERS))
    assert seeded.returncode == 0, seeded.stderr
    size_mb = (home / "pickup.json").stat().st_size / 1e6
    with json_service(home) as service:
        shop = open_shop(service.url)
        idle = asyncio.run(time_healthz_while_ordering(service.url, shop.order, 5.0, n_writers=0))
        figures = asyncio.run(time_healthz_while_ordering(service.url, shop.order, 15.0))
    document = httpx.Response(200, content=(home / "pickup.json").read_bytes()).json()
    on_disk = {o["id"] for o in document["orders"]}
    missing = [i for i in figures["acked"] if i not in on_disk]
    row.add(requests=figures["probes"] + len(figures["acked"]), failures=len(missing))
    row.held = (
        (row.held + "; " if row.held else "")
        + f"2nd writer refused (exit {EXIT_DATA_FILE_LOCKED}), export beside it ok, files 0600; "
        f"{LARGE_ORDERS:,}-order file ({size_mb:.0f} MB): /healthz p50 {figures['p50']:.1f} ms, "
        f"p99 {figures['p99']:.1f} ms, max {figures['max']:.0f} ms over {figures['probes']} "
        f"probes while {len(figures['acked'])} orders were written, all on disk (no writes: "
        f"p50 {idle['p50']:.1f} ms, p99 {idle['p99']:.1f} ms)"
    )
    assert len(figures["acked"]) > 0 and missing == []
    assert len(document["orders"]) == LARGE_ORDERS + len(figures["acked"])
    # The target is judged only where the machine itself can meet it: on a host so busy that
    # /healthz alone has a p99 above half the target, the figure is reported, not judged.
    if idle["p99"] < HEALTHZ_P99_TARGET_MS / 2:
        assert figures["p99"] < HEALTHZ_P99_TARGET_MS, figures
    else:
        row.held += f" [host too busy to judge the {HEALTHZ_P99_TARGET_MS:.0f} ms target]"
