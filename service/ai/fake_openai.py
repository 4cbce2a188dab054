"""A stand-in for the OpenAI Chat Completions API whose faults can be switched on while it runs.

Tests and load tests point the official client at it (`base_url=http://host:port/v1`) and break
or heal it through `POST /_control`, so every failure the recommender must survive can be
produced on purpose, over real HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections import Counter
from typing import Any, Literal

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Mode = Literal[
    "ok", "malformed", "schema_break", "hang", "length", "error", "bad_body", "invented_ids"
]
MODES: tuple[Mode, ...] = (
    "ok",
    "malformed",
    "schema_break",
    "hang",
    "length",
    "error",
    "bad_body",
    "invented_ids",
)

FAKE_MODEL = "fake-gpt"
MAX_PICKS = 3


class FakeBehaviour(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: int = Field(0, ge=0, le=600_000)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    status_code: int = Field(500, ge=400, le=599)
    mode: Mode = "ok"


class _FakeState:
    def __init__(self, behaviour: FakeBehaviour, rng: random.Random) -> None:
        self.behaviour = behaviour
        self.initial = behaviour.model_copy()
        self.rng = rng
        self.requests_total = 0
        self.by_outcome: Counter[str] = Counter()

    def snapshot(self) -> dict[str, Any]:
        return {
            "behaviour": self.behaviour.model_dump(),
            "requests_total": self.requests_total,
            "by_outcome": dict(self.by_outcome),
        }


def create_fake_openai_app(
    behaviour: FakeBehaviour | None = None, *, rng: random.Random | None = None
) -> Starlette:
    # A fixed seed keeps `error_rate` runs repeatable unless a test passes its own generator.
    state = _FakeState(behaviour or FakeBehaviour(), rng or random.Random(0))  # noqa: S311

    async def chat_completions(request: Request) -> Response:
        state.requests_total += 1
        behaviour = state.behaviour
        failing = behaviour.error_rate > 0 and state.rng.random() < behaviour.error_rate
        outcome = "error" if failing else behaviour.mode
        state.by_outcome[outcome] += 1
        if outcome == "hang":
            # Wait for the client to give up rather than forever, so the server can still stop.
            # Past the body, the next ASGI message is the disconnect.
            while (await request.receive())["type"] != "http.disconnect":
                pass
            return Response(status_code=499)
        await asyncio.sleep(behaviour.latency_ms / 1000)
        if outcome == "error":
            return _error_response(behaviour.status_code)
        if outcome == "bad_body":
            return Response("<html>502 Bad Gateway</html>", media_type="application/json")
        body = await request.json()
        model = str(body.get("model") or FAKE_MODEL)
        content = _answer(_user_document(body.get("messages", [])))
        if outcome == "malformed":
            return _completion(model, "Sure! I'd suggest the soup, it's lovely today.", "stop")
        if outcome == "schema_break":
            broken = {"recommendations": content["items"], "message": content["message"]}
            return _completion(model, json.dumps(broken), "stop")
        if outcome == "invented_ids":
            # Valid by the schema, useless to a customer: ids that are on no menu.
            content = {
                **content,
                "items": [{**item, "menu_item_id": str(uuid.uuid4())} for item in content["items"]],
            }
        text = json.dumps(content)
        if outcome == "length":
            return _completion(model, text[: len(text) // 2], "length")
        return _completion(model, text, "stop")

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": FAKE_MODEL, "object": "model", "created": 0, "owned_by": "pickup"}],
            }
        )

    async def get_control(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def post_control(request: Request) -> Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise TypeError("expected a JSON object")
            # Validate the whole new behaviour first so a bad field changes nothing.
            updated = FakeBehaviour.model_validate({**state.behaviour.model_dump(), **changes})
        except (ValueError, TypeError, ValidationError) as exc:
            return JSONResponse({"error": {"message": str(exc)}}, status_code=400)
        state.behaviour = updated
        return JSONResponse(state.snapshot())

    async def reset_control(request: Request) -> Response:
        state.behaviour = state.initial.model_copy()
        state.requests_total = 0
        state.by_outcome.clear()
        return JSONResponse(state.snapshot())

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/_control", get_control, methods=["GET"]),
            Route("/_control", post_control, methods=["POST"]),
            Route("/_control/reset", reset_control, methods=["POST"]),
        ]
    )


def _user_document(messages: list[dict[str, Any]]) -> dict[str, Any]:
    for message in reversed(messages):
        if message.get("role") == "user":
            try:
                document = json.loads(message.get("content") or "")
            except json.JSONDecodeError:
                return {}
            return document if isinstance(document, dict) else {}
    return {}


def _answer(document: dict[str, Any]) -> dict[str, Any]:
    menu = sorted(document.get("menu") or [], key=lambda i: (i.get("price_cents", 0), i.get("id")))
    budget = document.get("budget_cents")
    picks: list[dict[str, Any]] = []
    spent = 0
    for item in menu:
        price = item.get("price_cents", 0)
        if len(picks) == MAX_PICKS or (budget is not None and spent + price > budget):
            break
        picks.append(item)
        spent += price
    if not picks and menu:
        # Nothing fits the budget: still answer inside the schema, with the cheapest item.
        picks = menu[:1]
    items = [
        {
            "menu_item_id": str(item["id"]),
            "reason": f"{item.get('name', 'This item')} ({item.get('category', 'menu')}) "
            f"costs {item.get('price_cents', 0) / 100:.2f}."[:300],
        }
        for item in picks
    ]
    party = document.get("party_size")
    message = f"{len(items)} picks, cheapest first" + (f", for {party}" if party else "") + "."
    return {"items": items, "message": message}


def _completion(model: str, content: str, finish_reason: str) -> Response:
    return JSONResponse(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    )


def _error_response(status_code: int) -> Response:
    kind = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status_code, "server_error")
    return JSONResponse(
        {
            "error": {
                "message": f"fake upstream answered {status_code}",
                "type": kind,
                "param": None,
                "code": kind,
            }
        },
        status_code=status_code,
    )


def run_fake_openai(host: str, port: int, **behaviour: Any) -> None:
    app = create_fake_openai_app(FakeBehaviour(**behaviour))
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8099, help="TCP port")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay before each answer")
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of calls answered with --status-code"
    )
    parser.add_argument("--status-code", type=int, default=500, help="status of failed calls")
    parser.add_argument("--mode", choices=MODES, default="ok", help="how the server misbehaves")


def main_from_args(args: argparse.Namespace) -> int:
    run_fake_openai(
        args.host,
        args.port,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        status_code=args.status_code,
        mode=args.mode,
    )
    return 0
