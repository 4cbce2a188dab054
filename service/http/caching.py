"""Hot reads served from the cache as finished bytes.

What is cached is the encoded JSON body and, for clients that accept gzip, its compressed
form, so a hit skips the repository, serialisation and compression alike (PERFORMANCE.md: at
~20 KB those dominate). GZipMiddleware passes a response that already has Content-Encoding
through untouched. Each value is stored with its strong ETag, so a conditional request is
answered 304 from the same cache read, with no backend work and no hashing.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from service.config import Settings
from service.http.context import context
from service.http.negotiation import accepts_gzip as gzip_acceptable

JSON = "application/json"
GZIP, PLAIN = b"g", b"p"
ETAG_LEN = 18  # '"' + 16 hex digits + '"'
# Public reads may be reused by any cache for a short while, then revalidated with the ETag
# (a 304 costs one cache read and no body).
PUBLIC_CACHE_CONTROL = "public, max-age=30, must-revalidate"
# Slots fill with every order: any cache may keep them, but must revalidate each time.
VOLATILE_CACHE_CONTROL = "public, no-cache"
# An order holds personal data and its pickup code: never in a shared cache.
PRIVATE_CACHE_CONTROL = "private, no-cache"

# Cache entities: a write replaces an entity's version, so its cached reads are never served
# again (service/cache/versioned.py). Write endpoints name the entities they change in their
# `invalidates`, as these templates over their path parameters.
STORES_ENTITY = "stores"
STORE_ENTITY = "store:{store_id}"
MENU_ENTITY = "menu:{store_id}"
ORDER_ENTITY = "order:{order_id}"  # only the ETag of the customer's view (private_revalidated)
# Only the ETags of slot lists (revalidated): every order write and store edit changes them.
SLOTS_ENTITY = "slots"


def accepts_gzip(request: Request) -> bool:
    # The raw header list, not request.headers: that builds a mapping object per request.
    # q-values count (`gzip;q=0` is a refusal), decided as the gzip middleware decides.
    for name, value in request.scope["headers"]:
        if name == b"accept-encoding":
            return gzip_acceptable(value)
    return False


def entity_tag(body: bytes) -> bytes:
    """A strong validator of exactly these bytes: a gzip body and its identity form differ."""
    return b'"' + hashlib.blake2b(body, digest_size=8).hexdigest().encode() + b'"'


def not_modified(request: Request, etag: bytes) -> bool:
    """If-None-Match (RFC 9110 13.1.2) uses the weak comparison: W/ is ignored, * matches."""
    for name, value in request.scope["headers"]:
        # Several If-None-Match fields are one list (RFC 9110 5.3).
        if name == b"if-none-match":
            for candidate in value.split(b","):
                tag = candidate.strip().removeprefix(b"W/")
                if tag == b"*" or tag == etag:
                    return True
    return False


def conditional_response(
    request: Request,
    body: bytes,
    *,
    etag: bytes,
    cache_control: str,
    headers: dict[str, str] | None = None,
    media_type: str = JSON,
) -> Response:
    """`body` with its ETag and Cache-Control, or a bodiless 304 when the client has it.
    A 304 keeps the validator and caching headers (and Vary), not Content-Encoding."""
    fields = {"ETag": etag.decode(), "Cache-Control": cache_control, **(headers or {})}
    if not_modified(request, etag):
        fields.pop("Content-Encoding", None)
        return Response(status_code=304, headers=fields)
    return Response(body, media_type=media_type, headers=fields)


def vary(settings: Settings) -> dict[str, str]:
    """The Vary of a JSON read (a 304 too): its bytes depend on Accept-Encoding when gzip is on."""
    return {"Vary": "Accept-Encoding"} if settings.compression_enabled else {}


def negotiated_json(request: Request, content: Any, *, cache_control: str) -> Response:
    """An uncached read with a strong ETag. The body is compressed here (and the gzip layer
    passes it on) so that the ETag names the exact bytes sent, as it does for cached reads."""
    settings = context(request).settings
    body = orjson.dumps(content)
    headers = vary(settings)
    if (
        settings.compression_enabled
        and len(body) >= settings.compression_min_bytes
        and accepts_gzip(request)
    ):
        body = gzip.compress(body, compresslevel=settings.compression_level, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return conditional_response(
        request, body, etag=entity_tag(body), cache_control=cache_control, headers=headers
    )


def _entry(tag: bytes, body: bytes) -> bytes:
    # ETag (ETAG_LEN bytes), then the one-byte tag, then the body: a hit has everything a 304
    # or a 200 needs without hashing or compressing anything.
    return entity_tag(body) + tag + body


async def cached_json(
    request: Request,
    *,
    cache_name: str,
    entity: str,
    variant: str,
    load: Callable[[], Awaitable[Any]],
) -> Response:
    """One cache read on a hit (the entity's version and the value this client wants, together)
    and no backend work; a matching If-None-Match gets a 304 from that same read. Values for
    gzip-accepting clients carry a one-byte tag, because bodies under the size threshold are
    stored (and sent) uncompressed."""
    ctx = context(request)
    settings = ctx.settings
    cache = ctx.cache
    gzipped = settings.compression_enabled and accepts_gzip(request)
    # The encoding is a fixed segment before the variant (which carries client input), so no
    # spelling of a variant can name another encoding's entry.
    plain_key = f"identity/{variant}"
    key = f"gzip/{variant}" if gzipped else plain_key
    version, entry = await cache.lookup(cache_name, entity, key)
    if entry is None:
        encode = ctx.encode

        async def encoded() -> bytes:
            return _entry(PLAIN, encode(await load()))

        async def negotiated() -> bytes:
            plain = await cache.get_or_load(cache_name, entity, version, plain_key, encoded)
            body = plain[ETAG_LEN + 1 :]
            if len(body) < settings.compression_min_bytes:
                return plain
            compressed = gzip.compress(body, compresslevel=settings.compression_level, mtime=0)
            return _entry(GZIP, compressed)

        entry = await cache.get_or_load(
            cache_name, entity, version, key, negotiated if gzipped else encoded
        )
    headers = vary(settings)
    if entry[ETAG_LEN : ETAG_LEN + 1] == GZIP:
        headers["Content-Encoding"] = "gzip"
    return conditional_response(
        request,
        entry[ETAG_LEN + 1 :],
        etag=entry[:ETAG_LEN],
        cache_control=PUBLIC_CACHE_CONTROL,
        headers=headers,
    )


async def private_revalidated(
    request: Request,
    *,
    cache_name: str,
    entity: str,
    credential: str,
    load: Callable[[], Awaitable[Any]],
    cache_control: str = PRIVATE_CACHE_CONTROL,
) -> Response:
    """A private read whose revalidation needs no backend work. The cache keeps the ETag of the
    last full answer, never the body (it is personal), under a digest of the credential that
    read it: only a caller presenting the same credential can be answered 304 from it, and a
    write to the entity (its endpoint's `invalidates`) retires it. Anything else (no match, a
    miss, another credential) reads through `load`, which checks the credential as before."""

    async def view() -> tuple[Any, datetime | None]:
        return await load(), None

    digest = hashlib.blake2b(credential.encode(), digest_size=16).hexdigest()
    return await revalidated(
        request,
        cache_name=cache_name,
        entity=entity,
        variant=digest,
        load=view,
        cache_control=cache_control,
    )


async def revalidated(
    request: Request,
    *,
    cache_name: str,
    entity: str,
    variant: str,
    load: Callable[[], Awaitable[tuple[Any, datetime | None]]],
    cache_control: str,
    now: datetime | None = None,
) -> Response:
    """A read answered in full through `load` (no body is cached), whose revalidation is
    answered from the ETag kept for `variant` with no backend work, until a write to the entity
    retires it or, when `load` also returns the instant its answer changes by the clock alone
    (slots stop being bookable), until that instant (`now` is the app's clock then). Only a
    request with If-None-Match touches the cache, so a plain read costs what it did."""
    if not any(name == b"if-none-match" for name, _ in request.scope["headers"]):
        content, _ = await load()
        return negotiated_json(request, content, cache_control=cache_control)
    ctx = context(request)
    cache = ctx.cache
    gzipped = ctx.settings.compression_enabled and accepts_gzip(request)
    variant = f"etag/{'gzip' if gzipped else 'identity'}/{variant}"
    version, kept = await cache.lookup(cache_name, entity, variant)
    etag_kept = kept[:ETAG_LEN] if kept is not None else None
    if (
        kept
        and now is not None
        and len(kept) > ETAG_LEN
        and now.timestamp() >= float(kept[ETAG_LEN:])
    ):
        etag_kept = None  # its answer has changed with the clock since
    if etag_kept is not None and not_modified(request, etag_kept):
        return conditional_response(
            request, b"", etag=etag_kept, cache_control=cache_control, headers=vary(ctx.settings)
        )
    content, changes_at = await load()
    response = negotiated_json(request, content, cache_control=cache_control)
    etag = response.headers["etag"].encode()
    if kept is None:
        value, ttl_s = etag, None
        if changes_at is not None and now is not None:
            value += repr(changes_at.timestamp()).encode()
            ttl_s = max((changes_at - now).total_seconds(), 0.001)

        async def current() -> bytes:
            return value

        await cache.get_or_load(cache_name, entity, version, variant, current, ttl_s=ttl_s)
    elif etag_kept is not None and etag_kept != etag:
        # Changed without a write through the API (a restore from a file, say): start over.
        await cache.invalidate(entity)
    return response
