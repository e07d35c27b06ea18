"""Build the Envoy Bootstrap for the OPTIX edge: grpc-web + native gRPC in front of the services."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from envoy_data_plane.envoy.config.accesslog.v3 import (
    AccessLogFilter,
    AndFilter,
    ComparisonFilter,
    ComparisonFilterOp,
    HeaderFilter,
    StatusCodeFilter,
)
from envoy_data_plane.envoy.config.bootstrap.v3 import Admin, Bootstrap, BootstrapStaticResources
from envoy_data_plane.envoy.config.cluster.v3 import (
    CircuitBreakers,
    CircuitBreakersThresholds,
    CircuitBreakersThresholdsRetryBudget,
    Cluster,
    ClusterDiscoveryType,
    ClusterDnsLookupFamily,
    OutlierDetection,
)
from envoy_data_plane.envoy.config.core.v3 import (
    Address,
    DataSource,
    HeaderValue,
    HeaderValueOption,
    HeaderValueOptionHeaderAppendAction,
    HealthCheck,
    HealthCheckGrpcHealthCheck,
    Http2ProtocolOptions,
    KeepaliveSettings,
    RuntimeFractionalPercent,
    RuntimeUInt32,
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
    RateLimit,
    RateLimitAction,
    RateLimitActionRemoteAddress,
    RetryPolicy,
    RetryPolicyRetryBackOff,
    RetryPolicyRetryHostPredicate,
    Route,
    RouteAction,
    RouteActionMaxStreamDuration,
    RouteConfiguration,
    RouteMatch,
    VirtualHost,
)
from envoy_data_plane.envoy.extensions.common.matching.v3 import ExtensionWithMatcher
from envoy_data_plane.envoy.extensions.common.ratelimit.v3 import (
    LocalRateLimitDescriptor,
    RateLimitDescriptorEntry,
)
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
    LocalReplyConfig,
    ResponseMapper,
)
from envoy_data_plane.envoy.extensions.resource_monitors.downstream_connections.v3 import (
    DownstreamConnectionsConfig,
)
from envoy_data_plane.envoy.extensions.retry.host.previous_hosts.v3 import PreviousHostsPredicate
from envoy_data_plane.envoy.extensions.upstreams.http.v3 import (
    HttpProtocolOptions,
    HttpProtocolOptionsExplicitHttpConfig,
)
from envoy_data_plane.envoy.type.matcher.v3 import (
    HttpRequestHeaderMatchInput,
    RegexMatcher,
    StringMatcher,
)
from envoy_data_plane.envoy.type.v3 import FractionalPercent, Percent, TokenBucket
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
GRPC_REQUEST_HEADERS_LUA = Path(__file__).with_name("grpc_request_headers.lua")
# Set by the edge on grpc-web requests (a client's own value is replaced), removed before upstream.
GRPC_WEB_MARKER = "x-optix-grpc-web"
# The content types the services speak: gRPC and grpc-web (binary or text), proto only. Routes
# may match before or after grpc_web rewrites grpc-web to gRPC, so both forms are listed.
GRPC_CONTENT_TYPES = r"application/grpc(-web(-text)?)?(\+proto)?(;.*)?"
GRPC_CONTENT_TYPE = HeaderMatcher(
    name="content-type",
    string_match=StringMatcher(safe_regex=RegexMatcher(regex=GRPC_CONTENT_TYPES)),
)
POST = HeaderMatcher(name=":method", string_match=StringMatcher(exact="POST"))
# Reserved gRPC request headers the transport parses, with the values it accepts (the gRPC
# HTTP/2 protocol spec). A malformed one is refused here instead of reaching the server.
RESERVED_HEADER_FORMS: tuple[tuple[str, str], ...] = (
    ("grpc-timeout", r"[0-9]{1,8}[HMSmun]"),
    ("grpc-encoding", r"identity|gzip|deflate"),
    ("grpc-accept-encoding", r"[A-Za-z0-9_-]+( *, *[A-Za-z0-9_-]+)*"),
)
# Headers only servers and the transport's own retry machinery set: a client's are dropped.
SERVER_ONLY_HEADERS = (
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-previous-rpc-attempts",
    "grpc-retry-pushback-ms",
    "grpc-internal-encoding-request",
    "grpc-tags-bin",
    "grpc-trace-bin",
)
# Client addresses with a rate-limit bucket of their own at once (least recently seen evicted).
CLIENT_BUCKETS = 100_000
# gRPC status codes of the edge's own answers.
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
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


def _cluster(
    name: str, upstreams: Sequence[Upstream], health_service: str, settings: EdgeSettings
) -> Cluster:
    """An HTTP/2 cluster of the service's replicas, with active gRPC health checks against
    grpc.health.v1 (a draining replica says NOT_SERVING and leaves the rotation) and outlier
    detection (a replica that stops answering is ejected before its health check notices)."""
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
    endpoints = [
        LbEndpoint(endpoint=Endpoint(address=_address(upstream.host, upstream.port)))
        for upstream in upstreams
    ]
    return Cluster(
        name=name,
        # STRICT_DNS accepts both IP literals (dev) and service names (deployments).
        type=ClusterDiscoveryType.STRICT_DNS,
        dns_lookup_family=ClusterDnsLookupFamily.V4_PREFERRED,
        connect_timeout=timedelta(seconds=1),
        load_assignment=ClusterLoadAssignment(
            cluster_name=name, endpoints=[LocalityLbEndpoints(lb_endpoints=endpoints)]
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
        # Streams are long-lived: the default 1024 concurrent requests is a low ceiling per
        # cluster. Retries are bounded by a share of the requests in flight (a retry storm
        # cannot multiply the load on replicas that are struggling).
        circuit_breakers=CircuitBreakers(
            thresholds=[
                CircuitBreakersThresholds(
                    max_requests=100_000,
                    max_pending_requests=10_000,
                    retry_budget=CircuitBreakersThresholdsRetryBudget(
                        budget_percent=Percent(value=settings.retry_budget_percent),
                        min_retry_concurrency=3,
                    ),
                )
            ]
        ),
        # Connection failures and gateway errors (502/503/504, which gRPC UNAVAILABLE maps to)
        # eject a replica for a while; never more than half, so an outage of a shared
        # dependency (every replica UNAVAILABLE) does not empty the cluster.
        outlier_detection=OutlierDetection(
            split_external_local_origin_errors=True,
            consecutive_local_origin_failure=3,
            consecutive_gateway_failure=5,
            enforcing_consecutive_gateway_failure=100,
            interval=timedelta(seconds=2),
            base_ejection_time=timedelta(seconds=10),
            max_ejection_percent=50,
        ),
    )


# Safe to retry whatever the method: the call never reached a replica.
NOT_DELIVERED = "connect-failure,refused-stream,reset-before-request"
# Reads may also be retried when a replica answered UNAVAILABLE (draining, a dependency blip).
READ_METHODS = r"(Get|List|BatchGet|Check)[A-Za-z]*"


def _retry_policy(retry_on: str, settings: EdgeSettings) -> RetryPolicy | None:
    """Up to `settings.retries` more tries, each on a replica not tried yet."""
    if settings.retries == 0:
        return None
    return RetryPolicy(
        retry_on=retry_on,
        num_retries=settings.retries,
        retry_host_predicate=[
            RetryPolicyRetryHostPredicate(
                name="envoy.retry_host_predicates.previous_hosts",
                typed_config=Any.pack(PreviousHostsPredicate()),
            )
        ],
        host_selection_retry_max_attempts=3,
        retry_back_off=RetryPolicyRetryBackOff(
            base_interval=timedelta(milliseconds=25), max_interval=timedelta(milliseconds=250)
        ),
    )


def _route(
    match: RouteMatch, cluster: str, timeout: timedelta, retry: RetryPolicy | None = None
) -> Route:
    """A gRPC route: `timeout` bounds the whole call and caps the client's grpc-timeout;
    a zero `timeout` (server streams) leaves the edge without any deadline of its own."""
    match.headers = [POST, GRPC_CONTENT_TYPE]
    action = RouteAction(cluster=cluster, timeout=timeout, retry_policy=retry)
    if timeout:
        # Counted from the request's first byte (the route timeout starts only once the request
        # is complete), so a unary call that never sends its message ends too.
        action.max_stream_duration = RouteActionMaxStreamDuration(
            max_stream_duration=timeout, grpc_timeout_header_max=timeout
        )
    # For streams the client's grpc-timeout still travels upstream, where the server ends the
    # call with a clean DEADLINE_EXCEEDED; were Envoy to enforce it too, its timer could fire
    # first and reset a stream whose headers were already sent (the client would see INTERNAL).
    return Route(match=match, route=action)


def _grpc_refusal(headers: list[HeaderMatcher], code: int, message: str) -> Route:
    """A gRPC answer from the edge itself (`code`, `message`), never forwarded upstream."""
    return Route(
        match=RouteMatch(prefix="/", headers=headers),
        direct_response=DirectResponseAction(status=200),
        response_headers_to_add=_grpc_answer(code, message),
    )


def _grpc_answer(
    code: int, message: str, content_type: str = "application/grpc"
) -> list[HeaderValueOption]:
    """Headers of a trailers-only gRPC answer. With content-type set, grpc_web converts it as
    a gRPC response (otherwise it reads the reply's HTTP status as UNKNOWN), and Envoy keeps a
    grpc-status already set instead of deriving one from the HTTP status."""
    return [
        _set_header("content-type", content_type),
        _set_header("grpc-status", str(code)),
        _set_header("grpc-message", message),
    ]


def _set_header(name: str, value: str) -> HeaderValueOption:
    return HeaderValueOption(
        header=HeaderValue(key=name, value=value),
        append_action=HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def _malformed_grpc() -> list[Route]:
    """Before every gRPC route: malformed reserved headers and non-POST gRPC requests are
    INVALID_ARGUMENT at once. A malformed value that reached the server could be answered as a
    server error or, through header compression state, affect later calls on the connection."""
    routes = [
        _grpc_refusal(
            [
                HeaderMatcher(
                    name=name,
                    string_match=StringMatcher(safe_regex=RegexMatcher(regex=form)),
                    invert_match=True,
                )
            ],
            INVALID_ARGUMENT,
            f"malformed {name} header",
        )
        for name, form in RESERVED_HEADER_FORMS
    ]
    not_post = HeaderMatcher(
        name=":method", string_match=StringMatcher(exact="POST"), invert_match=True
    )
    routes.append(
        _grpc_refusal([not_post, GRPC_CONTENT_TYPE], INVALID_ARGUMENT, "gRPC calls must use POST")
    )
    return routes


def _internal_refusal(path: str) -> Route:
    """An internal (service-to-service) RPC: PERMISSION_DENIED from the edge, never forwarded,
    for gRPC and grpc-web alike. The service refuses callers without a service identity too;
    this keeps the method out of reach of every client of the edge."""
    return Route(
        match=RouteMatch(path=path, headers=[POST, GRPC_CONTENT_TYPE]),
        direct_response=DirectResponseAction(status=200),
        response_headers_to_add=_grpc_answer(
            PERMISSION_DENIED, "this method is internal and not served at the edge"
        ),
    )


def _refusals() -> list[Route]:
    """After every gRPC route: a POST with a non-gRPC content type gets 415 (as the gRPC spec
    asks) instead of an upstream reset; anything else that is not gRPC gets a plain 404."""
    not_grpc = HeaderMatcher(
        name="content-type",
        string_match=StringMatcher(safe_regex=RegexMatcher(regex=GRPC_CONTENT_TYPES)),
        invert_match=True,
        treat_missing_header_as_empty=True,
    )
    return [
        Route(
            match=RouteMatch(prefix="/", headers=[POST, not_grpc]),
            direct_response=DirectResponseAction(
                status=415,
                body=DataSource(
                    inline_string=(
                        "content-type must be application/grpc[+proto] "
                        "or application/grpc-web[-text][+proto]"
                    )
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
        ),
        *_malformed_grpc(),
    ]
    routes.extend(
        _internal_refusal(path) for service in services for path in service.internal_paths
    )
    for service in services:
        routes.extend(
            _route(RouteMatch(path=path), cluster_name(service.short_name), NO_DEADLINE)
            for path in service.streaming_paths
        )
    reads = _retry_policy(f"{NOT_DELIVERED},unavailable", settings)
    writes = _retry_policy(NOT_DELIVERED, settings)
    for service in services:
        routes.append(
            _route(
                RouteMatch(
                    safe_regex=RegexMatcher(
                        regex=rf"/{re.escape(service.package)}\.[A-Za-z]+/{READ_METHODS}"
                    )
                ),
                cluster_name(service.short_name),
                settings.unary_timeout,
                reads,
            )
        )
        routes.append(
            _route(
                RouteMatch(prefix=f"/{service.package}."),
                cluster_name(service.short_name),
                settings.unary_timeout,
                writes,
            )
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


def _when_header(header: str, value: XdsStringMatcher, config: Lua) -> ExtensionWithMatcher:
    """Wrap a Lua filter so Envoy skips it (no Lua at all) unless request header `header`
    matches `value`: native gRPC is the high-volume internal path and passes untouched."""
    matched = MatcherMatcherListPredicate(
        single_predicate=MatcherMatcherListPredicateSinglePredicate(
            input=XdsExtension(
                name=header,
                typed_config=Any.pack(HttpRequestHeaderMatchInput(header_name=header)),
            ),
            value_match=value,
        )
    )
    skip = MatcherOnMatch(action=XdsExtension(name="skip", typed_config=Any.pack(SkipFilter())))
    return ExtensionWithMatcher(
        xds_matcher=Matcher(
            matcher_list=MatcherMatcherList(
                matchers=[
                    MatcherMatcherListFieldMatcher(
                        predicate=MatcherMatcherListPredicate(not_matcher=matched),
                        on_match=skip,
                    )
                ]
            )
        ),
        extension_config=TypedExtensionConfig(name=LUA_FILTER, typed_config=Any.pack(config)),
    )


def _lua(path: Path, settings: EdgeSettings) -> Lua:
    source = (
        path.read_text()
        .replace("__MAX_REQUEST_BYTES__", str(settings.max_request_bytes))
        .replace("__MARKER_HEADER__", GRPC_WEB_MARKER)
    )
    return Lua(default_source_code=DataSource(inline_string=source))


def _http_filters(settings: EdgeSettings) -> list[HttpFilter]:
    """CORS first (its headers then also reach local replies: rate limit, frame check), the
    request header check (and grpc-web marker), grpc_web (turns grpc-web into gRPC), the frame
    check on grpc-web's decoded body."""
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
        # Besides the edge-wide bucket, one per client address (kept for the busiest
        # `max_dynamic_descriptors` addresses): one client cannot spend everyone's budget, and
        # the requests it can hold open are bounded by its rate times the request timeout.
        rate_limits=[
            RateLimit(actions=[RateLimitAction(remote_address=RateLimitActionRemoteAddress())])
        ],
        descriptors=[
            LocalRateLimitDescriptor(
                entries=[RateLimitDescriptorEntry(key="remote_address")],
                token_bucket=TokenBucket(
                    max_tokens=settings.client_rate_limit_burst,
                    tokens_per_fill=settings.client_rate_limit_per_second,
                    fill_interval=timedelta(seconds=1),
                ),
            )
        ],
        max_dynamic_descriptors=CLIENT_BUCKETS,
    )
    # Every gRPC request (native too, headers only); CORS preflights and plain HTTP skip it.
    request_headers = _when_header(
        "content-type",
        XdsStringMatcher(prefix="application/grpc"),
        _lua(GRPC_REQUEST_HEADERS_LUA, settings),
    )
    frames = _when_header(
        GRPC_WEB_MARKER, XdsStringMatcher(exact="1"), _lua(GRPC_FRAMES_LUA, settings)
    )
    return [
        HttpFilter(name=CORS_FILTER, typed_config=Any.pack(Cors())),
        HttpFilter(name="envoy.filters.http.local_ratelimit", typed_config=Any.pack(rate_limit)),
        HttpFilter(name="optix.grpc_request_headers", typed_config=Any.pack(request_headers)),
        HttpFilter(name="envoy.filters.http.grpc_web", typed_config=Any.pack(GrpcWeb())),
        HttpFilter(name="optix.grpc_web_frames", typed_config=Any.pack(frames)),
        # No x-envoy-* headers on upstream requests (or responses): the server reads none of
        # them, and every header a call carries is parsed into Python metadata per request.
        HttpFilter(
            name="envoy.filters.http.router",
            typed_config=Any.pack(Router(suppress_envoy_headers=True)),
        ),
    ]


