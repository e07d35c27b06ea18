// The Alerts screen: set a price alert on a watched symbol (above / below / crossing, the level
// pre-filled near the current price, an optional note), the user's alerts with their state and
// fire count (enable, disable and delete sent with the etag last seen), and the live feed of
// their firings, newest first. The feed resumes from the last event it showed after any
// reconnect (alert-feed.ts), so events that fired meanwhile appear once, marked "missed".
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { OptixClients } from "../../client.js";
import type { AlertEvent } from "../../gen/optix/alert/v1/alert_event_pb.js";
import {
  type Alert,
  type AlertConditionSchema,
  AlertState,
  MoveDirection,
} from "../../gen/optix/alert/v1/alert_pb.js";
import { InstrumentType } from "../../gen/optix/common/v1/instrument_pb.js";
import { DataSource } from "../../gen/optix/marketdata/v1/quote_pb.js";
import type { Watchlist } from "../../gen/optix/watchlist/v1/watchlist_pb.js";
import {
  ALL_ALERTS,
  AlertFeed,
  clearStoredEventIds,
  type FeedState,
  storedEventId,
} from "../alert-feed.js";
import { el, make, newRequestId, section } from "../dom.js";
import { explain, FieldErrors } from "../fields.js";
import { onAlertRequest } from "../intents.js";
import type { Screen, ScreenContext } from "../screen.js";

/** Shown when an action fails ABORTED: the alert's etag was stale. */
export const STALE_MESSAGE = "This alert changed elsewhere — reloaded";
const GONE_MESSAGE = "This alert was deleted elsewhere — reloaded";
const PARENT = "users/me";
const UNARY = { timeoutMs: 10_000 };
const HISTORY_SIZE = 20;
const MAX_FEED_ITEMS = 100;
const MAX_ALERT_PAGES = 10;

type Kind = "above" | "below" | "crossing";
type ConditionInit = MessageInitShape<typeof AlertConditionSchema>;
/** How a feed item came: live, replayed after a disconnection, or history at sign-in. */
type Arrival = "live" | "missed" | "earlier";

const STATE_NAMES: Record<number, string> = {
  [AlertState.ACTIVE]: "ACTIVE",
  [AlertState.DISABLED]: "DISABLED",
  [AlertState.COMPLETED]: "COMPLETED",
  [AlertState.EXPIRED]: "EXPIRED",
};

const field = (id: string, label: string, control: string, extra = ""): string => `
      <div class="field" id="${id}-field">
        <label for="${id}">${label}</label>
        ${control}
        ${extra}
        <p id="${id}-error" class="field-error" data-testid="${id}-error" role="alert"></p>
      </div>`;

const HTML = `
  <div class="al-grid">
    <div class="al-create">
      <h2>Set an alert</h2>
      <form id="al-form" class="al-form" novalidate>
        ${field("al-symbol", "Watched symbol", '<select id="al-symbol" data-testid="al-symbol"></select>')}
        <p id="al-no-symbols" class="note" data-testid="al-no-symbols" hidden>No watched symbols yet. <a href="#watchlists" class="button-link">Add one to a watchlist</a></p>
        ${field(
          "al-kind",
          "When the price",
          `<select id="al-kind" data-testid="al-kind">
            <option value="above">is above</option>
            <option value="below">is below</option>
            <option value="crossing">crosses</option>
          </select>`,
        )}
        ${field(
          "al-direction",
          "Direction",
          `<select id="al-direction" data-testid="al-direction">
            <option value="${MoveDirection.UP}">upward</option>
            <option value="${MoveDirection.DOWN}">downward</option>
            <option value="${MoveDirection.EITHER}">either way</option>
          </select>`,
        )}
        ${field(
          "al-level",
          "Level (USD)",
          '<input id="al-level" data-testid="al-level" inputmode="decimal" autocomplete="off" spellcheck="false" data-last="" />',
          '<p id="al-level-hint" class="note" data-testid="al-level-hint"></p>',
        )}
        ${field(
          "al-note",
          "Note (optional)",
          '<input id="al-note" data-testid="al-note" autocomplete="off" placeholder="e.g. take profit" />',
        )}
        <p id="al-form-error" class="form-error" data-testid="al-form-error" role="alert"></p>
        <div class="buttons"><button type="submit" class="primary" id="al-create" data-testid="al-create">Set alert</button></div>
      </form>
      <p id="al-message" class="al-message" data-testid="al-message" role="status"></p>
    </div>
    <div class="al-alerts">
      <h2>Your alerts</h2>
      <ul id="al-list" class="al-list" data-testid="al-list" aria-label="Your alerts"></ul>
      <p id="al-list-empty" class="note" data-testid="al-list-empty" hidden>No alerts yet: set one with the form.</p>
    </div>
    <div class="al-events">
      <h2>Events <span id="al-feed-state" class="badge" data-testid="al-feed-state" data-detail="">idle</span></h2>
      <div class="buttons" id="al-reconnect-row" hidden>
        <button type="button" id="al-reconnect" data-testid="al-reconnect">Reconnect</button>
      </div>
      <p id="al-feed-note" class="note" data-testid="al-feed-note" role="status"></p>
      <ol id="al-feed" class="al-feed" data-testid="al-feed" aria-label="Alert events, newest first" data-last-event-id="" data-duplicates="0" data-opens="0" data-after=""></ol>
      <p id="al-feed-empty" class="note" data-testid="al-feed-empty" hidden>No events yet. An alert that fires shows up here at once; after a dropped connection the ones you missed are shown when it is back.</p>
    </div>
  </div>`;

