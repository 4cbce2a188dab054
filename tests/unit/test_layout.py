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


def test_the_lab_and_load_tests_never_import_the_service() -> None:
    # They reach it over HTTP, or run it as a process (`pickup serve`, `python -m service.measure`).
    offenders = [
        path.relative_to(SERVICE.parent).as_posix()
        for folder in ("loadtests", "notebooks")
        for path in (SERVICE.parent / folder).rglob("*.py")
        if re.search(r"^\s*(from|import)\s+service\b", path.read_text(), flags=re.M)
    ]
    assert offenders == []
