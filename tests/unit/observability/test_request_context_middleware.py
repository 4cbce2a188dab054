from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from service.observability.logging import REQUEST_ID, configure_logging
from service.observability.metrics import Metrics
from service.observability.middleware import RequestContextMiddleware, metrics_endpoint


class RecordingLogger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.lines.append((event, kw))


async def store(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "store_id": request.path_params["store_id"],
            "bound_request_id": REQUEST_ID.get(),
            "state_request_id": request.state.request_id,
        }
    )


async def logs(request: Request) -> PlainTextResponse:
    structlog.get_logger("service").info("inside_the_request", store_id=7)
    return PlainTextResponse("logged")


async def order(request: Request) -> PlainTextResponse:
    return PlainTextResponse("order")


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("endpoint bug")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


def build_app(
    metrics: Metrics, logger: Any = None, *, access_log: bool = True, token: str | None = None
) -> Starlette:
    return Starlette(
        routes=[
            Route("/stores/{store_id:int}", store),
            Route("/boom", boom),
            Route("/logs", logs),
            Mount("/v1", routes=[Route("/orders/{order_id}", order)]),
            Route("/metrics", metrics_endpoint(metrics, token)),
            WebSocketRoute("/ws", echo),
        ],
        middleware=[
            Middleware(
                RequestContextMiddleware, metrics=metrics, logger=logger, access_log=access_log
            )
        ],
    )


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def logger() -> RecordingLogger:
    return RecordingLogger()


@pytest.fixture
def client(metrics: Metrics, logger: RecordingLogger) -> TestClient:
    return TestClient(build_app(metrics, logger), raise_server_exceptions=False)


def requests_counted(metrics: Metrics, route: str, status: str, method: str = "GET") -> float:
    labels = {"method": method, "route": route, "status": status}
    return metrics.registry.get_sample_value("http_requests_total", labels) or 0


def test_an_incoming_request_id_is_echoed_and_bound_for_the_request(client: TestClient) -> None:
    response = client.get("/stores/1", headers={"X-Request-ID": "edge-42.a_b"})

    assert response.headers["x-request-id"] == "edge-42.a_b"
    assert response.json()["bound_request_id"] == "edge-42.a_b"
    assert response.json()["state_request_id"] == "edge-42.a_b"


def test_a_request_id_is_generated_when_none_is_sent(client: TestClient) -> None:
    first = client.get("/stores/1").headers["x-request-id"]
    second = client.get("/stores/1").headers["x-request-id"]

    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


@pytest.mark.parametrize("bad_id", ["has space", "x" * 129, "semi;colon", ""])
def test_an_invalid_request_id_is_replaced(client: TestClient, bad_id: str) -> None:
    response = client.get("/stores/1", headers={"X-Request-ID": bad_id})

    returned = response.headers["x-request-id"]
    assert returned != bad_id
    assert len(returned) == 32


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_w3c_traceparent_gives_the_request_id_its_trace_id(client: TestClient) -> None:
    traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    response = client.get("/stores/1", headers={"traceparent": traceparent})
    assert response.headers["x-request-id"] == TRACE_ID
    assert response.json()["bound_request_id"] == TRACE_ID
    # An explicit X-Request-ID still wins.
    both = client.get("/stores/1", headers={"traceparent": traceparent, "X-Request-ID": "mine"})
    assert both.headers["x-request-id"] == "mine"


@pytest.mark.parametrize(
    "bad",
    [
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # version ff is invalid
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",  # upper case is not allowed
        "00-short-00f067aa0ba902b7-01",
    ],
)
def test_an_invalid_traceparent_is_ignored(client: TestClient, bad: str) -> None:
    returned = client.get("/stores/1", headers={"traceparent": bad}).headers["x-request-id"]
    assert returned != TRACE_ID and len(returned) == 32


def test_metrics_use_the_route_template_not_the_raw_path(
    client: TestClient, metrics: Metrics
) -> None:
    client.get("/stores/41")
    client.get("/stores/42")
    client.get("/v1/orders/abc")

    assert requests_counted(metrics, "/stores/{store_id}", "200") == 2
    assert requests_counted(metrics, "/v1/orders/{order_id}", "200") == 1
    assert "/stores/41" not in metrics.render()[0].decode()
    duration_count = metrics.registry.get_sample_value(
        "http_request_duration_seconds_count", {"method": "GET", "route": "/stores/{store_id}"}
    )
    assert duration_count == 2


def test_unknown_paths_share_the_unmatched_label(client: TestClient, metrics: Metrics) -> None:
    client.get("/nope/1")
    client.get("/nope/2")

    assert requests_counted(metrics, "unmatched", "404") == 2


def test_an_unknown_path_inside_a_mount_is_labelled_with_the_mount_prefix(
    client: TestClient, metrics: Metrics
) -> None:
    client.get("/v1/nothing/here")
    client.get("/v1/else")

    assert requests_counted(metrics, "/v1/{path}", "404") == 2


def test_a_wrong_method_on_a_known_route_keeps_its_template(
    client: TestClient, metrics: Metrics
) -> None:
    client.delete("/stores/1")

    assert requests_counted(metrics, "/stores/{store_id}", "405", method="DELETE") == 1


def test_a_failing_endpoint_is_recorded_as_a_server_error(
    client: TestClient, metrics: Metrics, logger: RecordingLogger
) -> None:
    response = client.get("/boom")

    assert response.status_code == 500
    assert requests_counted(metrics, "/boom", "500") == 1
    assert logger.lines[-1][1]["status"] == 500


