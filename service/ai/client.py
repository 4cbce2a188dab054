"""Menu recommendations from an OpenAI-compatible Chat Completions API, behind a bulkhead and a
circuit breaker.

Every way the upstream can let us down (no answer in time, an error status, an answer we cannot
use) leaves this module as one `AIUnavailableError`, raised `from` the original so the breaker
can name the cause. Retries are off: a retry inside a breaker hides failures and doubles load on
an upstream that is already struggling.

The `openai` SDK is imported on the first recommendation, not at start-up: its type tree is about
40 MiB per worker, half of an idle worker, and most workers never call the upstream.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from service.ai.schema import AIRecommendation, response_format
from service.breaker import AsyncCircuitBreaker, CircuitOpenError
from service.domain.errors import InvalidInputError, ServiceUnavailableError

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

SYSTEM_PROMPT = (
    "You recommend dishes from one pickup restaurant's menu. The user message is a JSON document "
    "with the customer's preferences, budget in cents, party size and the menu. Recommend 1 to 5 "
    "items, using only ids from that menu, keeping the total within the budget when one is given. "
    "Give a short reason for each item and a short friendly message."
)
MENU_FIELDS = ("id", "name", "price_cents", "category", "tags")


class AIUnavailableError(ServiceUnavailableError):
    """Raised when the AI upstream failed, answered unusably, or is shut off by the breaker."""

    code = "ai_unavailable"


class AICircuitOpenError(AIUnavailableError):
    """Raised when the AI upstream is not even tried because its circuit is open."""


class AIBusyError(ServiceUnavailableError):
    """Raised when every AI call slot is taken; the call is refused instead of queued."""

    code = "ai_busy"


class UnusableCompletionError(Exception):
    """Raised when a successful answer carries no completion we can read."""


def _upstream_failures() -> tuple[type[Exception], ...]:
    """Everything that means "the upstream did not give us a usable recommendation"."""
    import openai

    return (
        openai.OpenAIError,  # status errors, connection errors, timeouts, finish-reason errors
        ValidationError,  # content that is not JSON or breaks the schema
        json.JSONDecodeError,  # a 200 whose body is not JSON
        TimeoutError,  # our own overall deadline
        UnusableCompletionError,
    )


class OpenAIRecommender:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout_s: float,
        max_concurrency: int,
        breaker: AsyncCircuitBreaker,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        if timeout_s <= 0 or max_concurrency < 1:
            raise ValueError("timeout_s must be > 0 and max_concurrency >= 1")
        self._api_key = api_key
        self._base_url = base_url
        self._model = model
        self._timeout_s = timeout_s
        self._bulkhead = asyncio.Semaphore(max_concurrency)
        self._breaker = breaker
        self._client: openai.AsyncOpenAI | None = None

    async def recommend(
        self, request: Mapping[str, Any], menu: Sequence[Mapping[str, Any]]
    ) -> AIRecommendation:
        if not menu:
            raise InvalidInputError("there is nothing on the menu to recommend")
        document = _user_document(request, menu)
        # A full bulkhead refuses at once: queueing would only stack latency on a slow upstream.
        if self._bulkhead.locked():
            raise AIBusyError("too many AI recommendations in progress, try again shortly")
        async with self._bulkhead:
            try:
                return await self._breaker.call(self._complete, document)
            except CircuitOpenError as exc:
                raise AICircuitOpenError(
                    "AI recommendations are paused after repeated upstream failures",
                    details=exc.details,
                ) from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _complete(self, document: str) -> AIRecommendation:
        if self._client is None:
            # The first call loads the SDK: seconds of imports on a busy machine, done in a
            # thread so the event loop keeps serving, and before the deadline starts, which is
            # for the upstream, not for our own start-up.
            await asyncio.to_thread(_load_sdk)
        import openai

        completions = self._get_client().chat.completions
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": document},
        ]
        try:
            # The client's timeout bounds each phase (connect, read, ...); this bounds the total.
            async with asyncio.timeout(self._timeout_s):
                completion = await completions.create(
                    model=self._model, messages=messages, response_format=response_format()
                )
            return _recommendation_from(completion)
        except _upstream_failures() as exc:
            details: dict[str, Any] = {"cause": type(exc).__name__}
            if isinstance(exc, openai.APIStatusError):
                details["upstream_status"] = exc.status_code
            raise AIUnavailableError(
                "AI recommendations are unavailable right now", details=details
            ) from exc

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self._api_key,
                base_url=self._base_url,
                timeout=self._timeout_s,
                max_retries=0,
            )
        return self._client


def _load_sdk() -> None:
    for module in ("openai", "openai.resources.chat", "openai.types.chat"):
        importlib.import_module(module)


def _user_document(request: Mapping[str, Any], menu: Sequence[Mapping[str, Any]]) -> str:
    document = {
        "preferences": str(request.get("preferences") or ""),
        "budget_cents": request.get("budget_cents"),
        "party_size": request.get("party_size"),
        "menu": [
            {field: item.get(field, [] if field == "tags" else None) for field in MENU_FIELDS}
            for item in menu
        ],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _recommendation_from(completion: ChatCompletion) -> AIRecommendation:
    import openai
    from openai.types.chat import ChatCompletion

    # The client does not validate the body's shape, so a compatible server can hand back
    # `{}`, a list or a bare string as the "completion".
    if not isinstance(completion, ChatCompletion) or not completion.choices:
        raise UnusableCompletionError("the answer holds no completion choice")
    choice = completion.choices[0]
    if choice.finish_reason == "length":
        raise openai.LengthFinishReasonError(completion=completion)
    if choice.finish_reason == "content_filter":
        raise openai.ContentFilterFinishReasonError(completion=completion)
    # A refusal comes with no content; validating "" fails like any other unusable answer.
    return AIRecommendation.model_validate_json(choice.message.content or "")
