"""The Schwab connector against the local stand-in of the Trader API and its OAuth endpoints."""

from __future__ import annotations

import base64
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest

from optix_server.brokerage.config import SchwabSettings
from optix_server.brokerage.connectors.base import AuthorizationGrant, TokenSet, TransactionQuery
from optix_server.brokerage.connectors.errors import (
    AccessTokenExpired,
    AuthorizationRevoked,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    ReauthorizationRequired,
)
from optix_server.brokerage.connectors.models import (
    AccountType,
    InstrumentKind,
    PositionEffect,
    TransactionType,
)
from optix_server.brokerage.connectors.pkce import code_challenge
from optix_server.brokerage.connectors.schwab import SchwabConnector
from optix_server.common.occ import OptionRight
from optix_server.infra.errors import InvalidArgument
from optix_server.infra.grpc_errors import status_code_for
from optix_server.infra.request_rate import SlidingWindowLimiter
from tests.brokerage.support import VirtualTime
from tests.support.schwab_standin import (
    REDIRECT_URI,
    Fault,
    StandIn,
    margin_account,
    schwab_standin,
)

OTHER_REDIRECT = "https://app.example.com/brokerage/callback"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with schwab_standin() as running:
        yield running


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


def settings_for(standin: StandIn, **overrides: object) -> SchwabSettings:
    values: dict[str, object] = {
        "client_id": standin.client_id,
        "client_secret": standin.client_secret,
        "redirect_uris": (REDIRECT_URI, OTHER_REDIRECT),
        "oauth_url": standin.oauth_url,
        "trader_url": standin.trader_url,
        "requests_per_minute": 120,
    }
    values.update(overrides)
    return SchwabSettings(**values)  # type: ignore[arg-type]


def make_connector(standin: StandIn, vt: VirtualTime, **overrides: object) -> SchwabConnector:
    settings = settings_for(standin, **overrides)
    limiter = SlidingWindowLimiter(
        settings.requests_per_minute, 60.0, clock=vt.monotonic, sleep=vt.sleep
    )
    return SchwabConnector(settings, vt, limiter=limiter, sleep=vt.sleep, rng=random.Random(7))


@pytest.fixture
async def schwab(standin: StandIn, vt: VirtualTime) -> AsyncIterator[SchwabConnector]:
    connector = make_connector(standin, vt)
    yield connector
    await connector.close()


async def sign_in(connector: SchwabConnector, state: str = "state-123") -> TokenSet:
    """The whole dance: authorize URL -> the stand-in's redirect -> code exchange."""
    request = connector.authorization_request(state)
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(request.url)
    assert answer.status_code == 302
    redirect = urlsplit(answer.headers["Location"])
    query = parse_qs(redirect.query)
    assert query["state"] == [state]
    return await connector.exchange_code(
        AuthorizationGrant(
            code=query["code"][0],
            redirect_uri=request.redirect_uri,
            code_verifier=request.code_verifier,
        )
    )


async def test_full_oauth_code_exchange(
    schwab: SchwabConnector, standin: StandIn, vt: VirtualTime
) -> None:
    request = schwab.authorization_request("state-123")
    url = urlsplit(request.url)
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{standin.oauth_url}/authorize"
    assert params["client_id"] == standin.client_id
    assert params["redirect_uri"] == REDIRECT_URI
    assert params["response_type"] == "code"
    assert params["state"] == "state-123"
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] == code_challenge(request.code_verifier)
    assert request.code_verifier not in request.url

    tokens = await sign_in(schwab)
    token_call = standin.calls_to("/v1/oauth/token")[-1]
    expected = base64.b64encode(f"{standin.client_id}:{standin.client_secret}".encode()).decode()
    assert token_call.authorization == f"Basic {expected}"
    assert token_call.form["grant_type"] == ["authorization_code"]
    assert token_call.form["redirect_uri"] == [REDIRECT_URI]
    # The "@" Schwab ends codes with survived the redirect's %40.
    assert token_call.form["code"][0].endswith("@")
    assert "client_secret" not in token_call.form
    assert tokens.access_expires_at == vt.now() + timedelta(minutes=30)
    assert tokens.refresh_expires_at == vt.now() + timedelta(days=7)
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)
    assert [a.type for a in await schwab.list_accounts(tokens.access_token)] == [
        AccountType.MARGIN,
        AccountType.CASH,
    ]


