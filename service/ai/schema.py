"""The one shape an AI recommendation may take, both as sent to the model and as accepted back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # the SDK itself loads on the first call (service/ai/client.py)
    from openai.types.shared_params import ResponseFormatJSONSchema

SCHEMA_NAME = "menu_recommendations"


class RecommendedItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    menu_item_id: str
    reason: str = Field(max_length=300)


class AIRecommendation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[RecommendedItem] = Field(min_length=1, max_length=5)
    message: str = Field(max_length=500)


def recommendation_json_schema() -> dict[str, Any]:
    # Pydantic already emits what strict mode demands: `extra="forbid"` gives
    # `additionalProperties: false` and fields without defaults are all `required`.
    return AIRecommendation.model_json_schema()


def response_format() -> ResponseFormatJSONSchema:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": SCHEMA_NAME,
            "strict": True,
            "schema": recommendation_json_schema(),
        },
    }
