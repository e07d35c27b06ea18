"""Build the Envoy Bootstrap for the OPTIX edge: grpc-web + native gRPC in front of the services."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from envoy_data_plane.envoy.config.bootstrap.v3 import Admin, Bootstrap, BootstrapStaticResources
from envoy_data_plane.envoy.config.cluster.v3 import (
    CircuitBreakers,
    CircuitBreakersThresholds,
    Cluster,
    ClusterDiscoveryType,
    ClusterDnsLookupFamily,
)
from envoy_data_plane.envoy.config.core.v3 import (
    Address,
    DataSource,
    HealthCheck,
    HealthCheckGrpcHealthCheck,
    Http2ProtocolOptions,
    KeepaliveSettings,
    RuntimeFractionalPercent,
    SocketAddress,
    TypedExtensionConfig,
)
from envoy_data_plane.envoy.config.endpoint.v3 import (
    ClusterLoadAssignment,
    Endpoint,
    LbEndpoint,
    LocalityLbEndpoints,
)
from envoy_data_plane.envoy.config.listener.v3 import Filter, FilterChain, Listener
from envoy_data_plane.envoy.config.overload.v3 import OverloadManager, ResourceMonitor
from envoy_data_plane.envoy.config.route.v3 import (
    DirectResponseAction,
    HeaderMatcher,
    Route,
    RouteAction,
    RouteActionMaxStreamDuration,
    RouteConfiguration,
    RouteMatch,
    VirtualHost,
)
from envoy_data_plane.envoy.extensions.common.matching.v3 import ExtensionWithMatcher
from envoy_data_plane.envoy.extensions.filters.common.matcher.action.v3 import SkipFilter
from envoy_data_plane.envoy.extensions.filters.http.cors.v3 import Cors, CorsPolicy
from envoy_data_plane.envoy.extensions.filters.http.grpc_web.v3 import GrpcWeb
from envoy_data_plane.envoy.extensions.filters.http.local_ratelimit.v3 import LocalRateLimit
from envoy_data_plane.envoy.extensions.filters.http.lua.v3 import Lua
from envoy_data_plane.envoy.extensions.filters.http.router.v3 import Router
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
    HttpConnectionManager,
    HttpConnectionManagerCodecType,
    HttpFilter,
)
from envoy_data_plane.envoy.extensions.resource_monitors.downstream_connections.v3 import (
    DownstreamConnectionsConfig,
)
from envoy_data_plane.envoy.extensions.upstreams.http.v3 import (
    HttpProtocolOptions,
    HttpProtocolOptionsExplicitHttpConfig,
)
from envoy_data_plane.envoy.type.matcher.v3 import (
    HttpRequestHeaderMatchInput,
    RegexMatcher,
    StringMatcher,
)
from envoy_data_plane.envoy.type.v3 import FractionalPercent, TokenBucket
from envoy_data_plane.google.protobuf import Any
from envoy_data_plane.xds.core.v3 import TypedExtensionConfig as XdsExtension
from envoy_data_plane.xds.type.matcher.v3 import (
    Matcher,
    MatcherMatcherList,
    MatcherMatcherListFieldMatcher,
    MatcherMatcherListPredicate,
    MatcherMatcherListPredicateSinglePredicate,
    MatcherOnMatch,
)
from envoy_data_plane.xds.type.matcher.v3 import StringMatcher as XdsStringMatcher

from optix_edge.services import RoutedService
from optix_edge.settings import DEFAULT_CORS_ORIGIN_REGEX, EdgeSettings, Upstream

DEFAULT_CLUSTER = "optix_default"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
HCM_NAME = "envoy.filters.network.http_connection_manager"
CORS_FILTER = "envoy.filters.http.cors"
LUA_FILTER = "envoy.filters.http.lua"
GRPC_FRAMES_LUA = Path(__file__).with_name("grpc_frames.lua")
# grpc_web has already rewritten application/grpc-web* to application/grpc when routes match.
GRPC_CONTENT_TYPE = HeaderMatcher(
    name="content-type", string_match=StringMatcher(prefix="application/grpc")
)
NO_DEADLINE = timedelta(0)
# grpc-web needs these request headers allowed and the status trailers exposed to scripts.
CORS_ALLOW_HEADERS = (
    "authorization,content-type,grpc-timeout,x-grpc-web,x-user-agent,"
    "connect-protocol-version,connect-timeout-ms"
)
CORS_EXPOSE_HEADERS = "grpc-status,grpc-message,grpc-status-details-bin"


def cluster_name(service: str) -> str:
    """The Envoy cluster of one service package."""
    return f"optix_{service}"


def _address(host: str, port: int) -> Address:
    return Address(socket_address=SocketAddress(address=host, port_value=port))


def _cluster(name: str, upstream: Upstream, health_service: str, settings: EdgeSettings) -> Cluster:
    """An HTTP/2 cluster with active gRPC health checks against grpc.health.v1."""
    http2 = HttpProtocolOptions(
        explicit_http_config=HttpProtocolOptionsExplicitHttpConfig(
            http2_protocol_options=Http2ProtocolOptions(
                # Finds dead upstream connections under long quiet streams.
                connection_keepalive=KeepaliveSettings(
                    interval=timedelta(seconds=30), timeout=timedelta(seconds=5)
                ),
            )
        )
    )
    endpoint = LbEndpoint(endpoint=Endpoint(address=_address(upstream.host, upstream.port)))
    return Cluster(
        name=name,
        # STRICT_DNS accepts both IP literals (dev) and service names (deployments).
        type=ClusterDiscoveryType.STRICT_DNS,
        dns_lookup_family=ClusterDnsLookupFamily.V4_PREFERRED,
        connect_timeout=timedelta(seconds=1),
        load_assignment=ClusterLoadAssignment(
            cluster_name=name, endpoints=[LocalityLbEndpoints(lb_endpoints=[endpoint])]
        ),
        typed_extension_protocol_options={
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": Any.pack(http2)
        },
        health_checks=[
            HealthCheck(
                timeout=timedelta(seconds=1),
                interval=settings.health_check_interval,
                no_traffic_interval=settings.health_check_interval,
                unhealthy_threshold=2,
                healthy_threshold=1,
                grpc_health_check=HealthCheckGrpcHealthCheck(service_name=health_service),
            )
        ],
        # Streams are long-lived: the default 1024 concurrent requests is a low ceiling per cluster.
        circuit_breakers=CircuitBreakers(
            thresholds=[
                CircuitBreakersThresholds(max_requests=100_000, max_pending_requests=10_000)
            ]
        ),
    )


def _route(match: RouteMatch, cluster: str, timeout: timedelta) -> Route:
    """A gRPC route: `timeout` bounds the whole call and caps the client's grpc-timeout;
    a zero `timeout` (server streams) leaves the edge without any deadline of its own."""
    match.headers = [GRPC_CONTENT_TYPE]
    action = RouteAction(cluster=cluster, timeout=timeout)
    if timeout:
        action.max_stream_duration = RouteActionMaxStreamDuration(grpc_timeout_header_max=timeout)
    # For streams the client's grpc-timeout still travels upstream, where the server ends the
    # call with a clean DEADLINE_EXCEEDED; were Envoy to enforce it too, its timer could fire
    # first and reset a stream whose headers were already sent (the client would see INTERNAL).
    return Route(match=match, route=action)


def _refusals() -> list[Route]:
    """After every gRPC route: a POST with a non-gRPC content type gets 415 (as the gRPC spec
    asks) instead of an upstream reset; anything else that is not gRPC gets a plain 404."""
    not_grpc = HeaderMatcher(
        name="content-type",
        string_match=StringMatcher(prefix="application/grpc"),
        invert_match=True,
        treat_missing_header_as_empty=True,
    )
    post = HeaderMatcher(name=":method", string_match=StringMatcher(exact="POST"))
    return [
        Route(
            match=RouteMatch(prefix="/", headers=[post, not_grpc]),
            direct_response=DirectResponseAction(
                status=415,
                body=DataSource(
                    inline_string="content-type must be application/grpc or application/grpc-web\n"
                ),
            ),
        ),
        Route(match=RouteMatch(prefix="/"), direct_response=DirectResponseAction(status=404)),
    ]


def _routes(services: Sequence[RoutedService], settings: EdgeSettings) -> list[Route]:
    """Most specific first: streaming methods, one prefix per package, health, reflection."""
    # CORS preflights (OPTIONS, no gRPC content type) need a routed entry for the CORS filter
    # to answer them; with forward_not_matching_preflights off they never reach a cluster.
    options = HeaderMatcher(name=":method", string_match=StringMatcher(exact="OPTIONS"))
    routes: list[Route] = [
        Route(
            match=RouteMatch(prefix="/", headers=[options]),
            route=RouteAction(cluster=DEFAULT_CLUSTER, timeout=settings.unary_timeout),
        )
    ]
    for service in services:
        routes.extend(
            _route(RouteMatch(path=path), cluster_name(service.short_name), NO_DEADLINE)
            for path in service.streaming_paths
        )
    routes.extend(
        _route(
            RouteMatch(prefix=f"/{service.package}."),
            cluster_name(service.short_name),
            settings.unary_timeout,
        )
        for service in services
    )
    # Health/Watch is a server stream that stays open for as long as the prober wants.
    routes.append(_route(RouteMatch(path=HEALTH_WATCH), DEFAULT_CLUSTER, NO_DEADLINE))
    routes.append(
        _route(RouteMatch(prefix="/grpc.health.v1."), DEFAULT_CLUSTER, settings.unary_timeout)
    )
    routes.append(_route(RouteMatch(prefix="/grpc.reflection."), DEFAULT_CLUSTER, NO_DEADLINE))
    # Unknown services and methods: the server answers UNIMPLEMENTED in proper gRPC (and so
    # grpc-web) form, which an Envoy 404 is not for grpc-web callers.
    routes.append(_route(RouteMatch(prefix="/"), DEFAULT_CLUSTER, settings.unary_timeout))
    routes.extend(_refusals())
    return routes


def _cors_policy(settings: EdgeSettings) -> CorsPolicy:
    origins = (
        [StringMatcher(exact=origin) for origin in settings.cors_origins]
        if settings.cors_origins
        else [StringMatcher(safe_regex=RegexMatcher(regex=DEFAULT_CORS_ORIGIN_REGEX))]
    )
    return CorsPolicy(
        allow_origin_string_match=origins,
        allow_methods="POST,GET,OPTIONS",
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age="86400",
        forward_not_matching_preflights=False,
    )


def _grpc_web_only(lua: Lua) -> ExtensionWithMatcher:
    """Wrap the frame check so Envoy skips it (no Lua at all) unless the request is grpc-web:
    native gRPC is the high-volume internal path and the server validates it."""
    content_type = XdsExtension(
        name="content-type",
        typed_config=Any.pack(HttpRequestHeaderMatchInput(header_name="content-type")),
    )
    is_grpc_web = MatcherMatcherListPredicate(
        single_predicate=MatcherMatcherListPredicateSinglePredicate(
            input=content_type, value_match=XdsStringMatcher(prefix="application/grpc-web")
        )
    )
    skip = MatcherOnMatch(action=XdsExtension(name="skip", typed_config=Any.pack(SkipFilter())))
    return ExtensionWithMatcher(
        xds_matcher=Matcher(
            matcher_list=MatcherMatcherList(
                matchers=[
                    MatcherMatcherListFieldMatcher(
                        predicate=MatcherMatcherListPredicate(not_matcher=is_grpc_web),
                        on_match=skip,
                    )
                ]
            )
        ),
        extension_config=TypedExtensionConfig(name=LUA_FILTER, typed_config=Any.pack(lua)),
    )


def _http_filters(settings: EdgeSettings) -> list[HttpFilter]:
    """grpc_web first (turns grpc-web into gRPC), CORS answers preflights before any limit."""
    rate_limit = LocalRateLimit(
        stat_prefix="optix_edge_rate_limit",
        token_bucket=TokenBucket(
            max_tokens=settings.rate_limit_burst,
            tokens_per_fill=settings.rate_limit_per_second,
            fill_interval=settings.rate_limit_interval,
        ),
        filter_enabled=RuntimeFractionalPercent(
            default_value=FractionalPercent(numerator=100),
            runtime_key="optix_edge_rate_limit_enabled",
        ),
        filter_enforced=RuntimeFractionalPercent(
            default_value=FractionalPercent(numerator=100),
            runtime_key="optix_edge_rate_limit_enforced",
        ),
        rate_limited_as_resource_exhausted=True,
    )
    lua_source = GRPC_FRAMES_LUA.read_text().replace(
        "__MAX_REQUEST_BYTES__", str(settings.max_request_bytes)
    )
    lua = Lua(default_source_code=DataSource(inline_string=lua_source))
    # CORS first: its headers then also reach local replies (rate limit, frame check). The frame
    # check sees grpc-web before grpc_web rewrites it, so native gRPC is never buffered here.
    return [
        HttpFilter(name=CORS_FILTER, typed_config=Any.pack(Cors())),
        HttpFilter(name="envoy.filters.http.local_ratelimit", typed_config=Any.pack(rate_limit)),
        HttpFilter(name=LUA_FILTER, typed_config=Any.pack(_grpc_web_only(lua))),
        HttpFilter(name="envoy.filters.http.grpc_web", typed_config=Any.pack(GrpcWeb())),
        HttpFilter(name="envoy.filters.http.router", typed_config=Any.pack(Router())),
    ]


def _listener(services: Sequence[RoutedService], settings: EdgeSettings) -> Listener:
    hcm = HttpConnectionManager(
        stat_prefix="optix_edge",
        # AUTO: HTTP/1.1 for browsers' grpc-web and h2c (prior knowledge) for native gRPC.
        codec_type=HttpConnectionManagerCodecType.AUTO,
        stream_idle_timeout=settings.stream_idle_timeout,
        http2_protocol_options=Http2ProtocolOptions(max_concurrent_streams=1000),
        route_config=RouteConfiguration(
            name="optix_routes",
            virtual_hosts=[
                VirtualHost(
                    name="optix",
                    domains=["*"],
                    routes=_routes(services, settings),
                    typed_per_filter_config={CORS_FILTER: Any.pack(_cors_policy(settings))},
                )
            ],
        ),
        http_filters=_http_filters(settings),
    )
    return Listener(
        name="optix_edge",
        # The frame check buffers a grpc-web body: room for the largest allowed request.
        per_connection_buffer_limit_bytes=settings.max_request_bytes + 64 * 1024,
        address=_address(settings.listen_host, settings.listen_port),
        filter_chains=[FilterChain(filters=[Filter(name=HCM_NAME, typed_config=Any.pack(hcm))])],
    )


def build_bootstrap(services: Sequence[RoutedService], settings: EdgeSettings) -> Bootstrap:
    """The whole static Envoy configuration for the given services and settings."""
    clusters = [
        _cluster(
            cluster_name(service.short_name),
            settings.upstream_for(service.short_name),
            # Checks the first service of the package; before the contract exists, the server.
            service.grpc_services[0] if service.grpc_services else "",
            settings,
        )
        for service in services
    ]
    clusters.append(_cluster(DEFAULT_CLUSTER, settings.default_upstream, "", settings))
    return Bootstrap(
        static_resources=BootstrapStaticResources(
            listeners=[_listener(services, settings)], clusters=clusters
        ),
        # Admin exposes /quitquitquit and stats: loopback only, never the listener's host.
        admin=Admin(address=_address("127.0.0.1", settings.admin_port)),
        overload_manager=OverloadManager(
            resource_monitors=[
                ResourceMonitor(
                    name="envoy.resource_monitors.global_downstream_max_connections",
                    typed_config=Any.pack(
                        DownstreamConnectionsConfig(
                            max_active_downstream_connections=settings.max_downstream_connections
                        )
                    ),
                )
            ]
        ),
    )
