from __future__ import annotations

import re
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"


def test_only_config_reads_the_environment() -> None:
    readers = [
        path.relative_to(SERVICE.parent).as_posix()
        for path in SERVICE.rglob("*.py")
        if path.name != "config.py" and re.search(r"os\.environ|getenv\(", path.read_text())
    ]
    assert readers == []
