"""AlertService over gRPC: proto -> domain call -> proto, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc

from optix.alert.v1 import alert_event_pb2, alert_pb2, alert_service_pb2_grpc
from optix.alert.v1 import alert_service_pb2 as pb
from optix.common.v1 import stream_pb2
from optix_server.alert.convert import alert_to_proto, event_to_proto
from optix_server.alert.event_service import AlertEventService
from optix_server.alert.service import AlertInput, AlertService
from optix_server.common.proto_fields import duration_seconds, optional_timestamp
from optix_server.common.proto_values import timestamp
from optix_server.infra.auth.principal import current_user_id
from optix_server.infra.clients import deadline_from
from optix_server.infra.errors import ViolationCollector

Context = grpc.aio.ServicerContext[Any, Any]


def _input(alert: alert_pb2.Alert) -> AlertInput:
    return AlertInput(
        display_name=alert.display_name,
        symbol=alert.symbol,
        condition=alert.condition,
        frequency=alert.frequency,
        cooldown=alert.cooldown,
        has_cooldown=alert.HasField("cooldown"),
        expire_time=alert.expire_time,
        has_expire_time=alert.HasField("expire_time"),
        webhook_url=alert.delivery.webhook_url,
        webhook_disabled=alert.delivery.webhook_disabled,
        note=alert.note,
    )


class AlertServicer(alert_service_pb2_grpc.AlertServiceServicer):
    """The gRPC face of AlertService."""

    def __init__(self, service: AlertService, events: AlertEventService) -> None:
        self._service = service
        self._events = events

    async def CreateAlert(
        self, request: pb.CreateAlertRequest, context: Context
    ) -> pb.CreateAlertResponse:
        """See the proto."""
        written = await self._service.create(
            current_user_id(),
            request.parent,
            _input(request.alert),
            request_id=request.request_id,
            budget_s=deadline_from(context),
        )
        return pb.CreateAlertResponse(
            alert=alert_to_proto(written.alert),
            webhook_signing_secret=written.webhook_signing_secret,
        )

    async def GetAlert(self, request: pb.GetAlertRequest, context: Context) -> pb.GetAlertResponse:
        """See the proto."""
        alert = await self._service.get(current_user_id(), request.name)
        return pb.GetAlertResponse(alert=alert_to_proto(alert))

    async def ListAlerts(
        self, request: pb.ListAlertsRequest, context: Context
    ) -> pb.ListAlertsResponse:
        """See the proto."""
        listing = await self._service.list_alerts(
            current_user_id(),
            request.parent,
            size=request.page_size,
            page_token=request.page_token,
            states=list(request.states),
            symbol=request.symbol,
        )
        return pb.ListAlertsResponse(
            alerts=[alert_to_proto(a) for a in listing.alerts],
            next_page_token=listing.next_page_token,
        )

    async def UpdateAlert(
        self, request: pb.UpdateAlertRequest, context: Context
    ) -> pb.UpdateAlertResponse:
        """See the proto."""
        written = await self._service.update(
            current_user_id(),
            request.alert.name,
            _input(request.alert),
            paths=list(request.update_mask.paths),
            etag=request.alert.etag,
            rotate_secret=request.rotate_webhook_signing_secret,
        )
        return pb.UpdateAlertResponse(
            alert=alert_to_proto(written.alert),
            webhook_signing_secret=written.webhook_signing_secret,
        )

    async def DeleteAlert(
        self, request: pb.DeleteAlertRequest, context: Context
    ) -> pb.DeleteAlertResponse:
        """See the proto."""
        await self._service.delete(current_user_id(), request.name, etag=request.etag)
        return pb.DeleteAlertResponse()

    async def EnableAlert(
        self, request: pb.EnableAlertRequest, context: Context
    ) -> pb.EnableAlertResponse:
        """See the proto."""
        alert = await self._service.enable(current_user_id(), request.name, etag=request.etag)
        return pb.EnableAlertResponse(alert=alert_to_proto(alert))

    async def DisableAlert(
        self, request: pb.DisableAlertRequest, context: Context
    ) -> pb.DisableAlertResponse:
        """See the proto."""
        alert = await self._service.disable(current_user_id(), request.name, etag=request.etag)
        return pb.DisableAlertResponse(alert=alert_to_proto(alert))

    async def ListAlertEvents(
        self, request: pb.ListAlertEventsRequest, context: Context
    ) -> pb.ListAlertEventsResponse:
        """See the proto."""
        times = ViolationCollector()
        start = optional_timestamp(
            times, "start_time", request.start_time, request.HasField("start_time")
        )
        end = optional_timestamp(times, "end_time", request.end_time, request.HasField("end_time"))
        page = await self._events.list_events(
            current_user_id(),
            request.parent,
            size=request.page_size,
            page_token=request.page_token,
            start=start,
            end=end,
            invalid_times=[(v.field, v.description) for v in times.violations],
        )
        return pb.ListAlertEventsResponse(
            events=[event_to_proto(e) for e in page.events], next_page_token=page.next_page_token
        )

    async def StreamAlertEvents(  # type: ignore[override]
        self, request: pb.StreamAlertEventsRequest, context: Context
    ) -> None:
        """Replayed, then live batches of events; heartbeats when idle; UNAVAILABLE on
        shutdown."""
        heartbeat = self._events.heartbeat_interval(
            duration_seconds(request.heartbeat_interval)
            if request.HasField("heartbeat_interval")
            else None
        )
        stream = self._events.stream(
            current_user_id(),
            request.parent,
            after_event_id=request.after_event_id if request.HasField("after_event_id") else None,
            heartbeat_seconds=heartbeat,
        )
        # Written, not yielded, like StreamQuotes: one pass through the interceptors.
        async for item in stream:
            if item is None:
                now = timestamp(datetime.now(UTC))
                await context.write(
                    pb.StreamAlertEventsResponse(heartbeat=stream_pb2.Heartbeat(server_time=now))
                )
            else:
                events, replay = item
                await context.write(
                    pb.StreamAlertEventsResponse(
                        events=alert_event_pb2.AlertEventBatch(events=events, replay=replay)
                    )
                )
