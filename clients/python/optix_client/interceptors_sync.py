"""Sync grpc client interceptors: bearer token, default deadline, errors raised as OptixError."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from optix_client.errors import from_rpc_error, from_stream_error
from optix_client.methods import PUBLIC_METHODS, method_name

SyncTokenSource = Callable[[], str | None]


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    method: str
    timeout: float | None
    metadata: tuple[tuple[str, str | bytes], ...] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class SyncCallInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds `authorization` (except on public RPCs) and a deadline on unary calls without one."""

    def __init__(
        self, token: SyncTokenSource | None, unary_timeout: float | None, user_agent: str
    ) -> None:
        self._token = token
        self._unary_timeout = unary_timeout
        self._user_agent = user_agent

    def _details(self, details: grpc.ClientCallDetails, *, unary: bool) -> _CallDetails:
        metadata = list(details.metadata or ())
        method = method_name(details.method)
        if self._token is not None and method not in PUBLIC_METHODS:
            token = self._token()
            if token and not any(key == "authorization" for key, _ in metadata):
                metadata.append(("authorization", f"Bearer {token}"))
        metadata.append(("x-optix-client", self._user_agent))
        timeout = details.timeout
        if timeout is None and unary:
            timeout = self._unary_timeout
        return _CallDetails(
            method,
            timeout,
            tuple(metadata),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Send the call; a failure raises OptixError instead of grpc.RpcError."""
        outcome = continuation(self._details(client_call_details, unary=True), request)
        if isinstance(outcome, grpc.RpcError):
            raise from_rpc_error(outcome) from None
        return outcome

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Start the stream; iterating it raises OptixError on failure. `cancel()` still works."""
        call = continuation(self._details(client_call_details, unary=False), request)
        return _ConvertedStream(call)


class _ConvertedStream:
    """Iterates a sync response stream, turning grpc.RpcError into OptixError."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._call)
        except grpc.RpcError as error:
            raise from_stream_error(error) from None

    def cancel(self) -> bool:
        """Cancel the stream."""
        return bool(self._call.cancel())

    def __getattr__(self, name: str) -> Any:
        # code(), details(), initial_metadata()... come from the underlying call.
        return getattr(self._call, name)
