"""The one parser and formatter of ticker and OCC option symbols.

OCC symbology: the root padded with spaces to 6 characters, the expiration as yymmdd, C or P,
and the strike times 1000 in 8 digits, e.g. ``AAPL  240621C00190000``. Input is normalised
(surrounding whitespace removed, uppercased, unpadded compact form accepted) and the canonical
21-character form is what every service stores and returns.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date

MAX_TICKER_LENGTH = 10
OCC_ROOT_LENGTH = 6
OCC_SYMBOL_LENGTH = 21
# Strike is carried in thousandths in 8 digits: 99,999.999 is the largest representable strike.
MAX_STRIKE_THOUSANDTHS = 99_999_999

# Tickers: letters first (or "$" for indices), then letters, digits, "." "/" "-" for share
# classes such as BRK.B or BRK/B.
_TICKER_RE = re.compile(r"^\$?[A-Z][A-Z0-9./-]*$")
# The root may carry digits for adjusted options (e.g. "AAPL1"); spaces between root and date
# are optional on input so the compact form many APIs use is accepted too.
_OCC_RE = re.compile(r"^([A-Z][A-Z0-9]{0,5}) *(\d{2})(\d{2})(\d{2})([CP])(\d{8})$")


class SymbolError(ValueError):
    """A symbol that is empty, too long or malformed; the message says why."""


class OptionRight(enum.Enum):
    """Call or put, with its OCC letter as value."""

    CALL = "C"
    PUT = "P"


@dataclass(frozen=True, slots=True, order=True)
class OccSymbol:
    """A parsed OCC option symbol; the strike is kept exactly, in thousandths."""

    root: str
    expiration: date
    right: OptionRight
    strike_thousandths: int

    def __post_init__(self) -> None:
        if not _TICKER_RE.match(self.root) or len(self.root) > OCC_ROOT_LENGTH:
            raise SymbolError(f"option root {self.root!r} must be 1-6 letters or digits")
        if self.root.startswith("$"):
            raise SymbolError("option root must not start with '$'")
        if not 0 < self.strike_thousandths <= MAX_STRIKE_THOUSANDTHS:
            raise SymbolError("strike must be > 0 and at most 99999.999")
        if not 2000 <= self.expiration.year <= 2099:
            raise SymbolError("expiration year must be within 2000-2099")

    @property
    def strike(self) -> float:
        """The strike price as a float (exact for any three-decimal strike a human writes)."""
        return self.strike_thousandths / 1000.0

    @property
    def is_call(self) -> bool:
        """Whether the contract is a call."""
        return self.right is OptionRight.CALL

    def format(self) -> str:
        """The canonical 21-character OCC symbol."""
        return (
            f"{self.root:<{OCC_ROOT_LENGTH}}{self.expiration:%y%m%d}"
            f"{self.right.value}{self.strike_thousandths:08d}"
        )

    def __str__(self) -> str:
        return self.format()

    @classmethod
    def build(cls, root: str, expiration: date, right: OptionRight, strike: float) -> OccSymbol:
        """Make a symbol from its parts; the strike must be a multiple of 0.001."""
        thousandths = round(strike * 1000)
        if abs(thousandths - strike * 1000) > 1e-6:
            raise SymbolError("strike must be a multiple of 0.001")
        return cls(normalize_ticker(root), expiration, right, thousandths)


def _clean(text: str) -> str:
    return text.strip().upper()


def normalize_ticker(text: str) -> str:
    """Validate a ticker (equity or "$"-prefixed index) and return it uppercased."""
    ticker = _clean(text)
    if not ticker:
        raise SymbolError("symbol must not be empty")
    if len(ticker) > MAX_TICKER_LENGTH:
        raise SymbolError(f"ticker must be at most {MAX_TICKER_LENGTH} characters")
    if not _TICKER_RE.match(ticker):
        raise SymbolError(
            "ticker must start with a letter (or '$' for an index) and contain only "
            "letters, digits, '.', '/' or '-'"
        )
    return ticker


def looks_like_occ(text: str) -> bool:
    """Whether the text has the shape of an OCC symbol (date, C/P and 8-digit strike)."""
    return _OCC_RE.match(_clean(text)) is not None


def parse_occ(text: str) -> OccSymbol:
    """Parse an OCC option symbol (any case, padded or compact) and validate every part."""
    cleaned = _clean(text)
    if not cleaned:
        raise SymbolError("option symbol must not be empty")
    if len(cleaned) > OCC_SYMBOL_LENGTH:
        raise SymbolError(f"option symbol must be at most {OCC_SYMBOL_LENGTH} characters")
    match = _OCC_RE.match(cleaned)
    if match is None:
        raise SymbolError(
            "option symbol must be OCC format: root (1-6), yymmdd, C or P, strike x1000 in "
            "8 digits, e.g. 'AAPL  240621C00190000'"
        )
    root, yy, mm, dd, right, strike = match.groups()
    try:
        expiration = date(2000 + int(yy), int(mm), int(dd))
    except ValueError as exc:
        raise SymbolError(f"option expiration {yy}{mm}{dd} is not a valid date") from exc
    return OccSymbol(root, expiration, OptionRight(right), int(strike))


def normalize_symbol(text: str) -> str:
    """Normalise a ticker or OCC symbol to its canonical form, raising SymbolError if invalid."""
    cleaned = _clean(text)
    # Anything with an inner space or longer than a ticker can only be meant as an OCC symbol,
    # so its error should explain the OCC format rather than the ticker rules.
    if looks_like_occ(cleaned) or " " in cleaned or len(cleaned) > MAX_TICKER_LENGTH:
        return parse_occ(cleaned).format()
    return normalize_ticker(cleaned)


def is_option_symbol(symbol: str) -> bool:
    """Whether a canonical symbol names an option (the OCC form), not a ticker."""
    return len(symbol) == OCC_SYMBOL_LENGTH and looks_like_occ(symbol)
