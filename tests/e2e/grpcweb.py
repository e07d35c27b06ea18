"""Hand-made grpc-web requests (what a broken or hostile client may send) and their answers."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

GRPC_WEB = "application/grpc-web+proto"
TRAILER_FLAG = 0x80


def frame(payload: bytes, flag: int = 0) -> bytes:
    """One length-prefixed grpc-web frame."""
    return struct.pack(">BI", flag, len(payload)) + payload


@dataclass(frozen=True)
class GrpcWebReply:
    """HTTP status plus the gRPC status found in headers or the trailer frame."""

    http_status: int
    grpc_status: int | None
    grpc_message: str


def _trailers(body: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    position = 0
    while position + 5 <= len(body):
        flag, length = struct.unpack(">BI", body[position : position + 5])
        chunk = body[position + 5 : position + 5 + length]
        position += 5 + length
        if flag & TRAILER_FLAG:
            for line in chunk.decode(errors="replace").split("\r\n"):
                key, _, value = line.partition(":")
                if key:
                    found[key.strip().lower()] = value.strip()
    return found


def call(
    client: httpx.Client, path: str, body: bytes, content_type: str = GRPC_WEB
) -> GrpcWebReply:
    """POST a grpc-web request and decode where the status ended up."""
    response = client.post(
        path, content=body, headers={"content-type": content_type, "x-grpc-web": "1"}
    )
    trailers = {**_trailers(response.content), **dict(response.headers)}
    status = trailers.get("grpc-status")
    return GrpcWebReply(
        response.status_code,
        int(status) if status is not None else None,
        trailers.get("grpc-message", ""),
    )


def text_body(body: bytes) -> bytes:
    """The grpc-web-text (base64) form of a binary body."""
    return base64.b64encode(body)


def send(
    client: httpx.Client,
    path: str,
    body: bytes,
    headers: Sequence[tuple[str, str]],
    *,
    method: str = "POST",
    limit_s: float,
) -> GrpcWebReply | None:
    """Any request with exactly `headers`, read to its end; None if it did not end within
    `limit_s` (a stream that keeps sending is cut off as well as one that says nothing)."""
    deadline = time.monotonic() + limit_s
    content = bytearray()
    try:
        with client.stream(
            method, path, content=body, headers=list(headers), timeout=limit_s
        ) as response:
            for chunk in response.iter_raw():
                content += chunk
                if time.monotonic() > deadline:
                    return None
    except httpx.TimeoutException:
        return None
    trailers = {**_trailers(bytes(content)), **dict(response.headers)}
    status = trailers.get("grpc-status")
    return GrpcWebReply(
        response.status_code,
        int(status) if status is not None else None,
        trailers.get("grpc-message", ""),
    )
