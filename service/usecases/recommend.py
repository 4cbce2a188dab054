"""Menu recommendations: the AI's answer when it has a usable one, a deterministic fallback
when it has not. Both have the same shape, and every item comes from the store's menu."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import structlog

from service.domain.errors import ConflictError, ServiceUnavailableError
from service.domain.models import MenuItem
from service.ports import Catalogue
from service.usecases.stores import get_store

MAX_ITEMS = 5
FALLBACK_ITEMS = 3
WORD = re.compile(r"[a-z0-9]+")

log = structlog.get_logger("service.recommend")


class Suggestion(Protocol):
    @property
    def menu_item_id(self) -> str: ...

    @property
    def reason(self) -> str: ...


class Suggestions(Protocol):
    @property
    def items(self) -> Sequence[Suggestion]: ...

    @property
    def message(self) -> str: ...


class Recommender(Protocol):
    async def recommend(
        self, request: Mapping[str, Any], menu: Sequence[Mapping[str, Any]]
    ) -> Suggestions: ...


@dataclass(frozen=True, slots=True)
class Recommendation:
    store_id: str
    items: list[tuple[MenuItem, str]]
    message: str
    source: Literal["openai", "fallback"]


async def recommend(
    repo: Catalogue,
    recommender: Recommender | None,
    store_id: str,
    *,
    preferences: str,
    budget_cents: int | None,
    party_size: int | None,
) -> Recommendation:
    store = await get_store(repo, store_id)
    menu = [i for i in await repo.list_menu(store.id) if i.available]
    affordable = [i for i in menu if budget_cents is None or i.price_cents <= budget_cents]
    if not affordable:
        raise ConflictError(
            "no available menu item fits this request",
            details={"available_items": len(menu), "budget_cents": budget_cents},
        )
    if recommender is not None:
        request = {
            "preferences": preferences,
            "budget_cents": budget_cents,
            "party_size": party_size,
        }
        try:
            answer = await recommender.recommend(request, [_menu_entry(i) for i in affordable])
        except ServiceUnavailableError as exc:
            # The fallback is the designed answer to an unavailable upstream, not an error.
            log.warning("ai_fallback", store_id=store.id, reason=exc.code, cause=_cause(exc))
        else:
            by_id = {i.id: i for i in affordable}
            # The model may invent ids or repeat itself: keep only real, distinct menu items.
            picked: dict[str, tuple[MenuItem, str]] = {}
            for suggestion in answer.items:
                item = by_id.get(suggestion.menu_item_id)
                if item is not None and item.id not in picked:
                    picked[item.id] = (item, suggestion.reason)
            if picked:
                return Recommendation(
                    store.id, list(picked.values())[:MAX_ITEMS], answer.message, "openai"
                )
            log.warning("ai_fallback", store_id=store.id, reason="no_known_items")
    return fallback(store.id, affordable, preferences, party_size)


def fallback(
    store_id: str, menu: Sequence[MenuItem], preferences: str, party_size: int | None
) -> Recommendation:
    """Items sharing the most words with the preferences, then those tagged popular, then the
    cheapest: the same input always gives the same answer."""
    wanted = set(WORD.findall(preferences.lower()))

    def rank(item: MenuItem) -> tuple[int, int, int, str]:
        words = set(WORD.findall(f"{item.name} {item.category} {' '.join(item.tags)}".lower()))
        return (-len(wanted & words), "popular" not in item.tags, item.price_cents, item.id)

    chosen = sorted(menu, key=rank)[:FALLBACK_ITEMS]
    items = [(item, _fallback_reason(item, wanted)) for item in chosen]
    party = f" for a party of {party_size}" if party_size else ""
    return Recommendation(
        store_id, items, f"Our suggestions{party}, from today's menu.", "fallback"
    )


def _fallback_reason(item: MenuItem, wanted: set[str]) -> str:
    matched = sorted(
        wanted & set(WORD.findall(f"{item.name} {item.category} {' '.join(item.tags)}".lower()))
    )
    if matched:
        return f"Matches {', '.join(matched)}."
    if "popular" in item.tags:
        return "A customer favourite."
    return f"A good value {item.category} choice."


def _menu_entry(item: MenuItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "price_cents": item.price_cents,
        "category": item.category,
        "tags": list(item.tags),
    }


def _cause(exc: Exception) -> str:
    return type(exc.__cause__ or exc).__name__
