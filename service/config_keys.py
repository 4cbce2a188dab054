"""The configuration keys, grouped: server, database, cache, rate limiter, AI, observability,
and the lab-only switches. `service.config.Settings` combines the groups and reads them flat
from the environment (each variable is the upper-cased field name); this module also renders
docs/env-keys.md (`pickup config docs`)."""

from __future__ import annotations

import ipaddress
import re
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from service.secret_policy import MIN_SECRET_BITS

# Must be set explicitly when APP_ENV=production (DATABASE_URL too with DATA_BACKEND=postgres).
PRODUCTION_REQUIRED = ("port", "data_backend", "staff_api_keys", "admin_token", "openai_api_key")


def comma_separated(value: str) -> list[str]:
    """The entries of a comma-separated key (STAFF_API_KEYS, TRUSTED_PROXIES, CORS_ORIGINS),
    trimmed, empty ones dropped: what the validators check is what the service then uses."""
    return [entry for entry in (v.strip() for v in value.split(",")) if entry]


class ServerSettings(BaseModel):
    """The HTTP server: process, requests, access control and HTTP hygiene."""

    app_env: Literal["development", "test", "production"] = Field(
        "development",
        description="development | test | production; production enforces required keys",
    )
    host: str = Field(
        "::",
        description="Interface to bind; :: is every IPv6 and IPv4 address (dual stack, as "
        "Railway's IPv6 private network needs); 127.0.0.1 keeps a server local",
    )
    port: int = Field(3001, ge=1, le=65535, description="TCP port (platforms inject PORT)")
    web_concurrency: int = Field(
        1,
        ge=1,
        le=64,
        description="uvicorn worker processes; more than one needs REDIS_URL (refused in "
        "production without it, warned about elsewhere)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level")
    max_body_bytes: int = Field(
        65536, ge=1024, le=10_485_760, description="Largest request body accepted (bytes)"
    )
    request_body_timeout_s: float = Field(
        10.0, gt=0, le=300, description="A request body must arrive within this many seconds"
    )
    shutdown_grace_s: int = Field(
        20, ge=1, le=600, description="On SIGTERM, in-flight requests get this long to finish"
    )
    keep_alive_timeout_s: int = Field(
        75, ge=1, le=3600, description="uvicorn keep-alive; longer than a proxy's idle timeout"
    )
    max_header_bytes: int = Field(
        16384,
        ge=1024,
        le=1_048_576,
        description="Largest request line + headers accepted (bytes); larger gets 431 and a close",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A request line and headers must arrive within this many seconds of the "
        "connection opening (or the previous request ending); else 408 and a close",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Open connections (and requests) per worker; beyond it uvicorn answers 503",
    )
    staff_api_keys: SecretStr | None = Field(
        None, description="Comma-separated staff keys: KEY (all stores) or STORE_ID:KEY"
    )
    admin_token: SecretStr | None = Field(None, description="Bearer token for /v1/admin endpoints")
    trust_proxy: int = Field(
        0, ge=0, le=10, description="Number of trusted proxy hops in front of the service"
    )
    trusted_proxies: str = Field(
        "", description="Comma-separated CIDRs of trusted proxies (safer than hop counting)"
    )
    ipv6_prefix: int = Field(64, ge=32, le=128, description="IPv6 clients are limited per prefix")
    cors_origins: str = Field(
        "", description="Comma-separated allowed browser origins (https://app.example.com)"
    )
    security_headers_enabled: bool = Field(
        True, description="Helmet-style security headers (HSTS only in production)"
    )

    compression_enabled: bool = Field(True, description="gzip responses for clients that accept it")
    compression_min_bytes: int = Field(1024, ge=0, description="Smallest body that is compressed")
    compression_level: int = Field(
        1, ge=1, le=9, description="gzip level; 1 measured best (docs/perf-audit.md)"
    )

    @field_validator("staff_api_keys")
    @classmethod
    def _staff_keys_are_well_formed(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for entry in comma_separated(value.get_secret_value()):
                if len(entry.rpartition(":")[2]) < 16:
                    raise ValueError("each staff key must be at least 16 characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs_are_valid(cls, value: str) -> str:
        for entry in comma_separated(value):
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                raise ValueError(f"{entry!r} is not a CIDR such as 10.0.0.0/8") from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: str) -> str:
        for entry in comma_separated(value):
            if entry != "*" and not re.fullmatch(r"https?://[^/\s]+", entry):
                raise ValueError(f"{entry!r} is not an origin such as https://app.example.com")
        return value


class DatabaseSettings(BaseModel):
    """Where the data lives."""

    data_backend: Literal["json", "postgres"] = Field("json", description="json | postgres")
    json_data_path: Path = Field(
        Path("data/pickup.json"), description="Data file for DATA_BACKEND=json"
    )
    database_url: SecretStr | None = Field(
        None, description="PostgreSQL URL; required when DATA_BACKEND=postgres"
    )
    database_direct_url: SecretStr | None = Field(
        None,
        description="Direct (not pooled) PostgreSQL URL for `pickup db` migrations when "
        "DATABASE_URL goes through a transaction pooler such as Neon's -pooler host",
    )
    db_pooler: Literal["auto", "direct", "transaction"] = Field(
        "auto",
        description="transaction: DATABASE_URL is PgBouncer in transaction mode (no statement "
        "cache, timeouts per transaction); auto: so when its host ends in -pooler",
    )
    db_pool_min: int = Field(1, ge=0, le=100, description="PostgreSQL pool: connections kept open")
    db_pool_max: int = Field(10, ge=1, le=200, description="PostgreSQL pool: most connections")
    db_statement_timeout_ms: int = Field(
        5000, ge=0, le=600_000, description="PostgreSQL statement_timeout; 0 turns it off"
    )
    seed_demo_data: bool | None = Field(
        None,
        description="Load the demo dataset when the data store is empty at start-up; unset "
        "means yes in development and test, never in production (true is refused there)",
    )


class CacheSettings(BaseModel):
    """The read-through cache (and the Redis URL it shares with the limiter)."""

    cache_enabled: bool = Field(True, description="Read-through cache for stores and menus")
    cache_ttl_seconds: float = Field(
        300, gt=0, le=86_400, description="Cache entry lifetime (up to 10 % shorter, jittered)"
    )
    cache_max_entries: int = Field(
        10_000, ge=10, description="Entries of the in-process cache (used without REDIS_URL)"
    )
    cache_max_bytes: int = Field(
        32 * 1024 * 1024,
        ge=64 * 1024,
        description="Bytes the in-process cache may hold per worker (keys and values)",
    )
    cache_op_timeout_ms: int = Field(
        100,
        ge=5,
        le=5000,
        description="Deadline of one Redis cache call (connecting excluded) before it is a miss",
    )
    cache_connect_timeout_ms: int = Field(
        1000,
        ge=10,
        le=30_000,
        description="Deadline for opening a Redis connection (TCP + TLS + AUTH)",
    )
    redis_url: SecretStr | None = Field(
        None, description="redis:// or rediss:// URL shared by the cache and the rate limiter"
    )


class LimiterSettings(BaseModel):
    """Per-client rate limits."""

    rate_limit_enabled: bool = Field(True, description="Per-client rate limiting on or off")
    rate_limit_window_ms: int = Field(900_000, ge=1000, description="Default limit's window")
    rate_limit_max: int = Field(100, ge=1, description="Requests per window per client")
    rate_limit_orders_max: int = Field(
        20, ge=1, description="POST /v1/orders per window per client"
    )
    rate_limit_ai_max: int = Field(
        10, ge=1, description="AI recommendation calls per window per client"
    )
    max_live_orders_per_phone: int = Field(
        5,
        ge=0,
        le=1_000_000,
        description="Orders one phone number may have waiting (not yet collected, cancelled or "
        "rejected) at one store; the next gets 409 too_many_live_orders; 0 turns the cap off",
    )
    pickup_code_attempts_max: int = Field(
        5, ge=1, description="Pickup-code attempts per order per window (anti brute force)"
    )
    rate_limit_strategy: Literal["fixed-window", "sliding-window-counter", "moving-window"] = Field(
        "sliding-window-counter", description="Counting strategy from the limits library"
    )
    rate_limit_fail_open: bool = Field(
        True, description="With Redis down: true serves requests uncounted, false answers 503"
    )


class AISettings(BaseModel):
    """AI recommendations: the upstream and its circuit breaker."""

    openai_api_key: SecretStr | None = Field(
        None,
        description="OpenAI API key; without it (outside production) AI answers use the fallback",
    )
    openai_base_url: str | None = Field(
        None, description="OpenAI-compatible base URL; unset means the official API"
    )
    openai_model: str = Field("gpt-4o-mini", min_length=1, description="Chat model name")
    openai_timeout_ms: int = Field(
        3000, ge=100, le=120_000, description="Whole-call deadline for one upstream call"
    )
    ai_max_concurrency: int = Field(
        8, ge=1, le=1000, description="Upstream calls in flight per process; extra calls fall back"
    )
    breaker_fail_max: int = Field(
        5, ge=1, le=1000, description="Consecutive upstream failures that open the breaker"
    )
    breaker_reset_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Seconds the breaker stays open before one trial call"
    )


