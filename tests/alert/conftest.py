"""Alert fixtures: one server (user + marketdata + alert) per database for the package."""

from __future__ import annotations

from tests.alert.harness import alert_stack
from tests.support.stack_fixtures import per_database_stack

db_kind, shared_stack, stack = per_database_stack(alert_stack, "alert")
