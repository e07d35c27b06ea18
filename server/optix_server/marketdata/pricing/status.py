"""Why an implied volatility was or was not found."""

from __future__ import annotations

import enum


class IVStatus(enum.IntEnum):
    """Implied volatility outcomes (values match the contract's enum)."""

    OK = 1
    BELOW_INTRINSIC = 2
    NO_BID = 3
    NOT_CONVERGED = 4
    EXPIRED = 5
    ABOVE_MAXIMUM = 6
