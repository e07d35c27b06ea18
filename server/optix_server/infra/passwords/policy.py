"""Password rules (ASVS 6.2): length 8..256, no silent truncation, common passwords refused."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from importlib import resources

from zxcvbn.frequency_lists import FREQUENCY_LISTS

_COMMON_LIST = "common_passwords.txt"


def load_common_passwords() -> frozenset[str]:
    """Common passwords, casefolded: zxcvbn's 30,000 most frequent (ASVS 6.2.4 asks for at
    least the top 3,000 that meet the length rule) plus the bundled list."""
    text = resources.files(__package__).joinpath(_COMMON_LIST).read_text(encoding="utf-8")
    bundled = (
        line.strip().casefold()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )
    return frozenset((*bundled, *(p.casefold() for p in FREQUENCY_LISTS["passwords"])))


@dataclass(frozen=True)
class PasswordPolicy:
    """Checks a candidate password and says, without echoing it, what is wrong."""

    min_length: int = 8
    max_length: int = 256
    common_passwords: frozenset[str] = field(default_factory=load_common_passwords)

    def problems(self, password: str, *, email: str = "") -> list[str]:
        """Human-readable reasons `password` is refused (empty when acceptable)."""
        # Length is counted in characters after NFKC, as NIST 800-63B suggests; bytes do not
        # matter because the hash pre-hashes, so nothing is ever truncated.
        # The maximum also bounds the characters as sent: Login refuses longer input unread, so
        # a password NFKC shortens below the limit must not be accepted here (it could never
        # be used to sign in), and an oversized one is never normalised at all.
        if len(password) > self.max_length:
            return [f"must be at most {self.max_length} characters"]
        normalised = unicodedata.normalize("NFKC", password)
        length = len(normalised)
        if length < self.min_length:
            return [f"must be at least {self.min_length} characters"]
        if length > self.max_length:
            return [f"must be at most {self.max_length} characters"]
        if any(unicodedata.category(ch) == "Cc" for ch in normalised):
            return ["must not contain control characters"]
        folded = normalised.casefold()
        if folded in self.common_passwords or folded.strip() in self.common_passwords:
            return ["is too common; choose a less guessable one"]
        if email and folded in {email.casefold(), email.split("@", 1)[0].casefold()}:
            return ["must not be the same as the email address"]
        if len(set(folded)) == 1:
            return ["must not be one repeated character"]
        return []
