from __future__ import annotations

from labkit import trials
from labkit.trials import Trial


def test_each_round_rotates_the_order() -> None:
    names = ["a", "b", "c"]
    assert [trials.rotation(names, r) for r in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]
    firsts = {trials.rotation(names, r)[0] for r in range(3)}
    assert firsts == set(names)


def test_server_and_generator_get_different_cores() -> None:
    assert trials.plan_cores({0}) is None
    server, generator = trials.plan_cores({0, 1, 2, 3})  # type: ignore[misc]
    assert server == {0} and generator == {1, 2, 3}
    assert not server & generator


def test_busy_seconds_reads_all_but_idle_and_iowait() -> None:
    import os

    tick = os.sysconf("SC_CLK_TCK")
    line = f"cpu  {tick} 0 {tick} {10 * tick} {tick} 0 0 0 0 0\ncpu0 1 2 3\n"
    assert trials.busy_seconds(line) == 2.0


def test_other_processes_share_is_what_ours_did_not_use() -> None:
    assert trials.others_cores(busy_s=3.0, ours_s=2.0, wall_s=2.0) == 0.5
    assert trials.others_cores(busy_s=1.0, ours_s=1.2, wall_s=1.0) == 0.0


def trial(config: str, round: int, requests: int, cpu: float) -> Trial:
    return Trial(config, round, 1, requests, 0, requests / 2.0, 1.0, 2.0, cpu, 0.5, 2.0, 0.0, False)


def test_cpu_per_request_and_capacity() -> None:
    t = trial("a", 1, 10_000, 1.0)
    assert t.cpu_us_per_request == 100.0
    assert t.capacity == 10_000
    assert trial("a", 1, 0, 1.0).cpu_us_per_request is None
    assert trial("a", 1, 10, 0.0).capacity is None


def test_ratios_and_differences_pair_the_same_round() -> None:
    runs = [
        trial("menu", 1, 8_000, 1.0),
        trial("hello", 1, 20_000, 1.0),
        trial("hello", 2, 30_000, 1.0),
        trial("menu", 2, 12_000, 1.0),
    ]
    assert trials.ratios(runs, "menu", "hello", "capacity") == [0.4, 0.4]
    assert trials.differences(runs, "menu", "hello", "requests") == [-12_000, -18_000]
    rows = {r["config"]: r for r in trials.summary_rows(runs)}
    assert rows["menu"]["rounds"] == 2


def test_a_lost_trial_contributes_no_sample() -> None:
    lost = trials._lost("menu", 0, 1)
    assert lost.cpu_us_per_request is None and lost.capacity is None
    runs = [lost, trial("hello", 1, 20_000, 1.0)]
    assert trials.ratios(runs, "menu", "hello", "capacity") == [None]
