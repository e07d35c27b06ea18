"""Domain values <-> protobuf messages of optix.marketdata.v1 (used by the servicer, and as
the wire format of quotes in the cache and on pub/sub)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import MappingProxyType

from google.protobuf.timestamp_pb2 import Timestamp

from optix.common.v1 import instrument_pb2
from optix.marketdata.v1 import marketdata_service_pb2 as svc
from optix.marketdata.v1 import option_chain_pb2, price_history_pb2, quote_pb2
from optix_server.common.occ import OccSymbol, OptionRight
from optix_server.marketdata.models import (
    BarInterval,
    ContractSide,
    DataSource,
    Expiration,
    ExpirationType,
    Greeks,
    InstrumentType,
    OptionAnalytics,
    OptionsChain,
    PricedOption,
    PriceHistory,
    PricingParameters,
    Quote,
)

_SOURCE = MappingProxyType(
    {
        DataSource.SIMULATED: quote_pb2.DATA_SOURCE_SIMULATED,
        DataSource.REPLAY: quote_pb2.DATA_SOURCE_REPLAY,
        DataSource.SCHWAB: quote_pb2.DATA_SOURCE_SCHWAB,
    }
)
_SOURCE_BACK = MappingProxyType({v: k for k, v in _SOURCE.items()})
_INSTRUMENT = MappingProxyType(
    {
        InstrumentType.EQUITY: instrument_pb2.INSTRUMENT_TYPE_EQUITY,
        InstrumentType.OPTION: instrument_pb2.INSTRUMENT_TYPE_OPTION,
        InstrumentType.INDEX: instrument_pb2.INSTRUMENT_TYPE_INDEX,
    }
)
_INSTRUMENT_BACK = MappingProxyType({v: k for k, v in _INSTRUMENT.items()})
_EXPIRATION_TYPE = MappingProxyType(
    {
        ExpirationType.STANDARD: option_chain_pb2.EXPIRATION_TYPE_STANDARD,
        ExpirationType.WEEKLY: option_chain_pb2.EXPIRATION_TYPE_WEEKLY,
        ExpirationType.QUARTERLY: option_chain_pb2.EXPIRATION_TYPE_QUARTERLY,
    }
)
_RIGHT = MappingProxyType(
    {
        OptionRight.CALL: instrument_pb2.OPTION_RIGHT_CALL,
        OptionRight.PUT: instrument_pb2.OPTION_RIGHT_PUT,
    }
)
_INTERVAL = MappingProxyType(
    {
        price_history_pb2.BAR_INTERVAL_ONE_MINUTE: BarInterval.ONE_MINUTE,
        price_history_pb2.BAR_INTERVAL_FIVE_MINUTES: BarInterval.FIVE_MINUTES,
        price_history_pb2.BAR_INTERVAL_FIFTEEN_MINUTES: BarInterval.FIFTEEN_MINUTES,
        price_history_pb2.BAR_INTERVAL_THIRTY_MINUTES: BarInterval.THIRTY_MINUTES,
        price_history_pb2.BAR_INTERVAL_ONE_HOUR: BarInterval.ONE_HOUR,
        price_history_pb2.BAR_INTERVAL_ONE_DAY: BarInterval.ONE_DAY,
        price_history_pb2.BAR_INTERVAL_ONE_WEEK: BarInterval.ONE_WEEK,
    }
)
_INTERVAL_BACK = MappingProxyType({v: k for k, v in _INTERVAL.items()})


def timestamp(value: datetime) -> Timestamp:
    """A protobuf Timestamp for an aware datetime."""
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def to_date(value: date) -> instrument_pb2.Date:
    """A common.v1.Date."""
    return instrument_pb2.Date(year=value.year, month=value.month, day=value.day)


def analytics_to_proto(analytics: OptionAnalytics) -> quote_pb2.OptionAnalytics:
    """An OptionAnalytics message; the Greeks stay 0 when the implied volatility was not found."""
    message = quote_pb2.OptionAnalytics(
        implied_volatility=analytics.implied_volatility,
        status=quote_pb2.OptionAnalyticsStatus.ValueType(analytics.iv_status),
        underlying_price=analytics.underlying_price,
        risk_free_rate=analytics.risk_free_rate,
        dividend_yield=analytics.dividend_yield,
        time_to_expiration_years=analytics.time_to_expiration_years,
        in_the_money=analytics.in_the_money,
    )
    if analytics.greeks is not None:
        g = analytics.greeks
        message.delta, message.gamma, message.theta = g.delta, g.gamma, g.theta
        message.vega, message.rho = g.vega, g.rho
    return message


def analytics_from_proto(message: quote_pb2.OptionAnalytics) -> OptionAnalytics:
    """The domain analytics for an OptionAnalytics message."""
    solved = message.status == quote_pb2.OPTION_ANALYTICS_STATUS_OK
    return OptionAnalytics(
        implied_volatility=message.implied_volatility,
        iv_status=message.status,
        greeks=Greeks(message.delta, message.gamma, message.theta, message.vega, message.rho)
        if solved
        else None,
        underlying_price=message.underlying_price,
        risk_free_rate=message.risk_free_rate,
        dividend_yield=message.dividend_yield,
        time_to_expiration_years=message.time_to_expiration_years,
        in_the_money=message.in_the_money,
    )


def quote_to_proto(quote: Quote) -> quote_pb2.Quote:
    """The contract's Quote message for a domain quote."""
    message = quote_pb2.Quote(
        symbol=quote.symbol,
        instrument_type=_INSTRUMENT[quote.instrument_type],
        bid=quote.bid,
        ask=quote.ask,
        last=quote.last,
        mark=quote.mark,
        bid_size=quote.bid_size,
        ask_size=quote.ask_size,
        volume=quote.volume,
        open=quote.open,
        high=quote.high,
        low=quote.low,
        previous_close=quote.previous_close,
        change=quote.change,
        change_percent=quote.change_percent,
        quote_time=timestamp(quote.quote_time),
        source=_SOURCE[quote.source],
        sequence=quote.sequence,
    )
    if quote.analytics is not None:
        message.option_analytics.CopyFrom(analytics_to_proto(quote.analytics))
    return message


def quote_from_proto(message: quote_pb2.Quote) -> Quote:
    """The domain quote for a Quote message."""
    return Quote(
        symbol=message.symbol,
        instrument_type=_INSTRUMENT_BACK.get(message.instrument_type, InstrumentType.EQUITY),
        bid=message.bid,
        ask=message.ask,
        last=message.last,
        bid_size=message.bid_size,
        ask_size=message.ask_size,
        volume=message.volume,
        open=message.open,
        high=message.high,
        low=message.low,
        previous_close=message.previous_close,
        quote_time=message.quote_time.ToDatetime(UTC),
        source=_SOURCE_BACK.get(message.source, DataSource.SIMULATED),
        sequence=message.sequence,
        analytics=analytics_from_proto(message.option_analytics)
        if message.HasField("option_analytics")
        else None,
    )


def encode_quote(quote: Quote) -> bytes:
    """A quote's wire bytes (the contract's Quote encoding), for cache and pub/sub."""
    return quote_to_proto(quote).SerializeToString()


def decode_quote(payload: bytes) -> Quote:
    """Inverse of encode_quote."""
    return quote_from_proto(quote_pb2.Quote.FromString(payload))


def source_to_proto(source: DataSource) -> quote_pb2.DataSource.ValueType:
    """The contract's DataSource value."""
    return _SOURCE[source]


def instrument_to_proto(kind: InstrumentType) -> instrument_pb2.InstrumentType.ValueType:
    """The contract's InstrumentType value."""
    return _INSTRUMENT[kind]


