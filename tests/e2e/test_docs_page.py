"""The API page for people (/docs), rendered by a real headless Chromium: Swagger UI from the
packaged copy builds the operations from /openapi.json, under the page's own strict CSP."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, base_env

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)"
)


def test_the_docs_page_renders_the_operations_in_a_real_browser(tmp_path: Path) -> None:
    env = base_env(APP_ENV="test", JSON_DATA_PATH=str(tmp_path / "pickup.json"))
    with Server(env, cwd=tmp_path) as server:
        page = httpx.get(f"{server.url}/docs", timeout=10)
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "cdn" not in page.text.lower() and "https://" not in page.text
        api = httpx.get(f"{server.url}/v1/stores", timeout=10)
        assert api.headers["content-security-policy"].startswith("default-src 'none'")
        assert CHROMIUM is not None
        dom = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'chromium'}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{server.url}/docs",
            ],
            capture_output=True,
            timeout=120,
        ).stdout.decode()
    # Swagger UI wrote the document's operations into the page.
    assert "opblock" in dom, dom[-2000:]
    for path in ("/v1/orders", "/v1/stores/{store_id}/menu", "/readyz"):
        assert path in dom
