"""Throwaway PostgreSQL databases for a notebook, on the server the harness chose (a server on
loopback, else a private cluster: harness/postgres.py). Created through the harness, migrated
and seeded through the service's own CLI, and dropped at the end, or when the kernel exits or
dies."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from harness.postgres import execute, postgres, postgres_unavailable, run_sync
from labkit.procs import PICKUP, base_env


class LabDatabase:
    def __init__(self, label: str) -> None:
        self.label = label
        self.name = ""
        self.url = ""
        self.seed_seconds: float | None = None

    @staticmethod
    def unavailable() -> str | None:
        return postgres_unavailable()

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"DATA_BACKEND": "postgres", "DATABASE_URL": self.url, **extra}

    def create(self, seed: list[str]) -> LabDatabase:
        self.url = postgres().create_database(f"lab_{self.label}", migrated=False)
        self.name = self.url.rsplit("/", 1)[-1]
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
            run_sync(execute(self.url, "ANALYZE"))
        except BaseException:
            # A half-made database is of no use to anyone: never leave one on a shared server.
            self.drop()
            raise
        return self

    def drop(self) -> None:
        if self.name:
            postgres().drop_database(self.name)
