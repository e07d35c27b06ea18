"""Resource names (AIP-122) under a user: `users/{user}/<collection>/{id}`, where `{user}` is
the caller's id or the alias `me`. Another user's name is NOT_FOUND, never PERMISSION_DENIED,
so a name reveals nothing about whether it exists."""

from __future__ import annotations

import re
from dataclasses import dataclass

from optix_server.infra import errors

ME = "me"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _invalid(field: str, description: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(
        f"{field} is not a valid resource name", [errors.FieldViolation(field, description)]
    )


def user_name(user_id: str) -> str:
    """`users/{user_id}`."""
    return f"users/{user_id}"


def parse_parent(text: str, caller_id: str, *, field: str = "parent") -> str:
    """The user id of `users/{user}` (`me` is the caller); another user is NOT_FOUND."""
    parts = text.split("/")
    if len(parts) != 2 or parts[0] != "users" or not parts[1]:
        raise _invalid(field, "expected users/{user}, with {user} your user id or `me`")
    return _owned(parts[1], caller_id, text)


def _owned(user: str, caller_id: str, name: str) -> str:
    if user not in (ME, caller_id):
        raise errors.NotFound(f"{name} not found", resource_name=name)
    return caller_id


@dataclass(frozen=True)
class ChildPattern:
    """The names of one collection under a user, e.g. `users/{user}/watchlists/{watchlist}`."""

    collection: str
    resource_type: str

    def format(self, user_id: str, resource_id: str) -> str:
        """The canonical name (always the user's id, never `me`)."""
        return f"users/{user_id}/{self.collection}/{resource_id}"

    def parse(self, text: str, caller_id: str, *, field: str = "name") -> str:
        """The resource id of a name owned by the caller; malformed is INVALID_ARGUMENT,
        another user's (or a syntactically odd id that cannot exist) is NOT_FOUND."""
        parts = text.split("/")
        if len(parts) != 4 or parts[0] != "users" or parts[2] != self.collection:
            raise _invalid(field, f"expected users/{{user}}/{self.collection}/{{id}}")
        if not parts[1] or not parts[3]:
            raise _invalid(field, f"expected users/{{user}}/{self.collection}/{{id}}")
        _owned(parts[1], caller_id, text)
        if not _ID.fullmatch(parts[3]):
            raise self.not_found(text)
        return parts[3]

    def not_found(self, name: str) -> errors.NotFound:
        """The NotFound of a name in this collection."""
        return errors.NotFound(
            f"{name} not found", resource_type=self.resource_type, resource_name=name
        )
