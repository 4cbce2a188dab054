"""Hot reads served from the cache as finished bytes.

What is cached is the encoded JSON body and, for clients that accept gzip, its compressed
form, so a hit skips the repository, serialisation and compression alike (PERFORMANCE.md: at
~20 KB those dominate). GZipMiddleware passes a response that already has Content-Encoding
through untouched.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from service.http.context import context

JSON = "application/json"


def stdlib_dumps(content: Any) -> bytes:
    # The lab's naive baseline: what a plain json.dumps-based stack pays per response.
    return json.dumps(content, separators=(",", ":")).encode()


ENCODERS: dict[str, Callable[[Any], bytes]] = {"orjson": orjson.dumps, "stdlib": stdlib_dumps}


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
    ctx = context(request)
    settings = ctx.settings
    encode = ENCODERS[settings.response_encoder]

    async def encoded() -> bytes:
        return encode(await load())

    body = await ctx.cache.get_or_load(cache_name, entity, variant, encoded)
    if (
        settings.compression_enabled
        and len(body) >= settings.compression_min_bytes
        and accepts_gzip(request)
    ):

        async def compressed() -> bytes:
            return gzip.compress(body, compresslevel=settings.compression_level, mtime=0)

        packed = await ctx.cache.get_or_load(cache_name, entity, f"{variant}.gz", compressed)
        return Response(
            packed,
            media_type=JSON,
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    headers = {"Vary": "Accept-Encoding"} if settings.compression_enabled else None
    return Response(body, media_type=JSON, headers=headers)
