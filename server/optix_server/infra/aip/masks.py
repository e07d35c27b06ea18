"""Update masks (AIP-134): the paths an Update may touch, checked against what it allows."""

from __future__ import annotations

from collections.abc import Iterable

from optix_server.infra import errors


def update_paths(paths: Iterable[str], allowed: Iterable[str]) -> frozenset[str]:
    """The mask's paths; an empty mask or a path outside `allowed` is INVALID_ARGUMENT."""
    given = [path.strip() for path in paths]
    permitted = frozenset(allowed)
    if not given:
        raise errors.InvalidArgument(
            "update_mask is required",
            [
                errors.FieldViolation(
                    "update_mask", f"name the fields to update: {', '.join(sorted(permitted))}"
                )
            ],
        )
    unknown = [path for path in given if path not in permitted]
    if unknown:
        raise errors.InvalidArgument(
            "update_mask names fields that cannot be updated",
            [
                errors.FieldViolation(
                    "update_mask.paths",
                    f"{path!r} cannot be updated; allowed: {', '.join(sorted(permitted))}",
                )
                for path in unknown
            ],
        )
    return frozenset(given)
