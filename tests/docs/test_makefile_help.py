"""`make help` is what a new operator reads first: every target, each with a true line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def makefile_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    # Rule lines only: `name:` not followed by `=` (that would be a `:=` assignment).
    return re.findall(r"^([a-z][a-z-]*):(?!=)", text, flags=re.M)


def make_help() -> dict[str, str]:
    out = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return dict(re.findall(r"^make (\S+)\s+(.+)$", out, flags=re.M))


def test_make_help_lists_every_target_with_a_description() -> None:
    listed = make_help()
    targets = makefile_targets()

    assert len(targets) >= 14
    assert sorted(listed) == sorted(targets)
    assert all(len(line) > 8 for line in listed.values())


def test_every_target_is_phony_so_a_file_of_that_name_cannot_hide_it() -> None:
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert phony is not None
    assert set(makefile_targets()) <= set(phony.group(1).split())


def test_the_serve_line_names_both_backends_it_may_serve() -> None:
    line = make_help()["serve"]
    assert "PostgreSQL" in line and "JSON" in line