/** A price rounded for a level input: cents, or 4 places below 1. */
function roundPrice(price: number): string {
  return price.toFixed(price < 1 ? 4 : 2);
}

const time = (ts: Timestamp | undefined): string =>
  ts === undefined ? "" : timestampDate(ts).toLocaleTimeString();

/** The Alerts screen. */
export class AlertsScreen implements Screen {
  readonly id = "alerts";
  readonly title = "Alerts";
  readonly glyph = "⚑";
  readonly root = section("alerts-panel", "alerts-panel", HTML);
  private context: ScreenContext | undefined;
  private epoch = 0; // bumped on sign-in / sign-out: late answers of a closed session are dropped
  private feed: AlertFeed | undefined;
  private alerts: Alert[] = [];
  private lists: Watchlist[] = [];
  /** The current price of symbols, and its source when it is not real market data. */
  private readonly prices = new Map<string, { price: number; source: string }>();
  private readonly errors: FieldErrors;
  private queue: Promise<void> = Promise.resolve();
  private refreshQueued = false;
  private levelTouched = false;
  private directionTouched = false;
  private extraSymbol: string | undefined; // asked for from a list the picker has not read
  private confirming: string | undefined; // the alert whose delete awaits confirmation
  private pendingCreate: { key: string; requestId: string } | undefined;
  private missed = 0;

  constructor() {
    this.root.classList.add("al");
    this.errors = new FieldErrors(el("al-form-error"))
      .bind("symbol", el("al-symbol"), el("al-symbol-error"))
      .bind("condition", el("al-kind"), el("al-kind-error"))
      .bind("direction", el("al-direction"), el("al-direction-error"))
      .bind("price", el("al-level"), el("al-level-error"))
      .bind("note", el("al-note"), el("al-note-error"));
    this.bind();
    onAlertRequest(({ symbol, last, source }) => {
      if (this.context === undefined) return;
      if (last !== undefined && Number.isFinite(last) && last > 0) {
        this.prices.set(symbol, { price: last, source: source ?? "" });
      }
      this.pick(symbol);
      if (location.hash !== `#${this.id}`) location.hash = this.id;
      el("al-level").focus({ preventScroll: true });
    });
    this.clear();
  }

  signedIn(context: ScreenContext): void {
    this.clear();
    this.context = context;
    const epoch = this.epoch;
    void this.loadWatched(epoch);
    this.refresh();
    void this.startFeed(epoch);
  }

  /** Every visit re-reads the watched symbols and the alerts (edited on other screens or
   * devices); the feed keeps itself up to date. */
  shown(): void {
    if (this.context === undefined) return;
    void this.loadWatched(this.epoch);
    this.refresh();
  }

  signedOut(): void {
    this.context = undefined;
    this.clear();
    clearStoredEventIds();
  }

