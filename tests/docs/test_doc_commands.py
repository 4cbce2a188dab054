"""Every shell command shown in README.md and docs/*.md runs as written, so a doc cannot drift
from the code. Each document's ```sh blocks run in order in one bash session (state carries
over, as in an operator's terminal), with `set -e`, in an empty directory that has `.venv` (and
`deploy/`) from this checkout, `.venv/bin` first on PATH and no `.env`.

Two substitutions stand for what an operator fills in: `localhost:3001` becomes a `pickup serve`
this test starts on a free port (demo data), and a `postgresql://…/pickup` URL becomes a scratch
database that does not exist yet (so `pickup db migrate` must create it) and is dropped after,
on the PostgreSQL the harness provides (the one on loopback, else a private or embedded one).
The commands in SKIPPED cannot run here; each says why, and a test keeps the list from rotting.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.postgres import postgres
from tests.e2e.server import Server, base_env

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Command (its start, as written) → why this test cannot run it.
SKIPPED = {
    "make audit ": "minutes of measurement; `.ci/run` runs `AUDIT_PROFILE=quick make audit`",
    "AUDIT_PROFILE=quick make audit": "minutes of measurement; run by `.ci/run`",
    "AUDIT_PROFILE=quick AUDIT_SECTIONS=cache make audit": "a minute of measurement; the lab's "
    "own tests cover section selection",
    "make audit-compare BASE=reports/<ts>": "`<ts>` stands for two audit reports of yours",
    'make audit-baseline REPORT="reports/<ts> ..."': "`<ts>` stands for audit reports of yours",
    "make lab ": "JupyterLab serves until stopped",
    "make test ": "the whole suite, this test included",
    "make reliability ": "a two-minute suite of its own, run by `make test`",
    "make serve ": "serves until stopped; this test starts `pickup serve` for the curl examples",
    "make loadtest ": "a minute of load, or a deployed host; tests/loadtests runs every scenario",
    "make setup-dev ": "writes the shared pickup_dev database; tests/e2e/test_setup_dev.py runs it "
    "against a scratch one",
    "APP_ENV=production ... .venv/bin/pickup config check": "`...` stands for your variables",
    "curl -s https://<app>": "needs the deployed host",
    ".venv/bin/pickup check-404 --base-url https://<app>": "needs the deployed host",
    ".venv/bin/pickup seed --orders 1000000": "about a minute; the `--orders 5000` example runs "
    "the same command",
    "DATA_BACKEND=postgres DATABASE_URL=... ": "`...` stands for your database URL",
    "DATA_BACKEND=json JSON_DATA_PATH=data/pickup.json .venv/bin/pickup data import backup.json": (
        "imports the export of the line before, which needs your database URL"
    ),
    "DATA_BACKEND=postgres pickup serve": "serves until stopped",
    "DATA_BACKEND=json pickup serve": "serves until stopped",
}
if shutil.which("promtool") is None:
    SKIPPED["promtool check rules"] = "promtool is not installed (Debian package `prometheus`)"

_BLOCK = re.compile(r"^([ \t]*)```sh\n(.*?)^\1```", re.M | re.S)
_PICKUP_DSN = re.compile(r"postgresql://[^\s/]+/pickup\b")


def commands(doc: Path) -> list[str]:
    """The commands of every ```sh block, continuation lines joined."""
    found: list[str] = []
    for indent, body in _BLOCK.findall(doc.read_text()):
        text = "\n".join(line.removeprefix(indent) for line in body.splitlines())
        found += [c.strip() for c in text.replace("\\\n", " ").splitlines() if c.strip()]
    return found


def skip_reason(command: str) -> str | None:
    # A key ending in a space names a whole word: "make audit " does not skip "make audit-compare".
    return next((why for start, why in SKIPPED.items() if (command + " ").startswith(start)), None)


def script(doc: Path, *, port: int, dsn: str) -> str:
    lines = ["set -euo pipefail"]
    for command in commands(doc):
        if command.startswith("#"):
            continue
        command = command.replace("localhost:3001", f"127.0.0.1:{port}")
        command = _PICKUP_DSN.sub(dsn, command)
        why = skip_reason(command)
        lines.append(f": skipped, {why!r}" if why else f'echo "$ "{_quote(command)}\n{command}')
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_every_skipped_command_is_still_in_the_docs() -> None:
    shown = [c for doc in DOCS for c in commands(doc)]
    stale = [start for start in SKIPPED if not any((c + " ").startswith(start) for c in shown)]
    assert stale == []


def test_the_docs_show_commands_this_test_runs() -> None:
    runnable = [c for doc in DOCS for c in commands(doc) if not skip_reason(c)]
    assert len(runnable) >= 15


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "deploy").symlink_to(ROOT / "deploy")
    return tmp_path


@pytest.fixture
def scratch_dsn() -> Iterator[str]:
    server = postgres()
    name = f"pickup_docs_{uuid.uuid4().hex[:12]}"
    server.owner.guard_database(server.admin_dsn, name)  # dropped even if this run is killed
    yield server.dsn(name)
    server.drop_database(name)


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "doc",
    [d for d in DOCS if any(not skip_reason(c) for c in commands(d))],
    ids=lambda d: d.name,
)
def test_every_command_in_the_doc_runs_as_written(
    doc: Path, workdir: Path, scratch_dsn: str
) -> None:
    server_dir = workdir / "server"
    server_dir.mkdir()
    with Server(base_env(JSON_DATA_PATH=str(server_dir / "pickup.json")), cwd=server_dir) as server:
        text = script(doc, port=server.port, dsn=scratch_dsn)
        env = base_env()
        env["PATH"] = f"{workdir / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        result = subprocess.run(
            ["bash", "-c", text],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
        )
    assert result.returncode == 0, (
        f"{doc.name}: a command failed (exit {result.returncode})\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    assert "DATA_BACKEND is not postgres" not in result.stdout, (
        f"{doc.name}: a `pickup db` command did nothing: DATA_BACKEND=postgres is missing\n"
        f"{result.stdout[-4000:]}"
    )
