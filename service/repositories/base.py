"""The repository ports now live in `service.ports` (role-sized); re-exported for adapters."""

from __future__ import annotations

from service.ports import Dataset, IdempotencyKey, PickupRepository

__all__ = ["Dataset", "IdempotencyKey", "PickupRepository"]
