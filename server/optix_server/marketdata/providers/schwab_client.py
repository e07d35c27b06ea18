"""HTTP access to Schwab's market data API: bearer token, rate limit, retries with backoff."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from optix_server.infra.logging import get_logger
from optix_server.infra.request_rate import SlidingWindowLimiter
from optix_server.marketdata.providers.base import ProviderError, UnknownSymbolError

log = get_logger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class TokenSource:
    """The app's OAuth access token: fixed, or re-read from a token file (which an external
    refresher keeps current) whenever Schwab answers 401."""

    def __init__(self, token: str | None = None, token_file: Path | None = None) -> None:
        if not token and token_file is None:
            raise ValueError("a token or a token file is required")
        self._token = token
        self._file = token_file
        self._cached: str | None = token

    def _read_file(self) -> str:
        assert self._file is not None
        raw = self._file.read_text().strip()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return raw
        # Accept {"access_token": ...} and schwab-py's {"token": {"access_token": ...}}.
        if isinstance(data, dict):
            inner = data.get("token", data)
            if isinstance(inner, dict) and isinstance(inner.get("access_token"), str):
                return str(inner["access_token"])
        raise ValueError(f"{self._file} holds no access_token")

    def current(self) -> str:
        """The token to send."""
        if self._cached is None:
            self._cached = self._read_file()
        return self._cached

    def refresh(self) -> bool:
        """Re-read the token file; whether that produced a different token."""
        if self._file is None:
            return False
        old, self._cached = self._cached, self._read_file()
        return self._cached != old


class SchwabHttp:
    """GET JSON from the market data API with the limiter, retries and error mapping."""

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        limiter: SlidingWindowLimiter,
        *,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", timeout=timeout, transport=transport
        )
        self._token = token
        self._limiter = limiter
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self.requests = 0
        self.retries = 0

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            try:
                return min(float(retry_after), self._backoff_cap * 4)
            except ValueError:
                pass
        # Full jitter keeps many replicas from retrying in lockstep.
        return random.uniform(0, min(self._backoff_cap, self._backoff_base * 2**attempt))

    async def get(self, path: str, params: Mapping[str, str | int | float | bool]) -> Any:
        """The decoded JSON body of GET `path`; ProviderError when the API stays unhappy."""
        refreshed = False
        last_problem = "no attempt made"
        for attempt in range(self._max_attempts):
            await self._limiter.acquire()
            self.requests += 1
            response: httpx.Response | None = None
            try:
                response = await self._client.get(
                    path.lstrip("/"),
                    params={
                        k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()
                    },
                    headers={
                        "Authorization": f"Bearer {self._token.current()}",
                        "Accept": "application/json",
                    },
                )
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise ProviderError(f"Schwab sent invalid JSON for {path}") from exc
                if response.status_code == 401 and not refreshed:
                    refreshed = True
                    if self._token.refresh():
                        continue
                    raise ProviderError("Schwab rejected the access token (401)")
                if response.status_code == 404:
                    raise UnknownSymbolError(f"Schwab has no data at {path}")
                if response.status_code not in RETRY_STATUSES:
                    raise ProviderError(f"Schwab answered {response.status_code} for {path}")
                last_problem = f"HTTP {response.status_code}"
            if attempt + 1 < self._max_attempts:
                self.retries += 1
                delay = self._delay(attempt, response)
                log.info("schwab retry", path=path, problem=last_problem, delay=round(delay, 3))
                await self._sleep(delay)
        raise ProviderError(f"Schwab unavailable for {path}: {last_problem}")
