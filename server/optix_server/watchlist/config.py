"""Watchlist limits, read from OPTIX_WATCHLIST_* variables by the slice itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from optix_server.infra.env import env_int


@dataclass(frozen=True)
class WatchlistSettings:
    """How many lists a user may keep and how many symbols a list may hold."""

    max_lists_per_user: int = 20
    max_symbols_per_list: int = 200

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WatchlistSettings:
        """Read OPTIX_WATCHLIST_MAX_LISTS / OPTIX_WATCHLIST_MAX_SYMBOLS (defaults above)."""
        base = cls()
        return cls(
            max_lists_per_user=env_int(
                env, "OPTIX_WATCHLIST_MAX_LISTS", base.max_lists_per_user, minimum=1
            ),
            max_symbols_per_list=env_int(
                env, "OPTIX_WATCHLIST_MAX_SYMBOLS", base.max_symbols_per_list, minimum=1
            ),
        )
