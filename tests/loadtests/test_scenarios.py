"""Each scenario, headless for a few seconds against a real server: no failures, URLs grouped
by template, and the counters a notebook reads."""

from __future__ import annotations

import re
from pathlib import Path

from tests.loadtests.harness import RATE_LIMIT, STAFF_KEY, run_locust

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
BROWSE_GROUPS = {"/v1/stores", "/v1/stores/[id]", "/v1/stores/[id]/menu", "/v1/stores/[id]/slots"}


def test_browsing_succeeds_and_groups_store_urls_by_template(service: str, tmp_path: Path) -> None:
    run = run_locust(service, tmp_path, "--tags", "browse", "-u", "5", "-r", "5", "-t", "2s")

    assert run.returncode == 0, run.output
    assert run.names >= BROWSE_GROUPS
    assert not any(UUID.search(name) for name in run.names)
    for output in ("_stats.csv", "_stats_history.csv", "_failures.csv", ".html", ".json"):
        assert Path(f"{run.prefix}{output}").stat().st_size > 0, output


def test_ordering_places_polls_and_finishes_orders_without_failures(
    service: str, tmp_path: Path
) -> None:
    run = run_locust(
        service,
        tmp_path,
        "--tags",
        "orders",
        "--staff-key",
        STAFF_KEY,
        "-u",
        "10",
        "-r",
        "10",
        "-t",
        "3s",
    )

    assert run.returncode == 0, run.output
    assert {"/v1/stores/[id]/slots", "/v1/orders", "/v1/orders/[id]"} <= run.names
    assert run.count("orders.created") > 0
    assert run.count("orders.cancelled") + run.count("orders.picked_up") > 0


def test_a_slot_rush_fills_the_slot_and_never_overbooks_it(service: str, tmp_path: Path) -> None:
    run = run_locust(service, tmp_path, "--tags", "rush", "-u", "20", "-r", "20", "-t", "2s")

    assert run.returncode == 0, run.output
    target = run.counters["rush_target"]
    assert run.count("rush.created") == target["remaining_at_start"] <= target["capacity"]
    assert run.count("rush.slot_full") > 0
    assert run.names == {"/v1/orders [rush]"}


def test_ai_answers_keep_their_shape_while_the_breaker_opens_and_heals(
    ai_service: str, fake_openai: str, tmp_path: Path
) -> None:
    run = run_locust(
        ai_service,
        tmp_path,
        "--tags",
        "ai",
        "--fake-openai-url",
        fake_openai,
        "--fault-phase-seconds",
        "1",
        "-u",
        "5",
        "-r",
        "5",
        "-t",
        "5s",
    )

    assert run.returncode == 0, run.output
    assert "/v1/stores/[id]/recommendations" in run.names
    assert run.count("ai.phase.healthy.openai") > 0
    assert run.count("ai.phase.failing.fallback") > 0
    assert run.count("ai.phase.healed.openai") > 0
    assert run.count("ai.source.openai") + run.count("ai.source.fallback") == sum(
        run.count(f"ai.phase.{phase}.{source}")
        for phase in ("healthy", "slow", "failing", "healed")
        for source in ("openai", "fallback")
    )


def test_clients_behind_a_trusted_proxy_are_limited_even_with_forged_forwarded_for(
    limited_service: str, tmp_path: Path
) -> None:
    users = 2
    run = run_locust(
        limited_service, tmp_path, "--tags", "abuse", "-u", str(users), "-r", "2", "-t", "2s"
    )

    assert run.returncode == 0, run.output  # 429 with Retry-After is the expected answer
    assert run.count("abuse.plain.limited") > 0 and run.count("abuse.forged.limited") > 0
    allowed = run.count("abuse.plain.allowed") + run.count("abuse.forged.allowed")
    assert 0 < allowed <= users * RATE_LIMIT  # each user is a client of its own
    assert run.count("abuse.plain.escaped") + run.count("abuse.forged.escaped") == 0


def test_a_direct_client_cannot_escape_the_limit_by_forging_forwarded_for(
    direct_limited_service: str, tmp_path: Path
) -> None:
    run = run_locust(
        direct_limited_service,
        tmp_path,
        "--tags",
        "abuse",
        "--abuse-direct",
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "2s",
    )

    assert run.count("abuse.plain.escaped") + run.count("abuse.forged.escaped") == 0
    allowed = run.count("abuse.plain.allowed") + run.count("abuse.forged.allowed")
    assert 0 < allowed <= RATE_LIMIT  # every user is the same client: the load generator
    assert run.returncode == 0, run.output


def test_a_run_that_selects_nothing_runs_only_the_customer_mix(
    service: str, tmp_path: Path
) -> None:
    run = run_locust(service, tmp_path, "-u", "6", "-r", "6", "-t", "2s")

    assert run.returncode == 0, run.output
    assert {"/v1/stores/[id]/menu", "/v1/orders", "/v1/stores/[id]/recommendations"} <= run.names
    assert not run.names & {"/healthz", "/v1/orders [rush]", "/v1/stores [abuse plain]"}


def test_a_user_class_named_on_the_command_line_runs_alone(service: str, tmp_path: Path) -> None:
    run = run_locust(service, tmp_path, "HealthUser", "-u", "2", "-r", "2", "-t", "1s")

    assert run.returncode == 0, run.output
    assert run.names == {"/healthz"}


def test_a_tag_no_scenario_has_stops_before_any_request(service: str, tmp_path: Path) -> None:
    run = run_locust(service, tmp_path, "--tags", "nonexistent", "-t", "1s")

    assert run.returncode != 0
    assert "no user class has tasks tagged ['nonexistent']" in run.output
