"""`python -m optix_server.infra.auth.rotate`: stage a new JWT signing key in the key directory.

The key is published (JWKS, verification) as soon as each replica (re)loads its keys, and signs
only from its activation time, so roll the replicas within that delay. Remove an old key file
once its last token has expired (the access-token lifetime after the new key took over).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import timedelta

from optix_server.infra.auth.clock import SystemClock
from optix_server.infra.auth.keys import write_new_key
from optix_server.infra.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    """Write a new key that activates after `--activate-in` seconds; print its kid."""
    parser = argparse.ArgumentParser(prog="python -m optix_server.infra.auth.rotate")
    parser.add_argument(
        "--activate-in",
        type=int,
        default=3600,
        help="seconds until the new key starts signing (default 3600)",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env(os.environ)
    if settings.auth.signing_keys_pem.strip():
        print("keys come from OPTIX_AUTH_SIGNING_KEYS_PEM: rotate them in the secret store")
        return 2
    clock = SystemClock()
    keys_dir = settings.auth.key_directory(settings.var_dir)
    delay = timedelta(seconds=max(0, args.activate_in))
    # With no key yet there is nothing to overlap with: the first key signs at once.
    if not any(keys_dir.glob("*.pem")):
        delay = timedelta(0)
    activate_at = clock.now() + delay
    key = write_new_key(keys_dir, clock, activate_at)
    print(f"staged key {key.kid}, signing from {activate_at.isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
