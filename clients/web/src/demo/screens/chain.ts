// The Chain screen: an underlying's options chain (calls | strike | puts) for one expiration,
// with IV and Greeks. A ticker the server does not know (NOT_FOUND) clears the previous chain,
// so no stale numbers stay next to the new name.
import { Code } from "@connectrpc/connect";
import { optixError } from "../../errors.js";
import { type Date as DateMsg, OptionRight } from "../../gen/optix/common/v1/instrument_pb.js";
import type { OptionQuote } from "../../gen/optix/marketdata/v1/option_chain_pb.js";
import { normalizeTicker, SymbolError } from "../../symbols.js";
import { el, fmt, make, section } from "../dom.js";
import { FieldErrors } from "../fields.js";
import type { Screen, ScreenContext } from "../screen.js";

const DEFAULT_UNDERLYING = "AAPL";
const DEFAULT_STRIKES = "8";
const UNARY = { timeoutMs: 15_000 };

const HTML = `
  <h2>Options chain</h2>
  <form id="chain-form" class="row-form" novalidate>
    <div class="field">
      <label for="underlying">Underlying</label>
      <input id="underlying" data-testid="underlying" autocomplete="off" autocapitalize="characters" spellcheck="false" />
      <p id="underlying-error" class="field-error" data-testid="underlying-error" role="alert"></p>
    </div>
    <div class="field grow">
      <label for="expiration">Expiration</label>
      <select id="expiration" data-testid="expiration"></select>
      <p id="expiration-error" class="field-error" data-testid="expiration-error" role="alert"></p>
    </div>
    <div class="field narrow">
      <label for="strike-count">Strikes</label>
      <input id="strike-count" data-testid="strike-count" type="number" inputmode="numeric" min="1" max="50" />
      <p id="strike-count-error" class="field-error" data-testid="strike-count-error" role="alert"></p>
    </div>
    <button type="submit" class="primary" data-testid="load-chain">Load</button>
  </form>
  <p id="chain-error" class="form-error" data-testid="chain-error" role="alert"></p>
  <p id="chain-summary" class="note" data-testid="chain-summary"></p>
  <div class="table-scroll">
    <table class="chain">
      <thead>
        <tr><th colspan="7" class="side">Calls</th><th></th><th colspan="7" class="side">Puts</th></tr>
        <tr>
          <th>Bid</th><th>Ask</th><th>IV</th><th>Δ</th><th>Γ</th><th>Θ/day</th><th>Vega</th>
          <th class="strike">Strike</th>
          <th>Bid</th><th>Ask</th><th>IV</th><th>Δ</th><th>Γ</th><th>Θ/day</th><th>Vega</th>
        </tr>
      </thead>
      <tbody id="chain" data-testid="chain" data-underlying=""></tbody>
    </table>
  </div>`;

/** The seven cells shown per side of a strike. */
function sideCells(option: OptionQuote | undefined): HTMLTableCellElement[] {
  const greeks = option?.greeks;
  const values = option
    ? [
        fmt(option.bid),
        fmt(option.ask),
        option.impliedVolatility > 0 ? `${fmt(option.impliedVolatility * 100, 1)}%` : "—",
        fmt(greeks?.delta ?? Number.NaN, 3),
        fmt(greeks?.gamma ?? Number.NaN, 4),
        fmt(greeks?.theta ?? Number.NaN, 3),
        fmt(greeks?.vega ?? Number.NaN, 3),
      ]
    : ["", "", "", "", "", "", ""];
  const className = option?.inTheMoney ? "itm" : "";
  return values.map((textContent) => make("td", { textContent, className }));
}

/** Calls | strike | puts, one row per strike. */
function chainRows(options: OptionQuote[]): HTMLTableRowElement[] {
  const byStrike = new Map<number, { call?: OptionQuote; put?: OptionQuote }>();
  for (const option of options) {
    const strike = option.contract?.strike ?? 0;
    const entry = byStrike.get(strike) ?? {};
    if (option.contract?.right === OptionRight.CALL) entry.call = option;
    else entry.put = option;
    byStrike.set(strike, entry);
  }
  return [...byStrike.entries()]
    .sort(([a], [b]) => a - b)
    .map(([strike, { call, put }]) => {
      const row = make("tr");
      const middle = make("td", { className: "strike", textContent: fmt(strike) });
      row.replaceChildren(...sideCells(call), middle, ...sideCells(put));
      return row;
    });
}

const dateKey = (d: DateMsg | undefined): string =>
  d ? `${d.year}-${String(d.month).padStart(2, "0")}-${String(d.day).padStart(2, "0")}` : "";

