"""The async OPTIX client: one grpc.aio channel, a typed stub per service, auth handled for you."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2_grpc

from optix.alert.v1 import alert_service_pb2_grpc
from optix.brokerage.v1 import brokerage_service_pb2_grpc
from optix.marketdata.v1 import marketdata_service_pb2_grpc
from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from optix.watchlist.v1 import watchlist_service_pb2_grpc
from optix_client.auth_async import AsyncTokenManager
from optix_client.config import ClientOptions
from optix_client.credentials import Credentials
from optix_client.interceptors_async import CallDecorator, interceptors
from optix_client.retry import channel_options
from optix_client.session import Session

if TYPE_CHECKING:
    from optix.alert.v1.alert_service_pb2_grpc import AlertServiceAsyncStub
    from optix.brokerage.v1.brokerage_service_pb2_grpc import BrokerageServiceAsyncStub
    from optix.marketdata.v1.marketdata_service_pb2_grpc import MarketDataServiceAsyncStub
    from optix.user.v1.user_service_pb2_grpc import UserServiceAsyncStub
    from optix.watchlist.v1.watchlist_service_pb2_grpc import WatchlistServiceAsyncStub


def _aio_channel(target: str, options: ClientOptions, decorator: CallDecorator) -> grpc.aio.Channel:
    opts = channel_options(options.retry, options.extra_channel_options)
    chain = interceptors(decorator)
    if options.secure:
        creds = grpc.ssl_channel_credentials(root_certificates=options.root_certificates)
        return grpc.aio.secure_channel(target, creds, options=opts, interceptors=chain)
    return grpc.aio.insecure_channel(target, options=opts, interceptors=chain)


class OptixClient:
    """Async client. `async with OptixClient("127.0.0.1:50051", credentials=...) as c:` then
    `await c.marketdata.GetQuote(...)`; failures raise OptixError."""

    def __init__(
        self,
        target: str,
        *,
        credentials: Credentials | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        self.options = options or ClientOptions()
        self._session = Session(clock=self.options.clock, margin=self.options.refresh_margin)
        decorator = CallDecorator(
            self._access_token, self.options.default_timeout, self.options.user_agent
        )
        self.channel = _aio_channel(target, self.options, decorator)
        self._user = user_service_pb2_grpc.UserServiceStub(self.channel)
        timeout = self.options.default_timeout or 10.0
        self.tokens = AsyncTokenManager(self._session, self._user, credentials, timeout)
        self._marketdata = marketdata_service_pb2_grpc.MarketDataServiceStub(self.channel)
        self._watchlist = watchlist_service_pb2_grpc.WatchlistServiceStub(self.channel)
        self._brokerage = brokerage_service_pb2_grpc.BrokerageServiceStub(self.channel)
        self._alert = alert_service_pb2_grpc.AlertServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    async def _access_token(self) -> str | None:
        return await self.tokens.access_token()

    @property
    def user(self) -> UserServiceAsyncStub:
        """optix.user.v1.UserService."""
        return self._user

    @property
    def marketdata(self) -> MarketDataServiceAsyncStub:
        """optix.marketdata.v1.MarketDataService."""
        return self._marketdata

    @property
    def watchlist(self) -> WatchlistServiceAsyncStub:
        """optix.watchlist.v1.WatchlistService."""
        return self._watchlist

    @property
    def brokerage(self) -> BrokerageServiceAsyncStub:
        """optix.brokerage.v1.BrokerageService."""
        return self._brokerage

    @property
    def alert(self) -> AlertServiceAsyncStub:
        """optix.alert.v1.AlertService."""
        return self._alert

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        """grpc.health.v1.Health (public)."""
        return self._health

    async def login(self, email: str, password: str) -> None:
        """Sign in; later calls carry the token, refreshed before it expires."""
        await self.tokens.login(email, password)

    async def register(
        self, email: str, password: str, *, display_name: str = "", time_zone: str = ""
    ) -> user_service_pb2.RegisterResponse:
        """Create an account and sign in with it."""
        request = user_service_pb2.RegisterRequest(
            email=email, password=password, display_name=display_name, time_zone=time_zone
        )
        return await self.tokens.register(request)

    async def logout(self) -> None:
        """End the session on the server and forget the tokens."""
        await self.tokens.logout()

    async def close(self) -> None:
        """Close the channel (cancels open calls)."""
        await self.channel.close()

    async def __aenter__(self) -> OptixClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
