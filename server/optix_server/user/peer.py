"""The client's network address, for per-address limits (never for authentication)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

# One IPv6 subscriber gets a whole /64 (RFC 6177): limiting single addresses in it would let
# one client rotate through 2**64 of them, so IPv6 clients are counted by their /64.
_IPV6_SUBNET_BITS = 64
_MAX_ADDRESS = 64


def client_address(
    peer: str, metadata: Iterable[tuple[str, str | bytes]] | None, trusted_proxy_hops: int
) -> str:
    """The caller's rate-limit subject: the TCP peer, or the x-forwarded-for entry our own
    proxies added; IPv6 addresses are reduced to their /64."""
    if trusted_proxy_hops > 0:
        forwarded = [
            value
            for key, value in (metadata or ())
            if key.lower() == "x-forwarded-for" and isinstance(value, str)
        ]
        hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
        # Each trusted proxy appends the address it saw; entries further left are client-made.
        if len(hops) >= trusted_proxy_hops:
            return limit_subject(hops[-trusted_proxy_hops].strip("[]"))
    return limit_subject(_strip_port(peer))


def limit_subject(address: str) -> str:
    """`address` as rate limits count it: IPv4 as is, IPv6 as its /64, anything else truncated."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:_MAX_ADDRESS] or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, _IPV6_SUBNET_BITS), strict=False))
    return str(parsed)


def _strip_port(peer: str) -> str:
    # grpc peers look like "ipv4:1.2.3.4:5678", "ipv6:[::1]:5678" or "unix:/path".
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer[:_MAX_ADDRESS] or "unknown"
