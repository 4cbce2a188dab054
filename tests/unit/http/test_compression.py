from __future__ import annotations

import gzip

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from service.http.middleware.compression import GZipWhenAcceptedMiddleware

BODY = b'{"items":[' + b",".join(b'{"n":%d,"name":"item"}' % n for n in range(200)) + b"]}"
PACKED = gzip.compress(BODY, compresslevel=1, mtime=0)


async def pre_encoded(request: Request) -> Response:
    return Response(PACKED, media_type="application/json", headers={"Content-Encoding": "gzip"})


async def plain(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


async def not_modified(request: Request) -> Response:
    return Response(status_code=304, headers={"ETag": '"x"', "Vary": "Accept-Encoding"})


def client() -> TestClient:
    app = Starlette(
        routes=[
            Route("/pre", pre_encoded),
            Route("/plain", plain),
            Route("/304", not_modified),
        ],
        middleware=[Middleware(GZipWhenAcceptedMiddleware, minimum_size=500, compresslevel=1)],
    )
    return TestClient(app)


def test_an_already_encoded_body_is_sent_as_is() -> None:
    response = client().get("/pre", headers={"Accept-Encoding": "gzip"})

    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-length"] == str(len(PACKED))
    assert response.content == BODY  # decoded once by the client: not compressed twice
    assert "vary" not in response.headers  # nothing was added to what the app sent


def test_an_unencoded_large_body_is_still_compressed_for_gzip_clients() -> None:
    packed = client().get("/plain", headers={"Accept-Encoding": "gzip"})
    identity = client().get("/plain", headers={"Accept-Encoding": "identity"})

    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(BODY) / 2
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.content == BODY
    assert "content-encoding" not in identity.headers


def test_a_304_passes_through_without_a_body_or_encoding() -> None:
    response = client().get("/304", headers={"Accept-Encoding": "gzip"})

    assert response.status_code == 304
    assert response.content == b""
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"


def test_a_small_body_is_sent_as_is_without_vary() -> None:
    app = Starlette(
        routes=[Route("/small", lambda request: Response(b'{"ok":true}'))],
        middleware=[Middleware(GZipWhenAcceptedMiddleware, minimum_size=500, compresslevel=1)],
    )
    response = TestClient(app).get("/small", headers={"Accept-Encoding": "gzip"})

    assert response.content == b'{"ok":true}'
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers
