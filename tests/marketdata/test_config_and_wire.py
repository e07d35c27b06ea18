"""Settings from OPTIX_MARKETDATA_* variables, and the pre-encoded stream message format."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix_server.infra.env import SettingsError
from optix_server.infra.registration import serialize_or_pass
from optix_server.infra.settings import Settings
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.convert import encode_quote
from optix_server.marketdata.streaming import tick_from_payload
from optix_server.marketdata.wire import quote_batch_response
from tests.marketdata.test_streaming import quote


def test_defaults_and_settings_section() -> None:
    md = MarketDataSettings.from_env(Settings.from_env({}).env)
    assert md == MarketDataSettings()
    assert md.provider == "simulated" and md.max_stream_symbols == 500
    assert len(md.universe) == 10 and md.dividend_yield("SPY") > 0


def test_reads_every_variable(tmp_path: Path) -> None:
    ticks = tmp_path / "ticks.csv"
    md = MarketDataSettings.from_env(
        {
            "OPTIX_MARKETDATA_PROVIDER": "REPLAY",
            "OPTIX_MARKETDATA_REPLAY_FILE": str(ticks),
            "OPTIX_MARKETDATA_REPLAY_SPEED": "10",
            "OPTIX_MARKETDATA_TICK_RATE": "10",
            "OPTIX_MARKETDATA_UNIVERSE": "aapl:190:0.3, zzz",
            "OPTIX_MARKETDATA_SEED": "9",
            "OPTIX_MARKETDATA_DIVIDEND_YIELDS": "zzz:0.02",
            "OPTIX_MARKETDATA_RISK_FREE_RATE": "0.04",
            "OPTIX_MARKETDATA_QUOTE_CACHE_TTL": "0.5",
            "OPTIX_MARKETDATA_FEED_OWNER": "false",
            "OPTIX_MARKETDATA_SIM_EPOCH": "2026-01-02T00:00:00",
            "OPTIX_MARKETDATA_CHAIN_CACHE_MB": "8",
            "OPTIX_MARKETDATA_MAX_CHAIN_CONTRACTS": "2000",
        }
    )
    assert md.provider == "replay" and md.replay_file == ticks and md.replay_speed == 10
    assert [u.symbol for u in md.universe] == ["AAPL", "ZZZ"]
    assert md.universe[0].initial_price == 190 and md.universe[0].volatility == 0.3
    assert md.dividend_yield("ZZZ") == 0.02 and md.risk_free_rate == 0.04
    assert not md.feed_owner and md.quote_cache_ttl == 0.5
    assert md.sim_epoch == datetime(2026, 1, 2, tzinfo=UTC)
    assert md.chain_cache_bytes == 8 * 1024 * 1024 and md.max_chain_contracts == 2000


@pytest.mark.parametrize(
    "env",
    [
        {"OPTIX_MARKETDATA_PROVIDER": "bloomberg"},
        {"OPTIX_MARKETDATA_PROVIDER": "replay"},
        {"OPTIX_MARKETDATA_PROVIDER": "schwab"},
        {"OPTIX_MARKETDATA_UNIVERSE": "AAPL:-1:0.2"},
        {"OPTIX_MARKETDATA_UNIVERSE": "NOT A TICKER"},
        {"OPTIX_MARKETDATA_TICK_RATE": "fast"},
        {"OPTIX_MARKETDATA_DIVIDEND_YIELDS": "AAPL"},
        {"OPTIX_MARKETDATA_SIM_EPOCH": "yesterday"},
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="OPTIX_MARKETDATA_"):
        MarketDataSettings.from_env(env)


def test_pre_encoded_batch_is_a_valid_stream_message() -> None:
    ticks = [tick_from_payload(encode_quote(quote(s, i + 1))) for i, s in enumerate("ABC")]
    raw = serialize_or_pass(quote_batch_response([t.framed for t in ticks]))
    message = pb.StreamQuotesResponse.FromString(raw)
    assert message.WhichOneof("payload") == "quotes"
    assert [(q.symbol, q.sequence) for q in message.quotes.quotes] == [("A", 1), ("B", 2), ("C", 3)]
    heartbeat = pb.StreamQuotesResponse()
    heartbeat.heartbeat.SetInParent()
    assert serialize_or_pass(heartbeat) == heartbeat.SerializeToString()
    # Large quotes need multi-byte lengths; the framing must still parse.
    big = [tick_from_payload(encode_quote(quote("X" * 9, 300)))] * 20
    parsed = pb.StreamQuotesResponse.FromString(quote_batch_response([t.framed for t in big]))
    assert len(parsed.quotes.quotes) == 20
