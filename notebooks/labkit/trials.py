"""Repeated, interleaved trials: every compared configuration runs once per round, the order
rotated each round, so a slow minute of the machine hits all of them alike and shows up as
spread rather than as a verdict.

Per trial we record wrk's req/s and, besides it, the server's CPU time per request (utime+stime
of the serving processes from /proc over the requests served), which other load on the machine
disturbs far less. With two or more cores the server and the generator are pinned to different
ones. /proc/stat tells how much CPU everything else took during the trial; a disturbed trial is
retried (a bounded number of times) and the least disturbed attempt is kept, flagged."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from labkit.load import wrk

DISTURBED_CORES = 0.3  # other processes using more than this share of a core spoil a trial


class Serving(Protocol):
    def cpu_seconds(self) -> float: ...
    def tree(self) -> list[int]: ...


def rotation(names: Sequence[str], round_index: int) -> list[str]:
    """The order of round `round_index`: the list rotated by one more place each round."""
    if not names:
        return []
    shift = round_index % len(names)
    return [*names[shift:], *names[:shift]]


def plan_cores(available: set[int] | None = None) -> tuple[set[int], set[int]] | None:
    """(server cores, generator cores) when there are at least two cores, else None."""
    cores = sorted(available if available is not None else os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    return {cores[0]}, set(cores[1:])


def pin(process: Serving, cpus: set[int]) -> bool:
    """Pins every thread of a process tree to `cpus`; False when the system refused."""
    try:
        for pid in process.tree():
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(tid), cpus)
    except OSError:
        return False
    return True


def busy_seconds(stat_text: str | None = None) -> float:
    """CPU time spent busy by the whole machine since boot (all cores), from /proc/stat."""
    text = stat_text if stat_text is not None else Path("/proc/stat").read_text()
    fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / os.sysconf("SC_CLK_TCK")


def others_cores(busy_s: float, ours_s: float, wall_s: float) -> float:
    """How many cores' worth of CPU processes other than ours took during a trial."""
    if wall_s <= 0:
        return 0.0
    return max(0.0, (busy_s - ours_s) / wall_s)


@dataclass
class Trial:
    config: str
    round: int
    attempts: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    generator_cpu_s: float
    wall_s: float
    others_cores: float
    disturbed: bool

    @property
    def cpu_us_per_request(self) -> float | None:
        return 1e6 * self.server_cpu_s / self.requests if self.requests else None

    @property
    def capacity(self) -> float | None:
        """Requests per server CPU-second: what one fully used core would serve."""
        return self.requests / self.server_cpu_s if self.server_cpu_s > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "cpu_us_per_request": self.cpu_us_per_request,
            "capacity": self.capacity,
        }


@dataclass
class Endpoint:
    """What one configuration is measured on: a URL, the processes whose CPU counts as serving
    (pinned to the server core) and helpers such as a private Redis (pinned beside the
    generator: ours, so not a disturbance, but not counted as the server's CPU; deployed, Redis
    runs on its own host)."""

    url: str
    servers: list[Serving]
    headers: dict[str, str] = field(default_factory=dict)
    helpers: list[Serving] = field(default_factory=list)
    # Longer trials for a slow endpoint (a few hundred requests a second), whose per-request
    # CPU from one second of requests varies by more than the interval goal allows.
    seconds: float | None = None


@dataclass
class Plan:
    rounds: int
    seconds: float
    connections: int = 32
    retries: int = 1  # per trial
    retry_budget: int = 6  # per run_rounds call, so a busy machine cannot blow the time budget
    threshold: float = DISTURBED_CORES


def run_rounds(
    endpoints: dict[str, Endpoint],
    plan: Plan,
    raw_dir: Path,
    *,
    log: Callable[[str], None] = print,
) -> list[Trial]:
    names = list(endpoints)
    cores = plan_cores()
    if cores:
        for endpoint in endpoints.values():
            for server in endpoint.servers:
                pin(server, cores[0])
            for helper in endpoint.helpers:
                pin(helper, cores[1])
    for endpoint in endpoints.values():  # warm up: first requests fill caches and pools
        with httpx.Client(headers=endpoint.headers, timeout=30) as client:
            for _ in range(50):
                client.get(endpoint.url)
    trials: list[Trial] = []
    budget = plan.retry_budget
    for r in range(plan.rounds):
        for name in rotation(names, r):
            attempts: list[Trial] = []
            while True:
                try:
                    trial = _one(name, r, endpoints[name], plan, cores, raw_dir, len(attempts) + 1)
                except (RuntimeError, ValueError, KeyError, AttributeError) as exc:
                    # wrk failed or printed something unexpected: a lost trial, not a lost section
                    log(f"trial {name} round {r + 1} failed: {exc}")
                    trial = _lost(name, r, len(attempts) + 1)
                attempts.append(trial)
                if not trial.disturbed or len(attempts) > plan.retries or budget <= 0:
                    break
                budget -= 1
                log(f"trial {name} round {r + 1} disturbed ({trial.others_cores:.2f} cores): retry")
            best = min(attempts, key=lambda t: t.others_cores)
            best.attempts = len(attempts)
            trials.append(best)
    return trials


