"""Etags (AIP-154): an opaque version tag per resource revision, compared for equality."""

from __future__ import annotations

import hashlib

from optix_server.infra import errors


def etag_of(resource_id: str, revision: int) -> str:
    """The etag of `resource_id` at `revision` (opaque: it reveals no counter)."""
    digest = hashlib.sha256(f"{resource_id}|{revision}".encode()).hexdigest()[:16]
    return f'W/"{digest}"'


def check_etag(given: str, resource_id: str, revision: int) -> None:
    """ABORTED when `given` is set and is not the current etag; empty means unconditional."""
    if given and given != etag_of(resource_id, revision):
        raise stale_etag()


def stale_etag() -> errors.Aborted:
    """The error of a change that was conditional on an outdated etag."""
    return errors.Aborted(
        "the resource changed since the etag was read; read it again and retry",
        reason="STALE_ETAG",
    )
