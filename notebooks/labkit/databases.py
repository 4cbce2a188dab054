"""Throwaway PostgreSQL databases for a notebook: created, migrated and seeded through the
service's own CLI, dropped at the end."""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

from labkit.procs import PICKUP, base_env, postgres_available

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


class LabDatabase:
    def __init__(self, label: str) -> None:
        self.name = f"lab_{label}_{uuid.uuid4().hex[:8]}"
        self.url = f"postgresql://postgres@127.0.0.1:5432/{self.name}"
        self.seed_seconds: float | None = None

    @staticmethod
    def unavailable() -> str | None:
        return postgres_available(ADMIN_DSN)

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"DATA_BACKEND": "postgres", "DATABASE_URL": self.url, **extra}

    def create(self, seed: list[str]) -> LabDatabase:
        _psql(f'CREATE DATABASE "{self.name}"')
        env = base_env(APP_ENV="test", **self.settings(SEED_DEMO_DATA="false"))
        try:
            subprocess.run(
                [PICKUP, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
            )
            started = time.monotonic()
            subprocess.run(
                [PICKUP, "seed", *seed], env=env, check=True, capture_output=True, timeout=1800
            )
            self.seed_seconds = time.monotonic() - started
            _psql("ANALYZE", dsn=self.url)
        except BaseException:
            # A half-made database is of no use to anyone: never leave one on a shared server.
            self.drop()
            raise
        return self

    def drop(self) -> None:
        _psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _psql(sql: str, dsn: str = ADMIN_DSN) -> str:
    result = subprocess.run(
        ["psql", dsn, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return result.stdout
