"""Who the client is behind proxies: x-forwarded-for is believed only from trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from optix_server.infra.env import SettingsError
from optix_server.infra.peer import TrustedProxies, client_address
from optix_server.infra.settings import Settings

EDGE = TrustedProxies.parse("10.0.0.0/24, 127.0.0.1/32, ::1/128, fd00:e::/64")
EDGE_PEER = "ipv4:10.0.0.2:41000"


def _xff(*values: str) -> tuple[tuple[str, str], ...]:
    return tuple(("x-forwarded-for", value) for value in values)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # No header: the peer is the client, trusted or not.
        ("ipv4:203.0.113.9:5555", (), "203.0.113.9"),
        (EDGE_PEER, (), "10.0.0.2"),
        # An untrusted peer wrote x-forwarded-for itself: ignored entirely.
        ("ipv4:203.0.113.9:5555", ("198.51.100.1",), "203.0.113.9"),
        ("ipv4:203.0.113.9:5555", ("198.51.100.1, 10.0.0.3",), "203.0.113.9"),
        # The edge appended what it saw: that entry is the client.
        (EDGE_PEER, ("198.51.100.1",), "198.51.100.1"),
        # Entries left of the first untrusted one are the client's own claims (spoofed).
        (EDGE_PEER, ("6.6.6.6, 7.7.7.7, 198.51.100.1",), "198.51.100.1"),
        (EDGE_PEER, ("10.0.0.9, 198.51.100.1",), "198.51.100.1"),
        # Several trusted hops, each appending: skipped from the right.
        (EDGE_PEER, ("6.6.6.6, 198.51.100.1, 10.0.0.5, 10.0.0.4",), "198.51.100.1"),
        # Several headers are one list in order.
        (EDGE_PEER, ("6.6.6.6, 198.51.100.1", "10.0.0.4"), "198.51.100.1"),
        # Every entry trusted: the leftmost is the client (a caller on a proxy host).
        (EDGE_PEER, ("10.0.0.7, 10.0.0.4",), "10.0.0.7"),
        (EDGE_PEER, (" 127.0.0.1 ",), "127.0.0.1"),
        # A malformed entry ends the walk at the last address a trusted proxy vouched for.
        (EDGE_PEER, ("not-an-ip",), "10.0.0.2"),
        (EDGE_PEER, ("",), "10.0.0.2"),
        (EDGE_PEER, ("198.51.100.1, 10.0.0.4, ",), "10.0.0.2"),
        (EDGE_PEER, ("198.51.100.1, junk, 10.0.0.4",), "10.0.0.4"),
        (EDGE_PEER, ("198.51.100.1:4444",), "10.0.0.2"),
        (EDGE_PEER, ("unknown",), "10.0.0.2"),
        (EDGE_PEER, ("999.1.1.1",), "10.0.0.2"),
        (EDGE_PEER, ("6.6.6.6, 198.51.100.1 10.0.0.4",), "10.0.0.2"),
        # IPv6: bare or bracketed, counted per /64; mapped IPv4 counts as IPv4.
        (EDGE_PEER, ("2001:db8:1:2::77",), "2001:db8:1:2::/64"),
        (EDGE_PEER, ("[2001:db8:1:2::77]",), "2001:db8:1:2::/64"),
        (EDGE_PEER, ("fe80::1%eth0",), "fe80::/64"),
        (EDGE_PEER, ("::ffff:198.51.100.1",), "198.51.100.1"),
        # The edge itself on IPv6 (grpc percent-encodes the brackets), with and without them.
        ("ipv6:%5B::1%5D:41000", ("198.51.100.1",), "198.51.100.1"),
        ("ipv6:[::1]:41000", ("198.51.100.1",), "198.51.100.1"),
        ("ipv6:%5Bfd00:e::5%5D:41000", ("2001:db8::1, fd00:e::9",), "2001:db8::/64"),
        # An untrusted IPv6 peer.
        ("ipv6:%5B2001:db8:9::1%5D:41000", ("198.51.100.1",), "2001:db8:9::/64"),
        # A dual-stack socket reports an IPv4 edge as mapped: still the trusted edge.
        ("ipv6:%5B::ffff:10.0.0.2%5D:41000", ("198.51.100.1",), "198.51.100.1"),
        ("ipv6:%5B::ffff:203.0.113.9%5D:41000", ("198.51.100.1",), "203.0.113.9"),
        # Not an IP peer: never trusted, its own name (bounded) is the subject.
        ("unix:/tmp/optix.sock", ("198.51.100.1",), "unix:/tmp/optix.sock"),
    ],
)
def test_client_address(peer: str, forwarded: tuple[str, ...], expected: str) -> None:
    assert client_address(peer, _xff(*forwarded), EDGE) == expected


def test_nobody_is_trusted_by_default() -> None:
    nobody = TrustedProxies()
    assert client_address("ipv4:127.0.0.1:1", _xff("198.51.100.1"), nobody) == "127.0.0.1"
    assert Settings().trusted_proxies == nobody
    assert Settings.from_env({}).trusted_proxies == nobody


def test_only_the_x_forwarded_for_header_counts() -> None:
    metadata = (("x-real-ip", "198.51.100.1"), ("forwarded", "for=198.51.100.1"))
    assert client_address(EDGE_PEER, metadata, EDGE) == "10.0.0.2"
    assert client_address(EDGE_PEER, (("X-Forwarded-For", "198.51.100.1"),), EDGE) == (
        "198.51.100.1"
    )
    assert client_address(EDGE_PEER, (("x-forwarded-for", b"198.51.100.1"),), EDGE) == "10.0.0.2"


def test_settings_parse_ips_and_cidrs_once() -> None:
    settings = Settings.from_env({"OPTIX_TRUSTED_PROXIES": " 127.0.0.1/32,::1/128, 10.1.2.3 ,"})
    assert settings.trusted_proxies.networks == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("10.1.2.3/32"),
    )
    proxies = settings.trusted_proxies
    assert proxies.trusts(ipaddress.ip_address("10.1.2.3"))
    assert not proxies.trusts(ipaddress.ip_address("10.1.2.4"))
    assert proxies.trusts(ipaddress.ip_address("::ffff:127.0.0.1"))


def test_a_mapped_range_matches_ipv4_peers() -> None:
    proxies = TrustedProxies.parse("::ffff:10.0.0.0/120")
    assert proxies.networks == (ipaddress.ip_network("10.0.0.0/24"),)
    assert client_address("ipv4:10.0.0.2:1", _xff("198.51.100.1"), proxies) == "198.51.100.1"


@pytest.mark.parametrize(
    "raw",
    ["10.0.0.1/8", "localhost", "10.0.0.0/33", "10.0.0.1 10.0.0.2", "::1/129", "1.2.3"],
)
def test_malformed_trusted_proxies_are_a_settings_error(raw: str) -> None:
    with pytest.raises(SettingsError, match="OPTIX_TRUSTED_PROXIES") as caught:
        Settings.from_env({"OPTIX_TRUSTED_PROXIES": f"127.0.0.1,{raw}"})
    assert repr(raw) in str(caught.value)