def test_one_access_line_is_logged_per_request(client: TestClient, logger: RecordingLogger) -> None:
    client.get("/stores/7?debug=1")

    ((event, fields),) = logger.lines
    assert event == "request"
    assert fields["method"] == "GET"
    assert fields["route"] == "/stores/{store_id}"
    assert fields["path"] == "/stores/7"
    assert fields["status"] == 200
    assert fields["duration_ms"] >= 0


def test_the_access_log_can_be_switched_off(metrics: Metrics, logger: RecordingLogger) -> None:
    client = TestClient(build_app(metrics, logger, access_log=False))
    client.get("/stores/7")

    assert logger.lines == []
    assert requests_counted(metrics, "/stores/{store_id}", "200") == 1


def test_the_json_access_line_carries_the_request_id(
    metrics: Metrics, json_output: io.StringIO
) -> None:
    client = TestClient(build_app(metrics))
    client.get("/stores/7", headers={"X-Request-ID": "trace-me"})

    records = [json.loads(raw) for raw in json_output.getvalue().splitlines()]
    # The test client's own HTTP library logs through the standard library as well.
    (line,) = [record for record in records if record["event"] == "request"]
    assert line["request_id"] == "trace-me"
    assert line["route"] == "/stores/{store_id}"


def test_websocket_and_lifespan_scopes_pass_through_untouched(
    metrics: Metrics, logger: RecordingLogger
) -> None:
    with TestClient(build_app(metrics, logger)) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "ping"

    assert logger.lines == []
    assert (
        metrics.registry.get_sample_value(
            "http_requests_total", {"method": "GET", "route": "/ws", "status": "101"}
        )
        is None
    )


def test_the_metrics_endpoint_serves_prometheus_text(client: TestClient) -> None:
    client.get("/stores/1")
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'http_requests_total{method="GET",route="/stores/{store_id}",status="200"}' in (
        response.text
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-secret"}],
)
def test_a_protected_metrics_endpoint_rejects_missing_or_wrong_tokens(
    metrics: Metrics, headers: dict[str, str]
) -> None:
    client = TestClient(build_app(metrics, token="scrape-secret"))

    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "unauthenticated",
            "message": "a valid bearer token is required for /metrics",
            "details": None,
        }
    }
    assert "http_requests_total" not in response.text


def test_a_protected_metrics_endpoint_accepts_the_right_token(metrics: Metrics) -> None:
    client = TestClient(build_app(metrics, token="scrape-secret"))

    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})

    assert response.status_code == 200
    assert "http_requests_total" in response.text


def test_an_empty_metrics_token_is_refused_rather_than_accepting_everyone(
    metrics: Metrics,
) -> None:
    with pytest.raises(ValueError):
        metrics_endpoint(metrics, "")


def test_the_access_line_has_the_fields_and_order_of_a_structlog_line(
    metrics: Metrics, json_output: io.StringIO
) -> None:
    client = TestClient(build_app(metrics))
    client.get("/stores/7", headers={"X-Request-ID": "trace-me"})
    structlog.contextvars.bind_contextvars(request_id="trace-me")
    structlog.get_logger("access").info(
        "request", method="GET", route="/x", path="/x", status=200, duration_ms=1.5
    )

    records = [json.loads(raw) for raw in json_output.getvalue().splitlines()]
    fast, slow = [record for record in records if record["event"] == "request"]
    assert list(fast) == list(slow)
    assert fast["method"] == "GET"
    assert fast["path"] == "/stores/7"
    assert fast["status"] == 200
    assert fast["level"] == "info"
    assert isinstance(fast["duration_ms"], float)
    assert len(fast["timestamp"]) == len(slow["timestamp"])
    assert fast["timestamp"].endswith("Z")
    assert fast["timestamp"][:16] == slow["timestamp"][:16]


def test_the_access_line_scrubs_credentials_in_the_path(
    metrics: Metrics, json_output: io.StringIO
) -> None:
    client = TestClient(build_app(metrics))
    client.get("/v1/orders/https:%2F%2Fbob:hunter2@example.com")

    (line,) = [json.loads(raw) for raw in json_output.getvalue().splitlines() if '"request"' in raw]
    assert "hunter2" not in line["path"]
    assert line["path"].startswith("/v1/orders/https://bob:***@")


def test_no_access_line_is_written_above_the_info_level(metrics: Metrics) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("WARNING", stream=buffer)
    try:
        TestClient(build_app(metrics)).get("/stores/7")
    finally:
        structlog.reset_defaults()
        root.handlers, root.level = saved_handlers, saved_level
        configure_logging("INFO", stream=io.StringIO())
        structlog.reset_defaults()

    assert '"request"' not in buffer.getvalue()
    assert requests_counted(metrics, "/stores/{store_id}", "200") == 1


def test_every_line_logged_while_serving_a_request_carries_its_id_and_no_line_after_it(
    metrics: Metrics, json_output: io.StringIO
) -> None:
    client = TestClient(build_app(metrics))
    given = client.get("/logs", headers={"X-Request-ID": "req-in-logs"})
    generated = client.get("/logs").headers["x-request-id"]
    structlog.get_logger("service").info("between_requests")

    records = [json.loads(raw) for raw in json_output.getvalue().splitlines()]
    inside = [r for r in records if r["event"] == "inside_the_request"]
    assert [r["request_id"] for r in inside] == [given.headers["x-request-id"], generated]
    assert all(r["store_id"] == 7 for r in inside)
    (outside,) = [r for r in records if r["event"] == "between_requests"]
    assert "request_id" not in outside