def _status_is(http: int) -> AccessLogFilter:
    return AccessLogFilter(
        status_code_filter=StatusCodeFilter(
            comparison=ComparisonFilter(
                op=ComparisonFilterOp.EQ,
                value=RuntimeUInt32(
                    default_value=http, runtime_key=f"optix_edge_local_reply_{http}"
                ),
            )
        )
    )


def _content_type_is(regex: str) -> AccessLogFilter:
    return AccessLogFilter(
        header_filter=HeaderFilter(
            header=HeaderMatcher(
                name="content-type",
                string_match=StringMatcher(safe_regex=RegexMatcher(regex=regex)),
            )
        )
    )


def _grpc_local_replies() -> LocalReplyConfig:
    """The gRPC form of the edge's own error replies to gRPC requests. Envoy would derive the
    code from the HTTP status, where 400 (invalid grpc-web-text) reads INTERNAL and 408 (a
    request not complete in time) UNKNOWN, and a filter before grpc_web (the rate limit) would
    answer grpc-web with a bare HTTP 429: a client's mistake must not look like a server error.
    Each becomes a trailers-only answer in the request's own protocol."""
    replies = {
        400: (INVALID_ARGUMENT, "malformed request"),
        408: (DEADLINE_EXCEEDED, "request not received in time"),
        413: (RESOURCE_EXHAUSTED, "request too large"),
        415: (INVALID_ARGUMENT, "unsupported content-type: use application/grpc[+proto]"),
        429: (RESOURCE_EXHAUSTED, "too many requests"),
    }
    # The request's content type as the reply sees it: grpc-web when grpc_web has not run yet
    # (the reply answers in grpc-web itself), gRPC after it (grpc_web converts the reply).
    protocols = (
        (r"application/grpc-web-text(\+proto)?", "application/grpc-web-text+proto"),
        (r"application/grpc-web(\+proto)?", "application/grpc-web+proto"),
        (r"application/grpc([+;].*)?", "application/grpc"),
    )
    mappers = [
        ResponseMapper(
            filter=AccessLogFilter(
                and_filter=AndFilter(filters=[_content_type_is(request_type), _status_is(http)])
            ),
            status_code=200,
            body=DataSource(inline_string=""),
            headers_to_add=_grpc_answer(code, message, reply_type),
        )
        for http, (code, message) in replies.items()
        for request_type, reply_type in protocols
    ]
    # Headers too large were never parsed, so the content type is unknown; every caller of
    # this edge speaks gRPC, and the answer names no header (it never echoes them).
    mappers.append(
        ResponseMapper(
            filter=_status_is(431),
            status_code=200,
            body=DataSource(inline_string=""),
            headers_to_add=_grpc_answer(RESOURCE_EXHAUSTED, "request headers too large"),
        )
    )
    return LocalReplyConfig(mappers=mappers)


