"""Start several lab processes at once: each `pickup serve` spends a second or two importing
before it answers, and a section that compares eight configurations should not wait for them
one after the other. Every process still belongs to the harness session (stopped at exit)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from labkit.procs import Process, wait_http

P = TypeVar("P", bound=Process)


def start_all(
    processes: Mapping[str, P], health: str = "/healthz", timeout: float = 90
) -> dict[str, P]:
    """Launches every process, then waits until each answers; stops them all if one fails."""
    started: list[Process] = []
    try:
        for process in processes.values():
            if getattr(process, "seed_args", None) is not None:
                process.start()  # seeding must finish first: start it on its own
            else:
                process.spawn()
            started.append(process)
        for process in processes.values():
            wait_http(f"{process.url}{health}", timeout=timeout, process=process)  # type: ignore[attr-defined]
    except BaseException:
        for process in started:
            process.stop()
        raise
    return dict(processes)
