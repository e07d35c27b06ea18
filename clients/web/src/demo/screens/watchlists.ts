// The watchlist home screen: the user's lists, the selected list's symbols with live quotes from
// one StreamQuotes call, and every edit (add, remove, reorder, create, rename, delete) sent with
// the etag last seen, so an edit made elsewhere in the meantime is reported and reloaded. A row's
// "Set alert" (⚑) asks for an alert on its symbol (intents.ts): the Alerts screen opens with it.
import { Code, ConnectError } from "@connectrpc/connect";
import type { OptixClients } from "../../client.js";
import { type FieldViolation, fieldViolations } from "../../errors.js";
import { DataSource, type Quote } from "../../gen/optix/marketdata/v1/quote_pb.js";
import type { Watchlist } from "../../gen/optix/watchlist/v1/watchlist_pb.js";
import { checkSymbols } from "../../symbols.js";
import { el, make, newRequestId, section } from "../dom.js";
import { requestAlert } from "../intents.js";
import type { Screen, ScreenContext } from "../screen.js";

/** Shown when an edit fails ABORTED: the list's etag was stale. */
export const STALE_MESSAGE = "This list changed elsewhere — reloaded";
const GONE_MESSAGE = "This list was deleted elsewhere — reloaded";
const DEFAULT_EXPLAINED =
  "This is your default list: it cannot be deleted. Make another list the default first.";
const PARENT = "users/me";
const UNARY = { timeoutMs: 10_000 };

const HTML = `
  <div class="wl-head">
    <label class="wl-picker-label">List
      <select id="wl-picker" data-testid="wl-picker" aria-label="Watchlist"></select>
    </label>
    <span id="wl-stream-state" class="badge" data-testid="wl-stream-state" data-symbols="" data-generation="0">idle</span>
  </div>
  <h2><span id="wl-name" data-testid="wl-name"></span> <span id="wl-default-badge" class="badge" data-testid="wl-default-badge" hidden>default</span></h2>
  <form id="wl-add-form" class="wl-form">
    <input id="wl-add-input" data-testid="wl-add-input" placeholder="Add symbol, e.g. AAPL" aria-label="Symbol to add" aria-describedby="wl-add-error" autocomplete="off" autocapitalize="characters" spellcheck="false" />
    <button type="submit" id="wl-add" data-testid="wl-add">Add</button>
    <p id="wl-add-error" class="field-error" data-testid="wl-add-error" role="alert"></p>
  </form>
  <p id="wl-message" class="wl-message" data-testid="wl-message" role="status"></p>
  <ul id="wl-items" class="wl-items" data-testid="wl-items" aria-label="Symbols (drag to reorder, or use the arrow buttons)"></ul>
  <p id="wl-empty" class="note" data-testid="wl-empty" hidden>No symbols yet: add one above.</p>
  <fieldset class="wl-manage">
    <legend>Lists</legend>
    <form id="wl-rename-form" class="wl-form">
      <input id="wl-rename-input" data-testid="wl-rename-input" aria-label="New name for this list" aria-describedby="wl-rename-error" maxlength="64" autocomplete="off" />
      <button type="submit" data-testid="wl-rename">Rename</button>
      <p id="wl-rename-error" class="field-error" data-testid="wl-rename-error" role="alert"></p>
    </form>
    <form id="wl-create-form" class="wl-form">
      <input id="wl-create-input" data-testid="wl-create-input" placeholder="New list name" aria-label="Name of the new list" aria-describedby="wl-create-error" maxlength="64" autocomplete="off" />
      <button type="submit" data-testid="wl-create">Create list</button>
      <p id="wl-create-error" class="field-error" data-testid="wl-create-error" role="alert"></p>
    </form>
    <div class="buttons">
      <button type="button" id="wl-make-default" data-testid="wl-make-default" hidden>Make default</button>
      <button type="button" id="wl-delete" class="danger" data-testid="wl-delete" aria-describedby="wl-delete-note">Delete list</button>
    </div>
    <p id="wl-delete-note" class="note" data-testid="wl-delete-note" hidden></p>
    <div id="wl-delete-confirm-row" class="buttons confirm" data-testid="wl-delete-confirm-row" hidden>
      <span id="wl-delete-confirm-text"></span>
      <button type="button" id="wl-delete-confirm" class="danger" data-testid="wl-delete-confirm">Delete</button>
      <button type="button" id="wl-delete-cancel" data-testid="wl-delete-cancel">Cancel</button>
    </div>
  </fieldset>
      `;

