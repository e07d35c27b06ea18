"""Production fault tests: two real `optix serve` replicas behind one Envoy, PostgreSQL and a
private Redis, driven through the Python SDK while replicas restart or die and dependencies go
away."""

from __future__ import annotations