async def test_pkce_is_checked_by_the_provider(standin: StandIn, vt: VirtualTime) -> None:
    standin.require_pkce = True
    connector = make_connector(standin, vt)
    try:
        request = connector.authorization_request("s")
        async with httpx.AsyncClient() as browser:
            location = (await browser.get(request.url)).headers["Location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        with pytest.raises(ProviderRejected) as info:
            await connector.exchange_code(
                AuthorizationGrant(code=code, redirect_uri=REDIRECT_URI, code_verifier="forged")
            )
        assert status_code_for(info.value) == grpc.StatusCode.FAILED_PRECONDITION
        # The code is single-use: even the right verifier cannot redeem it now.
        with pytest.raises(ProviderRejected):
            await connector.exchange_code(
                AuthorizationGrant(
                    code=code, redirect_uri=REDIRECT_URI, code_verifier=request.code_verifier
                )
            )
        assert (await sign_in(connector)).access_token
    finally:
        await connector.close()


async def test_without_pkce_no_challenge_is_sent(standin: StandIn, vt: VirtualTime) -> None:
    connector = make_connector(standin, vt, pkce=False)
    try:
        request = connector.authorization_request("s")
        assert "code_challenge" not in request.url and request.code_verifier == ""
        assert connector.provider.pkce is False
        assert (await sign_in(connector)).access_token
    finally:
        await connector.close()


async def test_wrong_client_secret_is_rejected(standin: StandIn, vt: VirtualTime) -> None:
    good = make_connector(standin, vt)
    bad = make_connector(standin, vt, client_secret="not-the-secret")
    try:
        request = good.authorization_request("s")
        async with httpx.AsyncClient() as browser:
            location = (await browser.get(request.url)).headers["Location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        with pytest.raises(ProviderRejected) as info:
            await bad.exchange_code(
                AuthorizationGrant(code, REDIRECT_URI, code_verifier=request.code_verifier)
            )
        assert "not-the-secret" not in info.value.message and code not in info.value.message
    finally:
        await good.close()
        await bad.close()


async def test_without_credentials_schwab_is_disabled(standin: StandIn, vt: VirtualTime) -> None:
    connector = make_connector(standin, vt, client_secret="")
    try:
        assert connector.provider.enabled is False
        with pytest.raises(ProviderRejected) as info:
            connector.authorization_request("s")
        assert status_code_for(info.value) == grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.reason == "PROVIDER_DISABLED"
    finally:
        await connector.close()


def test_redirect_uri_must_be_configured(schwab: SchwabConnector) -> None:
    assert schwab.authorization_request("s").redirect_uri == REDIRECT_URI
    assert schwab.authorization_request("s", OTHER_REDIRECT).redirect_uri == OTHER_REDIRECT
    with pytest.raises(InvalidArgument) as info:
        schwab.authorization_request("s", "https://evil.example/cb")
    assert [v.field for v in info.value.violations] == ["redirect_uri"]
    assert schwab.provider.redirect_uris == (REDIRECT_URI, OTHER_REDIRECT)
    assert schwab.provider.authorization_lifetime == timedelta(days=7)


async def test_refresh_never_extends_the_refresh_token(
    schwab: SchwabConnector, standin: StandIn, vt: VirtualTime
) -> None:
    tokens = await sign_in(schwab)
    vt.advance(timedelta(days=3))
    refreshed = await schwab.refresh(tokens)
    assert refreshed.access_token != tokens.access_token
    assert refreshed.refresh_token == tokens.refresh_token
    assert refreshed.access_expires_at == vt.now() + timedelta(minutes=30)
    assert refreshed.refresh_expires_at == tokens.refresh_expires_at
    call = standin.calls_to("/v1/oauth/token")[-1]
    assert call.form["grant_type"] == ["refresh_token"]
    assert call.authorization.startswith("Basic ")
    assert await schwab.list_accounts(refreshed.access_token)


async def test_refresh_past_the_seven_days_asks_for_reauthorisation(
    schwab: SchwabConnector, standin: StandIn, vt: VirtualTime
) -> None:
    tokens = await sign_in(schwab)
    vt.advance(timedelta(days=7))
    before = len(standin.calls)
    with pytest.raises(ReauthorizationRequired):
        await schwab.refresh(tokens)
    assert len(standin.calls) == before  # known dead: no request spent


async def test_a_refresh_token_refused_before_its_end_is_revoked_access(
    schwab: SchwabConnector, standin: StandIn
) -> None:
    tokens = await sign_in(schwab)
    standin.kill_refresh_tokens()
    with pytest.raises(AuthorizationRevoked) as info:
        await schwab.refresh(tokens)
    assert info.value.reason == "AUTHORIZATION_REVOKED"
    assert status_code_for(info.value) == grpc.StatusCode.FAILED_PRECONDITION
    assert tokens.refresh_token not in info.value.message
    # One answer, not retried: a 401 will not change its mind.
    assert len(standin.calls_to("/v1/oauth/token")) == 2


async def test_expired_access_token_then_refresh(schwab: SchwabConnector, standin: StandIn) -> None:
    tokens = await sign_in(schwab)
    standin.expire_access_tokens()
    with pytest.raises(AccessTokenExpired):
        await schwab.list_accounts(tokens.access_token)
    refreshed = await schwab.refresh(tokens)
    assert len(await schwab.list_accounts(refreshed.access_token)) == 2


async def test_429_burst_is_retried_after_retry_after(
    schwab: SchwabConnector, standin: StandIn, vt: VirtualTime
) -> None:
    tokens = await sign_in(schwab)
    standin.faults.extend([Fault(status=429, retry_after="7", path="/accounts")] * 3)
    accounts = await schwab.list_accounts(tokens.access_token)
    assert len(accounts) == 2
    assert vt.sleeps == [7.0, 7.0, 7.0]
    assert schwab.http.retries == 3
    # accountNumbers three times refused, then accountNumbers and accounts.
    assert len(standin.calls_to("/trader/v1/accounts")) == 5


async def test_429_with_a_long_retry_after_is_rate_limited_at_once(
    schwab: SchwabConnector, standin: StandIn, vt: VirtualTime
) -> None:
    tokens = await sign_in(schwab)
    standin.faults.append(Fault(status=429, retry_after="600", path="/accounts"))
    with pytest.raises(RateLimited) as info:
        await schwab.list_accounts(tokens.access_token)
    assert info.value.retry_after == timedelta(seconds=600)
    assert status_code_for(info.value) == grpc.StatusCode.UNAVAILABLE
    assert vt.sleeps == []


async def test_endless_429_gives_up_as_rate_limited(
    schwab: SchwabConnector, standin: StandIn
) -> None:
    tokens = await sign_in(schwab)
    standin.faults.extend([Fault(status=429, path="/accounts")] * 10)
    with pytest.raises(RateLimited):
        await schwab.list_accounts(tokens.access_token)
    assert len(standin.calls_to("/trader/v1/accounts")) == 5


async def test_5xx_is_retried_with_backoff_then_unavailable(
    schwab: SchwabConnector, standin: StandIn, vt: VirtualTime
) -> None:
    tokens = await sign_in(schwab)
    standin.faults.extend(
        [Fault(status=500, path="/accounts"), Fault(status=502, path="/accounts")]
    )
    assert len(await schwab.list_accounts(tokens.access_token)) == 2
    vt.sleeps.clear()
    standin.faults.extend([Fault(status=503, path="/accounts")] * 10)
    with pytest.raises(ProviderUnavailable) as info:
        await schwab.list_accounts(tokens.access_token)
    assert not isinstance(info.value, RateLimited)
    assert "HTTP 503" in info.value.message
    # Full jitter under an exponential ceiling: 0.5, 1, 2, 4 seconds.
    assert len(vt.sleeps) == 4
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(vt.sleeps))


async def test_code_exchange_is_not_repeated_after_a_500(
    schwab: SchwabConnector, standin: StandIn
) -> None:
    request = schwab.authorization_request("s")
    async with httpx.AsyncClient() as browser:
        location = (await browser.get(request.url)).headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    standin.faults.append(Fault(status=500, path="/token"))
    grant = AuthorizationGrant(code, REDIRECT_URI, code_verifier=request.code_verifier)
    with pytest.raises(ProviderUnavailable):
        await schwab.exchange_code(grant)
    assert len(standin.calls_to("/v1/oauth/token")) == 1
    # A 503 says "not processed": that one is retried, and the code still works.
    standin.faults.append(Fault(status=503, path="/token"))
    assert (await schwab.exchange_code(grant)).access_token


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (Fault(kind="malformed", path="/accounts"), "malformed JSON"),
        (Fault(kind="html", status=502, path="/accounts"), "HTTP 502"),
        (Fault(kind="html", status=200, path="/accounts"), "HTML page"),
        (Fault(kind="drop", path="/accounts"), "transport error"),
    ],
)
async def test_garbled_answers_are_retried_then_unavailable(
    schwab: SchwabConnector, standin: StandIn, fault: Fault, problem: str
) -> None:
    tokens = await sign_in(schwab)
    standin.faults.append(fault)
    assert len(await schwab.list_accounts(tokens.access_token)) == 2
    standin.faults.extend([fault] * 10)
    with pytest.raises(ProviderUnavailable) as info:
        await schwab.list_accounts(tokens.access_token)
    assert problem in info.value.message


