"""Stream message bytes built from already-encoded quotes, so a tick is serialised once per
process rather than once per client."""

from __future__ import annotations

from collections.abc import Iterable

# Field 1, wire type 2 (length-delimited): StreamQuotesResponse.quotes and QuoteBatch.quotes.
_FIELD_1 = b"\x0a"


def varint(value: int) -> bytes:
    """`value` (>= 0) as a protobuf varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def frame_field_1(message: bytes) -> bytes:
    """`message` as field 1 of an enclosing message (tag, length, bytes)."""
    return _FIELD_1 + varint(len(message)) + message


def quote_batch_response(framed_quotes: Iterable[bytes]) -> bytes:
    """The bytes of StreamQuotesResponse{quotes: QuoteBatch{quotes: [...]}}, from quotes
    already framed by frame_field_1 (QuoteBatch.quotes is field 1 too)."""
    return frame_field_1(b"".join(framed_quotes))
