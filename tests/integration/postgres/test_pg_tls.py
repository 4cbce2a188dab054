"""TLS as users write it: `sslrootcert=system` (libpq's idiom), and a certificate that names
another host fails at once, without retries. The server end is a minimal PostgreSQL TLS front
on loopback (answers SSLRequest with 'S', then completes a real TLS handshake with a certificate
made for another host name): the client's verification is what is under test."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from service.repositories.postgres import ConnectOptions, DatabaseUnavailableError

SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"


def test_sslrootcert_system_means_the_system_cas_and_verify_full() -> None:
    options = ConnectOptions.parse(
        "postgresql://u:p@ep-x-pooler.eu-central-1.aws.neon.tech/db?sslrootcert=system"
    )
    assert isinstance(options.ssl, ssl.SSLContext)
    assert options.ssl.check_hostname and options.ssl.verify_mode == ssl.CERT_REQUIRED
    assert options.ssl.cert_store_stats()["x509_ca"] > 0  # the system's CAs are loaded
    assert "sslrootcert" not in options.dsn  # asyncpg would look for a file named "system"
    with pytest.raises(DatabaseUnavailableError, match="verify-full"):
        ConnectOptions.parse("postgresql://h/db?sslmode=require&sslrootcert=system")


async def test_a_certificate_for_another_host_fails_at_once_without_retries(
    make_certificate: Callable[[str], tuple[Path, Path]],
) -> None:
    cert, key = make_certificate("DNS:db.other.example")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    attempts = 0

    async def tls_front(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        try:
            if await reader.readexactly(8) == SSL_REQUEST:
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(server_tls)
                await reader.read(1)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(tls_front, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # The certificate is trusted (it is the root given) but names db.other.example.
    url = f"postgresql://u:p@127.0.0.1:{port}/db?sslmode=verify-full&sslrootcert={cert}"
    try:
        with pytest.raises(DatabaseUnavailableError, match="refused"):
            await ConnectOptions.parse(url).connect(retries=5)
    finally:
        server.close()
        await server.wait_closed()
    assert attempts == 1