function describe(error: ConnectError): string {
  return `${Code[error.code]}: ${error.rawMessage}`;
}

/** "symbols[1]: not a ticker" becomes "??: not a ticker" for the symbols the user typed. */
function violationText(error: ConnectError, typed: string[]): string {
  const violations = fieldViolations(error);
  if (violations.length === 0) return error.rawMessage || describe(error);
  return violationLines(violations, typed);
}

function violationLines(violations: readonly FieldViolation[], typed: string[]): string {
  return violations
    .map(({ field, description }) => {
      const index = /^symbols\[(\d+)\]/.exec(field);
      const subject = index ? typed[Number(index[1])] : undefined;
      return subject ? `${subject}: ${description}` : field ? `${field}: ${description}` : description;
    })
    .join("; ");
}

/** One StreamQuotes call following a set of symbols: restarted (the old call aborted) whenever the
 * set changes, reconnected after UNAVAILABLE / UNAUTHENTICATED with backoff. */
class QuoteFeed {
  private abort: AbortController | undefined;
  private key: string | undefined;
  private generation = 0;

  constructor(
    private readonly clients: () => OptixClients,
    private readonly onQuote: (quote: Quote) => void,
    private readonly onState: (state: string, symbols: string, generation: number) => void,
  ) {}

  /** Stream quotes for exactly these symbols (order does not matter). */
  follow(symbols: readonly string[]): void {
    const unique = [...new Set(symbols)].sort();
    const key = unique.join(",");
    if (key === this.key) return;
    this.stop();
    this.key = key;
    if (unique.length === 0) {
      this.onState("idle", "", this.generation);
      return;
    }
    const abort = new AbortController();
    this.abort = abort;
    this.generation += 1;
    void this.run(unique, key, this.generation, abort.signal);
  }

  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
    this.key = undefined;
  }

  private async run(symbols: string[], key: string, generation: number, signal: AbortSignal) {
    const state = (s: string) => {
      if (!signal.aborted) this.onState(s, key, generation);
    };
    state("connecting");
    for (let failures = 0; !signal.aborted; ) {
      try {
        const stream = this.clients().marketdata.streamQuotes({ symbols }, { signal });
        for await (const message of stream) {
          if (signal.aborted) return;
          failures = 0;
          state("live");
          if (message.payload.case === "quotes") {
            for (const quote of message.payload.value.quotes) this.onQuote(quote);
          }
        }
        state("ended");
        break;
      } catch (error) {
        if (signal.aborted) return;
        const code = ConnectError.from(error).code;
        if ((code !== Code.Unavailable && code !== Code.Unauthenticated) || failures >= 5) {
          state(`error: ${describe(ConnectError.from(error))}`);
          break;
        }
        state("reconnecting");
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** failures));
        failures += 1;
      }
    }
    // Ended for good: let the next follow() of the same symbols start a new call.
    if (!signal.aborted && this.key === key) this.key = undefined;
  }
}

/** The Watchlists screen (the home screen). */
export class WatchlistScreen implements Screen {
  readonly id = "watchlists";
  readonly title = "Watchlists";
  readonly glyph = "★";
  readonly root = section("watchlist-panel", "wl-panel", HTML);
  private context: ScreenContext | undefined;
  private lists: Watchlist[] = [];
  private current: Watchlist | undefined;
  private readonly quotes = new Map<string, Quote>();
  private readonly rows = new Map<string, HTMLLIElement>();
  private readonly feed: QuoteFeed;
  private queue: Promise<void> = Promise.resolve();
  private epoch = 0; // bumped on open/close: late answers from a closed screen are dropped
  private dragged: string | undefined;
  private pendingCreate: { displayName: string; requestId: string } | undefined;

