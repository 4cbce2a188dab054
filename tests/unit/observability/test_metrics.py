from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.observability.metrics import Metrics

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def rendered(metrics: Metrics) -> str:
    body, _ = metrics.render()
    return body.decode()


def test_counters_appear_with_their_labels_in_the_rendering() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", "/stores/{store_id}", 200, 0.004)
    metrics.observe_request("GET", "/stores/{store_id}", 200, 0.006)
    metrics.cache_request("menu", "hit")
    metrics.cache_store_error("redis", "get")
    metrics.rate_limit_storage_error(ConnectionError("redis down"))

    body, content_type = metrics.render()
    text = body.decode()

    assert content_type.startswith("text/plain")
    assert 'http_requests_total{method="GET",route="/stores/{store_id}",status="200"} 2.0' in text
    assert (
        'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/stores/{store_id}"}'
        " 1.0" in text
    )
    assert 'cache_requests_total{cache="menu",result="hit"} 1.0' in text
    assert 'cache_store_errors_total{backend="redis",operation="get"} 1.0' in text
    assert "rate_limit_storage_errors_total 1.0" in text


def test_invented_http_methods_share_one_label() -> None:
    metrics = Metrics()
    metrics.observe_request("BREW", "unmatched", 405, 0.001)
    metrics.observe_request("PROPFIND", "unmatched", 405, 0.001)

    labels = {"method": "OTHER", "route": "unmatched", "status": "405"}
    assert metrics.registry.get_sample_value("http_requests_total", labels) == 2


def test_a_database_query_is_counted_and_timed_even_when_it_fails() -> None:
    metrics = Metrics()
    with metrics.db_query("postgres", "menu_by_store"):
        pass
    with pytest.raises(TimeoutError), metrics.db_query("postgres", "menu_by_store"):
        raise TimeoutError

    labels = {"backend": "postgres", "query": "menu_by_store"}
    assert metrics.registry.get_sample_value("db_queries_total", labels) == 2
    assert metrics.registry.get_sample_value("db_query_duration_seconds_count", labels) == 2


def test_the_pool_gauge_reports_what_the_callback_returns_at_scrape_time() -> None:
    metrics = Metrics()
    stats = {"idle": 3, "in_use": 2}
    metrics.track_db_pool(lambda: stats)
    stats["in_use"] = 5

    text = rendered(metrics)

    assert 'db_pool_connections{state="in_use"} 5.0' in text
    assert 'db_pool_connections{state="idle"} 3.0' in text


def test_circuit_breaker_state_is_one_series_per_state_set_to_one_for_the_current_state() -> None:
    metrics = Metrics()
    metrics.set_circuit_state("openai", "open")
    metrics.set_circuit_state("postgres", "half-open")
    metrics.circuit_state_changed("redis", "half_open", "closed")

    text = rendered(metrics)

    assert 'circuit_breaker_state{name="openai",state="open"} 1.0' in text
    assert 'circuit_breaker_state{name="openai",state="closed"} 0.0' in text
    assert 'circuit_breaker_state{name="openai",state="half_open"} 0.0' in text
    assert 'circuit_breaker_state{name="postgres",state="half_open"} 1.0' in text
    assert 'circuit_breaker_state{name="postgres",state="open"} 0.0' in text
    assert 'circuit_breaker_state{name="redis",state="closed"} 1.0' in text
    assert 'circuit_breaker_state{name="redis",state="half_open"} 0.0' in text


def test_an_unknown_breaker_state_is_refused_rather_than_exported() -> None:
    with pytest.raises(ValueError, match="sleepy"):
        Metrics().set_circuit_state("openai", "sleepy")


def test_build_info_names_the_version_and_commit() -> None:
    metrics = Metrics()
    metrics.set_build_info("1.2.3", "abc123def456")

    assert 'pickup_build_info{commit="abc123def456",version="1.2.3"} 1.0' in rendered(metrics)


def test_no_created_timestamp_series_are_exported() -> None:
    metrics = Metrics()
    metrics.observe_request("GET", "/healthz", 200, 0.001)
    metrics.cache_request("menu", "hit")
    with metrics.db_query("json", "ping"):
        pass

    assert "_created" not in rendered(metrics)