def _listener(services: Sequence[RoutedService], settings: EdgeSettings) -> Listener:
    hcm = HttpConnectionManager(
        stat_prefix="optix_edge",
        # AUTO: HTTP/1.1 for browsers' grpc-web and h2c (prior knowledge) for native gRPC.
        codec_type=HttpConnectionManagerCodecType.AUTO,
        # The edge is the first hop: it appends the TCP peer it saw to x-forwarded-for, and the
        # server trusts that entry only from the configured proxies (OPTIX_TRUSTED_PROXIES), so
        # per-address limits count the real client instead of the edge.
        use_remote_address=True,
        xff_num_trusted_hops=0,
        # No x-request-id: calls are traced by W3C traceparent (the server's tracing), so a
        # UUID per request would be generated, sent and parsed for nothing.
        generate_request_id=False,
        stream_idle_timeout=settings.stream_idle_timeout,
        # An incomplete request is held this long at most: its headers, then its whole body
        # (unary routes also end at their deadline, counted from the first byte).
        request_headers_timeout=settings.request_headers_timeout,
        request_timeout=settings.request_timeout,
        # Below the server's metadata limit, so the server never answers (and describes) them.
        max_request_headers_kb=settings.max_request_headers_kb,
        # Bounds the requests (complete or not) one HTTP/2 connection holds at once.
        http2_protocol_options=Http2ProtocolOptions(
            max_concurrent_streams=settings.max_streams_per_connection
        ),
        local_reply_config=_grpc_local_replies(),
        route_config=RouteConfiguration(
            name="optix_routes",
            virtual_hosts=[
                VirtualHost(
                    name="optix",
                    domains=["*"],
                    routes=_routes(services, settings),
                    request_headers_to_remove=list(SERVER_ONLY_HEADERS),
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
