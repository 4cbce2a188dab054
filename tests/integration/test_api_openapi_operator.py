"""What /openapi.json tells an operator or a client generator about /metrics and Idempotency-Key
matches what the service does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from service.app import create_app
from service.http.routes.orders import MAX_IDEMPOTENCY_KEY
from tests.factories import NOW, order_body


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def test_every_operation_id_is_unique_and_names_what_it_does(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ids = [op["operationId"] for _, _, op in operations(spec)]

    assert len(ids) == len(set(ids))
    assert "endpoint" not in ids
    assert spec["paths"]["/metrics"]["get"]["operationId"] == "get_metrics"


def test_metrics_carries_its_bearer_scheme_required_only_when_a_token_is_set(
    make_settings: Callable[..., Any], clock: Any, client: TestClient, tmp_path: Path
) -> None:
    token = "metrics-token-0123456789abcdef"
    # A data file of its own: `client`'s app holds the one-writer lock on the default one.
    settings = make_settings(METRICS_TOKEN=token, JSON_DATA_PATH=str(tmp_path / "guarded.json"))
    with TestClient(create_app(settings, clock=clock)) as guarded:
        required = guarded.get("/openapi.json").json()["paths"]["/metrics"]["get"]["security"]
        assert guarded.get("/metrics").status_code == 401
    optional = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["security"]

    assert required == [{"metricsToken": []}]
    assert optional == [{}, {"metricsToken": []}]
    assert client.get("/metrics").status_code == 200
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["metricsToken"]["scheme"] == "bearer"


def test_the_idempotency_key_length_the_document_states_is_the_one_enforced(
    client: TestClient, shop: dict[str, Any]
) -> None:
    spec = client.get("/openapi.json").json()
    (param,) = [
        p
        for p in spec["paths"]["/v1/orders"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    assert param["in"] == "header"
    assert param["schema"]["maxLength"] == MAX_IDEMPOTENCY_KEY == 255
    assert param["schema"]["minLength"] == 1

    body = order_body(shop["store"]["id"], shop["item"]["id"], NOW + timedelta(days=1))
    too_long = client.post(
        "/v1/orders", json=body, headers={"Idempotency-Key": "k" * (MAX_IDEMPOTENCY_KEY + 1)}
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["details"][0]["field"] == "Idempotency-Key"
