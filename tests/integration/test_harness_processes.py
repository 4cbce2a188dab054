"""Processes the harness starts outlive the thread that started them: a chaos scenario restarts
Redis from a helper thread mid-run, and the restarted server must still be serving once that
thread has returned (PR_SET_PDEATHSIG is per thread, so it must not be set there). Cleaning up
after the owner dies is then the session's reaper's job, and the session still stops them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from harness.procs import Process, base_env
from harness.session import Session


def test_a_process_started_from_a_thread_that_ends_keeps_running(tmp_path: Path) -> None:
    owner = Session()
    try:
        sleeper = Process(
            ["sleep", "30"], base_env(), tmp_path, tmp_path / "sleep.log", owner=owner
        )
        starter = threading.Thread(target=sleeper.start)
        starter.start()
        starter.join()
        time.sleep(0.5)  # long enough for a parent-death signal to have arrived
        assert sleeper.running
    finally:
        owner.close()
    assert not sleeper.running
