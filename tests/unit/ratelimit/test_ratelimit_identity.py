from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from structlog.testing import capture_logs

from service.ratelimit import ClientIdentity


def scope(peer: str | None, *forwarded_for: str) -> dict[str, Any]:
    return {
        "type": "http",
        "client": (peer, 40000) if peer is not None else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded_for],
    }


def test_a_client_prepending_forged_addresses_is_still_counted_as_itself() -> None:
    identity = ClientIdentity(trust_proxy_hops=1)

    for forged in ("1.1.1.1", "9.9.9.9, 8.8.8.8", "10.0.0.1"):
        assert identity(scope("10.0.0.2", f"{forged}, 198.51.100.23")) == "198.51.100.23"


def test_two_trusted_hops_skip_two_proxies_from_the_right() -> None:
    identity = ClientIdentity(trust_proxy_hops=2)

    assert identity(scope("10.0.0.2", "6.6.6.6, 198.51.100.23, 10.0.0.9")) == "198.51.100.23"


def test_trusted_cidrs_are_skipped_from_the_right_until_the_first_untrusted_address() -> None:
    identity = ClientIdentity(trusted_proxies=["10.0.0.0/8", "192.168.0.0/16"])

    key = identity(scope("10.1.2.3", "6.6.6.6, 198.51.100.23, 192.168.4.4, 10.9.9.9"))

    assert key == "198.51.100.23"


def test_forwarded_for_is_ignored_when_the_socket_peer_is_not_a_trusted_proxy() -> None:
    identity = ClientIdentity(trusted_proxies=["10.0.0.0/8"])

    assert identity(scope("203.0.113.50", "198.51.100.23")) == "203.0.113.50"


def test_forwarded_for_is_ignored_when_no_proxy_is_trusted() -> None:
    assert ClientIdentity()(scope("203.0.113.50", "198.51.100.23")) == "203.0.113.50"


def test_ignored_forwarded_for_is_warned_about_once_only() -> None:
    identity = ClientIdentity()

    with capture_logs() as logs:
        identity(scope("203.0.113.50"))
        identity(scope("203.0.113.50", "198.51.100.23"))
        identity(scope("203.0.113.51", "198.51.100.24"))

    assert [entry["event"] for entry in logs] == ["x_forwarded_for_ignored"]
    assert logs[0]["log_level"] == "warning"


def test_no_warning_is_logged_when_a_proxy_is_trusted() -> None:
    with capture_logs() as logs:
        ClientIdentity(trust_proxy_hops=1)(scope("10.0.0.2", "198.51.100.23"))

    assert logs == []


def test_ipv6_clients_are_grouped_by_their_64_bit_prefix() -> None:
    identity = ClientIdentity()

    first = identity(scope("2001:db8:1:2::1"))
    second = identity(scope("2001:db8:1:2:ffff:ffff:ffff:ffff"))

    assert first == second == "2001:db8:1:2::/64"
    assert identity(scope("2001:db8:1:3::1")) == "2001:db8:1:3::/64"


def test_the_ipv6_prefix_is_configurable() -> None:
    identity = ClientIdentity(trust_proxy_hops=1, ipv6_prefix=56)

    assert identity(scope("10.0.0.2", "2001:db8:1:2ff::1")) == "2001:db8:1:200::/56"


def test_ipv4_mapped_ipv6_addresses_count_as_ipv4() -> None:
    assert ClientIdentity()(scope("::ffff:203.0.113.7")) == "203.0.113.7"


def test_a_trusted_cidr_matches_a_proxy_seen_as_ipv4_mapped_ipv6() -> None:
    identity = ClientIdentity(trusted_proxies=["10.0.0.0/8"])

    assert identity(scope("::ffff:10.0.0.2", "198.51.100.23")) == "198.51.100.23"


def test_garbage_in_the_client_position_falls_back_to_the_proxy_that_sent_it() -> None:
    identity = ClientIdentity(trust_proxy_hops=1)

    for garbage in ("not-an-ip", "unknown", "", "999.1.1.1", "<script>", "1.2.3.4.5"):
        assert identity(scope("10.0.0.2", f"198.51.100.23, {garbage}")) == "10.0.0.2"


def test_garbage_left_of_the_client_is_never_read() -> None:
    identity = ClientIdentity(trust_proxy_hops=1)

    assert identity(scope("10.0.0.2", "%%%, ,garbage, 198.51.100.23")) == "198.51.100.23"


def test_forwarded_entries_with_ports_are_read_as_addresses() -> None:
    identity = ClientIdentity(trust_proxy_hops=1)

    assert identity(scope("10.0.0.2", "198.51.100.23:51234")) == "198.51.100.23"
    assert identity(scope("10.0.0.2", "[2001:db8::7]:443")) == "2001:db8::/64"


def test_several_forwarded_for_headers_are_read_as_one_list() -> None:
    identity = ClientIdentity(trust_proxy_hops=2)

    assert identity(scope("10.0.0.2", "6.6.6.6", "198.51.100.23, 10.0.0.9")) == "198.51.100.23"


def test_when_every_hop_is_trusted_the_leftmost_address_is_the_client() -> None:
    identity = ClientIdentity(trust_proxy_hops=3)

    assert identity(scope("10.0.0.2", "198.51.100.23")) == "198.51.100.23"
    assert identity(scope("10.0.0.2")) == "10.0.0.2"


def test_a_unix_socket_peer_still_counts_as_the_trusted_hop() -> None:
    identity = ClientIdentity(trust_proxy_hops=1)

    assert identity(scope(None, "198.51.100.23")) == "198.51.100.23"


def test_a_peer_without_an_address_is_counted_under_its_name() -> None:
    assert ClientIdentity()(scope("testclient")) == "testclient"
    assert ClientIdentity()(scope(None)) == "unknown"


def test_an_ipv6_zone_id_does_not_split_one_client_into_many() -> None:
    identity = ClientIdentity()

    assert identity(scope("fe80::1%eth0")) == identity(scope("fe80::1%eth1")) == "fe80::/64"


def test_malformed_trust_settings_are_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        ClientIdentity(trusted_proxies=["10.0.0.1/8"])
    with pytest.raises(ValueError):
        ClientIdentity(trust_proxy_hops=-1)
    with pytest.raises(ValueError):
        ClientIdentity(ipv6_prefix=129)


def test_trusted_proxies_accept_network_objects() -> None:
    identity = ClientIdentity(trusted_proxies=[ipaddress.ip_network("10.0.0.0/8")])

    assert identity(scope("10.0.0.2", "198.51.100.23")) == "198.51.100.23"
