"""Each load shape drives the user count on its own timetable and ends the run by itself."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.loadtests.harness import LocustRun, run_locust

# Shapes tick once a second; -u 4 -t 2s gives ticks at 0 s and 1 s (progress 0 and 0.5).
EXPECTED_USER_COUNTS = {
    "ramp": [4],  # the peak, approached at 4 / (0.8 * 2 s) users per second
    "step": [1, 3],  # steps of 4/5 users: the first step, then the third
    "spike": [1, 4],  # a fifth of the peak (at least 1), then the spike in the middle
    "soak": [4],
}


@pytest.fixture(scope="module")
def shape_runs(service: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, LocustRun]:
    # The runs are independent and mostly wait for the clock, so they run side by side.
    out = tmp_path_factory.mktemp("shapes")
    args = ("--tags", "browse", "-u", "4", "-r", "4", "-t", "2s")
    with ThreadPoolExecutor() as pool:
        futures = {
            shape: pool.submit(run_locust, service, out / shape, "--shape", shape, *args)
            for shape in EXPECTED_USER_COUNTS
        }
    return {shape: future.result() for shape, future in futures.items()}


@pytest.mark.parametrize("shape", sorted(EXPECTED_USER_COUNTS))
def test_a_shape_sets_user_counts_on_its_timetable_and_ends_by_itself(
    shape: str, shape_runs: dict[str, LocustRun]
) -> None:
    run = shape_runs[shape]

    assert run.returncode == 0, run.output
    assert "Shape test completed" in run.output
    counts = [int(n) for n in re.findall(r"Shape test updating to (\d+) users", run.output)]
    assert counts == EXPECTED_USER_COUNTS[shape]