  /** Stop the feed, forget everything, empty the screen. */
  private clear(): void {
    this.epoch += 1;
    this.feed?.stop();
    this.feed = undefined;
    this.queue = Promise.resolve();
    this.refreshQueued = false;
    this.alerts = [];
    this.lists = [];
    this.prices.clear();
    this.extraSymbol = undefined;
    this.confirming = undefined;
    this.pendingCreate = undefined;
    this.levelTouched = false;
    this.directionTouched = false;
    this.missed = 0;
    el("al-symbol").replaceChildren();
    el<HTMLSelectElement>("al-kind").value = "above";
    el<HTMLSelectElement>("al-direction").value = String(MoveDirection.UP);
    for (const id of ["al-level", "al-note"]) el<HTMLInputElement>(id).value = "";
    el("al-level").dataset.last = "";
    el("al-level-hint").textContent = "";
    this.errors.clear();
    this.message("");
    el("al-list").replaceChildren();
    el("al-feed").replaceChildren();
    el("al-feed-note").textContent = "";
    const feed = el("al-feed");
    feed.dataset.lastEventId = "";
    feed.dataset.duplicates = "0";
    feed.dataset.opens = "0";
    feed.dataset.after = "";
    this.feedState("idle", "");
    this.renderForm();
    el("al-no-symbols").hidden = true;
    el("al-list-empty").hidden = true;
    el("al-feed-empty").hidden = true;
  }

  private clients(): OptixClients {
    if (this.context === undefined) throw new Error("the alerts screen is not signed in");
    return this.context.clients;
  }

