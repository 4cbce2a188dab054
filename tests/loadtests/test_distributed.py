"""A master and one worker, started with the same commands `make loadtest WORKERS=n` uses."""

from __future__ import annotations

from pathlib import Path

from harness.procs import free_port
from tests.loadtests.harness import (
    BIN,
    CONFIG,
    LOCUSTFILE,
    background,
    run_locust,
)


def test_a_master_with_one_worker_shares_the_rush_target_and_sums_the_counters(
    service: str, tmp_path: Path
) -> None:
    port = str(free_port())
    worker = background(
        [
            str(BIN / "locust"),
            "--config",
            str(CONFIG),
            "-f",
            str(LOCUSTFILE),
            "--worker",
            "--master-port",
            port,
        ],
        tmp_path / "worker",
    ).start()
    try:
        run = run_locust(
            service,
            tmp_path / "master",
            "--master",
            "--master-bind-port",
            port,
            "--expect-workers",
            "1",
            "--expect-workers-max-wait",
            "20",
            "--tags",
            "rush",
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "2s",
        )
        assert worker.process is not None
        assert worker.process.wait(15) == 0, worker.log_text()
    finally:
        worker.stop()

    assert run.returncode == 0, run.output
    # The users ran in the worker; the counts reached the master's counters file.
    target = run.counters["rush_target"]
    assert run.count("rush.created") == target["remaining_at_start"]
    assert run.count("rush.slot_full") > 0
    assert run.names == {"/v1/orders [rush]"}
