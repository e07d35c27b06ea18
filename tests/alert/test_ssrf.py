"""The webhook SSRF rule on single addresses: only globally routable unicast addresses pass."""

from __future__ import annotations

from optix_server.common.webhooks import refused_address


def test_the_ssrf_rule_refuses_every_non_public_address() -> None:
    for address in [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1%eth0",
        "::ffff:10.0.0.1",
        "fc00::1",
        "192.0.2.1",
        "255.255.255.255",
        "ff02::1",
    ]:
        assert refused_address(address) is not None, address
    for address in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"]:
        assert refused_address(address) is None, address