async def test_unexpected_json_shape_is_a_provider_error(
    schwab: SchwabConnector, standin: StandIn
) -> None:
    tokens = await sign_in(schwab)
    standin.accounts = [{"securitiesAccount": {"type": "MARGIN"}}]
    with pytest.raises(ProviderUnavailable) as info:
        await schwab.list_accounts(tokens.access_token)
    assert info.value.reason == "PROVIDER_MALFORMED"
    account = margin_account()
    account["securitiesAccount"]["positions"][0]["longQuantity"] = "lots"
    standin.accounts = [account]
    with pytest.raises(ProviderUnavailable) as info:
        await schwab.list_accounts(tokens.access_token)
    assert "longQuantity" in info.value.message


async def test_accounts_balances_and_positions_are_exact(
    schwab: SchwabConnector, standin: StandIn
) -> None:
    tokens = await sign_in(schwab)
    margin, cash = await schwab.list_accounts(tokens.access_token)
    assert margin.provider_account_id == "HASH-MARGIN-5678"
    assert (margin.account_number_last4, margin.display_name) == ("5678", "Margin ...5678")
    assert "12345678" not in repr(margin)
    assert margin.balances.cash == Decimal("3500.5")  # cash plus the money market sweep
    assert margin.balances.buying_power == Decimal("15000.25")
    assert margin.balances.liquidation_value == Decimal("36789.12")
    by_symbol = {p.symbol: p for p in margin.positions}
    assert sorted(by_symbol) == [
        "AAPL",
        "AAPL  260619C00200000",
        "AMZN",
        "MSFT  260619P00400000",
        "SPY",
    ]  # the bond (a CUSIP) is skipped
    aapl = by_symbol["AAPL"]
    assert (aapl.quantity, aapl.average_cost) == (Decimal(100), Decimal("150.2512"))
    assert aapl.cost_basis == Decimal("15025.1200")
    assert by_symbol["AMZN"].quantity == Decimal("2.5")
    call = by_symbol["AAPL  260619C00200000"]
    assert call.holding.kind is InstrumentKind.OPTION and call.holding.option is not None
    assert call.holding.option.right is OptionRight.CALL
    assert call.holding.option.strike_thousandths == 200_000
    assert call.holding.underlying == "AAPL" and call.holding.multiplier == 100
    assert call.cost_basis == Decimal("1820.0")
    put = by_symbol["MSFT  260619P00400000"]
    assert (put.quantity, put.average_cost) == (Decimal(-1), Decimal("12.35"))
    assert put.market_value == Decimal("-1150.0")
    assert (cash.type, cash.balances.cash, cash.balances.buying_power) == (
        AccountType.CASH,
        Decimal("1200.0"),
        Decimal("1150.0"),
    )
    assert cash.positions == ()
    positions = await schwab.list_positions(tokens.access_token, margin.provider_account_id)
    assert [p.symbol for p in positions] == [p.symbol for p in margin.positions]
    with pytest.raises(ProviderRejected) as info:
        await schwab.list_positions(tokens.access_token, "HASH-NOPE")
    assert info.value.reason == "ACCOUNT_NOT_FOUND"


