// Demo page: sign in/register, the watchlist home screen, live quotes, an options chain.
import { Code, ConnectError } from "@connectrpc/connect";
import { createBrowserClients } from "../browser.js";
import { DataSource, type Quote } from "../gen/optix/marketdata/v1/quote_pb.js";
import type { OptionQuote } from "../gen/optix/marketdata/v1/option_chain_pb.js";
import { type Date as DateMsg, OptionRight } from "../gen/optix/common/v1/instrument_pb.js";
import type { OptixClients } from "../client.js";
import { WatchlistScreen } from "./watchlist.js";

const $ = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`missing #${id}`);
  return element as T;
};

/** The edge URL: ?edge=... or the page's host on port 8080. */
function defaultEdge(): string {
  const fromQuery = new URLSearchParams(location.search).get("edge");
  return fromQuery ?? `${location.protocol}//${location.hostname}:8080`;
}

function describe(error: unknown): string {
  const e = ConnectError.from(error);
  return `${Code[e.code]}: ${e.rawMessage}`;
}

function status(text: string, ok = false): void {
  const element = $("status");
  element.textContent = text;
  element.className = ok ? "ok" : "";
}

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : "");

class QuoteBoard {
  private rows = new Map<string, HTMLTableRowElement>();
  private updates = 0;
  private abort: AbortController | undefined;

  constructor(private readonly clients: OptixClients) {}

  async start(symbols: string[]): Promise<void> {
    this.stop();
    const abort = new AbortController();
    this.abort = abort;
    $("quotes").replaceChildren();
    this.rows.clear();
    $("stream-state").textContent = "connecting";
    // A stream ends UNAVAILABLE when the server restarts and UNAUTHENTICATED when its access
    // token expires: reconnect (the session refreshes the token first), backing off on failures.
    for (let failures = 0; !abort.signal.aborted; ) {
      try {
        const stream = this.clients.marketdata.streamQuotes({ symbols }, { signal: abort.signal });
        for await (const message of stream) {
          failures = 0;
          $("stream-state").textContent = "live";
          if (message.payload.case === "quotes") {
            for (const quote of message.payload.value.quotes) this.render(quote);
          }
        }
        $("stream-state").textContent = "ended";
        return;
      } catch (error) {
        if (abort.signal.aborted) return;
        const code = ConnectError.from(error).code;
        if ((code !== Code.Unavailable && code !== Code.Unauthenticated) || failures >= 5) {
          $("stream-state").textContent = "error";
          status(describe(error));
          return;
        }
        $("stream-state").textContent = "reconnecting";
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** failures));
        failures += 1;
      }
    }
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
  }

  private render(quote: Quote): void {
    let row = this.rows.get(quote.symbol);
    if (row === undefined) {
      row = document.createElement("tr");
      row.dataset.symbol = quote.symbol;
      $("quotes").append(row);
      this.rows.set(quote.symbol, row);
    }
    const cells = [
      quote.symbol,
      fmt(quote.last),
      fmt(quote.bid),
      fmt(quote.ask),
      fmt(quote.change),
      fmt(quote.changePercent),
      String(quote.sequence),
      DataSource[quote.source]?.replace("DATA_SOURCE_", "").toLowerCase() ?? "",
    ];
    row.replaceChildren(
      ...cells.map((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (i === 4 || i === 5) td.className = quote.change >= 0 ? "up" : "down";
        return td;
      }),
    );
    row.dataset.sequence = String(quote.sequence);
    row.classList.remove("flash");
    void row.offsetWidth; // restart the flash animation
    row.classList.add("flash");
    this.updates += 1;
    $("update-count").textContent = String(this.updates);
  }
}

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
  return values.map((text) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (option?.inTheMoney) td.className = "itm";
    return td;
  });
}

/** Calls | strike | puts, one row per strike, for one expiration. */
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
      const row = document.createElement("tr");
      const middle = document.createElement("td");
      middle.className = "strike";
      middle.textContent = fmt(strike);
      row.replaceChildren(...sideCells(call), middle, ...sideCells(put));
      return row;
    });
}

