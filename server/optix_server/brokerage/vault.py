"""Provider tokens and PKCE verifiers sealed for storage with TokenBox, each bound to its row."""

from __future__ import annotations

from optix_server.brokerage.connectors.base import TokenSet
from optix_server.brokerage.domain import SealedTokens
from optix_server.brokerage.tokens import TokenBox, token_context
from optix_server.infra import errors


def _verifier_context(state_hash: str) -> str:
    return f"optix.brokerage/start/{state_hash}/verifier"


class TokenVault:
    """Seals and opens a connection's tokens; plaintext never leaves this and the connectors."""

    def __init__(self, box: TokenBox) -> None:
        self._box = box

    def seal(self, connection_id: str, tokens: TokenSet) -> SealedTokens:
        """The stored form of `tokens` for `connection_id`."""
        return SealedTokens(
            sealed_access=self._box.seal(
                tokens.access_token, token_context(connection_id, "access")
            ),
            sealed_refresh=self._box.seal(
                tokens.refresh_token, token_context(connection_id, "refresh")
            ),
            access_expire_time=tokens.access_expires_at,
            refresh_expire_time=tokens.refresh_expires_at,
        )

    def open(self, connection_id: str, sealed: SealedTokens) -> TokenSet:
        """The tokens again; FAILED_PRECONDITION (re-authorise) when they no longer open, e.g.
        sealed under a key that was removed from the configuration."""
        access = self._box.open(sealed.sealed_access, token_context(connection_id, "access"))
        refresh = self._box.open(sealed.sealed_refresh, token_context(connection_id, "refresh"))
        if access is None or refresh is None:
            raise errors.FailedPrecondition(
                "the stored authorisation cannot be read; sign in at the broker again",
                reason="TOKENS_UNREADABLE",
            )
        return TokenSet(
            access_token=access,
            access_expires_at=sealed.access_expire_time,
            refresh_token=refresh,
            refresh_expires_at=sealed.refresh_expire_time,
        )

    def seal_verifier(self, state_hash: str, verifier: str) -> str:
        """A PKCE verifier sealed for its start row."""
        return self._box.seal(verifier, _verifier_context(state_hash))

    def open_verifier(self, state_hash: str, sealed: str) -> str | None:
        """The verifier of a start row; None when it does not open."""
        return self._box.open(sealed, _verifier_context(state_hash))
