"""HTTPS POSTs pinned to addresses resolved and checked beforehand.

The request goes to the IP itself (no second DNS lookup, so a rebinding answer cannot redirect
it); the URL's host name is sent as TLS SNI and the certificate is verified against it (httpcore
passes the `sni_hostname` extension as the TLS `server_hostname`, which `check_hostname`
matches), and it is the Host header. No connection is reused: a connection verified for one
host name must not carry another's request to the same address. No proxy from the environment,
no redirects."""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence

import httpx

USER_AGENT = "OPTIX-Webhooks/1"


def webhook_ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """A verifying client context trusting `ca_bundle` (a PEM file), or certifi's CAs (httpx's
    default, without its SSL_CERT_FILE override: the bundle is configured in one place)."""
    if ca_bundle:
        return ssl.create_default_context(cafile=ca_bundle)
    return httpx.create_ssl_context(trust_env=False)


class PinnedClient:
    """POSTs a body to a URL at given addresses and answers the response status."""

    def __init__(self, ssl_context: ssl.SSLContext, timeout: float) -> None:
        if ssl_context.verify_mode is not ssl.CERT_REQUIRED or not ssl_context.check_hostname:
            # Pinning the address is only safe because the certificate proves the host name.
            raise ValueError("webhook TLS must verify certificates and host names")
        self._client = httpx.AsyncClient(
            verify=ssl_context,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def post(
        self, url: str, addresses: Sequence[str], headers: Mapping[str, str], body: bytes
    ) -> int:
        """The status of POSTing `body` to `url`, connecting to the first of `addresses` that
        accepts a connection (the body is not read)."""
        target = httpx.URL(url)
        # The A-label form: what TLS and HTTP carry for an internationalised name.
        host = target.raw_host.decode("ascii")
        request_headers = {
            **headers,
            "Host": target.netloc.decode("ascii"),
            "User-Agent": USER_AGENT,
        }
        failure: httpx.ConnectError | None = None
        for address in addresses:
            try:
                async with self._client.stream(
                    "POST",
                    target.copy_with(host=address),
                    content=body,
                    headers=request_headers,
                    extensions={"sni_hostname": host},
                ) as response:
                    return response.status_code
            except httpx.ConnectError as exc:
                # Another address of the name may answer (an IPv6 and an IPv4 one, say).
                failure = exc
        if failure is None:
            raise httpx.ConnectError("the host has no address to connect to")
        raise failure

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
