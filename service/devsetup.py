"""`pickup setup-dev` (make setup-dev): a working development setup in one step.

1. `.env` from `.env.example`, with generated development secrets and, when PostgreSQL answers
   on 127.0.0.1:5432, `DATA_BACKEND=postgres` pointing at a `pickup_dev` database. An existing
   `.env` is never touched.
2. With PostgreSQL: the database is created if missing and migrated.
3. Demo data is loaded when the store is empty.

Every step checks before it acts, so running it twice changes nothing.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import asyncpg

from service.config import load_settings

LOCAL_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEV_DATABASE = "pickup_dev"


async def postgres_reachable() -> bool:
    try:
        conn = await asyncpg.connect(LOCAL_ADMIN_DSN, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def write_env(example: Path, target: Path, *, postgres: bool, database: str) -> bool:
    """Returns False when `target` already existed (and was left alone)."""
    if target.exists():
        return False
    values = {
        "STAFF_API_KEYS": f"dev-staff-{secrets.token_urlsafe(18)}",
        "ADMIN_TOKEN": f"dev-admin-{secrets.token_urlsafe(18)}",
    }
    if postgres:
        values |= {
            "DATA_BACKEND": "postgres",
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
        }
    text = example.read_text()
    for key, value in values.items():
        text = re.sub(rf"^{key}=.*$", f"{key}={value}", text, flags=re.M)
    target.write_text(text)
    target.chmod(0o600)  # it holds secrets
    return True


async def ensure_database(name: str) -> bool:
    """Creates the database if missing; returns True when it was created."""
    conn = await asyncpg.connect(LOCAL_ADMIN_DSN)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await conn.close()


async def setup(root: Path, *, database: str = DEV_DATABASE) -> list[str]:
    from service import dbtools
    from service.bootstrap import open_storage
    from service.usecases.seed import demo_dataset

    done: list[str] = []
    postgres = await postgres_reachable()
    env_file = root / ".env"
    if write_env(root / ".env.example", env_file, postgres=postgres, database=database):
        backend = f"postgres ({database})" if postgres else "json"
        done.append(f"wrote .env with development secrets, backend {backend}")
    else:
        done.append(".env exists: left as it is")
    settings = load_settings(env_file=env_file)
    if settings.data_backend == "postgres" and settings.database_url is not None:
        dsn = settings.database_url.get_secret_value()
        name = dsn.rsplit("/", 1)[-1].split("?")[0]
        if dsn.startswith("postgresql://postgres@127.0.0.1:5432/") and await ensure_database(name):
            done.append(f"created database {name}")
        applied = await dbtools.migrate(dsn)
        done.append(f"applied migrations {', '.join(applied)}" if applied else "schema up to date")
    storage = await open_storage(settings)
    try:
        if await storage.repo.is_empty():
            await storage.repo.import_dataset(demo_dataset())
            done.append(f"loaded the demo dataset into {storage.backend}")
        else:
            done.append(f"{storage.backend} already holds data: left as it is")
    finally:
        await storage.aclose()
    return done