class ObservabilitySettings(BaseModel):
    """Metrics and logs."""

    metrics_enabled: bool = Field(True, description="Serve /metrics and record request metrics")
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, /metrics needs Authorization: Bearer <token>; required in "
        "production while METRICS_ENABLED is true",
    )
    prometheus_multiproc_dir: Path | None = Field(
        None,
        description="Shared metrics directory when WEB_CONCURRENCY>1 "
        "(else pickup serve makes one, removed at exit)",
    )
    build_commit: str = Field(
        "",
        max_length=64,
        description="Commit being run, for pickup_build_info (empty: ask git, else unknown)",
    )
    access_log: bool = Field(True, description="One structured JSON log line per request")


class LabSettings(BaseModel):
    """Lab-only switches: baselines the performance lab measures against (service/lab). Refused
    with APP_ENV=production."""

    query_profile: Literal["optimized", "naive"] = Field(
        "optimized", description="naive is the lab's slow baseline; refused in production"
    )
    response_encoder: Literal["orjson", "stdlib"] = Field(
        "orjson", description="JSON encoder of cached reads; stdlib exists for the lab's baseline"
    )


# Each group's keys, in documentation order (docs/env-keys.md and .env.example follow it).
GROUPS: dict[str, type[BaseModel]] = {
    "Server": ServerSettings,
    "Database": DatabaseSettings,
    "Cache": CacheSettings,
    "Rate limiter": LimiterSettings,
    "AI": AISettings,
    "Observability": ObservabilitySettings,
    "Lab only (refused in production)": LabSettings,
}

