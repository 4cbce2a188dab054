from __future__ import annotations

import subprocess
import sys

from service.ratelimit.window import MemorySlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_fresh_window_allows_exactly_the_limit_and_counts_down() -> None:
    window = MemorySlidingWindow(Clock())
    hits = [window.hit_now("client:a", 3, 60) for _ in range(5)]

    assert [h.allowed for h in hits] == [True, True, True, False, False]
    assert [h.remaining for h in hits] == [2, 1, 0, 0, 0]
    assert all(0 < h.reset_after_s <= 60 for h in hits)


def test_the_previous_window_still_counts_by_how_much_of_it_overlaps() -> None:
    clock = Clock()
    window = MemorySlidingWindow(clock)
    for _ in range(4):
        assert window.hit_now("k", 4, 60).allowed
    clock.now += 60 + 15  # a quarter into the next window: 3/4 of the old count still weighs

    allowed = [window.hit_now("k", 4, 60).allowed for _ in range(3)]

    assert allowed == [True, False, False]  # floor(4 * 45/60) = 3 of 4 already spent


def test_after_two_quiet_windows_the_budget_is_whole_again() -> None:
    clock = Clock()
    window = MemorySlidingWindow(clock)
    for _ in range(5):
        window.hit_now("k", 2, 10)
    clock.now += 20

    assert window.hit_now("k", 2, 10).remaining == 1


def test_keys_and_policies_keep_separate_counts() -> None:
    window = MemorySlidingWindow(Clock())
    window.hit_now("a", 1, 60)

    assert window.hit_now("b", 1, 60).allowed
    assert window.hit_now("a", 2, 60).allowed
    assert not window.hit_now("a", 1, 60).allowed


def test_stale_windows_are_swept_so_memory_does_not_grow_with_past_clients() -> None:
    clock = Clock()
    window = MemorySlidingWindow(clock)
    for n in range(100):
        window.hit_now(f"client:{n}", 5, 10)
    clock.now += MemorySlidingWindow.SWEEP_INTERVAL_S + 1

    window.hit_now("client:new", 5, 10)

    assert len(window) == 1


def test_the_default_strategy_on_redis_does_not_load_coredis() -> None:
    # limits' Redis storage imports coredis (~20 MiB per worker) whichever client it is told to
    # use; the one-script sliding window needs only a redis-py pool. Constructing it connects
    # to nothing, so no server is needed here.
    program = (
        "import sys\n"
        "from service.ratelimit import Limiter\n"
        "Limiter('redis://127.0.0.1:1/0')\n"
        "print('coredis' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip() == "False"
