"""The client's network address, for per-address limits (never for authentication)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import unquote

from optix_server.infra.env import SettingsError

IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

# One IPv6 subscriber gets a whole /64 (RFC 6177): limiting single addresses in it would let
# one client rotate through 2**64 of them, so IPv6 clients are counted by their /64.
_IPV6_SUBNET_BITS = 64
_MAX_ADDRESS = 64
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmapped(address: IpAddress) -> IpAddress:
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: they are IPv4 clients.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _parse_address(text: str) -> IpAddress | None:
    """An IP address written bare or as "[v6]"; None for anything else (ports, names, junk)."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        # A zone ("fe80::1%eth0") says which link, not which client.
        return _unmapped(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


def _network(item: str) -> IpNetwork:
    network = ipaddress.ip_network(item, strict=True)
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        # Addresses are matched unmapped, so a mapped range must be too or it never matches.
        base = ipaddress.IPv4Address(int(network.network_address) & 0xFFFFFFFF)
        return ipaddress.IPv4Network((base, network.prefixlen - 96))
    return network


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies (e.g. the Envoy edge) whose x-forwarded-for entries are believed; empty:
    nobody's, so the TCP peer is the client."""

    networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def parse(cls, raw: str, *, name: str = "OPTIX_TRUSTED_PROXIES") -> TrustedProxies:
        """Comma-separated IPs and CIDRs (IPv4 and IPv6); SettingsError naming `name` if bad."""
        networks: list[IpNetwork] = []
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            try:
                networks.append(_network(item))
            except ValueError as exc:
                raise SettingsError(
                    f"{name} must be comma-separated IP addresses or CIDR networks "
                    f"(e.g. 10.0.0.0/8,::1), got {item!r}: {exc}"
                ) from None
        return cls(tuple(networks))

    def trusts(self, address: IpAddress) -> bool:
        """Whether `address` is one of the trusted proxies."""
        address = _unmapped(address)
        return any(address in network for network in self.networks)


def client_address(
    peer: str, metadata: Iterable[tuple[str, str | bytes]] | None, proxies: TrustedProxies
) -> str:
    """The caller's rate-limit subject (IPv6 reduced to its /64).

    A peer that is not a trusted proxy is the client, and its x-forwarded-for is ignored: it
    wrote the header itself. From a trusted peer, x-forwarded-for is walked from the right,
    where each proxy appended the address it saw: trusted entries are skipped, and the first
    untrusted one is the client. When every entry is trusted, the leftmost is (a client on a
    proxy host). A malformed entry ends the walk at the last address a trusted proxy vouched
    for (the peer when the header is absent or its last entry is junk): counting a client
    under its proxy is safer than letting it name its own subject.
    """
    address = _peer_address(peer)
    if address is None:
        return peer[:_MAX_ADDRESS] or "unknown"
    if not proxies.trusts(address):
        return _subject(address)
    forwarded = [
        value
        for key, value in (metadata or ())
        if key.lower() == "x-forwarded-for" and isinstance(value, str)
    ]
    if not forwarded:
        return _subject(address)
    # Several headers are one list in order (RFC 9110 5.3).
    for entry in reversed(",".join(forwarded).split(",")):
        hop = _parse_address(entry.strip())
        if hop is None:
            break
        address = hop
        if not proxies.trusts(hop):
            break
    return _subject(address)


def _subject(address: IpAddress) -> str:
    """`address` as rate limits count it: IPv4 as is, IPv6 as its /64."""
    address = _unmapped(address)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, _IPV6_SUBNET_BITS), strict=False))
    return str(address)


def _peer_address(peer: str) -> IpAddress | None:
    # grpc peers look like "ipv4:1.2.3.4:5678", "ipv6:%5B::1%5D:5678" (percent-encoded
    # brackets in current grpc, plain in older ones) or "unix:/path".
    kind, _, rest = peer.partition(":")
    if kind not in {"ipv4", "ipv6"}:
        return None
    host = unquote(rest).rsplit(":", 1)[0]
    return _parse_address(host)
