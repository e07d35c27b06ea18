// The symbol rules of the OPTIX services (server/optix_server/common/occ.py and symbol_fields.py),
// so an app refuses a typo before calling, in the server's own words and with the same field
// paths (`symbols[1]`). The server stays the judge: it may allow fewer symbols than the proto's
// maximum, and it alone knows which symbols exist. tests/clients/test_web_symbols.py checks that
// both sides agree on a table of inputs.
import type { FieldViolation } from "./errors.js";

export const MAX_TICKER_LENGTH = 10;
export const OCC_SYMBOL_LENGTH = 21;
/** StreamQuotesRequest / BatchGetQuotesRequest: "1 to 500" symbols (a server may allow fewer). */
export const MAX_SYMBOLS_PER_REQUEST = 500;
const MAX_STRIKE_THOUSANDTHS = 99_999_999;

// Letters first (or "$" for an index), then letters, digits, "." "/" "-" (BRK.B, BRK/B).
const TICKER_RE = /^\$?[A-Z][A-Z0-9./-]*$/;
// Root, yymmdd, C/P, strike x1000 in 8 digits; spaces between root and date optional.
const OCC_RE = /^([A-Z][A-Z0-9]{0,5}) *(\d{2})(\d{2})(\d{2})([CP])(\d{8})$/;

/** A symbol that is empty, too long or malformed; the message says why (as the server does). */
export class SymbolError extends Error {}

// trim() and Python's strip() differ only on rare control characters (\x1c-\x1f, U+FEFF).
const clean = (text: string): string => text.trim().toUpperCase();

/** A ticker (equity, or "$"-prefixed index), uppercased; throws SymbolError when it is not one. */
export function normalizeTicker(text: string): string {
  const ticker = clean(text);
  if (!ticker) throw new SymbolError("symbol must not be empty");
  if (ticker.length > MAX_TICKER_LENGTH) {
    throw new SymbolError(`ticker must be at most ${MAX_TICKER_LENGTH} characters`);
  }
  if (!TICKER_RE.test(ticker)) {
    throw new SymbolError(
      "ticker must start with a letter (or '$' for an index) and contain only " +
        "letters, digits, '.', '/' or '-'",
    );
  }
  return ticker;
}

function validDate(year: number, month: number, day: number): boolean {
  const d = new Date(Date.UTC(year, month - 1, day));
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

/** An OCC option symbol in its canonical 21-character form; throws SymbolError when invalid. */
export function normalizeOcc(text: string): string {
  const cleaned = clean(text);
  if (!cleaned) throw new SymbolError("option symbol must not be empty");
  if (cleaned.length > OCC_SYMBOL_LENGTH) {
    throw new SymbolError(`option symbol must be at most ${OCC_SYMBOL_LENGTH} characters`);
  }
  const match = OCC_RE.exec(cleaned);
  if (match === null) {
    throw new SymbolError(
      "option symbol must be OCC format: root (1-6), yymmdd, C or P, strike x1000 in " +
        "8 digits, e.g. 'AAPL  240621C00190000'",
    );
  }
  const [, root, yy, mm, dd, right, strike] = match;
  if (!validDate(2000 + Number(yy), Number(mm), Number(dd))) {
    throw new SymbolError(`option expiration ${yy}${mm}${dd} is not a valid date`);
  }
  const thousandths = Number(strike);
  if (!(thousandths > 0 && thousandths <= MAX_STRIKE_THOUSANDTHS)) {
    throw new SymbolError("strike must be > 0 and at most 99999.999");
  }
  return `${root.padEnd(6)}${yy}${mm}${dd}${right}${strike}`;
}

/** A ticker or OCC symbol in canonical form; throws SymbolError when it is neither. */
export function normalizeSymbol(text: string): string {
  const cleaned = clean(text);
  // Inner spaces or more than a ticker's length can only mean an OCC symbol: explain that format.
  if (OCC_RE.test(cleaned) || cleaned.includes(" ") || cleaned.length > MAX_TICKER_LENGTH) {
    return normalizeOcc(cleaned);
  }
  return normalizeTicker(cleaned);
}

/** What `checkSymbols` found: the symbols to send and why the others are refused. */
export interface CheckedSymbols {
  /** Normalised and de-duplicated, in the order typed. */
  symbols: string[];
  /** Field violations as the server would name them (`symbols`, `symbols[2]`). */
  violations: FieldViolation[];
}

/** The server's `symbol_list`: 1 to `limit` symbols, each a ticker or OCC symbol. */
export function checkSymbols(
  values: readonly string[],
  field = "symbols",
  limit = MAX_SYMBOLS_PER_REQUEST,
): CheckedSymbols {
  if (values.length === 0) {
    return { symbols: [], violations: [{ field, description: "at least one symbol is required" }] };
  }
  if (values.length > limit) {
    const description = `at most ${limit} symbols per request, got ${values.length}`;
    return { symbols: [], violations: [{ field, description }] };
  }
  const symbols = new Set<string>();
  const violations: FieldViolation[] = [];
  values.forEach((value, i) => {
    try {
      symbols.add(normalizeSymbol(value));
    } catch (error) {
      if (!(error instanceof SymbolError)) throw error;
      violations.push({ field: `${field}[${i}]`, description: error.message });
    }
  });
  return { symbols: [...symbols], violations };
}
