"""The alert slice's resource names: `users/{user}/alerts/{alert}`."""

from __future__ import annotations

from optix.alert.v1 import alert_pb2
from optix_server.infra.aip.names import ChildPattern

ALERTS = ChildPattern("alerts", alert_pb2.Alert.DESCRIPTOR.full_name)
