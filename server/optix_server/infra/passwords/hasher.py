"""bcrypt over an HMAC-SHA256 pre-hash, run off the event loop in a bounded thread pool."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import bcrypt

from optix_server.infra.errors import ResourceExhausted, Unavailable

# Stored hashes carry a scheme prefix so the scheme can change later without ambiguity.
_SCHEME = "hmac-sha256+bcrypt$"
# Hashes a user can never match: compared against when the account does not exist, so that an
# unknown email costs the same bcrypt work as a wrong password (no user enumeration by timing).
_DUMMY_SECRET = "optix-dummy-password-never-valid"
_T = TypeVar("_T")


@dataclass(frozen=True)
class PasswordHasherConfig:
    """Tuning for PasswordHasher: bcrypt cost, pepper and the size of its worker pool."""

    pepper: bytes
    cost: int = 12
    # Threads running bcrypt. Keep below the core count so the event loop always has a core.
    max_workers: int = 1
    # Hash/verify calls admitted at once (running + queued); beyond this callers are refused
    # quickly instead of queueing without bound behind seconds of bcrypt work.
    max_pending: int = 16
    # Added to the OS niceness of the bcrypt threads, so the event loop wins any CPU contention.
    worker_niceness: int = 10

    def __post_init__(self) -> None:
        if not 4 <= self.cost <= 31:
            raise ValueError("bcrypt cost must be between 4 and 31")
        if len(self.pepper) < 16:
            raise ValueError("the password pepper must be at least 16 bytes")
        if self.max_workers < 1 or self.max_pending < self.max_workers:
            raise ValueError("need max_workers >= 1 and max_pending >= max_workers")


def _lower_thread_priority(niceness: int) -> None:
    # Linux schedules threads individually: raising this thread's niceness leaves the event-loop
    # thread at normal priority. Best effort: elsewhere (or without permission) nothing changes.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class PasswordHasher:
    """Hashes and verifies passwords with bcrypt; CPU work runs in a small thread pool."""

    def __init__(self, config: PasswordHasherConfig) -> None:
        self._config = config
        self._executor = ThreadPoolExecutor(
            max_workers=config.max_workers,
            thread_name_prefix="bcrypt",
            initializer=_lower_thread_priority,
            initargs=(config.worker_niceness,),
        )
        self._admission = asyncio.Semaphore(config.max_pending)
        self._dummy_hash: str | None = None

    @property
    def cost(self) -> int:
        """The bcrypt cost new hashes are made with."""
        return self._config.cost

    def _prehash(self, password: str) -> bytes:
        # bcrypt reads only 72 bytes (bcrypt 5 raises beyond); HMAC-SHA256 under the pepper maps
        # any length to 32 bytes, and base64 keeps NUL bytes out of bcrypt's input.
        normalised = unicodedata.normalize("NFKC", password).encode("utf-8")
        digest = hmac.new(self._config.pepper, normalised, hashlib.sha256).digest()
        return base64.b64encode(digest)

    def _hash_sync(self, password: str) -> str:
        salt = bcrypt.gensalt(rounds=self._config.cost)
        return _SCHEME + bcrypt.hashpw(self._prehash(password), salt).decode("ascii")

    def _verify_sync(self, password: str, stored: str) -> bool:
        if not stored.startswith(_SCHEME):
            return False
        try:
            return bcrypt.checkpw(self._prehash(password), stored[len(_SCHEME) :].encode("ascii"))
        except ValueError:
            # A malformed stored hash never verifies; it must not become an error with details.
            return False

    async def _in_pool(self, call: Callable[[], _T]) -> _T:
        if self._admission.locked():
            raise ResourceExhausted(
                "too many sign-in attempts are being processed; retry shortly",
                retry_after=timedelta(seconds=1),
                reason="PASSWORD_HASHER_BUSY",
            )
        async with self._admission:
            loop = asyncio.get_running_loop()
            try:
                future = loop.run_in_executor(self._executor, call)
            except RuntimeError:
                # The pool was closed: the server is shutting down; the client should retry.
                raise Unavailable("the server is shutting down", reason="SHUTTING_DOWN") from None
            return await future

    async def hash(self, password: str) -> str:
        """A new salted hash of `password`, safe to store."""
        return await self._in_pool(lambda: self._hash_sync(password))

    async def verify(self, password: str, stored: str | None) -> bool:
        """Whether `password` matches `stored`; with no hash, spend the same work and fail."""
        if stored is None:
            dummy = await self._dummy()
            await self._in_pool(lambda: self._verify_sync(password, dummy))
            return False
        return await self._in_pool(lambda: self._verify_sync(password, stored))

    def needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with another scheme or cost and should be replaced."""
        if not stored.startswith(_SCHEME):
            return True
        parts = stored[len(_SCHEME) :].split("$")
        return len(parts) < 3 or parts[2] != f"{self._config.cost:02d}"

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(_DUMMY_SECRET)
        return self._dummy_hash

    async def warm_up(self) -> None:
        """Compute the dummy hash now so the first unknown-user login is not faster or slower."""
        await self._dummy()

    def close(self) -> None:
        """Refuse new work; queued checks still finish (draining RPCs), then the threads exit."""
        self._executor.shutdown(wait=False, cancel_futures=False)
