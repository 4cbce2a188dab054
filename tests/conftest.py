from __future__ import annotations

import io
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from starlette.testclient import TestClient

from harness.session import session as harness_session
from service.app import create_app
from service.config import Settings, load_settings
from service.observability.logging import configure_logging
from tests.factories import ADMIN_TOKEN, NOW, STAFF_KEY


class Clock:
    """A clock tests can move."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**values: Any) -> Settings:
        base: dict[str, Any] = {
            "APP_ENV": "test",
            "JSON_DATA_PATH": str(tmp_path / "pickup.json"),
            "SEED_DEMO_DATA": "false",
            "STAFF_API_KEYS": STAFF_KEY,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            # Most tests make more requests than a customer would; limiter tests turn it on.
            "RATE_LIMIT_ENABLED": "false",
        }
        base.update(values)
        return load_settings(base)

    return build


@pytest.fixture
def make_client(make_settings: Callable[..., Settings], clock: Clock) -> Callable[..., TestClient]:
    """`make_client(**values)`: a client of the app built from `make_settings(**values)` and the
    test's clock; enter it (`with make_client(...) as c:`) to run the app's lifespan."""

    def build(**values: Any) -> TestClient:
        return TestClient(create_app(make_settings(**values), clock=clock))

    return build


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> Iterator[TestClient]:
    with make_client() as test_client:
        yield test_client


@pytest.fixture
def json_output() -> Iterator[io.StringIO]:
    """The service's JSON log lines, configured as in production, written to a buffer; the
    process's logging and structlog set-up are put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    yield buffer
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers, root.level = saved_handlers, saved_level


@pytest.fixture
def make_certificate(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    """`make_certificate("IP:127.0.0.1")` or `("DNS:db.example")`: a self-signed certificate for
    that name and its key, valid for a day (cert.pem, key.pem in tmp_path); skips the test where
    openssl is not installed."""

    def make(subject_alt_name: str) -> tuple[Path, Path]:
        if shutil.which("openssl") is None:
            pytest.skip("openssl is not installed")
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        name = subject_alt_name.split(":", 1)[1]
        args = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        args += ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"]
        args += ["-addext", f"subjectAltName={subject_alt_name}"]
        subprocess.run(args, check=True, capture_output=True, timeout=60)
        return cert, key

    return make


@pytest.fixture
def staff() -> dict[str, str]:
    return {"Authorization": f"Bearer {STAFF_KEY}"}


def pytest_unconfigure(config: pytest.Config) -> None:
    # Everything the harness started for this run (servers, private clusters, databases) goes
    # now rather than at interpreter exit; its reaper covers a run that is killed instead.
    harness_session().close()
