"""Hot reads served from the cache as finished bytes.

What is cached is the encoded JSON body and, for clients that accept gzip, its compressed
form, so a hit skips the repository, serialisation and compression alike (PERFORMANCE.md: at
~20 KB those dominate). GZipMiddleware passes a response that already has Content-Encoding
through untouched.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.http.context import context

JSON = "application/json"
GZIP, PLAIN = b"g", b"p"

# Cache entities: a write replaces an entity's version, so its cached reads are never served
# again (service/cache/versioned.py). Write endpoints name the entities they change in their
# `invalidates`, as these templates over their path parameters.
STORES_ENTITY = "stores"
STORE_ENTITY = "store:{store_id}"
MENU_ENTITY = "menu:{store_id}"


def accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "").lower()


async def cached_json(
    request: Request,
    *,
    cache_name: str,
    entity: str,
    variant: str,
    load: Callable[[], Awaitable[Any]],
) -> Response:
    """One cache read on a hit: the entity's version, then the one value this client wants.
    Values for gzip-accepting clients carry a one-byte tag, because bodies under the size
    threshold are stored (and sent) uncompressed."""
    ctx = context(request)
    settings = ctx.settings
    cache = ctx.cache
    encode = ctx.encode
    version = await cache.version(entity)

    async def encoded() -> bytes:
        return encode(await load())

    if not (settings.compression_enabled and accepts_gzip(request)):
        body = await cache.get_or_load(cache_name, entity, version, variant, encoded)
        headers = {"Vary": "Accept-Encoding"} if settings.compression_enabled else None
        return Response(body, media_type=JSON, headers=headers)

    async def negotiated() -> bytes:
        body = await cache.get_or_load(cache_name, entity, version, variant, encoded)
        if len(body) < settings.compression_min_bytes:
            return PLAIN + body
        return GZIP + gzip.compress(body, compresslevel=settings.compression_level, mtime=0)

    tagged = await cache.get_or_load(cache_name, entity, version, f"{variant}.gz", negotiated)
    if tagged[:1] == GZIP:
        return Response(
            tagged[1:],
            media_type=JSON,
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    return Response(tagged[1:], media_type=JSON, headers={"Vary": "Accept-Encoding"})
