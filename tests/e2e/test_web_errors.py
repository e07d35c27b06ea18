"""Through a real server and Envoy: the web client's error helper and health client."""

from __future__ import annotations

from tests.e2e.node import WEB, run_json
from tests.e2e.stack import Edge

ERROR_PROBE = WEB / "dist" / "node" / "error-probe.mjs"


def test_invalid_argument_field_violations_and_health_over_grpc_web(edge: Edge) -> None:
    register, health = run_json(ERROR_PROBE, edge.url)
    refused = register["register"]
    assert refused["codeName"] == "INVALID_ARGUMENT", refused
    fields = {v["field"] for v in refused["fieldViolations"]}
    assert "email" in fields, refused
    assert all(v["description"] for v in refused["fieldViolations"])
    assert refused["reason"] and refused["domain"] == "optix.dev"
    assert health == {"health": "SERVING"}
