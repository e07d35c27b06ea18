// Test driver: reads {"symbols": [...], "lists": [[...], ...], "limit": n} on stdin and prints
// what the web client's symbol rule makes of each symbol ({"symbol"} or {"error"}) and of each
// list (checkSymbols), so a Python test can hold it against the server's rule (common/occ.py,
// symbol_fields.py).
import { checkSymbols, normalizeSymbol, SymbolError } from "../symbols.js";

interface Input {
  symbols: string[];
  lists: string[][];
  limit: number;
}

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Input;
const symbols = input.symbols.map((value) => {
  try {
    return { symbol: normalizeSymbol(value) };
  } catch (error) {
    if (!(error instanceof SymbolError)) throw error;
    return { error: error.message };
  }
});
const lists = input.lists.map((list) => checkSymbols(list, "symbols", input.limit));
process.stdout.write(`${JSON.stringify({ symbols, lists })}\n`);