async def test_transactions_over_more_than_a_year_use_date_windows(
    schwab: SchwabConnector, standin: StandIn
) -> None:
    tokens = await sign_in(schwab)
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)
    found = await schwab.list_transactions(
        tokens.access_token, "HASH-MARGIN-5678", TransactionQuery(start, end)
    )
    windows = [
        (
            datetime.fromisoformat(c.query["startDate"][0]),
            datetime.fromisoformat(c.query["endDate"][0]),
        )
        for c in standin.calls_to("/transactions")
    ]
    assert len(windows) == 3
    assert windows[0][1] == end and windows[-1][0] == start
    assert all(hi - lo <= timedelta(days=365) for lo, hi in windows)
    assert all(windows[i][0] == windows[i + 1][1] for i in range(len(windows) - 1))
    assert len(found) == 30  # every month once, the canceled journal dropped
    assert len({t.provider_transaction_id for t in found}) == 30
    assert [t.time for t in found] == sorted(t.time for t in found)
    kinds = {t.type for t in found}
    assert kinds == {
        TransactionType.TRADE,
        TransactionType.DIVIDEND_OR_INTEREST,
        TransactionType.ACH_IN,
        TransactionType.ACH_OUT,
        TransactionType.FEE,
    }
    stock = next(t for t in found if t.holding and t.holding.symbol == "AAPL")
    assert (stock.quantity, stock.price, stock.fees, stock.amount) == (
        Decimal("10.0"),
        Decimal("190.0"),
        Decimal("0.65"),
        Decimal("-1900.65"),
    )
    option = next(t for t in found if t.holding and t.holding.kind is InstrumentKind.OPTION)
    assert option.quantity == Decimal("-1.0") and option.position_effect is PositionEffect.OPENING
    fee = next(t for t in found if t.type is TransactionType.FEE)
    assert (fee.amount, fee.fees, fee.holding) == (Decimal("-25.0"), Decimal("25.0"), None)


