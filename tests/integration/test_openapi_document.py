"""The OpenAPI document describes what a client really receives: response headers and examples
that match the wire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.testclient import TestClient

from service.http import schemas
from tests.factories import NOW, order_body


def resolve(spec: dict[str, Any], headers: dict[str, Any]) -> set[str]:
    names = set()
    for name, ref in headers.items():
        assert ref["$ref"].rsplit("/", 1)[-1] in spec["components"]["headers"]
        names.add(name)
    return names


def test_responses_document_the_headers_the_server_sends(
    client: TestClient, shop: dict[str, Any]
) -> None:
    spec = client.get("/openapi.json").json()
    placed = spec["paths"]["/v1/orders"]["post"]["responses"]
    created = resolve(spec, placed["201"]["headers"])
    assert {"Location", "X-Request-ID", "RateLimit", "RateLimit-Policy"} <= created
    assert "Idempotent-Replayed" in created
    assert {"Retry-After", "RateLimit"} <= resolve(spec, placed["429"]["headers"])
    for header in spec["components"]["headers"].values():
        assert "example" in header and header["description"]

    body = order_body(shop["store"]["id"], shop["item"]["id"], NOW + timedelta(hours=2))
    response = client.post("/v1/orders", json=body, headers={"Idempotency-Key": "doc-1"})
    again = client.post("/v1/orders", json=body, headers={"Idempotency-Key": "doc-1"})
    sent = {h.lower() for h in response.headers} | {h.lower() for h in again.headers}
    # This client runs without the limiter (RateLimit headers are checked in the limiter's tests).
    documented = {h.lower() for h in created} - {"ratelimit", "ratelimit-policy"}
    assert documented <= sent, documented - sent


def test_error_examples_are_valid_envelopes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    seen = 0
    for operations in spec["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                example = response.get("content", {}).get("application/json", {}).get("example")
                if example is not None and status.startswith(("4", "5")):
                    schemas.ErrorEnvelope.model_validate(example)
                    seen += 1
    assert seen > 0
