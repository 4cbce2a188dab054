from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.postgres import DEFAULT_URL, PrivatePostgres, execute, wait_accepting
from harness.procs import port_open
from tests.e2e.server import PICKUP, base_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_postgres() -> Iterator[None]:
    """`setup-dev` knows one server: 127.0.0.1:5432. When nothing listens there (a machine
    without PostgreSQL), a private cluster from the harness takes that port for this test."""
    if port_open(5432):
        yield
        return
    cluster = PrivatePostgres(port=5432).init()
    cluster.start()
    wait_accepting(DEFAULT_URL)
    yield
    cluster.destroy()


def test_setup_dev_prepares_everything_once_and_changes_nothing_the_second_time(
    tmp_path: Path, local_postgres: None
) -> None:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    name = f"pickup_dev_test_{uuid.uuid4().hex[:10]}"  # never a developer's own pickup_dev
    command = [PICKUP, "setup-dev", "--database", name]
    try:
        first = subprocess.run(
            command, cwd=tmp_path, env=base_env(), capture_output=True, text=True, timeout=120
        )
        assert first.returncode == 0, first.stderr
        assert "wrote .env" in first.stdout and f"created database {name}" in first.stdout
        assert "loaded the demo dataset into postgres" in first.stdout
        env_text = (tmp_path / ".env").read_text()
        assert "DATA_BACKEND=postgres" in env_text and "STAFF_API_KEYS=dev-staff-" in env_text
        assert (tmp_path / ".env").stat().st_mode & 0o077 == 0  # secrets stay private

        second = subprocess.run(
            command, cwd=tmp_path, env=base_env(), capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stderr
        assert ".env exists: left as it is" in second.stdout
        assert "schema up to date" in second.stdout
        assert "already holds data: left as it is" in second.stdout
        assert (tmp_path / ".env").read_text() == env_text
        check = subprocess.run(
            [PICKUP, "config", "check"],
            cwd=tmp_path,
            env=base_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stderr
    finally:
        asyncio.run(execute(DEFAULT_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
