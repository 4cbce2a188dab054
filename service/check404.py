"""`pickup check-404`: every route in the OpenAPI document and every API path the docs mention
must answer with something other than 404, using real ids from the running service.

Nothing is changed on the target: write routes are sent without credentials and with an empty
JSON body, so they answer 401 or 422 when they exist and 404 only when they do not. Order ids
come from a staff listing when a staff key is given; without one, order routes are skipped and
said so, never passed silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

# `GET /v1/stores`, `/v1/stores/{store_id}/menu` or localhost:3001/v1/... in a markdown file.
DOC_PATH = re.compile(
    r"(?:`|localhost:\d+)(?:(GET|POST|PATCH) )?"
    r"(/(?:v1|healthz|readyz|metrics|openapi)[^`\s\"')?]*)"
)
PLACEHOLDER = re.compile(r"{(\w+)}|\$(\w+)")


@dataclass
class Finding:
    method: str
    path: str
    status: int | None
    source: str


def discover_ids(client: httpx.Client, staff_key: str | None) -> dict[str, str]:
    ids: dict[str, str] = {}
    stores = client.get("/v1/stores", params={"limit": 1}).json().get("items", [])
    if stores:
        ids["store_id"] = ids["STORE"] = stores[0]["id"]
        menu = client.get(f"/v1/stores/{ids['store_id']}/menu").json().get("items", [])
        if menu:
            ids["item_id"] = menu[0]["id"]
        if staff_key:
            orders = (
                client.get(
                    f"/v1/stores/{ids['store_id']}/orders",
                    params={"limit": 1},
                    headers={"Authorization": f"Bearer {staff_key}"},
                )
                .json()
                .get("items", [])
            )
            if orders:
                ids["order_id"] = orders[0]["id"]
    return ids


def fill(path: str, ids: dict[str, str]) -> str | None:
    missing = [a or b for a, b in PLACEHOLDER.findall(path) if (a or b) not in ids]
    if missing:
        return None
    return PLACEHOLDER.sub(lambda m: ids[m.group(1) or m.group(2)], path)


def doc_paths(files: Iterable[Path]) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for file in files:
        for match in DOC_PATH.finditer(file.read_text(encoding="utf-8")):
            path = match.group(2).rstrip(".,;:")
            found.append((match.group(1) or "GET", path, str(file)))
    return sorted(set(found))


def check(
    base_url: str, *, staff_key: str | None, docs: Iterable[Path], timeout: float = 10.0
) -> tuple[list[Finding], list[Finding], int]:
    """Returns (404s, skipped, number checked)."""
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        spec = client.get("/openapi.json").raise_for_status().json()
        ids = discover_ids(client, staff_key)
        targets: list[tuple[str, str, str]] = [
            (method.upper(), path, "openapi")
            for path, ops in spec["paths"].items()
            for method in ops
        ]
        targets += doc_paths(docs)
        missing: list[Finding] = []
        skipped: list[Finding] = []
        checked = 0
        for method, template, source in targets:
            path = fill(template, ids)
            if path is None:
                skipped.append(Finding(method, template, None, source))
                continue
            headers = {}
            if method == "GET" and staff_key and source == "openapi":
                headers["Authorization"] = f"Bearer {staff_key}"
            response = client.request(
                method, path, headers=headers, json={} if method != "GET" else None
            )
            checked += 1
            if response.status_code == 404:
                missing.append(Finding(method, path, 404, source))
        return missing, skipped, checked


def run(base_url: str, staff_key: str | None, docs: list[Path]) -> int:
    missing, skipped, checked = check(base_url, staff_key=staff_key, docs=docs)
    for s in skipped:
        print(
            f"skipped {s.method} {s.path} ({s.source}): no real id for it"
            + ("" if staff_key else "; pass --staff-key to find orders")
        )
    for m in missing:
        print(f"404 {m.method} {m.path} ({m.source})")
    print(f"checked {checked} requests against {base_url}: {len(missing)} answered 404")
    return 1 if missing else 0