/** An underlying's chain for one expiration. */
export class ChainScreen implements Screen {
  readonly id = "chain";
  readonly title = "Chain";
  readonly glyph = "⊞";
  readonly root = section("chain-panel", "chain-panel", HTML);
  private context: ScreenContext | undefined;
  private readonly errors: FieldErrors;
  private request = 0; // only the latest Load's answer is shown

  constructor() {
    this.errors = new FieldErrors(el("chain-error"))
      .bind("underlying", el("underlying"), el("underlying-error"))
      .bind("strike_count", el("strike-count"), el("strike-count-error"))
      .bind("expiration_start", el("expiration"), el("expiration-error"))
      .bind("expiration_end", el("expiration"), el("expiration-error"));
    el("chain-form").addEventListener("submit", (event) => {
      event.preventDefault();
      void this.load();
    });
    el("underlying").addEventListener("change", () => {
      el<HTMLSelectElement>("expiration").dataset.underlying = "";
    });
    this.clear();
  }

  signedIn(context: ScreenContext): void {
    this.clear();
    this.context = context;
  }

  signedOut(): void {
    this.context = undefined;
    this.clear();
  }

  private clear(): void {
    this.request += 1;
    el<HTMLInputElement>("underlying").value = DEFAULT_UNDERLYING;
    el<HTMLInputElement>("strike-count").value = DEFAULT_STRIKES;
    this.errors.clear();
    this.clearChain();
  }

  /** No chain, no expirations: nothing of an earlier answer stays on screen. */
  private clearChain(): void {
    el("chain").replaceChildren();
    el("chain").dataset.underlying = "";
    el("chain-summary").textContent = "";
    const select = el<HTMLSelectElement>("expiration");
    select.replaceChildren(make("option", { value: "", textContent: "nearest expiration" }));
    select.dataset.underlying = "";
  }

  private async loadExpirations(underlying: string): Promise<void> {
    const clients = this.context?.clients;
    if (clients === undefined) return;
    const reply = await clients.marketdata.listExpirations({ underlying }, UNARY);
    const select = el<HTMLSelectElement>("expiration");
    select.replaceChildren(
      ...reply.expirations.map((expiration) => {
        const value = dateKey(expiration.date);
        return make("option", { value, textContent: `${value} (${expiration.daysToExpiration}d)` });
      }),
    );
    select.dataset.underlying = underlying;
  }

  private async load(): Promise<void> {
    const clients = this.context?.clients;
    if (clients === undefined) return;
    const request = ++this.request;
    this.errors.clear();
    let underlying: string;
    try {
      underlying = normalizeTicker(el<HTMLInputElement>("underlying").value);
    } catch (error) {
      if (!(error instanceof SymbolError)) throw error;
      this.errors.set("underlying", error.message);
      return;
    }
    const strikeCount = Number(el<HTMLInputElement>("strike-count").value || DEFAULT_STRIKES);
    if (!Number.isInteger(strikeCount) || strikeCount < 1) {
      this.errors.set("strike_count", "must be a whole number of at least 1");
      return;
    }
    el<HTMLInputElement>("underlying").value = underlying;
    const select = el<HTMLSelectElement>("expiration");
    try {
      if (select.dataset.underlying !== underlying) await this.loadExpirations(underlying);
      if (request !== this.request) return;
      const [year, month, day] = select.value.split("-").map(Number);
      const expiration = select.value ? { year, month, day } : undefined;
      const reply = await clients.marketdata.getOptionsChain(
        { underlying, strikeCount, expirationStart: expiration, expirationEnd: expiration },
        UNARY,
      );
      if (request !== this.request) return;
      const options = reply.chain?.options ?? [];
      el("chain").replaceChildren(...chainRows(options));
      el("chain").dataset.underlying = underlying;
      const pricing = reply.chain?.pricing;
      el("chain-summary").textContent = pricing
        ? `${underlying} ${fmt(pricing.underlyingPrice)} · ${select.value} · r ${fmt(pricing.riskFreeRate * 100)}% · q ${fmt(pricing.dividendYield * 100)}% · ${pricing.model}, IV from ${pricing.priceBasis}`
        : `${underlying}: ${options.length} contracts`;
    } catch (error) {
      if (request !== this.request) return;
      const info = optixError(error);
      if (info.code === Code.NotFound) {
        this.clearChain();
        this.errors.set("underlying", info.message || `${underlying} is not known`);
      } else {
        this.errors.showError(error);
      }
    }
  }
}