def _one(
    name: str,
    round_index: int,
    endpoint: Endpoint,
    plan: Plan,
    cores: tuple[set[int], set[int]] | None,
    raw_dir: Path,
    attempt: int,
) -> Trial:
    slug = name.replace(" ", "-").replace("/", "-")
    cpu_before = sum(s.cpu_seconds() for s in endpoint.servers)
    helpers_before = sum(h.cpu_seconds() for h in endpoint.helpers)
    busy_before = busy_seconds()
    run = wrk(
        endpoint.url,
        seconds=endpoint.seconds or plan.seconds,
        connections=plan.connections,
        headers=endpoint.headers,
        cpus=cores[1] if cores else None,
        save=raw_dir / "wrk" / f"{slug}-round{round_index + 1}-attempt{attempt}.txt",
    )
    busy = busy_seconds() - busy_before
    server_cpu = sum(s.cpu_seconds() for s in endpoint.servers) - cpu_before
    helpers_cpu = sum(h.cpu_seconds() for h in endpoint.helpers) - helpers_before
    generator_cpu = run.generator_cpu_share * run.wall_s
    others = others_cores(busy, server_cpu + helpers_cpu + generator_cpu, run.wall_s)
    return Trial(
        config=name,
        round=round_index + 1,
        attempts=attempt,
        requests=run.requests,
        errors=run.errors,
        rps=run.rps,
        p50_ms=run.p50_ms,
        p99_ms=run.p99_ms,
        server_cpu_s=server_cpu,
        generator_cpu_s=generator_cpu,
        wall_s=run.wall_s,
        others_cores=others,
        disturbed=others > plan.threshold,
    )


def _lost(name: str, round_index: int, attempt: int) -> Trial:
    """A trial that measured nothing: no requests, so no CPU per request and no capacity."""
    nan = float("nan")
    return Trial(name, round_index + 1, attempt, 0, 0, nan, nan, nan, 0.0, 0.0, 0.0, 9.0, True)


def metric(trial: Trial, name: str) -> float | None:
    value = getattr(trial, name)
    return None if value is None else float(value)


def by_round(trials: Sequence[Trial], config: str, name: str) -> list[float | None]:
    found = sorted((t for t in trials if t.config == config), key=lambda t: t.round)
    return [metric(t, name) for t in found]


def ratios(trials: Sequence[Trial], a: str, b: str, name: str) -> list[float | None]:
    """metric(a) / metric(b), round by round (both ran in the same round)."""
    out: list[float | None] = []
    for x, y in zip(by_round(trials, a, name), by_round(trials, b, name), strict=True):
        out.append(None if x is None or y is None or y == 0 else x / y)
    return out


def differences(trials: Sequence[Trial], a: str, b: str, name: str) -> list[float | None]:
    """metric(a) - metric(b), round by round."""
    out: list[float | None] = []
    for x, y in zip(by_round(trials, a, name), by_round(trials, b, name), strict=True):
        out.append(None if x is None or y is None else x - y)
    return out


def summary_rows(trials: Sequence[Trial]) -> list[dict[str, Any]]:
    """Median per configuration over rounds, with how many trials were disturbed."""
    rows = []
    for config in dict.fromkeys(t.config for t in trials):
        mine = [t for t in trials if t.config == config]
        rows.append(
            {
                "config": config,
                "rounds": len(mine),
                "rps": statistics.median(t.rps for t in mine),
                "cpu_us_per_request": statistics.median(
                    t.cpu_us_per_request for t in mine if t.cpu_us_per_request is not None
                )
                if any(t.cpu_us_per_request is not None for t in mine)
                else None,
                "p50_ms": statistics.median(t.p50_ms for t in mine),
                "p99_ms": statistics.median(t.p99_ms for t in mine),
                "errors": sum(t.errors for t in mine),
                "disturbed_trials": sum(t.disturbed for t in mine),
                "retries": sum(t.attempts - 1 for t in mine),
                "others_cores_max": max(t.others_cores for t in mine),
            }
        )
    return rows
