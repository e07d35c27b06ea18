"""JSON over HTTP to a provider, within its request budget: retries with exponential backoff
(honouring Retry-After) for 429, 5xx, timeouts and garbled answers; exact decimals in bodies."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from optix_server.brokerage.connectors.errors import ProviderUnavailable, RateLimited
from optix_server.brokerage.money import decode_json
from optix_server.infra.logging import get_logger
from optix_server.infra.request_rate import RequestLimiter

log = get_logger(__name__)

# 503 and 429 say the request was not processed, so even a non-idempotent call may repeat.
_RETRY_ALWAYS = frozenset({429, 503})
_RETRY_IDEMPOTENT = frozenset({500, 502, 504})


class HttpRefused(Exception):
    """A 4xx answer other than 429, for the connector to classify (not a domain error itself)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"HTTP {status} {error}".strip())
        self.status = status
        # The OAuth `error` field (e.g. "invalid_grant") when the body carried one.
        self.error = error


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts, backoff and the longest Retry-After worth waiting for."""

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    # A Retry-After beyond this is not slept through: the caller gets RateLimited with it.
    max_retry_after: float = 60.0


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """One call to make: what to send, and whether repeating it is harmless."""

    method: str
    url: str
    # Names the call in logs instead of the URL, which may carry an account handle.
    label: str
    params: Mapping[str, str] | None = None
    data: Mapping[str, str] | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    idempotent: bool = True


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One attempt's verdict: a body, or a retryable problem (with a server-given delay)."""

    body: Any = None
    problem: str = ""
    retry_after: float | None = None
    rate_limited: bool = False


class ProviderHttp:
    """An httpx client for one provider app: budget, retries, error mapping, Decimal JSON."""

    def __init__(
        self,
        provider_name: str,
        limiter: RequestLimiter,
        *,
        timeout: float = 10.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        correlation_header: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._name = provider_name
        # A header carrying a fresh id per request (Schwab asks for Schwab-Client-CorrelId); it
        # also ties our log lines to the provider's.
        self._correlation_header = correlation_header
        self._limiter = limiter
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        # Provider redirects are never followed: an OAuth or data endpoint that redirects is
        # misconfigured, and following would resend credentials elsewhere.
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, follow_redirects=False
        )
        self.requests = 0
        self.retries = 0

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def request(self, call: ProviderRequest) -> Any:
        """The decoded JSON body (None when empty) of a 2xx answer. HttpRefused for other 4xx;
        RateLimited / ProviderUnavailable when retries run out. A non-idempotent call (a code
        exchange) is repeated only when the provider surely did not process it."""
        last = _Outcome(problem="no attempt made")
        for attempt in range(self._policy.max_attempts):
            await self._limiter.acquire()
            self.requests += 1
            outcome = await self._attempt(call)
            if not outcome.problem:
                return outcome.body
            last = outcome
            too_long = (outcome.retry_after or 0.0) > self._policy.max_retry_after
            if too_long or attempt + 1 >= self._policy.max_attempts:
                break
            delay = self._delay(attempt, outcome.retry_after)
            self.retries += 1
            log.info(
                "provider retry",
                provider=self._name,
                call=call.label,
                problem=outcome.problem,
                delay=round(delay, 3),
            )
            await self._sleep(delay)
        wait = timedelta(seconds=last.retry_after) if last.retry_after is not None else None
        if last.rate_limited:
            raise RateLimited(f"{self._name} is rate limiting requests", retry_after=wait)
        raise ProviderUnavailable(f"{self._name} is unavailable ({last.problem})", retry_after=wait)

    async def _attempt(self, call: ProviderRequest) -> _Outcome:
        headers = {"Accept": "application/json", **call.headers}
        if self._correlation_header:
            headers[self._correlation_header] = str(uuid.uuid4())
        try:
            response = await self._client.request(
                call.method,
                call.url,
                params=call.params,
                data=call.data,
                headers=headers,
                auth=call.auth,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never reached the provider: safe to repeat whatever the call.
            return _Outcome(problem=f"cannot connect: {type(exc).__name__}")
        except httpx.RequestError as exc:
            # Timeouts, resets, garbled compression: the provider may have seen the request.
            problem = f"transport error: {type(exc).__name__}"
            if call.idempotent:
                return _Outcome(problem=problem)
            raise ProviderUnavailable(f"{self._name} is unavailable ({problem})") from None
        return self._judge(response, call.idempotent)

    def _judge(self, response: httpx.Response, idempotent: bool) -> _Outcome:
        status = response.status_code
        if status == 429:
            return _Outcome(
                problem="HTTP 429",
                retry_after=_retry_after(response.headers.get("Retry-After", "")),
                rate_limited=True,
            )
        if status in _RETRY_ALWAYS or (idempotent and status in _RETRY_IDEMPOTENT):
            return _Outcome(
                problem=f"HTTP {status}",
                retry_after=_retry_after(response.headers.get("Retry-After", "")),
            )
        if status >= 500:
            raise ProviderUnavailable(f"{self._name} is unavailable (HTTP {status})")
        if 400 <= status < 500:
            raise HttpRefused(status, _oauth_error(response))
        if not 200 <= status < 300:
            # 1xx/3xx: an endpoint that redirects (often to a sign-in page) is not answering.
            return _Outcome(problem=f"unexpected HTTP {status}")
        if _looks_like_html(response):
            return _Outcome(problem="an HTML page instead of JSON")
        if not response.content.strip():
            return _Outcome(body=None)
        try:
            return _Outcome(body=decode_json(response.text))
        except (ValueError, RecursionError):
            return _Outcome(problem="malformed JSON")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        # Full jitter keeps many replicas from retrying in lockstep.
        ceiling = min(self._policy.backoff_cap, self._policy.backoff_base * 2**attempt)
        return self._rng.uniform(0, ceiling)


def _retry_after(value: str) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent."""
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _looks_like_html(response: httpx.Response) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    return "html" in content_type or response.content.lstrip()[:1] == b"<"


def _oauth_error(response: httpx.Response) -> str:
    """The `error` field of an OAuth-style error body, or ""; never the description (it may
    echo what we sent)."""
    if _looks_like_html(response):
        return ""
    try:
        body = decode_json(response.text)
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) and error.isascii() and len(error) <= 64 else ""
