"""The alerting rules and the Grafana dashboard an operator imports name only metrics, and labels,
that the service really exports: a real app is exercised (Redis unreachable, so the error
counters have samples too) and its /metrics is read the way Prometheus reads it."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from service.app import create_app
from tests.factories import create_store

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARD = ROOT / "deploy/grafana/dashboard.json"
# Written by Prometheus, not by the service: `up` per target, and the target labels it attaches.
FROM_PROMETHEUS = {"up"}
TARGET_LABELS = {"job", "instance"}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def rule_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        found.append((f"variable {variable['name']}", variable["definition"]))
    return found


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """Each metric name in a PromQL expression with the label names its selector matches on."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings can hold anything
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery durations
    expr = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr
    )  # grouping clauses hold label names, not metrics
    # label_values(metric, label) names a metric as its first argument.
    found = [
        (metric, {label})
        for metric, label in re.findall(
            r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)", expr
        )
    ]
    expr = re.sub(r"label_values\([^)]*\)", "", expr)
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?\s*(\()?", expr):
        name, matchers, call = match.groups()
        if call or name in {"and", "or", "unless", "bool", "offset"}:
            continue  # a function (or label_values) or an operator keyword
        labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers or ""))
        found.append((name, labels))
    # label_values(metric, label) names a metric as its first argument.
    for metric, label in re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)", expr):
        found.append((metric, {label}))
    return found


def test_the_expression_reader_finds_metrics_and_their_labels() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(x_bucket{job=~"$job",route!="a{b"}'
        "[$__rate_interval]))) / on (route) y_total and z == 1"
    )
    assert selectors(expr) == [("x_bucket", {"job", "route"}), ("y_total", set()), ("z", set())]


@pytest.fixture
def exported(make_settings: Callable[..., Any], clock: Any) -> Iterator[dict[str, set[str]]]:
    with socket.socket() as closed:  # a port nobody listens on: Redis is "down"
        closed.bind(("127.0.0.1", 0))
        redis_url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    # The limiter on, failing open: rate_limit_storage_errors_total gets a sample.
    settings = make_settings(REDIS_URL=redis_url, RATE_LIMIT_ENABLED="true")
    staff = {"Authorization": f"Bearer {settings.staff_keys()[0][1]}"}
    with TestClient(create_app(settings, clock=clock)) as client:
        store_id = create_store(client, staff)["id"]
        for _ in range(2):
            client.get(f"/v1/stores/{store_id}/menu")
        client.get("/readyz")
        client.get("/no/such/path")
        text = client.get("/metrics").text
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in _SUFFIXES.get(family.type, ("",)):
            labels.setdefault(family.name + suffix, set())
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    yield labels


@pytest.mark.parametrize(
    ("where", "expressions"),
    [("alerts.yml", rule_expressions()), ("dashboard.json", dashboard_expressions())],
)
def test_every_expression_names_metrics_and_labels_the_service_exports(
    where: str, expressions: list[tuple[str, str]], exported: dict[str, set[str]]
) -> None:
    problems = []
    for title, expr in expressions:
        found = selectors(expr)
        if not found:
            problems.append(f"{title}: no metric found in {expr!r}")
        for name, labels in found:
            if name in FROM_PROMETHEUS:
                continue
            if name not in exported:
                problems.append(f"{title}: {name} is not exported")
            elif unknown := labels - exported[name] - TARGET_LABELS:
                problems.append(f"{title}: {name} has no label {sorted(unknown)}")
    assert problems == [], f"{where}:\n" + "\n".join(problems)


def test_the_rules_cover_what_an_operator_must_hear_about() -> None:
    text = " ".join(expr for _, expr in rule_expressions())
    for needed in (
        'http_requests_total{status=~"5.."}',  # error rate
        'circuit_breaker_state{state="open"}',  # breaker open
        'readiness_check_state{state="down"}',  # readiness
        'http_requests_total{status="429"}',  # limiter refusals
        'cache_requests_total{result="hit"}',  # cache hit ratio
    ):
        assert needed in text
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_promtool_accepts_the_rules_file() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`); syntax unchecked")
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in result.stdout


def test_the_dashboard_imports_with_a_chosen_prometheus_and_distinct_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
    # No two panels overlap on Grafana's 24-column grid.
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        g = panel["gridPos"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert g["x"] + g["w"] <= 24 and not area & cells, panel["title"]
        cells |= area
