"""The sync OPTIX client for scripts and threads: same shape as OptixClient, blocking calls."""

from __future__ import annotations

from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2_grpc

from optix.alert.v1 import alert_service_pb2_grpc
from optix.brokerage.v1 import brokerage_service_pb2_grpc
from optix.marketdata.v1 import marketdata_service_pb2_grpc
from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from optix.watchlist.v1 import watchlist_service_pb2_grpc
from optix_client.auth_sync import SyncTokenManager
from optix_client.config import ClientOptions
from optix_client.credentials import Credentials
from optix_client.interceptors_sync import SyncCallInterceptor
from optix_client.retry import channel_options
from optix_client.session import Session


def _channel(target: str, options: ClientOptions) -> grpc.Channel:
    opts = channel_options(options.retry, options.extra_channel_options)
    if options.secure:
        creds = grpc.ssl_channel_credentials(root_certificates=options.root_certificates)
        return grpc.secure_channel(target, creds, options=opts)
    return grpc.insecure_channel(target, options=opts)


class SyncOptixClient:
    """Blocking client: `with SyncOptixClient(target, credentials=...) as c:` then
    `c.marketdata.GetQuote(...)`; failures raise OptixError."""

    def __init__(
        self,
        target: str,
        *,
        credentials: Credentials | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        self.options = options or ClientOptions()
        self._session = Session(clock=self.options.clock, margin=self.options.refresh_margin)
        self._raw_channel = _channel(target, self.options)
        interceptor = SyncCallInterceptor(
            self._access_token, self.options.default_timeout, self.options.user_agent
        )
        self.channel = grpc.intercept_channel(self._raw_channel, interceptor)
        self._user = user_service_pb2_grpc.UserServiceStub(self.channel)
        timeout = self.options.default_timeout or 10.0
        self.tokens = SyncTokenManager(self._session, self._user, credentials, timeout)
        self._marketdata = marketdata_service_pb2_grpc.MarketDataServiceStub(self.channel)
        self._watchlist = watchlist_service_pb2_grpc.WatchlistServiceStub(self.channel)
        self._brokerage = brokerage_service_pb2_grpc.BrokerageServiceStub(self.channel)
        self._alert = alert_service_pb2_grpc.AlertServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def _access_token(self) -> str | None:
        return self.tokens.access_token()

    @property
    def user(self) -> user_service_pb2_grpc.UserServiceStub:
        """optix.user.v1.UserService."""
        return self._user

    @property
    def marketdata(self) -> marketdata_service_pb2_grpc.MarketDataServiceStub:
        """optix.marketdata.v1.MarketDataService."""
        return self._marketdata

    @property
    def watchlist(self) -> watchlist_service_pb2_grpc.WatchlistServiceStub:
        """optix.watchlist.v1.WatchlistService."""
        return self._watchlist

    @property
    def brokerage(self) -> brokerage_service_pb2_grpc.BrokerageServiceStub:
        """optix.brokerage.v1.BrokerageService."""
        return self._brokerage

    @property
    def alert(self) -> alert_service_pb2_grpc.AlertServiceStub:
        """optix.alert.v1.AlertService."""
        return self._alert

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        """grpc.health.v1.Health (public)."""
        return self._health

    def login(self, email: str, password: str) -> None:
        """Sign in; later calls carry the token, refreshed before it expires."""
        self.tokens.login(email, password)

    def register(
        self, email: str, password: str, *, display_name: str = "", time_zone: str = ""
    ) -> user_service_pb2.RegisterResponse:
        """Create an account and sign in with it."""
        request = user_service_pb2.RegisterRequest(
            email=email, password=password, display_name=display_name, time_zone=time_zone
        )
        return self.tokens.register(request)

    def logout(self) -> None:
        """End the session on the server and forget the tokens."""
        self.tokens.logout()

    def close(self) -> None:
        """Close the channel."""
        self._raw_channel.close()

    def __enter__(self) -> SyncOptixClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