const dateKey = (d: DateMsg | undefined): string =>
  d ? `${d.year}-${String(d.month).padStart(2, "0")}-${String(d.day).padStart(2, "0")}` : "";

async function loadExpirations(clients: OptixClients, underlying: string): Promise<void> {
  const select = $("expiration") as HTMLSelectElement;
  const reply = await clients.marketdata.listExpirations({ underlying }, { timeoutMs: 10_000 });
  select.replaceChildren(
    ...reply.expirations.map((expiration) => {
      const option = document.createElement("option");
      option.value = dateKey(expiration.date);
      option.textContent = `${option.value} (${expiration.daysToExpiration}d)`;
      return option;
    }),
  );
  select.dataset.underlying = underlying;
}

async function loadChain(clients: OptixClients): Promise<void> {
  const underlying = ($("underlying") as HTMLInputElement).value.trim().toUpperCase();
  const strikeCount = Number(($("strike-count") as HTMLInputElement).value) || 8;
  const select = $("expiration") as HTMLSelectElement;
  try {
    if (select.dataset.underlying !== underlying) await loadExpirations(clients, underlying);
    const [year, month, day] = select.value.split("-").map(Number);
    const expiration = select.value ? { year, month, day } : undefined;
    const reply = await clients.marketdata.getOptionsChain(
      { underlying, strikeCount, expirationStart: expiration, expirationEnd: expiration },
      { timeoutMs: 15_000 },
    );
    const chain = reply.chain;
    const options = chain?.options ?? [];
    $("chain").replaceChildren(...chainRows(options));
    const pricing = chain?.pricing;
    $("chain-summary").textContent = pricing
      ? `${underlying} ${fmt(pricing.underlyingPrice)} · ${select.value} · r ${fmt(pricing.riskFreeRate * 100)}% · q ${fmt(pricing.dividendYield * 100)}% · ${pricing.model}, IV from ${pricing.priceBasis}`
      : `${options.length} contracts`;
  } catch (error) {
    status(describe(error));
  }
}

function main(): void {
  const edge = $("edge") as HTMLInputElement;
  edge.value = defaultEdge();
  let currentEdge = edge.value;
  let clients = createBrowserClients(currentEdge);
  let board = new QuoteBoard(clients);
  const watchlists = new WatchlistScreen(() => clients);
  const credentials = () => ({
    email: ($("email") as HTMLInputElement).value.trim(),
    password: ($("password") as HTMLInputElement).value,
  });
  const signedIn = async () => {
    const me = await clients.user.getMe({}, { timeoutMs: 10_000 });
    $("who").textContent = me.user?.email ?? "";
    document.body.classList.add("signed-in");
    void watchlists.open();
    $("quotes-panel").hidden = false;
    $("chain-panel").hidden = false;
    $("sign-out").hidden = false;
    status("Signed in", true);
    void board.start(($("symbols") as HTMLInputElement).value.split(",").map((s) => s.trim()));
  };
  const attempt = async (action: () => Promise<void>) => {
    if (edge.value !== currentEdge) {
      board.stop();
      watchlists.close();
      currentEdge = edge.value;
      clients = createBrowserClients(currentEdge);
      board = new QuoteBoard(clients);
    }
    status("");
    try {
      await action();
      await signedIn();
    } catch (error) {
      status(describe(error));
    }
  };
  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const { email, password } = credentials();
    void attempt(() => clients.signIn(email, password));
  });
  $("register").addEventListener("click", () => {
    const { email, password } = credentials();
    void attempt(() => clients.register(email, password, email.split("@")[0]));
  });
  $("sign-out").addEventListener("click", () => {
    board.stop();
    watchlists.close();
    void clients.signOut().finally(() => {
      $("who").textContent = "";
      document.body.classList.remove("signed-in");
      $("quotes-panel").hidden = true;
      $("chain-panel").hidden = true;
      $("sign-out").hidden = true;
      status("Signed out", true);
    });
  });
  $("symbols-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void board.start(($("symbols") as HTMLInputElement).value.split(",").map((s) => s.trim()));
  });
  $("underlying").addEventListener("change", () => {
    ($("expiration") as HTMLSelectElement).dataset.underlying = "";
  });
  $("chain-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void loadChain(clients);
  });
}

main();
