"""The client's network address, for per-address limits (never for authentication)."""

from __future__ import annotations

from collections.abc import Iterable


def client_address(
    peer: str, metadata: Iterable[tuple[str, str | bytes]] | None, trusted_proxy_hops: int
) -> str:
    """The caller's IP: the TCP peer, or the x-forwarded-for entry our own proxies added."""
    if trusted_proxy_hops > 0:
        forwarded = [
            value
            for key, value in (metadata or ())
            if key.lower() == "x-forwarded-for" and isinstance(value, str)
        ]
        hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
        # Each trusted proxy appends the address it saw; entries further left are client-made.
        if len(hops) >= trusted_proxy_hops:
            return hops[-trusted_proxy_hops][:64]
    return _strip_port(peer)


def _strip_port(peer: str) -> str:
    # grpc peers look like "ipv4:1.2.3.4:5678", "ipv6:[::1]:5678" or "unix:/path".
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer[:64] or "unknown"
