"""Who is calling: the client address a rate limit is counted against.

`X-Forwarded-For` is read right to left, because only the entries appended by proxies we trust
are facts; anything further left was written by the client and may be forged. The client is the
first entry (from the right) that is not a trusted proxy. The socket peer counts as the rightmost
entry, so when the peer itself is not trusted the header is never read at all.

A garbage entry (not an IP address) is never trusted and never used as an identity: the walk stops
there and the nearest valid address to its right stands in, i.e. the proxy that handed it over.
Grouping everyone behind that proxy is the safe failure: it cannot be used to escape a limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import structlog
from starlette.types import Scope

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Identities remembered per (peer, X-Forwarded-For) spelling; cleared when full, so forged
# headers that rotate cannot grow it.
_MEMO_SIZE = 4096

log = structlog.get_logger(__name__)


class ClientIdentity:
    """Callable `scope -> key`: an IPv4 address, or the IPv6 network it belongs to."""

    def __init__(
        self,
        *,
        trust_proxy_hops: int = 0,
        trusted_proxies: Iterable[str | IPNetwork] = (),
        ipv6_prefix: int = 64,
    ) -> None:
        if trust_proxy_hops < 0:
            raise ValueError("trust_proxy_hops must be >= 0")
        if not 0 <= ipv6_prefix <= 128:
            raise ValueError("ipv6_prefix must be between 0 and 128")
        self.trust_proxy_hops = trust_proxy_hops
        # Strict parsing: "10.0.0.1/8" is likelier a typo than an intent, so refuse it at start-up.
        self.trusted_proxies = tuple(ipaddress.ip_network(p) for p in trusted_proxies)
        self.ipv6_prefix = ipv6_prefix
        self._trusts = self.trusts_proxies
        # One warning per instance; the app builds one instance per process.
        self._warned_untrusted_xff = False
        # Parsing addresses (ipaddress) cost more than the rest of a limiter decision; a client
        # keeps its address and headers across requests, so the answer is remembered.
        self._memo: dict[object, str] = {}

    @property
    def trusts_proxies(self) -> bool:
        return self.trust_proxy_hops > 0 or bool(self.trusted_proxies)

    def __call__(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        if not self._trusts:
            # The header is never read, so it is no part of the key; it is looked for only
            # until the one warning about it has been given.
            if not self._warned_untrusted_xff:
                for name, _ in scope.get("headers", ()):
                    if name == b"x-forwarded-for":
                        self._warned_untrusted_xff = True
                        log.warning(
                            "x_forwarded_for_ignored",
                            reason="no proxy is trusted, so every client behind a proxy would "
                            "share the proxy's limit; set trust_proxy_hops or trusted_proxies if "
                            "one is in front",
                        )
                        break
            memo_key: object = peer
            raw: list[bytes] = []
        else:
            raw = [v for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"]
            memo_key = (peer, *raw)
        found = self._memo.get(memo_key)
        if found is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            found = self._memo[memo_key] = self._identify(peer, _forwarded_for(raw))
        return found

    def _identify(self, peer: str, forwarded: list[str]) -> str:
        if not self.trusts_proxies:
            return self._key(_parse(peer), peer)

        chain = [peer, *reversed(forwarded)]  # right to left: position 0 is the socket peer
        nearest: IPAddress | None = None
        for position, raw in enumerate(chain):
            address = _parse(raw)
            if address is None:
                # A peer that is no IP (a unix socket) is still a counted hop; anything else ends
                # the walk, because garbage must never become an identity.
                if position == 0 and self.trust_proxy_hops > 0:
                    continue
                break
            nearest = address
            if not self._trusted(position, address):
                return self._key(address, peer)
        # Every entry was a trusted proxy (or the rest was garbage): the leftmost valid one is the
        # closest we can get to the client.
        return self._key(nearest, peer)

    def _trusted(self, position: int, address: IPAddress) -> bool:
        return position < self.trust_proxy_hops or any(
            address in net for net in self.trusted_proxies
        )

    def _key(self, address: IPAddress | None, peer: str) -> str:
        if address is None:
            # No address at all (a unix socket, TestClient's "testclient"): the peer name comes
            # from the server, not the client, so it is still safe to count against.
            return peer or "unknown"
        if isinstance(address, ipaddress.IPv4Address):
            return str(address)
        # One IPv6 subscriber usually owns a whole /64 (or more), so per-address keys would let a
        # single client rotate through billions of identities.
        network = ipaddress.IPv6Network((int(address), self.ipv6_prefix), strict=False)
        return str(network)


def _forwarded_for(raw: list[bytes]) -> list[str]:
    # Several X-Forwarded-For headers are one list in arrival order (RFC 9110 field combination).
    values = [v.decode("latin-1") for v in raw]
    return [entry.strip() for entry in ",".join(values).split(",")] if values else []


def _parse(raw: str) -> IPAddress | None:
    """An address from an XFF entry or peer host; None for anything that is not one."""
    text = raw.strip()
    if text.startswith("["):  # "[2001:db8::1]:443"
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # "203.0.113.7:51234": some proxies append the port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        # A zone id ("fe80::1%eth0") names the local interface, not the client.
        if address.scope_id is not None:
            return ipaddress.IPv6Address(int(address))
    return address
