"""The web client's error helper (clients/web/src/errors.ts) reads what the server sends.

Its node:test unit tests run here, and the google.rpc.Status the server builds for each domain
error (optix_server.infra.grpc_errors.to_rpc_status) is decoded by the helper in Node.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

from optix_server.infra import errors
from optix_server.infra.grpc_errors import ERROR_DOMAIN, to_rpc_status

WEB = Path(__file__).resolve().parents[2] / "clients" / "web"
DIST = WEB / "dist" / "node"


def _node() -> str:
    node = shutil.which("node")
    assert node is not None, "node is not installed"
    assert (DIST / "errors.test.mjs").exists(), "clients/web is not built: run `make web`"
    return node


def test_web_error_helper_unit_tests_pass() -> None:
    done = subprocess.run(
        [_node(), "--test", str(DIST / "errors.test.mjs")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=WEB,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout


def _decode(*domain_errors: errors.OptixError) -> list[dict[str, Any]]:
    trailers = []
    for error in domain_errors:
        status = to_rpc_status(error)
        bin_ = base64.b64encode(status.SerializeToString()).decode()
        trailers.append({"code": status.code, "message": status.message, "details_bin": bin_})
    done = subprocess.run(
        [_node(), str(DIST / "decode-status.mjs")],
        input=json.dumps(trailers),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=WEB,
    )
    assert done.returncode == 0, done.stderr
    decoded: list[dict[str, Any]] = json.loads(done.stdout)
    return decoded


def test_helper_decodes_every_detail_the_server_sends() -> None:
    invalid, missing, limited, down, denied = _decode(
        errors.InvalidArgument(
            "the request has invalid fields",
            [
                errors.FieldViolation("email", "must be an email address"),
                errors.FieldViolation("password", "too short"),
            ],
        ),
        errors.NotFound("no such watchlist", resource_type="watchlist", resource_name="w/1"),
        errors.ResourceExhausted("slow down", retry_after=timedelta(seconds=1.25)),
        errors.Unavailable("try again", retry_after=timedelta(seconds=3), reason="MAINTENANCE"),
        errors.PermissionDenied("no", reason="MFA_REQUIRED", metadata={"method": "totp"}),
    )
    assert invalid["codeName"] == "INVALID_ARGUMENT"
    assert invalid["message"] == "the request has invalid fields"
    assert invalid["fieldViolations"] == [
        {"field": "email", "description": "must be an email address"},
        {"field": "password", "description": "too short"},
    ]
    assert (invalid["reason"], invalid["domain"]) == ("INVALID_ARGUMENT", ERROR_DOMAIN)

    assert missing["codeName"] == "NOT_FOUND" and missing["reason"] == "NOT_FOUND"
    assert missing["resource"] == {"type": "watchlist", "name": "w/1"}
    assert missing["fieldViolations"] == [] and "retryDelayMs" not in missing

    assert limited["codeName"] == "RESOURCE_EXHAUSTED" and limited["retryDelayMs"] == 1250
    assert limited["reason"] == "RESOURCE_EXHAUSTED"
    assert (down["codeName"], down["retryDelayMs"], down["reason"]) == (
        "UNAVAILABLE",
        3000,
        "MAINTENANCE",
    )
    assert denied["codeName"] == "PERMISSION_DENIED"
    assert (denied["reason"], denied["metadata"]) == ("MFA_REQUIRED", {"method": "totp"})