  constructor() {
    this.root.classList.add("wl");
    this.feed = new QuoteFeed(
      () => this.clients(),
      (quote) => this.renderQuote(quote),
      (state, symbols, generation) => {
        const badge = el("wl-stream-state");
        badge.textContent = state.startsWith("error") ? "error" : state;
        badge.title = state;
        badge.dataset.symbols = symbols;
        badge.dataset.generation = String(generation);
      },
    );
    this.bind();
  }

  /** The signed-in user's clients (only called while signed in). */
  private clients(): OptixClients {
    if (this.context === undefined) throw new Error("the watchlist screen is not signed in");
    return this.context.clients;
  }

  signedIn(context: ScreenContext): void {
    this.context = context;
    void this.open();
  }

  signedOut(): void {
    this.close();
    this.context = undefined;
  }

  /** Load the user's lists (creating the default one). */
  private async open(): Promise<void> {
    this.close();
    const epoch = this.epoch;
    await this.serial(async () => {
      try {
        await this.reload(undefined);
      } catch (error) {
        if (epoch === this.epoch) this.message(describe(ConnectError.from(error)));
      }
    });
  }

  /** Sign-out: stop the stream, forget everything, empty the screen. */
  private close(): void {
    this.epoch += 1;
    this.queue = Promise.resolve(); // edits of the old session still finish, but are ignored
    this.feed.stop();
    this.lists = [];
    this.current = undefined;
    this.quotes.clear();
    this.rows.clear();
    this.pendingCreate = undefined;
    el("wl-picker").replaceChildren();
    el("wl-items").replaceChildren();
    el("wl-name").textContent = "";
    el("wl-empty").hidden = true;
    for (const id of ["wl-add-input", "wl-rename-input", "wl-create-input"]) {
      el<HTMLInputElement>(id).value = "";
    }
    for (const id of ["wl-add-error", "wl-rename-error", "wl-create-error", "wl-message"]) {
      el(id).textContent = "";
    }
    el("wl-delete-confirm-row").hidden = true;
    const badge = el("wl-stream-state");
    badge.textContent = "idle";
    badge.dataset.symbols = "";
  }

  // --- loading -------------------------------------------------------------------------------