# The keys declared SecretStr, in documentation order: never shown, refused as placeholders,
# marked (secret) in docs/env-keys.md. The type is the one declaration.
SECRET_FIELDS = tuple(
    name
    for group in GROUPS.values()
    for name, field in group.model_fields.items()
    if SecretStr in (field.annotation, *typing.get_args(field.annotation))
)


def env_keys_markdown() -> str:
    """docs/env-keys.md, generated from the groups so the two cannot drift (a test compares)."""
    rows = [
        "# Configuration keys",
        "",
        "Generated from `service/config.py` by `pickup config docs`; do not edit by hand.",
        "Every key is read from the environment or `.env`; an empty value means unset.",
        "With `APP_ENV=production` the keys marked *yes* must be set, and `DATABASE_URL` too",
        "when `DATA_BACKEND=postgres`, and `METRICS_TOKEN` while `METRICS_ENABLED=true`;",
        "placeholder secrets are refused outside development. In production `STAFF_API_KEYS`,",
        "`ADMIN_TOKEN` and `METRICS_TOKEN` must also look random (at least",
        f"{MIN_SECRET_BITS} bits once weak words, repeats, runs and keyboard rows are discounted),",
        "no staff key may equal `ADMIN_TOKEN`, a store-scoped staff key names its store by its",
        "id (a UUID), and `WEB_CONCURRENCY>1` needs `REDIS_URL` (shared cache and limits).",
        "The lab-only switches must keep their defaults in production.",
    ]
    for title, group in GROUPS.items():
        rows += ["", f"## {title}", "", *_group_rows(group)]
    return "\n".join(rows) + "\n"


def _group_rows(group: type[BaseModel]) -> list[str]:
    rows = [
        "| key | type | default | required in production | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, field in group.model_fields.items():
        kind = _type_name(field.annotation)
        default = field.default
        text = str(default).lower() if isinstance(default, bool) else str(default)
        shown = "" if default is None else f"`{text}`"
        required = "yes" if name in PRODUCTION_REQUIRED else ""
        secret = " (secret)" if name in SECRET_FIELDS else ""
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name.upper()}` | {kind}{secret} | {shown} | {required} | {meaning} |")
    return rows


def _type_name(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = ", optional" if type(None) in typing.get_args(annotation) else ""
    if typing.get_origin(annotation) is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    base = args[0] if args else annotation
    names = {SecretStr: "string", Path: "path"}
    return f"{names.get(base, getattr(base, '__name__', str(base)))}{optional}"
