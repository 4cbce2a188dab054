"""What one layer costs per request, measured inside one process (service/measure.py: the
service's real uvicorn protocol and app fed requests from memory, run here as a subprocess, the
lab's one way into the service besides HTTP).

The wrk waterfall (overall section) takes the difference of two ~140 µs figures measured a
second apart across processes; on a shared 2-core machine each moves by ±10 % from round to
round, so a 5-10 µs layer drowns in ±20 µs of noise. In one process every configuration runs
on the same event loop, batches interleaved in rotated rounds; what is left out is the kernel's
part of a socket (the same for every configuration, so it cancels out of a difference) and the
event loop's polling."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def run(
    services: dict[str, Any],
    path: str,
    headers: dict[str, str],
    *,
    rounds: int,
    batch: int,
    work: Path,
    cpus: set[int] | None = None,
) -> dict[str, list[float]]:
    """CPU µs per request of each running lab service's configuration (its exact environment),
    measured in one process as above; one sample per round. The services keep running: a JSON
    data file is copied (the server holds its lock), a database is shared (reads only)."""
    work.mkdir(parents=True, exist_ok=True)
    configs = {}
    for i, (name, svc) in enumerate(services.items()):
        values = {k: v for k, v in svc.env.items() if k != "PORT"}
        if values.get("DATA_BACKEND", "json") == "json" and values.get("JSON_DATA_PATH"):
            copy = work / f"inproc-{i}.json"
            if Path(values["JSON_DATA_PATH"]).exists():
                shutil.copy(values["JSON_DATA_PATH"], copy)
            values["JSON_DATA_PATH"] = str(copy)
        configs[name] = values
    spec = {
        "configs": configs,
        "path": path,
        "headers": headers,
        "rounds": rounds,
        "batch": batch,
        "log": str(work / "inproc-access.log"),
    }
    (work / "inproc-spec.json").write_text(json.dumps(spec))
    out = work / "inproc-result.json"
    args = [sys.executable, "-m", "service.measure", str(work / "inproc-spec.json"), str(out)]
    if cpus:
        args = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *args]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run(args, check=True, env=env, timeout=600, cwd=work)
    result = json.loads(out.read_text())
    # A configuration that answered anything but 200 measured something else than the read.
    for name, counts in result["statuses"].items():
        if set(counts) != {"200"}:
            raise RuntimeError(f"{name} answered {counts} in the in-process measurement")
    samples: dict[str, list[float]] = result["cpu_us_per_request"]
    return samples


def differences(samples: dict[str, list[float]], base: str, other: str) -> list[float]:
    """Per round: `base` minus `other` (a layer's cost when `other` is `base` without it)."""
    return [a - b for a, b in zip(samples[base], samples[other], strict=True)]