  /** All of the user's lists (default first, as the server orders them), following pages. */
  private async fetchLists(): Promise<Watchlist[]> {
    const lists: Watchlist[] = [];
    let pageToken = "";
    do {
      const page = await this.clients().watchlist.listWatchlists(
        { parent: PARENT, pageSize: 100, pageToken },
        UNARY,
      );
      lists.push(...page.watchlists);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return lists;
  }

  /** Re-read every list, then show `select` (or the previous one, or the default). */
  private async reload(select: string | undefined): Promise<void> {
    const epoch = this.epoch;
    const lists = await this.fetchLists();
    if (epoch !== this.epoch) return;
    this.lists = lists;
    const wanted = select ?? this.current?.name;
    this.show(lists.find((w) => w.name === wanted) ?? lists[0]);
  }

  private show(watchlist: Watchlist | undefined): void {
    const switched = watchlist?.name !== this.current?.name;
    this.current = watchlist;
    if (watchlist !== undefined) {
      const i = this.lists.findIndex((w) => w.name === watchlist.name);
      if (i >= 0) this.lists[i] = watchlist;
      else this.lists.push(watchlist);
    }
    if (switched) {
      el<HTMLInputElement>("wl-rename-input").value = watchlist?.displayName ?? "";
      el("wl-delete-confirm-row").hidden = true;
      for (const id of ["wl-add-error", "wl-rename-error"]) el(id).textContent = "";
    }
    this.renderPicker();
    this.renderList();
    this.feed.follow(watchlist?.items.map((item) => item.symbol) ?? []);
  }

  // --- edits ---------------------------------------------------------------------------------

  /** Edits run one at a time, so each one sends the etag the previous one returned. */
  private serial(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Run an edit of the current list; `onInvalid` shows INVALID_ARGUMENT next to its input. */
  private edit(
    change: (watchlist: Watchlist) => Promise<Watchlist | undefined>,
    onInvalid?: (error: ConnectError) => void,
  ): Promise<void> {
    return this.serial(async () => {
      const watchlist = this.current;
      if (watchlist === undefined) return;
      const epoch = this.epoch;
      const panel = el("watchlist-panel");
      panel.setAttribute("aria-busy", "true");
      this.message(""); // the previous edit's news is old now
      try {
        const updated = await change(watchlist);
        if (epoch !== this.epoch) return;
        if (updated !== undefined) this.updated(updated);
      } catch (raw) {
        if (epoch !== this.epoch) return;
        await this.failed(ConnectError.from(raw), watchlist, onInvalid);
      } finally {
        panel.removeAttribute("aria-busy");
      }
    });
  }

  /** An edit's answer: shown if its list is still the one on screen, else only remembered (the
   * user picked another list while it was under way). */
  private updated(watchlist: Watchlist): void {
    if (watchlist.name === this.current?.name) {
      this.show(watchlist);
      return;
    }
    const i = this.lists.findIndex((w) => w.name === watchlist.name);
    if (i >= 0) this.lists[i] = watchlist;
    this.renderPicker();
  }

  private async failed(
    error: ConnectError,
    watchlist: Watchlist,
    onInvalid?: (error: ConnectError) => void,
  ): Promise<void> {
    try {
      if (error.code === Code.Aborted) {
        await this.reload(undefined); // keeps the list on screen (the user may have moved on)
        this.message(STALE_MESSAGE, "warn");
      } else if (error.code === Code.NotFound) {
        // The list was deleted elsewhere (or, for MoveSymbol, the symbol left it): re-read.
        await this.reload(undefined);
        const gone = !this.lists.some((w) => w.name === watchlist.name);
        this.message(gone ? GONE_MESSAGE : STALE_MESSAGE, "warn");
      } else if (error.code === Code.InvalidArgument && onInvalid !== undefined) {
        onInvalid(error);
      } else {
        this.message(describe(error));
      }
    } catch (reloadError) {
      this.message(describe(ConnectError.from(reloadError)));
    }
  }

  private add(raw: string): void {
    const typed = raw
      .split(",")
      .map((s) => s.trim().toUpperCase())
      .filter((s) => s !== "");
    const errorBox = el("wl-add-error");
    errorBox.textContent = "";
    if (typed.length === 0) {
      errorBox.textContent = "Enter a symbol, e.g. AAPL";
      return;
    }
    // The server's rule for each symbol, checked first: a typo costs no call. (How many a list
    // may hold is the server's to say.)
    const refused = checkSymbols(typed).violations.filter((v) => v.field.includes("["));
    if (refused.length > 0) {
      errorBox.textContent = violationLines(refused, typed);
      return;
    }
    const present = new Set(this.current?.items.map((item) => item.symbol));
    if (typed.every((s) => present.has(s))) {
      errorBox.textContent = `${typed.join(", ")} ${typed.length > 1 ? "are" : "is"} already in this list`;
      return;
    }
    void this.edit(
      async (w) => {
        const reply = await this.clients().watchlist.addSymbols(
          { name: w.name, symbols: typed, etag: w.etag },
          UNARY,
        );
        el<HTMLInputElement>("wl-add-input").value = "";
        return reply.watchlist;
      },
      (error) => {
        errorBox.textContent = violationText(error, typed);
      },
    );
  }

  private remove(symbol: string): void {
    void this.edit(async (w) => {
      const reply = await this.clients().watchlist.removeSymbols(
        { name: w.name, symbols: [symbol], etag: w.etag },
        UNARY,
      );
      return reply.watchlist;
    });
  }

  private move(symbol: string, index: number): void {
    void this.edit(async (w) => {
      const from = w.items.findIndex((item) => item.symbol === symbol);
      if (from < 0 || index < 0 || index === from) return undefined;
      const reply = await this.clients().watchlist.moveSymbol(
        { name: w.name, symbol, index, etag: w.etag },
        UNARY,
      );
      return reply.watchlist;
    });
  }

  private rename(displayName: string): void {
    const errorBox = el("wl-rename-error");
    errorBox.textContent = "";
    if (displayName.trim() === "") {
      errorBox.textContent = "Enter a name";
      return;
    }
    void this.edit(
      async (w) => {
        const reply = await this.clients().watchlist.updateWatchlist(
          {
            watchlist: { name: w.name, displayName: displayName.trim(), etag: w.etag },
            updateMask: { paths: ["display_name"] },
          },
          UNARY,
        );
        return reply.watchlist;
      },
      (error) => {
        errorBox.textContent = violationText(error, []);
      },
    );
  }

  private makeDefault(): void {
    void this.edit(async (w) => {
      await this.clients().watchlist.updateWatchlist(
        {
          watchlist: { name: w.name, isDefault: true, etag: w.etag },
          updateMask: { paths: ["is_default"] },
        },
        UNARY,
      );
      // The previous default lost its flag (and the order changed): read them all again.
      await this.reload(undefined);
      return undefined;
    });
  }

  private deleteList(): void {
    el("wl-delete-confirm-row").hidden = true;
    void this.edit(async (w) => {
      await this.clients().watchlist.deleteWatchlist({ name: w.name, etag: w.etag }, UNARY);
      this.lists = this.lists.filter((other) => other.name !== w.name);
      this.current = undefined;
      await this.reload(undefined); // back to the default list
      this.message(`Deleted “${w.displayName}”`, "ok");
      return undefined;
    });
  }

  private create(displayName: string): void {
    const errorBox = el("wl-create-error");
    errorBox.textContent = "";
    const name = displayName.trim();
    if (name === "") {
      errorBox.textContent = "Enter a name for the new list";
      return;
    }
    // A retry of the same create (say after a dropped connection) reuses its request_id, so the
    // server answers with the list the first attempt made instead of making a second one.
    if (this.pendingCreate?.displayName !== name) {
      this.pendingCreate = { displayName: name, requestId: newRequestId() };
    }
    const { requestId } = this.pendingCreate;
    void this.serial(async () => {
      const epoch = this.epoch;
      try {
        const reply = await this.clients().watchlist.createWatchlist(
          { parent: PARENT, watchlist: { displayName: name }, requestId },
          UNARY,
        );
        if (epoch !== this.epoch) return;
        this.pendingCreate = undefined;
        el<HTMLInputElement>("wl-create-input").value = "";
        this.message("");
        this.show(reply.watchlist);
      } catch (raw) {
        if (epoch !== this.epoch) return;
        const error = ConnectError.from(raw);
        errorBox.textContent =
          error.code === Code.InvalidArgument ? violationText(error, []) : describe(error);
      }
    });
  }

  private select(name: string): void {
    const cached = this.lists.find((w) => w.name === name);
    if (cached === undefined) return;
    this.message("");
    this.show(cached);
    // Refresh it (and its etag) from the server; a list deleted elsewhere reloads them all.
    void this.edit(async (w) => {
      const reply = await this.clients().watchlist.getWatchlist({ name: w.name }, UNARY);
      return reply.watchlist;
    });
  }

  // --- rendering -----------------------------------------------------------------------------

  private message(text: string, kind: "error" | "warn" | "ok" = "error"): void {
    const box = el("wl-message");
    box.textContent = text;
    box.dataset.kind = text === "" ? "" : kind;
  }

  private renderPicker(): void {
    const picker = el<HTMLSelectElement>("wl-picker");
    picker.replaceChildren(
      ...this.lists.map((w) =>
        make(
          "option",
          {
            value: w.name,
            textContent: w.isDefault ? `${w.displayName} ★` : w.displayName,
            selected: w.name === this.current?.name,
          },
          { displayName: w.displayName },
        ),
      ),
    );
    const w = this.current;
    el("wl-name").textContent = w?.displayName ?? "";
    el("wl-default-badge").hidden = !w?.isDefault;
    const remove = el<HTMLButtonElement>("wl-delete");
    remove.disabled = w === undefined || w.isDefault;
    remove.title = w?.isDefault ? DEFAULT_EXPLAINED : "";
    el("wl-delete-note").hidden = !w?.isDefault;
    el("wl-delete-note").textContent = DEFAULT_EXPLAINED;
    el<HTMLButtonElement>("wl-make-default").hidden = w === undefined || w.isDefault;
    const panel = el("watchlist-panel");
    panel.dataset.name = w?.name ?? "";
    panel.dataset.etag = w?.etag ?? "";
  }

  private renderList(): void {
    const items = this.current?.items ?? [];
    const keep = new Set(items.map((item) => item.symbol));
    for (const symbol of this.quotes.keys()) if (!keep.has(symbol)) this.quotes.delete(symbol);
    // Re-rendering drops focus: keep it on the same control of the same symbol (keyboard users
    // pressing "move up" repeatedly), or on its other arrow once this one is disabled.
    const focused = document.activeElement as HTMLElement | null;
    const focusSymbol = focused?.closest<HTMLElement>("[data-testid=wl-item]")?.dataset.symbol;
    const focusId = focused?.dataset.testid;
    this.rows.clear();
    el("wl-items").replaceChildren(
      ...items.map((item, index) => this.row(item.symbol, index, items.length)),
    );
    el("wl-empty").hidden = this.current === undefined || items.length > 0;
    const li = focusSymbol === undefined ? undefined : this.rows.get(focusSymbol);
    if (li !== undefined && focusId !== undefined) {
      const other = focusId === "wl-up" ? "wl-down" : "wl-up";
      const target = [focusId, other, "wl-remove"]
        .map((id) => li.querySelector<HTMLButtonElement>(`[data-testid=${id}]`))
        .find((button) => button !== null && !button.disabled);
      target?.focus();
    }
  }

  private row(symbol: string, index: number, count: number): HTMLLIElement {
    const li = make("li", { className: "wl-item", draggable: true }, { testid: "wl-item", symbol });
    const handle = make("span", { className: "wl-handle", textContent: "⠿", title: "Drag to reorder" });
    handle.setAttribute("aria-hidden", "true");
    const name = make("span", { className: "wl-name" });
    name.append(
      make("span", { className: "wl-symbol", textContent: symbol }, { testid: "wl-symbol" }),
      make("span", { className: "wl-source" }, { testid: "wl-source" }),
    );
    const quote = make("span", { className: "wl-quote" });
    quote.append(
      make("span", { className: "wl-last", textContent: "—" }, { testid: "wl-last" }),
      make("span", { className: "wl-change" }, { testid: "wl-change" }),
    );
    const button = (label: string, text: string, testid: string, onClick: () => void) => {
      const b = make("button", { type: "button", textContent: text, className: "icon" }, { testid });
      b.setAttribute("aria-label", label);
      b.title = label;
      b.addEventListener("click", onClick);
      return b;
    };
    const up = button(`Move ${symbol} up`, "▲", "wl-up", () => this.move(symbol, index - 1));
    const down = button(`Move ${symbol} down`, "▼", "wl-down", () => this.move(symbol, index + 1));
    up.disabled = index === 0;
    down.disabled = index === count - 1;
    const setAlert = button(`Set an alert on ${symbol}`, "⚑", "wl-alert", () => {
      const quote = this.quotes.get(symbol);
      const labelled =
        quote !== undefined &&
        (quote.source === DataSource.SIMULATED || quote.source === DataSource.REPLAY);
      requestAlert({
        symbol,
        last: quote?.last,
        source: labelled ? DataSource[quote.source].toLowerCase() : undefined,
      });
    });
    const actions = make("span", { className: "wl-actions" });
    actions.append(
      setAlert,
      up,
      down,
      button(`Remove ${symbol}`, "✕", "wl-remove", () => this.remove(symbol)),
    );
    li.append(handle, name, quote, actions);
    this.dragAndDrop(li, symbol);
    this.rows.set(symbol, li);
    const known = this.quotes.get(symbol);
    if (known !== undefined) this.paint(li, known, false);
    return li;
  }

  /** HTML5 drag and drop: dropping a row on another moves it to that row's index. */
  private dragAndDrop(li: HTMLLIElement, symbol: string): void {
    li.addEventListener("dragstart", (event) => {
      this.dragged = symbol;
      event.dataTransfer?.setData("text/plain", symbol);
      if (event.dataTransfer) event.dataTransfer.effectAllowed = "move";
      li.classList.add("dragging");
    });
    li.addEventListener("dragend", () => {
      this.dragged = undefined;
      for (const row of this.rows.values()) row.classList.remove("dragging", "drop-target");
    });
    li.addEventListener("dragover", (event) => {
      if (this.dragged === undefined || this.dragged === symbol) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = "move";
      li.classList.add("drop-target");
    });
    li.addEventListener("dragleave", () => li.classList.remove("drop-target"));
    li.addEventListener("drop", (event) => {
      event.preventDefault();
      li.classList.remove("drop-target");
      const moving = this.dragged ?? event.dataTransfer?.getData("text/plain");
      this.dragged = undefined;
      const target = this.current?.items.findIndex((item) => item.symbol === symbol) ?? -1;
      if (moving && moving !== symbol && target >= 0) this.move(moving, target);
    });
  }

  private renderQuote(quote: Quote): void {
    this.quotes.set(quote.symbol, quote);
    const li = this.rows.get(quote.symbol);
    if (li !== undefined) this.paint(li, quote, true);
  }

  private paint(li: HTMLLIElement, quote: Quote, fresh: boolean): void {
    const last = li.querySelector<HTMLElement>(".wl-last");
    const change = li.querySelector<HTMLElement>(".wl-change");
    const label = li.querySelector<HTMLElement>(".wl-source");
    if (last === null || change === null || label === null) return;
    const sign = quote.change > 0 ? "+" : "";
    last.textContent = Number.isFinite(quote.last) ? quote.last.toFixed(2) : "—";
    const source = DataSource[quote.source]?.toLowerCase() ?? "";
    last.dataset.source = source;
    // Prices that are not real market data say so (the page header promises it).
    const labelled = quote.source === DataSource.SIMULATED || quote.source === DataSource.REPLAY;
    label.textContent = labelled ? source : "";
    // The absolute change and the percent; a phone shows only the percent (style.css), which
    // leaves the symbol room beside the row's buttons.
    change.replaceChildren(
      make("span", { className: "abs", textContent: `${sign}${quote.change.toFixed(2)} ` }),
      make("span", { className: "pct", textContent: `(${sign}${quote.changePercent.toFixed(2)}%)` }),
    );
    change.className = `wl-change ${quote.change >= 0 ? "up" : "down"}`;
    li.dataset.sequence = String(quote.sequence);
    if (fresh) {
      li.dataset.updates = String(Number(li.dataset.updates ?? "0") + 1);
      li.classList.remove("flash");
      void li.offsetWidth; // restart the flash animation
      li.classList.add("flash");
    }
  }

  // --- wiring --------------------------------------------------------------------------------

  private bind(): void {
    el("wl-picker").addEventListener("change", (event) => {
      this.select((event.target as HTMLSelectElement).value);
    });
    el("wl-add-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.add(el<HTMLInputElement>("wl-add-input").value);
    });
    el("wl-rename-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.rename(el<HTMLInputElement>("wl-rename-input").value);
    });
    el("wl-create-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create(el<HTMLInputElement>("wl-create-input").value);
    });
    el("wl-make-default").addEventListener("click", () => this.makeDefault());
    el("wl-delete").addEventListener("click", () => {
      if (this.current === undefined || this.current.isDefault) return;
      el("wl-delete-confirm-text").textContent = `Delete “${this.current.displayName}”?`;
      el("wl-delete-confirm-row").hidden = false;
    });
    el("wl-delete-confirm").addEventListener("click", () => this.deleteList());
    el("wl-delete-cancel").addEventListener("click", () => {
      el("wl-delete-confirm-row").hidden = true;
    });
  }
}
