"""Settings: the one place that reads the environment.

`load_settings()` reads the process environment (and `.env` when present) exactly once and
validates everything together, so a bad deployment hears about every problem in one go.
Tests call `load_settings({...})` with a plain mapping and never touch `os.environ`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from service.config_keys import (
    PRODUCTION_REQUIRED,
    SECRET_FIELDS,
    AISettings,
    CacheSettings,
    DatabaseSettings,
    LabSettings,
    LimiterSettings,
    ObservabilitySettings,
    ServerSettings,
    comma_separated,
)
from service.domain.ids import canonical_id
from service.errors import ConfigError
from service.secret_policy import (
    ISSUED_SECRETS,
    MIN_SECRET_BITS,
    PLACEHOLDER_SECRETS,
    secret_strength_bits,
)

__all__ = ["ConfigError", "Settings", "load_settings", "prepare_worker_environment"]


class Settings(
    LabSettings,
    ObservabilitySettings,
    AISettings,
    LimiterSettings,
    CacheSettings,
    DatabaseSettings,
    ServerSettings,
    BaseSettings,
):
    """Every key, grouped by the classes above but read flat: each environment variable is the
    upper-cased field name. Every key is documented in `.env.example` (a test keeps the two in
    step) and in docs/env-keys.md (`pickup config docs`)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

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
        if self.app_env == "production":
            for name, field in LabSettings.model_fields.items():
                if getattr(self, name) != field.default:
                    problems.append(
                        f"{name.upper()}: {getattr(self, name)} is a lab baseline and is "
                        "refused in production"
                    )
        if self.app_env == "production" and self.seed_demo_data:
            problems.append(
                "SEED_DEMO_DATA: demo stores would take real orders; refused in production"
            )
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
        if self.app_env == "production":
            problems += self._production_policy()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def loads_demo_data(self) -> bool:
        """SEED_DEMO_DATA as set, or by default everywhere but production."""
        if self.seed_demo_data is None:
            return self.app_env != "production"
        return self.seed_demo_data

    def _production_policy(self) -> list[str]:
        """What a deployment must not get away with: secrets that look guessable, a staff key
        that is also the admin token (it would make that key admin), a scope naming no store,
        per-process caches and limits behind several workers, anonymous metrics. Problems name
        the key and the reason, never the value."""
        problems: list[str] = []
        for name in ISSUED_SECRETS:
            secret: SecretStr | None = getattr(self, name)
            if secret is None:
                continue
            values = (
                [key for _, key in self.staff_keys()]
                if name == "staff_api_keys"
                else [secret.get_secret_value()]
            )
            if any(secret_strength_bits(value) < MIN_SECRET_BITS for value in values):
                problems.append(
                    f"{name.upper()}: too guessable (repeated characters, common words, runs or "
                    f"keyboard patterns); use a random value such as `openssl rand -hex 32`"
                )
        admin = self.admin_token.get_secret_value() if self.admin_token else None
        if admin is not None and any(key == admin for _, key in self.staff_keys()):
            problems.append(
                "ADMIN_TOKEN: must differ from every staff key (it would make it admin)"
            )
        if any(store is not None and canonical_id(store) is None for store, _ in self._raw_keys()):
            problems.append(
                "STAFF_API_KEYS: a store-scoped key must name its store by id (STORE_UUID:KEY)"
            )
        if self.web_concurrency > 1 and self.redis_url is None:
            problems.append(
                "WEB_CONCURRENCY: more than one worker needs REDIS_URL, or each worker keeps its "
                "own cache (stale reads after edits) and its own rate limits (multiplied)"
            )
        if self.metrics_enabled and self.metrics_token is None:
            problems.append(
                "METRICS_TOKEN: required in production while METRICS_ENABLED=true "
                "(/metrics must not be anonymous)"
            )
        return problems

    def warnings(self) -> list[str]:
        """Configurations that work but not as an operator would expect (said at start-up)."""
        found = []
        if self.web_concurrency > 1 and self.redis_url is None:
            found.append(
                f"WEB_CONCURRENCY={self.web_concurrency} without REDIS_URL: every worker has its "
                "own cache and rate limiter, so public reads may stay stale after an edit for up "
                f"to CACHE_TTL_SECONDS={self.cache_ttl_seconds:g}s and every limit is multiplied "
                "by the number of workers; set REDIS_URL (refused in production)"
            )
        return found

    def staff_keys(self) -> list[tuple[str | None, str]]:
        """(store id or None for every store, key) pairs; a store id in any UUID spelling is
        made canonical, as request paths are, so the scope matches."""
        return [
            (None if store is None else canonical_id(store) or store, key)
            for store, key in self._raw_keys()
        ]

    def _raw_keys(self) -> list[tuple[str | None, str]]:
        if self.staff_api_keys is None:
            return []
        pairs: list[tuple[str | None, str]] = []
        for entry in comma_separated(self.staff_api_keys.get_secret_value()):
            store, sep, key = entry.rpartition(":")
            pairs.append((store if sep else None, key))
        return pairs

    def trusted_proxy_networks(self) -> list[str]:
        return comma_separated(self.trusted_proxies)

    def cors_origin_list(self) -> list[str]:
        return comma_separated(self.cors_origins)

    def describe(self) -> dict[str, Any]:
        """The configuration with every secret replaced by whether it is set."""
        shown = self.model_dump(mode="json")
        for name, value in shown.items():
            if name in SECRET_FIELDS:
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
        problems += [
            p
            for p in _describe_errors(again)
            if p.split(":")[0] not in already and p not in problems
        ]
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
