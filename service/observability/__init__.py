"""Observability: Prometheus metrics, structured logging, and per-request context."""

from __future__ import annotations

from service.observability.logging import configure_logging
from service.observability.metrics import Metrics
from service.observability.middleware import RequestContextMiddleware, metrics_endpoint

__all__ = ["Metrics", "RequestContextMiddleware", "configure_logging", "metrics_endpoint"]
