"""The sync SDK: same behaviour as the async one, from threads."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import pytest

from optix.marketdata.v1 import marketdata_service_pb2
from optix.user.v1 import user_service_pb2
from optix_client import (
    ClientOptions,
    MfaRequiredError,
    OptixError,
    PasswordCredentials,
    SyncOptixClient,
)
from tests.clients.clock import FakeClock
from tests.clients.fakes import MFA_PASSWORD, PASSWORD, FakeServer, fake_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeServer]:
    with fake_server(clock) as running:
        yield running


def _signed_in_client(fake: FakeServer, clock: FakeClock) -> SyncOptixClient:
    """A sync client with a password and the test clock."""
    options = ClientOptions(clock=clock, default_timeout=5.0)
    creds = PasswordCredentials("ada@example.com", PASSWORD)
    return SyncOptixClient(fake.address, credentials=creds, options=options)


def test_sync_client_signs_in_refreshes_once_and_raises_optix_error(
    fake: FakeServer, clock: FakeClock
) -> None:
    with _signed_in_client(fake, clock) as client:
        client.user.GetMe(user_service_pb2.GetMeRequest())
        clock.advance(timedelta(hours=1))
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: client.user.GetMe(user_service_pb2.GetMeRequest()), range(16)))
        with pytest.raises(OptixError) as bad:
            client.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="BAD"))
    assert (fake.calls.logins, fake.calls.refreshes) == (1, 1)
    assert bad.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.field_violations == {"symbol": "not a ticker or OCC symbol"}


def test_sync_retries_and_streams(fake: FakeServer) -> None:
    with SyncOptixClient(fake.address) as client:
        reply = client.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="FLAKY"))
        request = marketdata_service_pb2.StreamQuotesRequest(symbols=["AAPL", "FAIL"])
        seen: list[str] = []
        with pytest.raises(OptixError) as failure:
            for message in client.marketdata.StreamQuotes(request):
                seen.extend(q.symbol for q in message.quotes.quotes)
    assert reply.quote.symbol == "FLAKY" and fake.calls.flaky_attempts == 3
    assert seen == ["AAPL", "FAIL"]
    assert failure.value.code is grpc.StatusCode.NOT_FOUND
    # Three unary attempts (each under the default deadline), then the stream (none).
    *unary, stream = fake.calls.time_remaining
    assert all(t is not None for t in unary) and stream is None


def test_sync_revoked_refresh_token_falls_back_to_password_login(
    fake: FakeServer, clock: FakeClock
) -> None:
    with _signed_in_client(fake, clock) as client:
        client.user.GetMe(user_service_pb2.GetMeRequest())
        fake.users.live_refresh.clear()
        clock.advance(timedelta(hours=1))
        client.user.GetMe(user_service_pb2.GetMeRequest())
    assert (fake.calls.refreshes, fake.calls.logins) == (1, 2)


def test_sync_mfa_login_and_logout(fake: FakeServer) -> None:
    with SyncOptixClient(fake.address) as client:
        with pytest.raises(MfaRequiredError) as needed:
            client.login("ada@example.com", MFA_PASSWORD)
        assert needed.value.challenge_id == "challenge-1"
        client.login("ada@example.com", PASSWORD)
        client.user.GetMe(user_service_pb2.GetMeRequest())
        client.logout()
        assert client.tokens.session.access_token is None
    assert fake.calls.logouts == 1
