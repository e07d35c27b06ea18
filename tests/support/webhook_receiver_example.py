"""The README's webhook receiver example, kept here so a test runs it against the real sender.

A receiver for OPTIX alert webhooks using only the standard library: it checks the
Optix-Signature header against the raw body with the alert's signing secret (shown once by
CreateAlert / UpdateAlert), rejects stale timestamps, and de-duplicates by Optix-Event-Id
(delivery is at least once). Serve it behind HTTPS: OPTIX only calls https:// URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: float = 300.0, now: float | None = None
) -> bool:
    """True when `header` ("t=<unix seconds>,v1=<hex>") signs the raw `body` with `secret`
    and its time is within `tolerance` seconds of now."""
    parts = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key == "t"]
    signatures = [value.encode() for key, _, value in parts if key == "v1"]
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or not signatures:
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return any(hmac.compare_digest(expected.hexdigest().encode(), s) for s in signatures)


class OptixWebhook(BaseHTTPRequestHandler):
    """Accepts signed alert events; answers 204 (any 2xx acknowledges) or 401."""

    secret = os.environ.get("OPTIX_WEBHOOK_SECRET", "")
    seen: set[str] = set()  # use your database in production

    def do_POST(self) -> None:
        """Verify, de-duplicate, handle."""
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verify_signature(self.secret, self.headers.get("Optix-Signature", ""), body):
            self.send_response(401)
            self.end_headers()
            return
        event_id = self.headers["Optix-Event-Id"]
        if event_id not in self.seen:
            self.seen.add(event_id)
            event = json.loads(body)  # the proto3 JSON of optix.alert.v1.AlertEvent
            print(event["eventId"], event["symbol"], event["message"])
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", 8000), OptixWebhook).serve_forever()
