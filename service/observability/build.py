"""Which code is running, for the `pickup_build_info` gauge: the configured commit (the image
bakes it in at build time), else the git checkout the package runs from, else "unknown"."""

from __future__ import annotations

import subprocess
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


def build_commit(configured: str) -> str:
    if configured:
        return configured
    try:
        result = subprocess.run(  # noqa: S603 (fixed argv)
            ["git", "-C", str(_CHECKOUT), "rev-parse", "--short=12", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"  # an installed package or an image built without the argument
    return result.stdout.strip() or "unknown"