  /** Calls run one at a time, so each action sends the etag the previous answer returned. */
  private serial(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private message(text: string, kind: "error" | "warn" | "ok" = "error"): void {
    const box = el("al-message");
    box.textContent = text;
    box.dataset.kind = text === "" ? "" : kind;
  }

  // --- the form ------------------------------------------------------------------------------

  /** The user's lists (default first), for the symbol picker. */
  private async loadWatched(epoch: number): Promise<void> {
    try {
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
      if (epoch !== this.epoch) return;
      this.lists = lists;
      this.renderPicker();
    } catch (error) {
      if (epoch === this.epoch) this.errors.note(`Watched symbols not loaded: ${explain(error)}`);
    }
  }

  /** Watched symbols grouped by list, each once (in the first list that has it); `prefer` stays
   * selected if it is still there (else the first symbol), and a changed selection is handled
   * as the user's change unless `quiet`. */
  private renderPicker(prefer?: string, quiet = false): void {
    const picker = el<HTMLSelectElement>("al-symbol");
    const before = picker.value;
    const wanted = prefer ?? before;
    const seen = new Set<string>();
    const groups: HTMLOptGroupElement[] = [];
    for (const list of this.lists) {
      const symbols = list.items.map((item) => item.symbol).filter((s) => !seen.has(s));
      if (symbols.length === 0) continue;
      const group = make("optgroup", {
        label: list.isDefault ? `${list.displayName} ★` : list.displayName,
      });
      for (const symbol of symbols) {
        seen.add(symbol);
        group.append(make("option", { value: symbol, textContent: symbol }));
      }
      groups.push(group);
    }
    if (this.extraSymbol !== undefined && !seen.has(this.extraSymbol)) {
      const group = make("optgroup", { label: "Other" });
      group.append(make("option", { value: this.extraSymbol, textContent: this.extraSymbol }));
      groups.push(group);
      seen.add(this.extraSymbol);
    }
    picker.replaceChildren(...groups);
    const none = seen.size === 0;
    if (none) picker.append(make("option", { value: "", textContent: "No watched symbols" }));
    picker.disabled = none;
    el<HTMLButtonElement>("al-create").disabled = none;
    el("al-no-symbols").hidden = !none;
    picker.value = seen.has(wanted) ? wanted : ([...seen][0] ?? "");
    if (picker.value !== before && !quiet) this.symbolChanged();
  }

  /** Select `symbol` (from a watchlist row's "Set alert"), adding it when the picker lacks it. */
  private pick(symbol: string): void {
    const picker = el<HTMLSelectElement>("al-symbol");
    if (![...picker.options].some((option) => option.value === symbol)) {
      this.extraSymbol = symbol;
      this.renderPicker(symbol, true);
    }
    picker.value = symbol;
    this.symbolChanged();
  }

  /** A new symbol: the old level means nothing for it; suggest one from its current price. */
  private symbolChanged(): void {
    this.levelTouched = false;
    this.directionTouched = false;
    this.errors.clear();
    const symbol = el<HTMLSelectElement>("al-symbol").value;
    el("al-level-hint").textContent = "";
    this.suggest();
    if (symbol === "") return;
    // Even a price seen a moment ago (the watchlist's) is refreshed: the level should be near
    // the price now. A level the user typed meanwhile is kept.
    const epoch = this.epoch;
    if (!this.prices.has(symbol)) el("al-level-hint").textContent = "Getting the current price…";
    this.clients()
      .marketdata.getQuote({ symbol }, UNARY)
      .then(({ quote }) => {
        if (epoch !== this.epoch || quote === undefined) return;
        // Price conditions compare the last price for equities, the mark for option contracts.
        const option = quote.instrumentType === InstrumentType.OPTION;
        const price = option && quote.mark > 0 ? quote.mark : quote.last;
        const labelled =
          quote.source === DataSource.SIMULATED || quote.source === DataSource.REPLAY;
        const source = labelled ? DataSource[quote.source].toLowerCase() : "";
        if (Number.isFinite(price) && price > 0) this.prices.set(symbol, { price, source });
        if (el<HTMLSelectElement>("al-symbol").value === symbol) this.suggest();
      })
      .catch((error: unknown) => {
        if (epoch !== this.epoch) return;
        if (el<HTMLSelectElement>("al-symbol").value === symbol) {
          el("al-level-hint").textContent = `No current price (${explain(error)})`;
        }
      });
  }

  private kind(): Kind {
    return el<HTMLSelectElement>("al-kind").value as Kind;
  }

  /** The level (and a crossing's direction) suggested from the current price, unless typed. */
  private suggest(): void {
    const symbol = el<HTMLSelectElement>("al-symbol").value;
    const known = this.prices.get(symbol);
    const level = el<HTMLInputElement>("al-level");
    const hint = el("al-level-hint");
    level.dataset.last = known === undefined ? "" : String(known.price);
    if (known === undefined) {
      if (!this.levelTouched) level.value = "";
      if (!hint.textContent?.endsWith("…")) hint.textContent = "";
    } else {
      const source = known.source ? ` (${known.source})` : "";
      hint.textContent = `${symbol} is at ${roundPrice(known.price)} now${source}`;
      if (!this.levelTouched) {
        // Just beyond the current price, on the side the condition watches.
        const factor = this.kind() === "below" ? 0.99 : 1.01;
        level.value = roundPrice(known.price * factor);
      }
    }
    this.followLevel();
    this.renderForm();
  }

  /** A crossing's direction follows the level (up to a level above the price) until chosen. */
  private followLevel(): void {
    if (this.directionTouched) return;
    const known = this.prices.get(el<HTMLSelectElement>("al-symbol").value);
    const level = Number(el<HTMLInputElement>("al-level").value);
    if (known === undefined || !Number.isFinite(level) || level <= 0) return;
    el<HTMLSelectElement>("al-direction").value = String(
      level >= known.price ? MoveDirection.UP : MoveDirection.DOWN,
    );
  }

  private renderForm(): void {
    el("al-direction-field").hidden = this.kind() !== "crossing";
  }

  private condition(kind: Kind, price: number, direction: MoveDirection): ConditionInit {
    switch (kind) {
      case "above":
        return { kind: { case: "priceAbove", value: { price } } };
      case "below":
        return { kind: { case: "priceBelow", value: { price } } };
      case "crossing":
        return { kind: { case: "priceCrossing", value: { price, direction } } };
    }
  }

  private create(): void {
    this.errors.clear();
    this.message("");
    const symbol = el<HTMLSelectElement>("al-symbol").value;
    const levelText = el<HTMLInputElement>("al-level").value.trim();
    const note = el<HTMLInputElement>("al-note").value;
    if (symbol === "") {
      this.errors.set("symbol", "Add a symbol to a watchlist first");
      return;
    }
    const price = Number(levelText.replace(",", "."));
    if (levelText === "" || !Number.isFinite(price)) {
      this.errors.set("price", "Enter a price, e.g. 123.45");
      return;
    }
    const kind = this.kind();
    const direction =
      kind === "crossing"
        ? (Number(el<HTMLSelectElement>("al-direction").value) as MoveDirection)
        : MoveDirection.UNSPECIFIED;
    const condition = this.condition(kind, price, direction);
    // A retry of the same alert (say after a dropped connection) reuses its request_id: the
    // server answers with the alert the first attempt made instead of making a second one.
    const key = JSON.stringify([symbol, kind, price, direction, note]);
    if (this.pendingCreate?.key !== key) this.pendingCreate = { key, requestId: newRequestId() };
    const { requestId } = this.pendingCreate;
    const button = el<HTMLButtonElement>("al-create");
    button.disabled = true;
    const epoch = this.epoch;
    void this.serial(async () => {
      try {
        const reply = await this.clients().alert.createAlert(
          { parent: PARENT, alert: { symbol, condition, note }, requestId },
          UNARY,
        );
        if (epoch !== this.epoch || reply.alert === undefined) return;
        this.pendingCreate = undefined;
        const alert = reply.alert;
        this.alerts = [alert, ...this.alerts.filter((a) => a.name !== alert.name)];
        this.renderAlerts();
        el<HTMLInputElement>("al-note").value = "";
        this.message(`Alert set: ${alert.displayName}`, "ok");
      } catch (error) {
        if (epoch !== this.epoch) return;
        this.errors.showError(error);
      } finally {
        if (epoch === this.epoch) button.disabled = el<HTMLSelectElement>("al-symbol").disabled;
      }
    });
  }

  // --- the alert list ------------------------------------------------------------------------

  /** Re-read the alerts (coalesced: one reload waiting at a time, after any running action). */
  private refresh(): void {
    if (this.refreshQueued || this.context === undefined) return;
    this.refreshQueued = true;
    const epoch = this.epoch;
    void this.serial(async () => {
      if (epoch !== this.epoch) return;
      this.refreshQueued = false;
      try {
        await this.reload(epoch);
      } catch (error) {
        if (epoch === this.epoch) this.message(`Alerts not loaded: ${explain(error)}`);
      }
    });
  }

  private async reload(epoch: number): Promise<void> {
    const alerts: Alert[] = [];
    let pageToken = "";
    for (let pages = 0; pages < MAX_ALERT_PAGES; pages += 1) {
      const page = await this.clients().alert.listAlerts(
        { parent: PARENT, pageSize: 100, pageToken },
        UNARY,
      );
      alerts.push(...page.alerts);
      pageToken = page.nextPageToken;
      if (pageToken === "") break;
    }
    if (epoch !== this.epoch) return;
    this.alerts = alerts;
    this.renderAlerts();
  }

  /** Enable, disable or delete one alert with the etag on screen. */
  private act(alert: Alert, action: "enable" | "disable" | "delete"): void {
    this.confirming = undefined;
    this.message("");
    const epoch = this.epoch;
    void this.serial(async () => {
      if (epoch !== this.epoch) return;
      const current = this.alerts.find((a) => a.name === alert.name) ?? alert;
      const request = { name: current.name, etag: current.etag };
      const alerts = this.clients().alert;
      const panel = el("alerts-panel");
      panel.setAttribute("aria-busy", "true");
      try {
        if (action === "delete") {
          await alerts.deleteAlert(request, UNARY);
          if (epoch !== this.epoch) return;
          this.alerts = this.alerts.filter((a) => a.name !== current.name);
          this.message(`Deleted “${current.displayName}”`, "ok");
        } else {
          const reply =
            action === "enable"
              ? await alerts.enableAlert(request, UNARY)
              : await alerts.disableAlert(request, UNARY);
          if (epoch !== this.epoch || reply.alert === undefined) return;
          const updated = reply.alert;
          this.alerts = this.alerts.map((a) => (a.name === updated.name ? updated : a));
        }
        this.renderAlerts();
      } catch (raw) {
        if (epoch !== this.epoch) return;
        const error = ConnectError.from(raw);
        const text =
          error.code === Code.Aborted
            ? STALE_MESSAGE
            : error.code === Code.NotFound
              ? GONE_MESSAGE
              : explain(error);
        try {
          await this.reload(epoch);
        } catch (reloadError) {
          this.message(explain(reloadError));
          return;
        }
        const warn = error.code === Code.Aborted || error.code === Code.NotFound;
        this.message(text, warn ? "warn" : "error");
      } finally {
        panel.removeAttribute("aria-busy");
      }
    });
  }

  private renderAlerts(): void {
    const focused = document.activeElement as HTMLElement | null;
    const focusName = focused?.closest<HTMLElement>("[data-testid=al-item]")?.dataset.name;
    const focusId = focused?.dataset.testid;
    const list = el("al-list");
    list.replaceChildren(...this.alerts.map((alert) => this.alertRow(alert)));
    el("al-list-empty").hidden = this.alerts.length > 0;
    if (focusName !== undefined && focusId !== undefined) {
      const row = [...list.querySelectorAll<HTMLElement>("[data-testid=al-item]")].find(
        (r) => r.dataset.name === focusName,
      );
      const target =
        row?.querySelector<HTMLElement>(`[data-testid=${focusId}]`) ??
        row?.querySelector<HTMLElement>("button");
      target?.focus();
    }
  }

  private alertRow(alert: Alert): HTMLLIElement {
    const state = STATE_NAMES[alert.state] ?? "UNKNOWN";
    const li = make(
      "li",
      { className: "al-item" },
      {
        testid: "al-item",
        name: alert.name,
        symbol: alert.symbol,
        state,
        etag: alert.etag,
        fireCount: alert.fireCount.toString(),
      },
    );
    const main = make("div", { className: "al-main" });
    main.append(
      make(
        "span",
        { className: "al-title", textContent: alert.displayName },
        { testid: "al-title" },
      ),
    );
    if (alert.note) main.append(make("span", { className: "al-sub", textContent: alert.note }));
    const meta = make("div", { className: "al-meta" });
    const fired = alert.fireCount === 0n ? "not fired yet" : `fired ${alert.fireCount}×`;
    const last = alert.lastFireTime ? ` · last ${time(alert.lastFireTime)}` : "";
    meta.append(
      make(
        "span",
        { className: `badge state-${state.toLowerCase()}`, textContent: state },
        { testid: "al-state" },
      ),
      make(
        "span",
        { className: "al-fires", textContent: `${fired}${last}` },
        { testid: "al-fires" },
      ),
    );
    const actions = make("div", { className: "buttons al-actions" });
    const button = (
      text: string,
      testid: string,
      label: string,
      onClick: () => void,
      danger = false,
    ): HTMLButtonElement => {
      const className = danger ? "danger" : "";
      const b = make("button", { type: "button", textContent: text, className }, { testid });
      b.setAttribute("aria-label", `${label} ${alert.displayName}`);
      b.addEventListener("click", onClick);
      return b;
    };
    if (alert.state === AlertState.ACTIVE) {
      actions.append(button("Disable", "al-disable", "Disable", () => this.act(alert, "disable")));
    } else if (alert.state === AlertState.DISABLED) {
      actions.append(button("Enable", "al-enable", "Enable", () => this.act(alert, "enable")));
    } else if (alert.state === AlertState.COMPLETED) {
      actions.append(button("Re-arm", "al-enable", "Re-arm", () => this.act(alert, "enable")));
    }
    actions.append(
      button("Delete", "al-delete", "Delete", () => {
        this.confirming = alert.name;
        this.renderAlerts();
        el("alerts-panel").querySelector<HTMLElement>(`[data-testid=al-delete-confirm]`)?.focus();
      }, true),
    );
    li.append(main, meta, actions);
    if (this.confirming === alert.name) {
      const confirm = make(
        "div",
        { className: "buttons confirm" },
        { testid: "al-delete-confirm-row" },
      );
      confirm.append(
        make("span", { textContent: `Delete “${alert.displayName}”?` }),
        button(
          "Delete",
          "al-delete-confirm",
          "Confirm deleting",
          () => this.act(alert, "delete"),
          true,
        ),
        button("Cancel", "al-delete-cancel", "Keep", () => {
          this.confirming = undefined;
          this.renderAlerts();
        }),
      );
      li.append(confirm);
    }
    return li;
  }

  // --- the event feed ------------------------------------------------------------------------

  /** Show recent history, then stream from the newest event shown (or from the one this tab
   * showed last, so events fired since, say, a reload are replayed as missed). */
  private async startFeed(epoch: number): Promise<void> {
    const context = this.context;
    if (context === undefined) return;
    this.feedState("connecting", "");
    const stored = storedEventId(context.user.name);
    let history: AlertEvent[];
    try {
      history = (
        await context.clients.alert.listAlertEvents(
          { parent: ALL_ALERTS, pageSize: HISTORY_SIZE },
          UNARY,
        )
      ).events;
    } catch (error) {
      if (epoch === this.epoch) this.feedState("error", explain(error));
      return;
    }
    if (epoch !== this.epoch) return;
    const after = stored ?? history[0]?.eventId ?? 0n;
    const feed = el("al-feed");
    feed.replaceChildren(
      ...history
        .filter((event) => event.eventId <= after)
        .map((event) => this.eventItem(event, "earlier")),
    );
    this.feed = new AlertFeed(context.clients, context.user.name, after, {
      events: (events, replay) => this.arrived(events, replay),
      state: (state, detail) => this.feedState(state, detail),
      opening: (afterEventId) => {
        feed.dataset.opens = String(Number(feed.dataset.opens ?? "0") + 1);
        feed.dataset.after = afterEventId.toString();
      },
      sessionEnded: () => context.signOut(),
    });
    this.feedMeta();
    this.feed.start();
  }

  private arrived(events: AlertEvent[], replay: boolean): void {
    const feed = el("al-feed");
    const arrival: Arrival = replay ? "missed" : "live";
    for (const event of events) feed.prepend(this.eventItem(event, arrival));
    while (feed.children.length > MAX_FEED_ITEMS) feed.lastElementChild?.remove();
    this.feedMeta();
    if (events.length === 0) return;
    if (replay) {
      this.missed += events.length;
      const alerts = this.missed === 1 ? "alert" : "alerts";
      el("al-feed-note").textContent =
        `${this.missed} ${alerts} fired while the feed was disconnected (marked “missed”)`;
    }
    if (this.root.hidden) {
      const text = replay
        ? `${events.length} missed alert ${events.length === 1 ? "event" : "events"}: see Alerts`
        : `Alert: ${events[events.length - 1].message.split("\n")[0]}`;
      this.context?.status(text, "ok");
    }
    this.refresh(); // states and fire counts changed
  }

  private eventItem(event: AlertEvent, arrival: Arrival): HTMLLIElement {
    const li = make(
      "li",
      { className: `al-event ${arrival}` },
      { testid: "al-event", eventId: event.eventId.toString(), arrival, alert: event.alert },
    );
    const head = make("div", { className: "al-event-head" });
    head.append(
      make("span", { className: "al-event-symbol", textContent: event.symbol }),
      make(
        "span",
        { className: `badge tag-${arrival}`, textContent: arrival },
        { testid: "al-event-tag" },
      ),
      make("time", { textContent: time(event.fireTime) }),
    );
    const message = make(
      "p",
      { className: "al-event-message", textContent: event.message },
      { testid: "al-event-message" },
    );
    li.append(head, message);
    return li;
  }

  private feedMeta(): void {
    const feed = el("al-feed");
    feed.dataset.lastEventId = this.feed?.lastEventId.toString() ?? "";
    feed.dataset.duplicates = String(this.feed?.duplicates ?? 0);
    el("al-feed-empty").hidden = this.context === undefined || feed.children.length > 0;
  }

  private feedState(state: FeedState, detail: string): void {
    const badge = el("al-feed-state");
    badge.textContent = state;
    badge.title = detail;
    badge.dataset.detail = detail;
    el("al-reconnect-row").hidden = state !== "error" || this.context === undefined;
  }

  // --- wiring --------------------------------------------------------------------------------

  private bind(): void {
    el("al-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    el("al-symbol").addEventListener("change", () => this.symbolChanged());
    el("al-kind").addEventListener("change", () => {
      this.errors.clear();
      this.suggest();
    });
    el("al-direction").addEventListener("change", () => {
      this.directionTouched = true;
    });
    el("al-level").addEventListener("input", () => {
      this.levelTouched = el<HTMLInputElement>("al-level").value !== "";
      this.followLevel();
    });
    el("al-reconnect").addEventListener("click", () => {
      if (this.feed !== undefined) this.feed.retry();
      else void this.startFeed(this.epoch);
    });
  }
}