def expiration_to_proto(expiration: Expiration, today: date) -> option_chain_pb2.Expiration:
    """An Expiration message with days counted from `today`."""
    return option_chain_pb2.Expiration(
        date=to_date(expiration.date),
        days_to_expiration=(expiration.date - today).days,
        type=_EXPIRATION_TYPE[expiration.type],
    )


def contract_to_proto(
    contract: OccSymbol, underlying: str, multiplier: int
) -> instrument_pb2.OptionContract:
    """An OptionContract message for a parsed OCC symbol."""
    return instrument_pb2.OptionContract(
        symbol=contract.format(),
        underlying=underlying,
        expiration=to_date(contract.expiration),
        right=_RIGHT[contract.right],
        strike=contract.strike,
        multiplier=multiplier,
    )


def option_to_proto(option: PricedOption) -> option_chain_pb2.OptionQuote:
    """An OptionQuote message; Greeks are unset when the implied volatility was not found."""
    message = option_chain_pb2.OptionQuote(
        contract=contract_to_proto(option.contract, option.underlying, option.multiplier),
        bid=option.bid,
        ask=option.ask,
        last=option.last,
        mark=option.mark,
        volume=option.volume,
        open_interest=option.open_interest,
        implied_volatility=option.implied_volatility,
        implied_volatility_status=option_chain_pb2.ImpliedVolatilityStatus.ValueType(
            option.iv_status
        ),
        time_to_expiration_years=option.time_to_expiration_years,
        in_the_money=option.in_the_money,
    )
    if option.greeks is not None:
        g = option.greeks
        message.greeks.CopyFrom(
            option_chain_pb2.Greeks(
                delta=g.delta, gamma=g.gamma, theta=g.theta, vega=g.vega, rho=g.rho
            )
        )
    return message


def pricing_to_proto(p: PricingParameters) -> option_chain_pb2.PricingParameters:
    """A PricingParameters message."""
    return option_chain_pb2.PricingParameters(
        underlying_price=p.underlying_price,
        risk_free_rate=p.risk_free_rate,
        dividend_yield=p.dividend_yield,
        model=p.model,
        time_convention=p.time_convention,
        pricing_time=timestamp(p.pricing_time),
        price_basis=p.price_basis,
    )


def chain_to_proto(chain: OptionsChain) -> option_chain_pb2.OptionsChain:
    """An OptionsChain message with the pricing parameters that reproduce every number,
    built message by message: the reference the served encoding (chain_wire) is tested
    against."""
    return option_chain_pb2.OptionsChain(
        underlying=chain.underlying,
        underlying_quote=quote_to_proto(chain.underlying_quote),
        pricing=pricing_to_proto(chain.pricing),
        options=[option_to_proto(o) for o in chain.options],
        source=_SOURCE[chain.source],
    )


def history_to_proto(history: PriceHistory) -> list[price_history_pb2.PriceBar]:
    """PriceBar messages for a history."""
    return [
        price_history_pb2.PriceBar(
            start_time=timestamp(b.start_time),
            open=b.open,
            high=b.high,
            low=b.low,
            close=b.close,
            volume=b.volume,
        )
        for b in history.bars
    ]


def interval_from_proto(value: int) -> BarInterval | None:
    """The domain interval, or None for UNSPECIFIED/unknown."""
    return _INTERVAL.get(price_history_pb2.BarInterval.ValueType(value))


def interval_to_proto(interval: BarInterval) -> price_history_pb2.BarInterval.ValueType:
    """The contract's BarInterval value."""
    return _INTERVAL_BACK[interval]


def side_from_proto(value: int) -> ContractSide | None:
    """The domain side, or None for an unknown value."""
    sides: dict[int, ContractSide] = {
        svc.CONTRACT_SIDE_UNSPECIFIED: ContractSide.BOTH,
        svc.CONTRACT_SIDE_BOTH: ContractSide.BOTH,
        svc.CONTRACT_SIDE_CALLS: ContractSide.CALLS,
        svc.CONTRACT_SIDE_PUTS: ContractSide.PUTS,
    }
    return sides.get(value)
