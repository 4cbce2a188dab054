"""A loopback TCP proxy for outage tests: stopping it looks to a client like its server
crashing, and starting it again on the same port like the server coming back.

`delay_s` holds every chunk that long in each direction, as a link to another region would (a
round trip then costs twice that). With an SSL context it terminates TLS (a TLS-only front for
a server built without TLS). Run as
`python -m harness.tcp_proxy PORT HOST:PORT [--tls-cert C --tls-key K]` it serves until killed."""

from __future__ import annotations

import argparse
import asyncio
import ssl


class TcpProxy:
    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        tls: ssl.SSLContext | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay_s = delay_s
        self.port = 0
        self.tls = tls
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        # Port 0 the first time; the same port again after a stop, as a restarted server.
        self._server = await asyncio.start_server(
            self._forward, "127.0.0.1", self.port, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:  # the upstream is down: the client sees the connection close
            writer.close()
            return
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


async def _serve(port: int, upstream: str, cert: str | None, key: str | None) -> None:
    context = None
    if cert and key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    host, _, upstream_port = upstream.rpartition(":")
    proxy = TcpProxy(host, int(upstream_port), tls=context)
    proxy.port = port
    await proxy.start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("upstream")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.upstream, args.tls_cert, args.tls_key))


if __name__ == "__main__":
    main()
