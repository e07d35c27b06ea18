"""The grpc.health.v1 service as grpc ships it, except that its Watch streams end with
UNAVAILABLE when the server stops accepting calls: a Watch never ends by itself, so an open one
(Envoy's, an operator's grpcurl) would otherwise hold a graceful stop for its whole grace."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

from optix_server.infra.lifecycle import SHUTDOWN_MESSAGE


class DrainableHealth(health.aio.HealthServicer):  # type: ignore[misc]
    """Health checking whose watches can all be ended at once (close_watches)."""

    def __init__(self) -> None:
        super().__init__()
        self._closing = asyncio.Event()

    def close_watches(self) -> None:
        """End every open Watch stream (and any opened from now on) with UNAVAILABLE."""
        self._closing.set()

    async def Watch(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        """The standard Watch, until the server closes its watches."""
        if not self._closing.is_set():
            watching = asyncio.ensure_future(super().Watch(request, context))
            closing = asyncio.ensure_future(self._closing.wait())
            try:
                await asyncio.wait({watching, closing}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closing.cancel()
                if not watching.done():
                    watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
            if not self._closing.is_set():
                return
        await context.abort(grpc.StatusCode.UNAVAILABLE, SHUTDOWN_MESSAGE)
