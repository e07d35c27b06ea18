"""Market data settings, read once from OPTIX_MARKETDATA_* environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from optix_server.common.occ import SymbolError, normalize_ticker
from optix_server.common.quote_topic import DEMAND_LEASE_SECONDS
from optix_server.infra.env import SettingsError, env_bool, env_float, env_int, env_str
from optix_server.marketdata.providers.universe import SimulatedInstrument, stable_seed

PROVIDERS = ("simulated", "replay", "schwab")
SCHWAB_BASE_URL = "https://api.schwabapi.com/marketdata/v1"
MIB = 1024 * 1024

DEFAULT_UNIVERSE: tuple[SimulatedInstrument, ...] = (
    SimulatedInstrument("AAPL", 190.0, 0.26),
    SimulatedInstrument("MSFT", 410.0, 0.24),
    SimulatedInstrument("NVDA", 120.0, 0.50),
    SimulatedInstrument("AMZN", 180.0, 0.32),
    SimulatedInstrument("GOOGL", 165.0, 0.30),
    SimulatedInstrument("META", 500.0, 0.36),
    SimulatedInstrument("TSLA", 240.0, 0.58),
    SimulatedInstrument("AMD", 150.0, 0.48),
    SimulatedInstrument("SPY", 540.0, 0.14),
    SimulatedInstrument("QQQ", 470.0, 0.19),
)
DEFAULT_DIVIDEND_YIELDS: Mapping[str, float] = MappingProxyType(
    {
        "AAPL": 0.005,
        "MSFT": 0.007,
        "SPY": 0.013,
        "QQQ": 0.006,
    }
)


def parse_universe(raw: str, seed: int) -> tuple[SimulatedInstrument, ...]:
    """Parse "AAPL:190:0.25,MSFT,..." (price and volatility optional, derived from the seed)."""
    known = {i.symbol: i for i in DEFAULT_UNIVERSE}
    result: dict[str, SimulatedInstrument] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = item.split(":")
        try:
            symbol = normalize_ticker(parts[0])
        except SymbolError as exc:
            raise SettingsError(f"OPTIX_MARKETDATA_UNIVERSE: {parts[0]!r}: {exc}") from None
        if len(parts) == 3:
            try:
                price, vol = float(parts[1]), float(parts[2])
            except ValueError:
                raise SettingsError(f"OPTIX_MARKETDATA_UNIVERSE: bad numbers in {item!r}") from None
            if price <= 0 or vol <= 0:
                raise SettingsError(f"OPTIX_MARKETDATA_UNIVERSE: {item!r} needs price, vol > 0")
            result[symbol] = SimulatedInstrument(symbol, price, vol)
        elif len(parts) == 1:
            # Unknown tickers get a plausible price and volatility that depend only on the seed.
            h = stable_seed(seed, symbol, "universe")
            result[symbol] = known.get(symbol) or SimulatedInstrument(
                symbol, round(20 + (h % 48000) / 100, 2), 0.15 + (h >> 20) % 45 / 100
            )
        else:
            raise SettingsError(
                f"OPTIX_MARKETDATA_UNIVERSE: {item!r} must be SYMBOL or SYMBOL:PRICE:VOLATILITY"
            )
    if not result:
        raise SettingsError("OPTIX_MARKETDATA_UNIVERSE must name at least one symbol")
    return tuple(result.values())


def parse_yields(raw: str) -> dict[str, float]:
    """Parse "AAPL:0.005,SPY:0.013" into per-symbol continuous dividend yields."""
    yields: dict[str, float] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        symbol, _, value = item.partition(":")
        try:
            yields[normalize_ticker(symbol)] = float(value)
        except (SymbolError, ValueError):
            raise SettingsError(
                f"OPTIX_MARKETDATA_DIVIDEND_YIELDS: {item!r} must be SYMBOL:YIELD"
            ) from None
    return yields


def parse_epoch(raw: str) -> datetime | None:
    """Parse OPTIX_MARKETDATA_SIM_EPOCH (ISO-8601; UTC when no offset is given)."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"OPTIX_MARKETDATA_SIM_EPOCH must be ISO-8601, got {raw!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class MarketDataSettings:
    """How the market data slice gets and serves its data."""

    provider: str = "simulated"
    tick_rate: float = 2.0
    universe: tuple[SimulatedInstrument, ...] = DEFAULT_UNIVERSE
    seed: int = 42
    replay_file: Path | None = None
    replay_speed: float = 1.0
    replay_loop: bool = False
    schwab_base_url: str = SCHWAB_BASE_URL
    schwab_token: str | None = None
    schwab_token_file: Path | None = None
    schwab_requests_per_minute: int = 120
    schwab_poll_interval: float = 2.0
    schwab_timeout: float = 10.0
    risk_free_rate: float = 0.045
    dividend_yields: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_DIVIDEND_YIELDS)
    )
    quote_cache_ttl: float = 2.0
    # Whether this process may run the provider's live feed and publish ticks to pub/sub. The
    # replicas that may elect one owner through a lease in the cache (Redis when shared); when
    # the owner stops or vanishes, another takes over within feed_owner_lease_seconds.
    feed_owner: bool = True
    feed_owner_lease_seconds: float = 2.4
    # Start of the simulated market. Replicas sharing seed, universe and epoch show the same
    # prices and sequences; None means "when the process started" (fine for one process).
    sim_epoch: datetime | None = None
    max_stream_symbols: int = 500
    demand_lease_seconds: float = DEMAND_LEASE_SECONDS
    # Memory for priced chains shared by the requests of one market update (least recently
    # used underlyings go first); a full 3,900-contract chain holds about 1.6 MB.
    chain_cache_bytes: int = 64 * MIB
    # Most contracts one GetOptionsChain response carries (more is INVALID_ARGUMENT). The
    # default admits the largest simulated full chain (QQQ, 3,912) with room for real ones,
    # and keeps a response (about 160 bytes a contract) well under gRPC's default 4 MB
    # receive limit of clients.
    max_chain_contracts: int = 10_000

    def dividend_yield(self, symbol: str) -> float:
        """The continuous dividend yield used for `symbol` (0 when not configured)."""
        return self.dividend_yields.get(symbol, 0.0)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MarketDataSettings:
        """Read OPTIX_MARKETDATA_* variables."""
        provider = env_str(env, "OPTIX_MARKETDATA_PROVIDER", "simulated").lower()
        if provider not in PROVIDERS:
            raise SettingsError(
                f"OPTIX_MARKETDATA_PROVIDER must be one of {', '.join(PROVIDERS)}, got {provider!r}"
            )
        seed = env_int(env, "OPTIX_MARKETDATA_SEED", 42)
        universe_raw = env.get("OPTIX_MARKETDATA_UNIVERSE", "").strip()
        replay_file = env.get("OPTIX_MARKETDATA_REPLAY_FILE", "").strip()
        token_file = env.get("OPTIX_MARKETDATA_SCHWAB_TOKEN_FILE", "").strip()
        yields = dict(DEFAULT_DIVIDEND_YIELDS)
        yields.update(parse_yields(env.get("OPTIX_MARKETDATA_DIVIDEND_YIELDS", "")))
        settings = cls(
            provider=provider,
            tick_rate=env_float(env, "OPTIX_MARKETDATA_TICK_RATE", 2.0, minimum=0.001),
            universe=parse_universe(universe_raw, seed) if universe_raw else DEFAULT_UNIVERSE,
            seed=seed,
            replay_file=Path(replay_file) if replay_file else None,
            replay_speed=env_float(env, "OPTIX_MARKETDATA_REPLAY_SPEED", 1.0, minimum=0.0),
            replay_loop=env_bool(env, "OPTIX_MARKETDATA_REPLAY_LOOP", False),
            schwab_base_url=env_str(env, "OPTIX_MARKETDATA_SCHWAB_BASE_URL", SCHWAB_BASE_URL),
            schwab_token=env.get("OPTIX_MARKETDATA_SCHWAB_TOKEN") or None,
            schwab_token_file=Path(token_file) if token_file else None,
            schwab_requests_per_minute=env_int(
                env, "OPTIX_MARKETDATA_SCHWAB_REQUESTS_PER_MINUTE", 120, minimum=1
            ),
            schwab_poll_interval=env_float(
                env, "OPTIX_MARKETDATA_SCHWAB_POLL_SECONDS", 2.0, minimum=0.1
            ),
            risk_free_rate=env_float(env, "OPTIX_MARKETDATA_RISK_FREE_RATE", 0.045),
            dividend_yields=yields,
            quote_cache_ttl=env_float(env, "OPTIX_MARKETDATA_QUOTE_CACHE_TTL", 2.0, minimum=0.0),
            feed_owner=env_bool(env, "OPTIX_MARKETDATA_FEED_OWNER", True),
            feed_owner_lease_seconds=env_float(
                env, "OPTIX_MARKETDATA_FEED_OWNER_LEASE_SECONDS", 2.4, minimum=0.3
            ),
            sim_epoch=parse_epoch(env.get("OPTIX_MARKETDATA_SIM_EPOCH", "")),
            max_stream_symbols=env_int(env, "OPTIX_MARKETDATA_MAX_STREAM_SYMBOLS", 500, minimum=1),
            chain_cache_bytes=env_int(env, "OPTIX_MARKETDATA_CHAIN_CACHE_MB", 64, minimum=0) * MIB,
            max_chain_contracts=env_int(
                env, "OPTIX_MARKETDATA_MAX_CHAIN_CONTRACTS", 10_000, minimum=1
            ),
        )
        if provider == "replay" and settings.replay_file is None:
            raise SettingsError("OPTIX_MARKETDATA_REPLAY_FILE is required with the replay provider")
        if provider == "schwab" and not (settings.schwab_token or settings.schwab_token_file):
            raise SettingsError(
                "OPTIX_MARKETDATA_SCHWAB_TOKEN or OPTIX_MARKETDATA_SCHWAB_TOKEN_FILE is required "
                "with the schwab provider"
            )
        return settings
