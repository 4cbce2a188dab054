"""Settings: the one place that reads the environment.

`load_settings()` reads the process environment (and `.env` when present) exactly once and
validates everything together, so a bad deployment hears about every problem in one go.
Tests call `load_settings({...})` with a plain mapping and never touch `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service.errors import ConfigError

# Values that show a secret was copied from an example and never set for real.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "password", "example", "dev-staff-key", "dev-admin-token"}
)
# Must be set explicitly when APP_ENV=production (DATABASE_URL too with DATA_BACKEND=postgres).
PRODUCTION_REQUIRED = ("port", "data_backend", "staff_api_keys", "admin_token", "openai_api_key")
SECRET_FIELDS = (
    "staff_api_keys",
    "admin_token",
    "openai_api_key",
    "database_url",
    "redis_url",
    "metrics_token",
)


class Settings(BaseSettings):
    """Every key is documented in `.env.example` (a test keeps the two in step)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

    app_env: Literal["development", "test", "production"] = Field(
        "development",
        description="development | test | production; production enforces required keys",
    )
    host: str = Field("127.0.0.1", description="Interface to bind; use 0.0.0.0 in containers")
    port: int = Field(3001, ge=1, le=65535, description="TCP port (platforms inject PORT)")
    web_concurrency: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level")
    data_backend: Literal["json", "postgres"] = Field("json", description="json | postgres")
    json_data_path: Path = Field(
        Path("data/pickup.json"), description="Data file for DATA_BACKEND=json"
    )
    database_url: SecretStr | None = Field(
        None, description="PostgreSQL URL; required when DATA_BACKEND=postgres"
    )
    db_pool_min: int = Field(1, ge=0, le=100, description="PostgreSQL pool: connections kept open")
    db_pool_max: int = Field(10, ge=1, le=200, description="PostgreSQL pool: most connections")
    db_statement_timeout_ms: int = Field(
        5000, ge=0, le=600_000, description="PostgreSQL statement_timeout; 0 turns it off"
    )
    query_profile: Literal["optimized", "naive"] = Field(
        "optimized", description="naive is the lab's slow baseline; refused in production"
    )
    max_body_bytes: int = Field(
        65536, ge=1024, le=10_485_760, description="Largest request body accepted (bytes)"
    )
    staff_api_keys: SecretStr | None = Field(
        None, description="Comma-separated staff keys: KEY (all stores) or STORE_ID:KEY"
    )
    admin_token: SecretStr | None = Field(None, description="Bearer token for /v1/admin endpoints")
    openai_api_key: SecretStr | None = Field(
        None,
        description="OpenAI API key; without it (outside production) AI answers use the fallback",
    )
    request_body_timeout_s: float = Field(
        10.0, gt=0, le=300, description="A request body must arrive within this many seconds"
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
    cache_enabled: bool = Field(True, description="Read-through cache for stores and menus")
    cache_ttl_seconds: float = Field(
        300, gt=0, le=86_400, description="Cache entry lifetime (up to 10 % shorter, jittered)"
    )
    cache_max_entries: int = Field(
        10_000, ge=10, description="Entries of the in-process cache (used without REDIS_URL)"
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
    compression_enabled: bool = Field(True, description="gzip responses for clients that accept it")
    compression_min_bytes: int = Field(1024, ge=0, description="Smallest body that is compressed")
    compression_level: int = Field(
        1, ge=1, le=9, description="gzip level; 1 measured best (docs/perf-audit.md)"
    )
    response_encoder: Literal["orjson", "stdlib"] = Field(
        "orjson", description="JSON encoder of cached reads; stdlib exists for the lab's baseline"
    )
    metrics_enabled: bool = Field(True, description="Serve /metrics and record request metrics")
    metrics_token: SecretStr | None = Field(
        None, description="When set, /metrics needs Authorization: Bearer <token>"
    )
    prometheus_multiproc_dir: Path | None = Field(
        None, description="Shared metrics directory when WEB_CONCURRENCY>1 (pickup serve makes one)"
    )
    build_commit: str = Field(
        "",
        max_length=64,
        description="Commit being run, for pickup_build_info (empty: ask git, else unknown)",
    )
    shutdown_grace_s: int = Field(
        20, ge=1, le=600, description="On SIGTERM, in-flight requests get this long to finish"
    )
    access_log: bool = Field(True, description="One structured JSON log line per request")
    seed_demo_data: bool = Field(
        True, description="Load the demo dataset when the data store is empty at start-up"
    )
    keep_alive_timeout_s: int = Field(
        75, ge=1, le=3600, description="uvicorn keep-alive; longer than a proxy's idle timeout"
    )
    redis_url: SecretStr | None = Field(
        None, description="redis:// or rediss:// URL shared by the cache and the rate limiter"
    )
    rate_limit_enabled: bool = Field(True, description="Per-client rate limiting on or off")
    rate_limit_window_ms: int = Field(900_000, ge=1000, description="Default limit's window")
    rate_limit_max: int = Field(100, ge=1, description="Requests per window per client")
    rate_limit_orders_max: int = Field(
        20, ge=1, description="POST /v1/orders per window per client"
    )
    rate_limit_ai_max: int = Field(
        10, ge=1, description="AI recommendation calls per window per client"
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() gathers the environment itself so that tests can pass a plain mapping.
        return (init_settings,)

    @field_validator("staff_api_keys")
    @classmethod
    def _staff_keys_are_well_formed(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for entry in value.get_secret_value().split(","):
                key = entry.strip().rpartition(":")[2]
                if entry.strip() and len(key) < 16:
                    raise ValueError("each staff key must be at least 16 characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs_are_valid(cls, value: str) -> str:
        for entry in filter(None, (v.strip() for v in value.split(","))):
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                raise ValueError(f"{entry!r} is not a CIDR such as 10.0.0.0/8") from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: str) -> str:
        for entry in filter(None, (v.strip() for v in value.split(","))):
            if entry != "*" and not re.fullmatch(r"https?://[^/\s]+", entry):
                raise ValueError(f"{entry!r} is not an origin such as https://app.example.com")
        return value

    @model_validator(mode="after")
    def _production_requirements(self) -> Settings:
        problems: list[str] = []
        if self.data_backend == "json" and self.web_concurrency > 1:
            problems.append(
                "WEB_CONCURRENCY: the json backend allows one writer; use WEB_CONCURRENCY=1 "
                "or DATA_BACKEND=postgres"
            )
        if self.db_pool_min > self.db_pool_max:
            problems.append("DB_POOL_MIN: must not exceed DB_POOL_MAX")
        if self.app_env == "production" and self.query_profile == "naive":
            problems.append("QUERY_PROFILE: naive is a lab baseline and is refused in production")
        if self.data_backend == "postgres" and self.database_url is None:
            problems.append("DATABASE_URL: required when DATA_BACKEND=postgres")
        if self.app_env == "production":
            for name in PRODUCTION_REQUIRED:
                if name not in self.model_fields_set or getattr(self, name) is None:
                    problems.append(f"{name.upper()}: required in production")
        if self.app_env != "development":
            if self.admin_token is not None and len(self.admin_token.get_secret_value()) < 16:
                problems.append("ADMIN_TOKEN: must be at least 16 characters")
            for name in SECRET_FIELDS:
                secret: SecretStr | None = getattr(self, name)
                if secret is not None and _has_placeholder(secret.get_secret_value()):
                    problems.append(f"{name.upper()}: is a placeholder value; set a real secret")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def staff_keys(self) -> list[tuple[str | None, str]]:
        """(store id or None for every store, key) pairs."""
        if self.staff_api_keys is None:
            return []
        pairs: list[tuple[str | None, str]] = []
        for entry in self.staff_api_keys.get_secret_value().split(","):
            entry = entry.strip()
            if not entry:
                continue
            store, sep, key = entry.rpartition(":")
            pairs.append((store if sep else None, key))
        return pairs

    def trusted_proxy_networks(self) -> list[str]:
        return [v.strip() for v in self.trusted_proxies.split(",") if v.strip()]

    def cors_origin_list(self) -> list[str]:
        return [v.strip() for v in self.cors_origins.split(",") if v.strip()]

    def describe(self) -> dict[str, Any]:
        """The configuration with every secret replaced by whether it is set."""
        shown = self.model_dump(mode="json")
        for name, value in shown.items():
            if isinstance(getattr(self, name), SecretStr) or name in SECRET_FIELDS:
                shown[name] = "set" if value else "unset"
        return shown


def _has_placeholder(value: str) -> bool:
    parts = [p.strip().rpartition(":")[2].lower() for p in value.split(",")]
    return any(p in PLACEHOLDER_SECRETS or p.startswith("replace-with") for p in parts)


def read_environment(env_file: Path | None = Path(".env")) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if env_file is not None and env_file.is_file():
        values.update(DotEnvSettingsSource(Settings, env_file=env_file)())
    values.update(EnvSettingsSource(Settings)())
    return values


def load_settings(
    values: Mapping[str, Any] | None = None, *, env_file: Path | None = Path(".env")
) -> Settings:
    """Validate `values` (or the environment) and raise ConfigError naming every problem."""
    source = values if values is not None else read_environment(env_file)
    # An empty value means unset, as in a copied .env.example.
    raw = {k.lower(): v for k, v in source.items() if v != ""}
    try:
        return Settings(**raw)
    except ValidationError as exc:
        problems = _describe_errors(exc)
        bad_fields = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
    # Field errors stop pydantic before the cross-field checks: run those on what is valid so
    # the operator sees every problem at once.
    try:
        Settings(**{k: v for k, v in raw.items() if k not in bad_fields})
    except ValidationError as again:
        already = {name.upper() for name in bad_fields}
        problems += [p for p in _describe_errors(again) if p.split(":")[0] not in already]
    raise ConfigError(problems)


def _describe_errors(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        if error["loc"]:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{str(error['loc'][0]).upper()}: {message}")
        else:
            # Cross-field checks raise one ValueError with a line per problem.
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.extend(line for line in message.splitlines() if line)
    return problems


def prepare_worker_environment(settings: Settings) -> Settings:
    """With several workers, prometheus-client must find PROMETHEUS_MULTIPROC_DIR in the
    environment before each worker imports it, and the directory must start empty (files left
    by an earlier run would be merged into this one's metrics)."""
    if settings.web_concurrency == 1 or not settings.metrics_enabled:
        return settings
    directory = settings.prometheus_multiproc_dir or Path(
        tempfile.mkdtemp(prefix="pickup-metrics-")
    )
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return settings.model_copy(update={"prometheus_multiproc_dir": directory})


def env_keys_markdown() -> str:
    """docs/env-keys.md, generated from Settings so the two cannot drift (a test compares)."""
    rows = [
        "# Configuration keys",
        "",
        "Generated from `service/config.py` by `pickup config docs`; do not edit by hand.",
        "Every key is read from the environment or `.env`; an empty value means unset.",
        "With `APP_ENV=production` the keys marked *yes* must be set, and `DATABASE_URL` too",
        "when `DATA_BACKEND=postgres`; placeholder secrets are refused outside development.",
        "",
        "| key | type | default | required in production | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        kind = _type_name(field.annotation)
        default = field.default
        text = str(default).lower() if isinstance(default, bool) else str(default)
        shown = "" if default is None else f"`{text}`"
        required = "yes" if name in PRODUCTION_REQUIRED else ""
        secret = " (secret)" if name in SECRET_FIELDS else ""
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name.upper()}` | {kind}{secret} | {shown} | {required} | {meaning} |")
    return "\n".join(rows) + "\n"


def _type_name(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = ", optional" if type(None) in typing.get_args(annotation) else ""
    if typing.get_origin(annotation) is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    base = args[0] if args else annotation
    names = {SecretStr: "string", Path: "path"}
    return f"{names.get(base, getattr(base, '__name__', str(base)))}{optional}"
