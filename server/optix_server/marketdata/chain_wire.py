"""A priced chain's GetOptionsChainResponse bytes, encoded once per market update and sliced
per request.

Every contract's OptionQuote is encoded as the repeated field element it becomes (tag,
length, message), all in one vectorised pass over the chain's arrays: each field is a block of
byte columns with a mask of the bytes it really has (proto3 omits zero values; a varint has as
many bytes as it needs), and the masked bytes, read row by row, are the concatenated elements.
The protobuf wire format lets a message's repeated sub-messages be concatenated, so a filtered
response is the header, the selected elements' bytes and the trailer, byte for byte what
serialising the equivalent message gives (the tests compare with convert.chain_to_proto).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optix.marketdata.v1 import option_chain_pb2
from optix_server.common.occ import OccSymbol
from optix_server.marketdata.convert import (
    contract_to_proto,
    pricing_to_proto,
    quote_to_proto,
    source_to_proto,
)
from optix_server.marketdata.priced_chain import Index, PricedChain
from optix_server.marketdata.wire import varint

# Wire types: 0 varint, 1 fixed 64-bit, 2 length-delimited.
_VARINT, _FIXED64, _LENGTH = 0, 1, 2
# OptionsChain.options and OptionsChain.source; GetOptionsChainResponse.chain.
_OPTIONS_TAG = (4 << 3) | _LENGTH
_SOURCE_TAG = (5 << 3) | _VARINT
_CHAIN_TAG = (1 << 3) | _LENGTH
_MAX_VARINT = 10

Bytes = NDArray[np.uint8]
Mask = NDArray[np.bool_]
Block = tuple[Bytes, Mask]


def _tag(number: int, wire_type: int) -> int:
    return (number << 3) | wire_type


def _with_tag(tag: int, data: Bytes, mask: Mask, present: Mask) -> Block:
    """`data` (n, w) behind a one-byte tag column, all of it masked by `present`."""
    tags = np.full((data.shape[0], 1), tag, dtype=np.uint8)
    return np.hstack([tags, data]), np.hstack([present[:, None], mask & present[:, None]])


def _double(number: int, values: NDArray[np.float64]) -> Block:
    """A double field: 8 little-endian bytes, omitted when the value is +0.0 (all bits 0)."""
    v = np.ascontiguousarray(values, dtype="<f8")
    data = v.view(np.uint8).reshape(-1, 8)
    # By bits, not value: -0.0 is written (as protobuf does), only +0.0 is the default.
    present = v.view(np.uint64) != 0
    return _with_tag(_tag(number, _FIXED64), data, np.ones_like(data, dtype=np.bool_), present)


def _varint_columns(values: NDArray[np.uint64]) -> Block:
    """Each value's varint bytes and the mask of those it uses (as many columns as the
    largest value needs, at most 10)."""
    n = values.shape[0]
    top = int(values.max(initial=0))
    width = max(1, min(_MAX_VARINT, (top.bit_length() + 6) // 7))
    data = np.empty((n, width), dtype=np.uint8)
    more = np.empty((n, width), dtype=np.bool_)
    for j in range(width):
        data[:, j] = ((values >> np.uint64(7 * j)) & np.uint64(0x7F)).astype(np.uint8)
        more[:, j] = (values >> np.uint64(7 * (j + 1))) != 0
    data |= np.where(more, 0x80, 0).astype(np.uint8)
    used = np.ones((n, width), dtype=np.bool_)
    used[:, 1:] = more[:, :-1]
    return data, used


def _varint(number: int, values: NDArray[np.int64]) -> Block:
    """An int field as a varint (negative values as ten bytes), omitted when 0."""
    v = np.ascontiguousarray(values, dtype=np.int64)
    data, used = _varint_columns(v.view(np.uint64))
    return _with_tag(_tag(number, _VARINT), data, used, v != 0)


def _embedded(number: int, blocks: list[Block], present: Mask) -> Block:
    """A sub-message field from its fields' blocks (lengths below 128 bytes: one byte)."""
    data = np.hstack([b for b, _ in blocks])
    mask = np.hstack([m for _, m in blocks]) & present[:, None]
    length = mask.sum(axis=1).astype(np.uint8)
    return _with_tag(
        _tag(number, _LENGTH),
        np.hstack([length[:, None], data]),
        np.hstack([np.ones((data.shape[0], 1), dtype=np.bool_), mask]),
        present,
    )


def _ragged(fields: list[bytes]) -> Block:
    """Byte strings of different lengths as padded columns and the mask of their bytes."""
    lengths = np.fromiter((len(f) for f in fields), dtype=np.intp, count=len(fields))
    width = int(lengths.max(initial=0))
    data = np.zeros((len(fields), width), dtype=np.uint8)
    mask = np.arange(width) < lengths[:, None]
    data[mask] = np.frombuffer(b"".join(fields), dtype=np.uint8)
    return data, mask


def contract_field(contract: OccSymbol, underlying: str, multiplier: int) -> bytes:
    """OptionQuote.contract (field 1) as tag, length and OptionContract bytes."""
    body = contract_to_proto(contract, underlying, multiplier).SerializeToString()
    return bytes([_tag(1, _LENGTH)]) + varint(len(body)) + body


