"""`make loadtest` out of the box: its own server with the load profile, the summary printed, the
results in their own folder, and no request refused by the rate limiter."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

from tests.loadtests.harness import BIN, ROOT, clean_env


def test_a_run_without_a_host_starts_its_own_server_and_nothing_is_refused(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [
            str(BIN / "python"),
            "loadtests/run.py",
            "--out",
            str(out),
            "--",
            "--tags",
            "browse",
            "orders",
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "4s",
        ],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Aggregated" in done.stdout  # Locust's summary table was printed
    for name in ("locust_stats.csv", "locust.html", "counters.json", "locust.log", "server.log"):
        assert (out / name).exists(), name
    with (out / "locust_stats.csv").open() as f:
        total = next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")
    assert int(total["Request Count"]) > 0
    assert int(total["Failure Count"]) == 0
    # Every request timed to 0.1 ms beside Locust's whole-millisecond statistics.
    latency = json.loads((out / "counters.json").read_text())["latency_ms"]
    assert latency["requests"] >= int(total["Request Count"])  # also those finishing at stop
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
    assert '"status": 429' not in (out / "server.log").read_text()
    assert "started pickup serve" in done.stdout
