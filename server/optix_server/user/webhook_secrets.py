"""The default webhook's signing secret: generated here, stored only sealed, opened only for the
internal GetUserWebhook read."""

from __future__ import annotations

from optix_server.infra.crypto import SecretBox, opaque_token

# The same form as an alert's own secret: "whsec_" and 43 base64url characters (256 bits).
SECRET_PREFIX = "whsec_"


def _context(user_id: str) -> str:
    # Bound to the account and to this use: a sealed value moved to another row or column
    # does not open.
    return f"{user_id}/default-webhook"


class WebhookSecrets:
    """Makes, seals and opens users' default-webhook signing secrets."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box

    @staticmethod
    def new_secret() -> str:
        """A fresh signing secret (plain text: return it once, store only its sealed form)."""
        return opaque_token(SECRET_PREFIX)

    def seal(self, secret: str, user_id: str) -> str:
        """The secret encrypted for `user_id`'s row."""
        return self._box.seal(secret, _context(user_id))

    def open(self, sealed: str | None, user_id: str) -> str | None:
        """The stored secret in clear; None when absent, tampered with or from another row."""
        return None if sealed is None else self._box.open(sealed, _context(user_id))
