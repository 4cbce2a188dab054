from __future__ import annotations

from service.ai.client import (
    AIBusyError,
    AICircuitOpenError,
    AIUnavailableError,
    OpenAIRecommender,
)
from service.ai.schema import AIRecommendation, RecommendedItem, response_format

__all__ = [
    "AIBusyError",
    "AICircuitOpenError",
    "AIRecommendation",
    "AIUnavailableError",
    "OpenAIRecommender",
    "RecommendedItem",
    "response_format",
]
