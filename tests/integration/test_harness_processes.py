"""Processes the harness starts outlive the thread that started them: a chaos scenario restarts
Redis from a helper thread mid-run, and the restarted server must still be serving once that
thread has returned (PR_SET_PDEATHSIG is per thread, so it must not be set there). Cleaning up
after the owner dies is then the session's reaper's job, and the session still stops them.
Threads asking the harness for its PostgreSQL at the same time get one server."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.postgres import postgres
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


def test_threads_asking_at_once_share_one_private_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing answers on port 1: the harness starts a private cluster, which takes seconds, so
    # threads asking meanwhile would each start their own without the lock (the queries notebook
    # prepares its databases in threads and found one's template missing on the other server).
    monkeypatch.setenv("PICKUP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/postgres")
    owner = Session()
    try:
        with ThreadPoolExecutor(3) as pool:
            servers = list(pool.map(lambda _: postgres(owner), range(3)))
        assert len({id(server) for server in servers}) == 1
    finally:
        owner.close()
