from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from service.ai.schema import AIRecommendation, recommendation_json_schema, response_format


def object_schemas(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [found for child in node for found in object_schemas(child)]
    if not isinstance(node, dict):
        return []
    own = [node] if node.get("type") == "object" else []
    return own + [found for child in node.values() for found in object_schemas(child)]


def test_every_object_in_the_schema_meets_strict_mode_rules() -> None:
    objects = object_schemas(recommendation_json_schema())
    assert len(objects) == 2
    for schema in objects:
        assert schema["additionalProperties"] is False
        assert sorted(schema["required"]) == sorted(schema["properties"])


def test_the_response_format_asks_for_strict_named_json_schema_output() -> None:
    assert response_format() == {
        "type": "json_schema",
        "json_schema": {
            "name": "menu_recommendations",
            "strict": True,
            "schema": recommendation_json_schema(),
        },
    }


def test_a_conforming_answer_is_accepted() -> None:
    answer = AIRecommendation.model_validate_json(
        '{"items": [{"menu_item_id": "m1", "reason": "light"}], "message": "Enjoy"}'
    )
    assert [item.menu_item_id for item in answer.items] == ["m1"]


@pytest.mark.parametrize(
    "answer",
    [
        {"items": [], "message": "nothing"},
        {"items": [{"menu_item_id": str(n), "reason": "r"} for n in range(6)], "message": "m"},
        {"items": [{"menu_item_id": "m1", "reason": "r" * 301}], "message": "m"},
        {"items": [{"menu_item_id": "m1", "reason": "r"}], "message": "m" * 501},
        {"items": [{"menu_item_id": "m1"}], "message": "m"},
        {"items": [{"menu_item_id": "m1", "reason": "r"}], "message": "m", "extra": 1},
        {"items": [{"menu_item_id": "m1", "reason": "r", "price": 1}], "message": "m"},
    ],
    ids=[
        "no items",
        "six items",
        "long reason",
        "long message",
        "missing reason",
        "extra field",
        "extra item field",
    ],
)
def test_an_answer_outside_the_schema_is_rejected(answer: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AIRecommendation.model_validate(answer)
