"""Small domain -> protobuf conversions every slice needs (timestamps, instruments)."""

from __future__ import annotations

import functools
from datetime import datetime

from google.protobuf import timestamp_pb2

from optix.common.v1 import instrument_pb2
from optix_server.common.occ import OptionRight, is_option_symbol, parse_occ

_RIGHTS = {
    OptionRight.CALL: instrument_pb2.OPTION_RIGHT_CALL,
    OptionRight.PUT: instrument_pb2.OPTION_RIGHT_PUT,
}
# Listed equity options cover 100 shares.
OPTION_MULTIPLIER = 100


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp for an aware datetime."""
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value)
    return result


def instrument(symbol: str) -> instrument_pb2.Instrument:
    """The Instrument a canonical symbol names: an OCC option with its contract's parts, an
    index ("$"-prefixed ticker) or an equity. A fresh message each time (callers may change it);
    the parsing behind it is cached."""
    result = instrument_pb2.Instrument()
    result.CopyFrom(_instrument(symbol))
    return result


@functools.lru_cache(maxsize=65_536)
def _instrument(symbol: str) -> instrument_pb2.Instrument:
    if is_option_symbol(symbol):
        occ = parse_occ(symbol)
        return instrument_pb2.Instrument(
            symbol=symbol,
            type=instrument_pb2.INSTRUMENT_TYPE_OPTION,
            option=instrument_pb2.OptionContract(
                symbol=symbol,
                underlying=occ.root,
                expiration=instrument_pb2.Date(
                    year=occ.expiration.year, month=occ.expiration.month, day=occ.expiration.day
                ),
                right=_RIGHTS[occ.right],
                strike=occ.strike_thousandths / 1000,
                multiplier=OPTION_MULTIPLIER,
            ),
        )
    kind = (
        instrument_pb2.INSTRUMENT_TYPE_INDEX
        if symbol.startswith("$")
        else instrument_pb2.INSTRUMENT_TYPE_EQUITY
    )
    return instrument_pb2.Instrument(symbol=symbol, type=kind)
