"""A bounded memo of tokens that already passed full verification, so a client's repeated
calls with the same token skip the signature check (the hottest cost of a cheap RPC)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from optix_server.infra.auth.principal import Principal


@dataclass(frozen=True)
class VerifiedToken:
    """What a successful verification established: who, until when, and under which key."""

    principal: Principal
    expires_at: float
    kid: str


class VerifiedTokenCache:
    """LRU of exact token strings to their verification result; entries die with the token."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, VerifiedToken] = OrderedDict()

    def get(self, token: str) -> VerifiedToken | None:
        """The remembered result for `token`, if any (the caller re-checks time and key)."""
        entry = self._entries.get(token)
        if entry is not None:
            self._entries.move_to_end(token)
        return entry

    def put(self, token: str, verified: VerifiedToken) -> None:
        """Remember a verified token, evicting the least recently used beyond the bound."""
        if self._max_entries <= 0:
            return
        self._entries[token] = verified
        self._entries.move_to_end(token)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def discard(self, token: str) -> None:
        """Forget `token` (expired, or its key was withdrawn)."""
        self._entries.pop(token, None)