async def test_readiness_checks_are_recorded_when_evaluated_and_on_every_scrape() -> None:
    metrics = Metrics()
    cache_state = "ok"

    async def database() -> tuple[str, dict[str, str]]:
        raise ConnectionRefusedError("no database")

    async def cache() -> tuple[str, dict[str, str]]:
        return cache_state, {}

    checks = metrics.record_readiness({"database": database, "cache": cache}, timeout_s=1)
    assert await checks["cache"]() == ("ok", {})  # what /readyz sees is unchanged
    with pytest.raises(ConnectionRefusedError):
        await checks["database"]()
    text = rendered(metrics)
    assert 'readiness_check_state{check="cache",state="ok"} 1.0' in text
    assert 'readiness_check_state{check="database",state="down"} 1.0' in text
    assert 'readiness_check_state{check="database",state="ok"} 0.0' in text

    cache_state = "degraded"
    await metrics.refresh()  # a scrape, with nobody polling /readyz

    text = rendered(metrics)
    assert 'readiness_check_state{check="cache",state="degraded"} 1.0' in text
    assert 'readiness_check_state{check="cache",state="ok"} 0.0' in text


async def test_a_readiness_check_that_hangs_is_down_at_scrape_time() -> None:
    metrics = Metrics()

    async def hangs() -> tuple[str, dict[str, str]]:
        await asyncio.Event().wait()
        return "ok", {}

    metrics.record_readiness({"database": hangs}, timeout_s=0.01)
    await metrics.refresh()

    assert 'readiness_check_state{check="database",state="down"} 1.0' in rendered(metrics)


def test_single_process_mode_reports_resident_memory() -> None:
    value = Metrics().registry.get_sample_value("process_resident_memory_bytes")
    assert value is not None and value > 0


def test_two_metrics_objects_do_not_share_samples() -> None:
    first, second = Metrics(), Metrics()
    first.cache_request("menu", "miss")

    assert (
        second.registry.get_sample_value(
            "cache_requests_total", {"cache": "menu", "result": "miss"}
        )
        is None
    )


def test_multiprocess_mode_refuses_a_directory_the_environment_does_not_name(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        Metrics(multiprocess_dir=tmp_path)


# prometheus-client fixes its storage when first imported, so multiprocess mode is exercised in
# fresh interpreters started with PROMETHEUS_MULTIPROC_DIR, like real workers.
WORKER = textwrap.dedent(
    """
    import os, sys
    from service.observability.metrics import Metrics

    metrics = Metrics(multiprocess_dir=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics.observe_request("GET", "/stores/{store_id}/menu", 200, 0.003)
    metrics.cache_request("menu", "miss")
    metrics.track_db_pool(lambda: {"in_use": 2})
    metrics.set_circuit_state("openai", "open")
    metrics.set_readiness("cache", "degraded")
    metrics.set_build_info("1.2.3", "abc")
    metrics.render()
    print(os.getpid())
    """
)
SCRAPER = textwrap.dedent(
    """
    import os, sys
    from service.observability.metrics import Metrics

    metrics = Metrics(multiprocess_dir=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    for pid in sys.argv[1:]:
        metrics.mark_process_dead(int(pid))
    sys.stdout.write(metrics.render()[0].decode())
    """
)


def run_python(code: str, multiproc_dir: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def test_multiprocess_mode_merges_the_samples_of_every_worker(tmp_path: Path) -> None:
    worker_pids = [run_python(WORKER, tmp_path).strip() for _ in range(2)]

    text = run_python(SCRAPER, tmp_path)

    assert 'http_requests_total{method="GET",route="/stores/{store_id}/menu",status="200"} 2.0' in (
        text
    )
    assert 'cache_requests_total{cache="menu",result="miss"} 2.0' in text
    assert 'db_pool_connections{state="in_use"} 4.0' in text
    assert 'circuit_breaker_state{name="openai",state="open"} 1.0' in text
    assert 'readiness_check_state{check="cache",state="degraded"} 1.0' in text
    assert 'pickup_build_info{commit="abc",version="1.2.3"} 1.0' in text
    assert "_created" not in text
    for pid in worker_pids:
        assert f'process_resident_memory_bytes{{pid="{pid}"}}' in text


def test_a_dead_workers_live_gauges_disappear_but_its_counters_remain(tmp_path: Path) -> None:
    worker_pid = run_python(WORKER, tmp_path).strip()

    text = run_python(SCRAPER, tmp_path, worker_pid)

    assert f'pid="{worker_pid}"' not in text
    assert 'cache_requests_total{cache="menu",result="miss"} 1.0' in text
