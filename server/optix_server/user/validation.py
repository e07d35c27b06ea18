"""Field rules of the user contract: email, display name, time zone, codes (webhook URLs:
common.webhooks)."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from dataclasses import dataclass, field

from optix_server.common.text import has_control_characters
from optix_server.infra.errors import ViolationCollector
from optix_server.infra.passwords import PasswordPolicy

MAX_EMAIL = 254
MAX_DISPLAY_NAME = 100
MAX_TIME_ZONE = 64
# Opaque values we issue are far shorter; anything longer is not ours and is refused unread.
# Generous enough that a JWT sent where a refresh token belongs is UNAUTHENTICATED, not a
# field violation (token confusion must look like any other bad token).
MAX_OPAQUE_TOKEN = 4096
# Passwords are checked for length by the policy; this only bounds what Login will hash, and
# must equal the policy's maximum so that every password Register accepts can sign in.
MAX_PASSWORD_CHARS = PasswordPolicy.max_length
MAX_RECOVERY_CODE = 32

_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+$")
_DOMAIN_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TOTP = re.compile(r"^[0-9]{6}$")


def normalise_email(raw: str) -> tuple[str, str] | None:
    """(display form, identity key) of an email address, or None when it is not valid.

    The display form keeps the local part as typed and shows the domain in its canonical Unicode
    form; the key casefolds the local part and uses the ASCII (punycode) domain, because people
    do not expect Bob@exämple.com and bob@xn--exmple-cua.com to be two accounts.
    """
    email = unicodedata.normalize("NFC", raw.strip())
    if not email or len(email) > MAX_EMAIL or email.count("@") != 1:
        return None
    local, domain = email.split("@")
    domain = domain.lower().rstrip(".")
    if not local or len(local) > 64 or not _LOCAL_PART.match(local):
        return None
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    try:
        # IDNA maps every spelling of a domain (Unicode, punycode, with invisible characters)
        # to one ASCII form; the key uses it, so one mailbox cannot hold two accounts.
        ascii_domain = domain.encode("idna").decode("ascii").lower()
        display_domain = ascii_domain.encode("ascii").decode("idna")
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        return None
    return f"{local}@{display_domain}", f"{local.casefold()}@{ascii_domain}"


@dataclass
class TimeZones:
    """The IANA zone names known to this host (loaded once; the scan takes a moment)."""

    names: frozenset[str] = field(default_factory=lambda: frozenset(zoneinfo.available_timezones()))

    def is_valid(self, name: str) -> bool:
        """Whether `name` is an IANA zone (e.g. America/New_York, UTC)."""
        return name in self.names or name == "UTC"


def check_display_name(value: str, path: str, errors: ViolationCollector) -> None:
    """At most 100 characters, no control characters."""
    if len(value) > MAX_DISPLAY_NAME:
        errors.add(path, f"must be at most {MAX_DISPLAY_NAME} characters")
    elif has_control_characters(value):
        errors.add(path, "must not contain control characters")


def check_time_zone(value: str, path: str, zones: TimeZones, errors: ViolationCollector) -> None:
    """An IANA time zone name."""
    if len(value) > MAX_TIME_ZONE or not zones.is_valid(value):
        errors.add(path, "must be an IANA time zone name such as America/New_York")


def check_totp_code(value: str, path: str, errors: ViolationCollector) -> None:
    """Exactly six digits."""
    if not _TOTP.match(value):
        errors.add(path, "must be a 6-digit code")


def check_recovery_code(value: str, path: str, errors: ViolationCollector) -> None:
    """A non-empty code of sensible length."""
    if not value.strip():
        errors.add(path, "is required")
    elif len(value) > MAX_RECOVERY_CODE:
        errors.add(path, f"must be at most {MAX_RECOVERY_CODE} characters")


def check_opaque(value: str, path: str, errors: ViolationCollector) -> None:
    """A non-empty token no longer than any token the service issues."""
    if not value:
        errors.add(path, "is required")
    elif len(value) > MAX_OPAQUE_TOKEN:
        errors.add(path, f"must be at most {MAX_OPAQUE_TOKEN} characters")


def check_password_present(value: str, path: str, errors: ViolationCollector) -> None:
    """A password was sent and is not absurdly long (never echoes the value)."""
    if not value:
        errors.add(path, "is required")
    elif len(value) > MAX_PASSWORD_CHARS:
        errors.add(path, f"must be at most {MAX_PASSWORD_CHARS} characters")