async def test_transactions_filtered_by_type(schwab: SchwabConnector, standin: StandIn) -> None:
    tokens = await sign_in(schwab)
    query = TransactionQuery(
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 12, 1, tzinfo=UTC),
        {TransactionType.ACH_IN},
    )
    found = await schwab.list_transactions(tokens.access_token, "HASH-MARGIN-5678", query)
    assert found and {t.type for t in found} == {TransactionType.ACH_IN}
    assert standin.calls_to("/transactions")[-1].query["types"] == ["ACH_RECEIPT"]


async def test_request_rate_is_honoured(standin: StandIn, vt: VirtualTime) -> None:
    standin.clock = vt.monotonic  # stamp arrivals on the same virtual timeline
    connector = make_connector(standin, vt, requests_per_minute=5)
    try:
        access, _ = standin.issue_tokens()
        for _ in range(12):
            await connector.list_positions(access, "HASH-MARGIN-5678")
    finally:
        await connector.close()
    stamps = [c.at for c in standin.calls_to("/trader/v1")]
    assert len(stamps) == 12
    assert max(sum(1 for s in stamps if t <= s < t + 60) for t in stamps) == 5
    assert vt.elapsed >= 120  # 12 requests at 5 a minute span at least two full windows


async def test_revoke(schwab: SchwabConnector, standin: StandIn) -> None:
    tokens = await sign_in(schwab)
    assert await schwab.revoke(tokens) is True
    assert standin.revoked == [tokens.refresh_token]
    with pytest.raises(ReauthorizationRequired):
        await schwab.refresh(tokens)
    standin.faults.append(Fault(status=404, path="/revoke"))
    assert await schwab.revoke(tokens) is False  # the provider offers no revocation
