"""The configurations the audit compares, in the service's own setting names (service/config.py).

PRODUCTION is the service as deployed: rate limiter on (with a budget no lab run can exhaust, so
it counts every request and refuses none), metrics on, the access log written at LOG_LEVEL=info,
security headers, cache, orjson, gzip level 1. Every comparison's "production" side starts from
it; each waterfall step switches exactly one layer off (or back to the naive choice)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.profiles import DEPLOYED_DUTIES
from labkit import procs

# labkit.procs.Service's own defaults, which a setup may override.
SERVICE_DEFAULTS = (
    "APP_ENV",
    "JSON_DATA_PATH",
    "STAFF_API_KEYS",
    "ADMIN_TOKEN",
    "ACCESS_LOG",
    "LOG_LEVEL",
    "RATE_LIMIT_ENABLED",
)


class Service(procs.Service):
    """labkit.procs.Service whose settings may override its defaults (access log off, limiter
    off, ...): the production setups switch those on. (labkit.procs.Service hands both to
    base_env as keywords, so a setting among SERVICE_DEFAULTS raises TypeError there.)"""

    def __init__(
        self, name: str, settings: dict[str, Any], workdir: Path, *, seed: list[str] | None = None
    ) -> None:
        overrides = {k: str(v) for k, v in settings.items() if k in SERVICE_DEFAULTS}
        rest = {k: v for k, v in settings.items() if k not in SERVICE_DEFAULTS}
        super().__init__(name, rest, workdir, seed=seed)
        self.env.update(overrides)
        self.settings = settings


PRODUCTION: dict[str, str] = {
    **DEPLOYED_DUTIES,
    "SECURITY_HEADERS_ENABLED": "true",
    "CACHE_ENABLED": "true",
    "COMPRESSION_ENABLED": "true",
    "COMPRESSION_LEVEL": "1",
    "RESPONSE_ENCODER": "orjson",
}

# What a straightforward first implementation does, with the same deployment duties (limiter,
# metrics, access log, headers) as production: no cache, stdlib json, gzip at its default 9.
NAIVE: dict[str, str] = {
    **PRODUCTION,
    "CACHE_ENABLED": "false",
    "RESPONSE_ENCODER": "stdlib",
    "COMPRESSION_LEVEL": "9",
}

# One layer at a time, against PRODUCTION: cost = CPU/request(production) - CPU/request(step).
# A negative cost is a saving (the cache, orjson and gzip level 1 make requests cheaper).
WATERFALL: dict[str, dict[str, str]] = {
    "JSON encoder (stdlib instead of orjson)": {"RESPONSE_ENCODER": "stdlib"},
    "gzip level (9 instead of 1)": {"COMPRESSION_LEVEL": "9"},
    "cache (off)": {"CACHE_ENABLED": "false"},
    "rate limiter (off)": {"RATE_LIMIT_ENABLED": "false"},
    "access log (off)": {"ACCESS_LOG": "false"},
    "metrics (off)": {"METRICS_ENABLED": "false"},
    "security headers (off)": {"SECURITY_HEADERS_ENABLED": "false"},
}


# The waterfall steps behind a target (limiter_cost, access_log_cost): all the quick profile runs.
TARGETED_LAYERS = {
    k: v for k, v in WATERFALL.items() if k.startswith(("rate limiter", "access log"))
}


def production(**extra: Any) -> dict[str, str]:
    return {**PRODUCTION, **{k: str(v) for k, v in extra.items()}}


def naive(**extra: Any) -> dict[str, str]:
    return {**NAIVE, **{k: str(v) for k, v in extra.items()}}


def keep_logs(work: Path, raw_dir: Path, lines: int = 200) -> list[Path]:
    """Copies every *.log under a work folder into the report, each cut to its first and last
    `lines` lines (an access log of a load test runs to megabytes)."""
    kept = []
    for log in sorted(work.rglob("*.log")):
        text = log.read_text(errors="replace").splitlines()
        if len(text) > 2 * lines:
            text = [*text[:lines], f"... {len(text) - 2 * lines} lines cut ...", *text[-lines:]]
        target = raw_dir / "logs" / log.relative_to(work).as_posix().replace("/", "__")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(text) + "\n")
        kept.append(target)
    return kept


def rss_mib(pid: int, field: str = "VmRSS") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
