"""Webhook URLs users give for notifications (the user slice's preferences, alerts)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from optix_server.common.text import has_control_characters
from optix_server.infra.errors import ViolationCollector

MAX_WEBHOOK_URL = 2048


def check_webhook_url(value: str, path: str, errors: ViolationCollector) -> None:
    """Empty, or an absolute https:// URL with a host and no credentials."""
    if not value:
        return
    if len(value) > MAX_WEBHOOK_URL:
        errors.add(path, f"must be at most {MAX_WEBHOOK_URL} characters")
        return
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        errors.add(path, "must be a valid URL")
        return
    if has_control_characters(value) or " " in value:
        errors.add(path, "must not contain spaces or control characters")
    elif parts.scheme != "https" or not host:
        errors.add(path, "must be an https:// URL with a host")
    elif parts.username or parts.password:
        errors.add(path, "must not contain credentials")


def refused_address(address: str) -> str | None:
    """Why a webhook may not be sent to the IP `address` (None: a public address it may use).
    Anything not globally routable is refused: loopback, private, link-local (cloud metadata
    at 169.254.169.254 among them), shared, reserved, multicast and unspecified addresses,
    IPv4-mapped IPv6 forms of those included."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or not ip.is_global:
        return f"{ip} is not a public address"
    return None


async def resolve_webhook_host(url: str, *, allow_private: bool) -> tuple[list[str], str | None]:
    """The addresses `url`'s host resolves to, and why they may not be called (None: they may;
    every address must pass, so a name cannot mix a public and a private answer). The sender
    connects to these addresses, not to a second lookup, so a rebinding DNS answer cannot
    redirect it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return [], f"the host {host!r} does not resolve"
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        return [], f"the host {host!r} does not resolve"
    if not allow_private:
        for address in addresses:
            why = refused_address(address)
            if why is not None:
                return addresses, f"the host {host!r} resolves to {why}"
    return addresses, None