@dataclass(frozen=True, slots=True)
class EncodedChain:
    """A priced chain's whole response and its pieces: the chain's leading fields, every
    contract's framed OptionQuote (element i at full[offsets[i]:offsets[i + 1]]) and the
    trailing field."""

    full: bytes
    header: bytes
    offsets: NDArray[np.int64]
    trailer: bytes
    # Each contract's encoded OptionContract field, for the next update to reuse.
    contracts: list[OccSymbol]
    multiplier: NDArray[np.int64]
    contract_fields: list[bytes]

    @property
    def nbytes(self) -> int:
        """Approximate memory held."""
        fields = sum(len(b) + 40 for b in self.contract_fields)
        return len(self.full) + len(self.header) + self.offsets.nbytes + fields

    def response(self, index: Index) -> bytes:
        """GetOptionsChainResponse bytes carrying the contracts at `index` (increasing)."""
        if index.size == len(self.contracts):
            return self.full  # every contract: the response is already whole
        view = memoryview(self.full)
        pieces: list[bytes | memoryview] = [self.header]
        if index.size:
            # Consecutive indices become one slice: a whole chain or expiration is one copy.
            breaks = np.flatnonzero(np.diff(index) != 1) + 1
            starts = index[np.concatenate(([0], breaks))]
            ends = index[np.concatenate((breaks - 1, [index.size - 1]))] + 1
            offsets = self.offsets
            for start, end in zip(offsets[starts].tolist(), offsets[ends].tolist(), strict=True):
                pieces.append(view[start:end])
        pieces.append(self.trailer)
        size = sum(len(p) for p in pieces)
        return b"".join([bytes([_CHAIN_TAG]), varint(size), *pieces])


def _contract_fields(chain: PricedChain, previous: EncodedChain | None) -> list[bytes]:
    """Every contract's OptionContract field, reusing the previous update's where the same
    contract was listed (a listing rarely changes between updates)."""
    if (
        previous is not None
        and previous.contracts == chain.contracts  # identity first: the same listing is cheap
        and np.array_equal(previous.multiplier, chain.multiplier)
    ):
        return previous.contract_fields
    known: dict[tuple[OccSymbol, int], bytes] = {}
    if previous is not None:
        keys = zip(previous.contracts, previous.multiplier.tolist(), strict=True)
        known = dict(zip(keys, previous.contract_fields, strict=True))
    return [
        known.get((c, m)) or contract_field(c, chain.underlying, m)
        for c, m in zip(chain.contracts, chain.multiplier.tolist(), strict=True)
    ]


def encode_chain(chain: PricedChain, previous: EncodedChain | None = None) -> EncodedChain:
    """Encode every contract of `chain` once (contract fields the previous update of the same
    underlying encoded are reused)."""
    fields = _contract_fields(chain, previous)
    header = option_chain_pb2.OptionsChain(
        underlying=chain.underlying,
        underlying_quote=quote_to_proto(chain.underlying_quote),
        pricing=pricing_to_proto(chain.pricing),
    ).SerializeToString()
    source = int(source_to_proto(chain.source))
    trailer = bytes([_SOURCE_TAG]) + varint(source) if source else b""
    options, offsets = _encode_options(chain, fields)
    body = len(header) + len(options) + len(trailer)
    prefix = bytes([_CHAIN_TAG]) + varint(body) + header
    full = b"".join([prefix, options, trailer])
    return EncodedChain(
        full, header, offsets + len(prefix), trailer, chain.contracts, chain.multiplier, fields
    )


def _encode_options(
    chain: PricedChain, contract_fields: list[bytes]
) -> tuple[bytes, NDArray[np.int64]]:
    n = chain.size
    if n == 0:
        return b"", np.zeros(1, dtype=np.int64)
    a, g = chain.analytics, chain.analytics.greeks
    has_greeks = ~np.isnan(g.delta)
    greeks = [
        _double(number, values)
        for number, values in enumerate((g.delta, g.gamma, g.theta, g.vega, g.rho), start=1)
    ]
    # Only fields 1-5 of Greeks, nine bytes each: the length always fits one byte.
    blocks = [
        _ragged(contract_fields),
        _double(2, chain.bid),
        _double(3, chain.ask),
        _double(4, chain.last),
        _double(5, a.mark),
        _varint(6, chain.volume),
        _varint(7, chain.open_interest),
        _double(8, a.implied_volatility),
        _varint(9, a.status.astype(np.int64)),
        _embedded(10, greeks, has_greeks),
        _double(11, chain.time_to_expiration),
        _varint(12, a.in_the_money.astype(np.int64)),
    ]
    body = np.hstack([b for b, _ in blocks])
    body_mask = np.hstack([m for _, m in blocks])
    length = body_mask.sum(axis=1).astype(np.uint64)
    frame, frame_mask = _varint_columns(length)
    tags = np.full((n, 1), _OPTIONS_TAG, dtype=np.uint8)
    data = np.hstack([tags, frame, body])
    mask = np.hstack([np.ones((n, 1), dtype=np.bool_), frame_mask, body_mask])
    sizes = mask.sum(axis=1)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return data[mask].tobytes(), offsets
