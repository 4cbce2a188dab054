from __future__ import annotations

import io
import json
import logging
from typing import Any

import structlog


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


SECRETS = {
    "authorization": "Bearer s3cr3t-bearer",
    "order_token": "ord-tok-1234",
    "pickup_code": "4821",
    "api_key": "sk-live-abcdef",
    "password": "hunter2",
    "client_secret": "shh-secret",
    "token": "plain-token-999",
}


def test_a_logged_secret_never_appears_in_the_output(json_output: io.StringIO) -> None:
    structlog.get_logger().info(
        "order_placed",
        **SECRETS,
        headers={"X-Order-Token": "hdr-tok-777", "Accept": "application/json"},
        raw_headers=[(b"authorization", b"Bearer raw-hdr-555")],
        nested=[{"deeper": {"access_token": "deep-tok-888"}}],
        database_url="postgresql://app:pg-pass-42@db:5432/pickup",
        redis_url="rediss://:redis-pass-43@cache:6380/0",
        note="retrying with Authorization: Bearer inline-tok-66",
    )

    text = json_output.getvalue()
    leaked = [
        secret
        for secret in [
            *SECRETS.values(),
            "hdr-tok-777",
            "raw-hdr-555",
            "deep-tok-888",
            "pg-pass-42",
            "redis-pass-43",
            "inline-tok-66",
        ]
        if secret in text
    ]
    assert leaked == []
    (line,) = lines(json_output)
    assert line["database_url"] == "postgresql://app:***@db:5432/pickup"
    assert line["headers"]["Accept"] == "application/json"


def test_phone_numbers_keep_only_their_last_two_digits(json_output: io.StringIO) -> None:
    structlog.get_logger().info(
        "order_placed", customer_phone="+1 (555) 123-4567", order={"phone": 5551234589}
    )

    (line,) = lines(json_output)
    assert line["customer_phone"] == "*********67"
    assert line["order"]["phone"] == "********89"


def test_ordinary_fields_that_resemble_secret_names_are_kept(json_output: io.StringIO) -> None:
    structlog.get_logger().info("ai_reply", max_tokens=256, token_count=12, route="/menu")

    (line,) = lines(json_output)
    assert (line["max_tokens"], line["token_count"], line["route"]) == (256, 12, "/menu")


def test_each_line_is_json_with_timestamp_level_event_and_bound_context(
    json_output: io.StringIO,
) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-1"):
        structlog.get_logger().bind(store_id=7).warning("slot_full")

    (line,) = lines(json_output)
    assert line["event"] == "slot_full"
    assert line["level"] == "warning"
    assert line["request_id"] == "req-1"
    assert line["store_id"] == 7
    assert line["timestamp"].endswith("Z")


def test_lines_below_the_configured_level_are_dropped(json_output: io.StringIO) -> None:
    structlog.get_logger().debug("noisy")
    assert json_output.getvalue() == ""


def test_standard_library_logs_are_json_and_scrubbed_too(json_output: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").error("cannot reach redis://:lib-pass-5@cache:6379")

    (line,) = lines(json_output)
    assert line["logger"] == "uvicorn.error"
    assert "lib-pass-5" not in json_output.getvalue()


def test_secrets_in_exception_text_are_scrubbed(json_output: io.StringIO) -> None:
    try:
        raise ConnectionError("failed to connect to postgresql://app:exc-pass-9@db/pickup")
    except ConnectionError:
        structlog.get_logger().exception("db_connect_failed")

    (line,) = lines(json_output)
    assert "ConnectionError" in line["exception"]
    assert "exc-pass-9" not in json_output.getvalue()
