"""Builds the provider OPTIX_MARKETDATA_PROVIDER names."""

from __future__ import annotations

from optix_server.common.exchange_calendar import us_options_calendar
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.providers.base import MarketDataProvider
from optix_server.marketdata.providers.simulated import SimulatedProvider


def create_provider(settings: MarketDataSettings) -> MarketDataProvider:
    """The configured provider (simulated by default)."""
    # Loaded here, while the server starts (~2 s of pandas), so that no request pays for it:
    # every provider's expirations are filtered on it.
    market_calendar = us_options_calendar()
    if settings.provider == "replay":
        from optix_server.marketdata.providers.replay import ReplayProvider

        assert settings.replay_file is not None  # enforced by MarketDataSettings.from_env
        return ReplayProvider(
            settings.replay_file,
            speed=settings.replay_speed,
            loop=settings.replay_loop,
            market_calendar=market_calendar,
        )
    if settings.provider == "schwab":
        from optix_server.marketdata.providers.schwab import SchwabProvider, TokenSource

        return SchwabProvider(
            base_url=settings.schwab_base_url,
            token=TokenSource(settings.schwab_token, settings.schwab_token_file),
            requests_per_minute=settings.schwab_requests_per_minute,
            poll_interval=settings.schwab_poll_interval,
            timeout=settings.schwab_timeout,
        )
    return SimulatedProvider(
        settings.universe,
        seed=settings.seed,
        tick_rate=settings.tick_rate,
        risk_free_rate=settings.risk_free_rate,
        dividend_yields=settings.dividend_yields,
        start_time=settings.sim_epoch,
        market_calendar=market_calendar,
    )
