// The Quotes screen: live quotes for the symbols typed, from one StreamQuotes call. New symbols
// are checked with the server's own rule first; a list that passes is streamed by a new call
// while the current one keeps running, and replaces it only once it delivers; a list the server
// refuses leaves the current stream as it was, with the reason next to the symbols box.
import { DataSource, type Quote } from "../../gen/optix/marketdata/v1/quote_pb.js";
import { checkSymbols } from "../../symbols.js";
import { el, fmt, make, section } from "../dom.js";
import { explain, FieldErrors } from "../fields.js";
import { QuoteStream } from "../quote-stream.js";
import type { Screen, ScreenContext } from "../screen.js";

const DEFAULT_SYMBOLS = "AAPL, MSFT, SPY, TSLA";

const HTML = `
  <h2>Live quotes <span id="stream-state" class="badge" data-testid="stream-state">idle</span></h2>
  <form id="symbols-form" class="row-form" novalidate>
    <div class="field grow">
      <label for="symbols">Symbols, comma separated</label>
      <input id="symbols" data-testid="symbols" autocomplete="off" autocapitalize="characters" spellcheck="false" />
      <p id="symbols-error" class="field-error" data-testid="symbols-error" role="alert"></p>
    </div>
    <button type="submit" class="primary" data-testid="stream">Stream</button>
  </form>
  <p id="quotes-note" class="note" data-testid="quotes-note"></p>
  <div class="table-scroll">
    <table class="quotes">
      <thead>
        <tr><th>Symbol</th><th>Last</th><th>Bid</th><th>Ask</th><th>Chg</th><th>%</th><th class="wide">Seq</th></tr>
      </thead>
      <tbody id="quotes" data-testid="quotes" data-symbols="" data-generation="0"></tbody>
    </table>
  </div>
  <p class="note">Updates: <span id="update-count" data-testid="update-count">0</span></p>`;

/** Live quotes for a list of symbols. */
export class QuotesScreen implements Screen {
  readonly id = "quotes";
  readonly title = "Quotes";
  readonly glyph = "≋";
  readonly root = section("quotes-panel", "quotes-panel", HTML);
  private context: ScreenContext | undefined;
  private live: QuoteStream | undefined;
  private pending: QuoteStream | undefined;
  private readonly rows = new Map<string, HTMLTableRowElement>();
  private readonly errors: FieldErrors;
  private updates = 0;
  private generation = 0;
  private started = false;

  constructor() {
    this.errors = new FieldErrors(el("quotes-note")).bind(
      "symbols",
      el("symbols"),
      el("symbols-error"),
    );
    el("symbols-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.follow(el<HTMLInputElement>("symbols").value);
    });
    this.clear();
  }

  signedIn(context: ScreenContext): void {
    this.clear();
    this.context = context;
  }

  /** The first visit starts the stream; later visits find it running. */
  shown(): void {
    if (this.started || this.context === undefined) return;
    this.started = true;
    this.follow(el<HTMLInputElement>("symbols").value);
  }

  signedOut(): void {
    this.context = undefined;
    this.clear();
  }

  /** Stop both calls and show nothing (the default symbols in the box). */
  private clear(): void {
    this.live?.stop();
    this.pending?.stop();
    this.live = undefined;
    this.pending = undefined;
    this.started = false;
    this.rows.clear();
    this.updates = 0;
    el("quotes").replaceChildren();
    el("quotes").dataset.symbols = "";
    el("update-count").textContent = "0";
    el<HTMLInputElement>("symbols").value = DEFAULT_SYMBOLS;
    this.errors.clear();
    this.state("idle");
  }

  private state(text: string): void {
    el("stream-state").textContent = text;
  }

  /** Stream `text`'s symbols instead of the current ones, if they pass. */
  private follow(text: string): void {
    const context = this.context;
    if (context === undefined) return;
    const typed = text
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    const checked = checkSymbols(typed);
    if (checked.violations.length > 0) {
      this.errors.showViolations(checked.violations, (i) => typed[i]);
      this.keptNote();
      return;
    }
    this.errors.clear();
    this.pending?.stop();
    if (this.live === undefined) this.state("connecting");
    else el("quotes-note").textContent = `Switching to ${checked.symbols.join(", ")}…`;
    const candidate: QuoteStream = new QuoteStream(context.clients, checked.symbols, {
      message: (quotes) => {
        if (this.pending === candidate) this.commit(candidate);
        if (this.live === candidate) for (const quote of quotes) this.render(quote);
      },
      state: (state) => {
        if (this.live === candidate) this.state(state);
      },
      refused: (error) => {
        if (this.pending !== candidate) return;
        this.pending = undefined;
        this.errors.showError(error, (i) => checked.symbols[i]);
        this.keptNote();
        if (this.live === undefined) this.state("error");
      },
      failed: (error) => {
        if (this.live !== candidate) return;
        this.state("error");
        context.status(explain(error));
      },
    });
    this.pending = candidate;
    candidate.start();
  }

  /** Under the error: what is still streaming, so the user knows nothing was lost. */
  private keptNote(): void {
    const note = el("quotes-note");
    const kept = this.live?.symbols.join(", ");
    const extra = note.textContent ? `${note.textContent} · ` : "";
    if (kept) note.textContent = `${extra}Still streaming ${kept}`;
  }

  /** The new call delivered: it replaces the old one and the table starts over. */
  private commit(candidate: QuoteStream): void {
    this.live?.stop();
    this.live = candidate;
    this.pending = undefined;
    this.generation += 1;
    this.rows.clear();
    const body = el("quotes");
    body.replaceChildren();
    for (const symbol of candidate.symbols) this.row(symbol);
    body.dataset.symbols = candidate.symbols.join(",");
    body.dataset.generation = String(this.generation);
    el<HTMLInputElement>("symbols").value = candidate.symbols.join(", ");
    el("quotes-note").textContent = "";
    this.state("live");
  }

  private row(symbol: string): HTMLTableRowElement {
    let row = this.rows.get(symbol);
    if (row === undefined) {
      row = make("tr", {}, { symbol });
      const name = make("td", { className: "sym" });
      name.append(make("span", { textContent: symbol }), make("small", { className: "src" }));
      // Last, bid, ask, change, %, and the sequence number (a wide screen's extra column).
      const cells = ["—", "", "", "", "", ""].map((textContent, i) =>
        make("td", { textContent, className: i === 5 ? "wide" : "" }),
      );
      row.append(name, ...cells);
      el("quotes").append(row);
      this.rows.set(symbol, row);
    }
    return row;
  }

  private render(quote: Quote): void {
    const row = this.row(quote.symbol);
    const cells = row.querySelectorAll("td");
    const source = DataSource[quote.source]?.toLowerCase() ?? "";
    const labelled = quote.source === DataSource.SIMULATED || quote.source === DataSource.REPLAY;
    const src = cells[0].querySelector(".src");
    if (src) src.textContent = labelled ? source : "";
    const values = [
      fmt(quote.last),
      fmt(quote.bid),
      fmt(quote.ask),
      fmt(quote.change),
      fmt(quote.changePercent),
      String(quote.sequence),
    ];
    values.forEach((text, i) => {
      const cell = cells[i + 1];
      cell.textContent = text;
      if (i === 3 || i === 4) cell.className = quote.change >= 0 ? "up" : "down";
    });
    row.dataset.sequence = String(quote.sequence);
    row.classList.remove("flash");
    void row.offsetWidth; // restart the flash animation
    row.classList.add("flash");
    this.updates += 1;
    el("update-count").textContent = String(this.updates);
  }
}
