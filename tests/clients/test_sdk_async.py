"""The async SDK against scripted services on a real grpc.aio server: auth, refresh, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import grpc
import pytest
from google.rpc import error_details_pb2

from optix.marketdata.v1 import marketdata_service_pb2
from optix.user.v1 import user_service_pb2
from optix_client import (
    ClientOptions,
    MfaRequiredError,
    OptixClient,
    OptixError,
    PasswordCredentials,
    RefreshTokenCredentials,
    StaticTokenCredentials,
    TokenProviderCredentials,
)
from tests.clients.clock import FakeClock
from tests.clients.fakes import MFA_PASSWORD, PASSWORD, FakeServer, fake_server

EMAIL = "ada@example.com"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeServer]:
    with fake_server(clock) as running:
        yield running


@pytest.fixture
async def client(fake: FakeServer, clock: FakeClock) -> AsyncIterator[OptixClient]:
    options = ClientOptions(clock=clock, default_timeout=5.0)
    async with OptixClient(
        fake.address, credentials=PasswordCredentials(EMAIL, PASSWORD), options=options
    ) as running:
        yield running


async def test_first_call_signs_in_and_carries_the_token(
    client: OptixClient, fake: FakeServer
) -> None:
    await client.user.GetMe(user_service_pb2.GetMeRequest())
    await client.user.GetMe(user_service_pb2.GetMeRequest())
    assert fake.calls.logins == 1
    assert fake.calls.authorization == ["Bearer access-1", "Bearer access-1"]


async def test_public_rpcs_carry_no_token_and_do_not_sign_in(
    client: OptixClient, fake: FakeServer
) -> None:
    await client.user.Login(user_service_pb2.LoginRequest(email=EMAIL, password=PASSWORD))
    assert fake.calls.logins == 1  # only the explicit call, no automatic sign-in before it


async def test_token_is_refreshed_before_expiry_once_for_concurrent_calls(
    client: OptixClient, fake: FakeServer, clock: FakeClock
) -> None:
    await client.user.GetMe(user_service_pb2.GetMeRequest())
    # Inside the refresh margin (30 s) of the 15-minute token: stale, although not expired.
    clock.advance(timedelta(minutes=15) - timedelta(seconds=10))
    await asyncio.gather(*(client.user.GetMe(user_service_pb2.GetMeRequest()) for _ in range(20)))
    assert fake.calls.refreshes == 1
    assert fake.calls.logins == 1
    assert set(fake.calls.authorization[1:]) == {"Bearer access-2"}


async def test_revoked_refresh_token_falls_back_to_password_login(
    client: OptixClient, fake: FakeServer, clock: FakeClock
) -> None:
    await client.user.GetMe(user_service_pb2.GetMeRequest())
    fake.users.live_refresh.clear()
    clock.advance(timedelta(hours=1))
    await client.user.GetMe(user_service_pb2.GetMeRequest())
    assert (fake.calls.refreshes, fake.calls.logins) == (1, 2)


async def test_saved_refresh_token_resumes_a_session(fake: FakeServer) -> None:
    async with OptixClient(fake.address) as first:
        await first.login(EMAIL, PASSWORD)
        saved = first.tokens.session.refresh_token
    assert saved is not None
    async with OptixClient(fake.address, credentials=RefreshTokenCredentials(saved)) as resumed:
        await resumed.user.GetMe(user_service_pb2.GetMeRequest())
    assert fake.calls.refreshes == 1


async def test_static_service_token_is_sent_as_is(fake: FakeServer) -> None:
    creds = StaticTokenCredentials("service-token")
    async with OptixClient(fake.address, credentials=creds) as service:
        await service.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="AAPL"))
    assert fake.calls.authorization == ["Bearer service-token"]
    assert fake.calls.logins == fake.calls.refreshes == 0


async def test_token_provider_is_asked_on_every_call(fake: FakeServer) -> None:
    minted = iter(["svc-1", "svc-2"])
    creds = TokenProviderCredentials(lambda: next(minted))
    async with OptixClient(fake.address, credentials=creds) as service:
        for _ in range(2):
            await service.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="X"))
    assert fake.calls.authorization == ["Bearer svc-1", "Bearer svc-2"]


async def test_errors_are_optix_errors_with_decoded_details(client: OptixClient) -> None:
    with pytest.raises(OptixError) as bad:
        await client.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="BAD"))
    assert bad.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.message == "bad symbol"
    assert bad.value.field_violations == {"symbol": "not a ticker or OCC symbol"}
    with pytest.raises(OptixError) as busy:
        await client.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="BUSY"))
    assert busy.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert busy.value.retry_delay == timedelta(seconds=7)
    assert busy.value.reason == "RESOURCE_EXHAUSTED"
    assert busy.value.detail(error_details_pb2.ErrorInfo) is not None


async def test_wrong_password_is_unauthenticated(fake: FakeServer) -> None:
    async with OptixClient(fake.address, credentials=PasswordCredentials(EMAIL, "nope")) as c:
        with pytest.raises(OptixError) as failure:
            await c.user.GetMe(user_service_pb2.GetMeRequest())
    assert failure.value.code is grpc.StatusCode.UNAUTHENTICATED


async def test_mfa_accounts_raise_mfa_required(fake: FakeServer) -> None:
    async with OptixClient(fake.address) as c:
        with pytest.raises(MfaRequiredError) as needed:
            await c.login(EMAIL, MFA_PASSWORD)
    assert needed.value.challenge_id == "challenge-1"


async def test_unavailable_is_retried_by_the_service_config(
    client: OptixClient, fake: FakeServer
) -> None:
    response = await client.marketdata.GetQuote(
        marketdata_service_pb2.GetQuoteRequest(symbol="FLAKY")
    )
    assert response.quote.symbol == "FLAKY"
    assert fake.calls.flaky_attempts == 3


async def test_unary_calls_get_the_default_deadline_and_streams_none(
    client: OptixClient, fake: FakeServer
) -> None:
    await client.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="AAPL"))
    request = marketdata_service_pb2.StreamQuotesRequest(symbols=["AAPL"])
    async for _ in client.marketdata.StreamQuotes(request):
        pass
    unary, stream = fake.calls.time_remaining
    # 5 s set by the client; the server's clock reads the deadline with a little slack.
    assert unary is not None and 0 < unary < 6.0
    assert stream is None


async def test_stream_messages_arrive_and_failures_raise_optix_error(client: OptixClient) -> None:
    request = marketdata_service_pb2.StreamQuotesRequest(symbols=["AAPL", "MSFT", "FAIL"])
    seen: list[str] = []
    with pytest.raises(OptixError) as failure:
        async for message in client.marketdata.StreamQuotes(request):
            seen.extend(q.symbol for q in message.quotes.quotes)
    assert seen == ["AAPL", "MSFT", "FAIL"]
    assert failure.value.code is grpc.StatusCode.NOT_FOUND


async def test_register_signs_in_and_logout_revokes(client: OptixClient, fake: FakeServer) -> None:
    response = await client.register(EMAIL, PASSWORD)
    assert response.user.email == EMAIL
    await client.user.GetMe(user_service_pb2.GetMeRequest())
    assert fake.calls.logins == 0
    await client.logout()
    assert fake.calls.logouts == 1
    assert fake.calls.authorization[-1] == "Bearer access-1"
    assert client.tokens.session.access_token is None
