from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.http import schemas as s
from service.http.context import context
from service.http.endpoint import Endpoint
from service.http.responses import JSONResponse

READINESS_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    # Liveness only: no dependency is called, so a slow database never restarts the process.
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks = context(request).readiness
    names = list(checks)
    results = await asyncio.gather(*(_run(checks[n]) for n in names))
    report: dict[str, dict[str, Any]] = {}
    for name, (state, detail) in zip(names, results, strict=True):
        report[name] = {"status": state, **detail}
    states = {r["status"] for r in report.values()}
    overall = "unavailable" if "down" in states else "degraded" if "degraded" in states else "ready"
    failed = [n for n, r in report.items() if r["status"] == "down"]
    body: dict[str, Any] = {"status": overall, "checks": report}
    if failed:
        body["failed"] = failed
    return JSONResponse(body, status_code=503 if failed else 200)


async def _run(check: Any) -> tuple[str, dict[str, Any]]:
    try:
        result: tuple[str, dict[str, Any]] = await asyncio.wait_for(check(), READINESS_TIMEOUT_S)
        return result
    except TimeoutError:
        return "down", {"error": f"no answer within {READINESS_TIMEOUT_S}s"}
    except Exception as exc:
        return "down", {"error": type(exc).__name__}


ENDPOINTS = [
    Endpoint("GET", "/healthz", healthz, "Liveness", "health", s.Health, rate_limit="exempt"),
    Endpoint(
        "GET",
        "/readyz",
        readyz,
        "Readiness with per-dependency checks",
        "health",
        s.Readiness,
        errors=(503,),
        rate_limit="exempt",
    ),
]
