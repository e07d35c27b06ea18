// The Portfolio screen: the user's brokerage connections with their health (ACTIVE, SYNCING,
// REAUTH_REQUIRED with the time the sign-in ends, ERROR, REVOKED), connecting the paper broker in
// one tap or an OAuth broker (Schwab) through its sign-in page and the app's callback route
// (broker-return.ts), re-authorising, "Sync now" and delete; then the portfolio merged across
// every connection: totals (market value, cash, unrealised and day P/L), the Greeks of the whole
// book (net delta in shares and dollars, gamma, theta per day, vega) and every position, priced
// from current quotes or, when market data is down, from the last sync (said so). Money is exact
// (money.ts): the figures shown are the server's to the cent, never float sums.
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { OptixClients } from "../../client.js";
import { optixError } from "../../errors.js";
import type { PortfolioSync } from "../../gen/optix/brokerage/v1/connection_pb.js";
import {
  type Connection,
  ConnectionStatus,
  SyncState,
} from "../../gen/optix/brokerage/v1/connection_pb.js";
import {
  type Portfolio,
  type Position,
  type PositionGreeks,
  PriceSource,
} from "../../gen/optix/brokerage/v1/portfolio_pb.js";
import { AuthKind, type Provider } from "../../gen/optix/brokerage/v1/provider_pb.js";
import type { Money } from "../../gen/optix/common/v1/money_pb.js";
import { type BrokerReturn, callbackUrl } from "../broker-return.js";
import { el, make, section } from "../dom.js";
import { explain } from "../fields.js";
import {
  direction,
  formatChange,
  formatMoney,
  formatPercent,
  formatPrice,
  formatQuantity,
  moneyNanos,
} from "../money.js";
import type { Screen, ScreenContext } from "../screen.js";

const PARENT = "users/me";
const UNARY = { timeoutMs: 10_000 };
const MAX_PAGES = 10;
/** A sync is followed (GetConnection) this often until it ends, at most FOLLOW_LIMIT times. */
const FOLLOW_MS = 500;
const FOLLOW_LIMIT = 240;

const STATUS_NAMES: Record<number, string> = {
  [ConnectionStatus.ACTIVE]: "ACTIVE",
  [ConnectionStatus.SYNCING]: "SYNCING",
  [ConnectionStatus.REAUTH_REQUIRED]: "REAUTH_REQUIRED",
  [ConnectionStatus.ERROR]: "ERROR",
  [ConnectionStatus.REVOKED]: "REVOKED",
};
const STATUS_LABELS: Record<string, string> = {
  ACTIVE: "active",
  SYNCING: "syncing",
  REAUTH_REQUIRED: "sign in again",
  ERROR: "error",
  REVOKED: "revoked",
};

const fact = (id: string, label: string): string =>
  `<div class="pf-fact"><dt>${label}</dt><dd id="${id}" data-testid="${id}"></dd></div>`;

const HTML = `
  <div class="pf-head">
    <h2>Portfolio</h2>
    <button type="button" id="pf-refresh" data-testid="pf-refresh">Refresh</button>
  </div>
  <p id="pf-message" class="pf-message" data-testid="pf-message" role="status"></p>
  <div class="pf-grid">
    <div class="pf-connections">
      <h3>Connections</h3>
      <ul id="pf-connections" class="pf-list" data-testid="pf-connections" aria-label="Brokerage connections"></ul>
      <p id="pf-connections-empty" class="note" data-testid="pf-connections-empty" hidden>No broker connected yet. The paper broker connects in one tap, with cash, shares and options to look at.</p>
      <div id="pf-connect" class="buttons pf-connect" data-testid="pf-connect"></div>
    </div>
    <div class="pf-summary">
      <h3>Totals <span id="pf-as-of" class="note" data-testid="pf-as-of"></span></h3>
      <dl class="pf-facts" data-testid="pf-totals">
        ${fact("pf-market-value", "Market value")}
        ${fact("pf-cash", "Cash")}
        ${fact("pf-total-value", "Total value")}
        ${fact("pf-unrealized", "Unrealised P/L")}
        ${fact("pf-day", "Day P/L")}
      </dl>
      <h3>Greeks of the book</h3>
      <dl class="pf-facts" data-testid="pf-greeks">
        ${fact("pf-delta", "Net delta (shares)")}
        ${fact("pf-delta-dollars", "Delta ($)")}
        ${fact("pf-gamma", "Gamma")}
        ${fact("pf-theta", "Theta / day")}
        ${fact("pf-vega", "Vega")}
      </dl>
      <p id="pf-greeks-missing" class="note" data-testid="pf-greeks-missing"></p>
    </div>
  </div>
  <p id="pf-quotes-note" class="warn" data-testid="pf-quotes-note" hidden>Market data is unavailable: prices are the last synced ones (marked “last sync”), and Greeks are missing.</p>
  <h3>Positions</h3>
  <p id="pf-positions-empty" class="note" data-testid="pf-positions-empty" hidden>No positions yet.</p>
  <div class="table-scroll pf-table" data-testid="pf-positions-box">
    <table>
      <thead><tr>
        <th scope="col">Symbol</th><th scope="col">Qty</th><th scope="col">Price</th>
        <th scope="col">Value</th><th scope="col">Unrealised</th><th scope="col">Day</th>
        <th scope="col">Δ</th><th scope="col">Θ/day</th>
      </tr></thead>
      <tbody id="pf-positions" data-testid="pf-positions"></tbody>
    </table>
  </div>`;

const stamp = (ts: Timestamp | undefined): string =>
  ts === undefined ? "" : timestampDate(ts).toISOString();
const when = (ts: Timestamp | undefined): string =>
  ts === undefined ? "" : timestampDate(ts).toLocaleString();

/** A Greek for display: `digits` decimals, "" when not finite. */
const greek = (value: number, digits: number): string =>
  Number.isFinite(value) ? value.toFixed(digits) : "";

/** Dollars from a double (Greeks are estimates, not money), signed. */
const dollars = (value: number): string => {
  if (!Number.isFinite(value)) return "";
  const text = Math.abs(value).toLocaleString("en-US", {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });
  return `${value < 0 && text !== "0.00" ? "-" : ""}$${text}`;
};

/** The Portfolio screen. */
export class PortfolioScreen implements Screen {
  readonly id = "portfolio";
  readonly title = "Portfolio";
  readonly glyph = "◔";
  readonly root = section("portfolio-panel", "portfolio-panel", HTML);
  private context: ScreenContext | undefined;
  private epoch = 0; // bumped on sign-in / sign-out: late answers of a closed session are dropped
  private providers: Provider[] = [];
  private connections: Connection[] = [];
  private readonly following = new Set<string>();
  private confirming: string | undefined;
  private busy = false;

  /** `returned`: the broker redirect this page load came from, completed at sign-in. */
  constructor(private returned: BrokerReturn | undefined) {
    this.root.classList.add("pf");
    el("pf-refresh").addEventListener("click", () => void this.reload(this.epoch));
    this.clear();
  }

  signedIn(context: ScreenContext): void {
    this.clear();
    this.context = context;
    const epoch = this.epoch;
    const returned = this.returned;
    this.returned = undefined;
    if (returned !== undefined) {
      if (location.hash !== `#${this.id}`) location.hash = this.id;
      void this.finishSignIn(epoch, returned);
    } else {
      void this.reload(epoch);
    }
  }

  /** Every visit re-reads connections and the portfolio (prices and syncs move on). */
  shown(): void {
    if (this.context !== undefined) void this.reload(this.epoch);
  }

  signedOut(): void {
    this.context = undefined;
    this.returned = undefined;
    this.clear();
  }

  private clear(): void {
    this.epoch += 1;
    this.providers = [];
    this.connections = [];
    this.following.clear();
    this.confirming = undefined;
    this.busy = false;
    this.message("");
    el("pf-connections").replaceChildren();
    el("pf-connect").replaceChildren();
    el("pf-connections-empty").hidden = true;
    this.renderPortfolio(undefined);
  }

  private clients(): OptixClients {
    if (this.context === undefined) throw new Error("the portfolio screen is not signed in");
    return this.context.clients;
  }

  private message(text: string, kind: "error" | "warn" | "ok" = "error", retryMs?: number): void {
    const box = el("pf-message");
    box.textContent = text;
    box.dataset.kind = text === "" ? "" : kind;
    box.dataset.retryMs = retryMs === undefined ? "" : String(retryMs);
    box.dataset.syncing = "";
    box.dataset.connection = "";
  }

  /** The failed call said in one line; a refused sync says how long to wait. */
  private failed(what: string, error: unknown): void {
    const info = optixError(error);
    if (info.code === Code.ResourceExhausted && info.retryDelayMs !== undefined) {
      const seconds = Math.max(1, Math.ceil(info.retryDelayMs / 1000));
      const text = `${what}: synced moments ago, try again in ${seconds} s`;
      this.message(text, "warn", info.retryDelayMs);
      return;
    }
    // No form here: a field violation (say a redirect_uri the server does not allow) is said
    // in the line, with the field it names.
    const fields = info.fieldViolations.map((v) =>
      v.field ? `${v.field}: ${v.description}` : v.description,
    );
    this.message(`${what}: ${fields.length > 0 ? fields.join("; ") : explain(error)}`);
  }

  // --- loading -------------------------------------------------------------------------------

  /** Providers, connections and the portfolio, read together. */
  private async reload(epoch: number): Promise<void> {
    if (this.context === undefined) return;
    const brokerage = this.clients().brokerage;
    try {
      const [providers, connections, portfolio] = await Promise.all([
        brokerage.listProviders({ pageSize: 50 }, UNARY),
        this.listConnections(),
        brokerage.getPortfolio({ name: `${PARENT}/portfolio` }, UNARY),
      ]);
      if (epoch !== this.epoch) return;
      this.providers = providers.providers;
      this.connections = connections;
      this.renderConnections();
      this.renderPortfolio(portfolio.portfolio);
      for (const c of connections) {
        if (c.status === ConnectionStatus.SYNCING) void this.follow(epoch, c.name);
      }
    } catch (error) {
      if (epoch !== this.epoch) return;
      if (ConnectError.from(error).code === Code.Unauthenticated) {
        this.context.signOut();
        return;
      }
      this.failed("Portfolio not loaded", error);
    }
  }

  private async listConnections(): Promise<Connection[]> {
    const all: Connection[] = [];
    let pageToken = "";
    for (let pages = 0; pages < MAX_PAGES; pages += 1) {
      const page = await this.clients().brokerage.listConnections(
        { parent: PARENT, pageSize: 100, pageToken },
        UNARY,
      );
      all.push(...page.connections);
      pageToken = page.nextPageToken;
      if (pageToken === "") break;
    }
    return all;
  }

  private async reloadPortfolio(epoch: number): Promise<void> {
    try {
      const reply = await this.clients().brokerage.getPortfolio(
        { name: `${PARENT}/portfolio` },
        UNARY,
      );
      if (epoch === this.epoch) this.renderPortfolio(reply.portfolio);
    } catch (error) {
      if (epoch === this.epoch) this.failed("Portfolio not loaded", error);
    }
  }

  /** Re-read one connection until its sync ends, then the portfolio. */
  private async follow(epoch: number, name: string): Promise<void> {
    if (this.following.has(name)) return;
    this.following.add(name);
    try {
      for (let i = 0; i < FOLLOW_LIMIT && epoch === this.epoch; i += 1) {
        const { connection } = await this.clients().brokerage.getConnection({ name }, UNARY);
        if (epoch !== this.epoch || connection === undefined) return;
        this.replace(connection);
        if (connection.status !== ConnectionStatus.SYNCING) {
          this.synced(connection);
          await this.reloadPortfolio(epoch);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, FOLLOW_MS));
      }
    } catch (error) {
      if (epoch === this.epoch) this.failed("Sync not followed", error);
    } finally {
      if (epoch === this.epoch) this.following.delete(name);
    }
  }

  /** A followed sync ended: the "…: syncing…" line says how. */
  private synced(connection: Connection): void {
    const box = el("pf-message");
    const prefix = box.dataset.syncing;
    if (prefix === undefined || prefix === "" || box.dataset.connection !== connection.name) return;
    if (connection.status === ConnectionStatus.ACTIVE) this.message(`${prefix}: synced`, "ok");
    else {
      const why = connection.lastSyncErrorMessage || connection.statusMessage;
      this.message(`${prefix}: the sync failed${why ? ` (${why})` : ""}`);
    }
  }

  private replace(connection: Connection): void {
    const known = this.connections.some((c) => c.name === connection.name);
    this.connections = known
      ? this.connections.map((c) => (c.name === connection.name ? connection : c))
      : [...this.connections, connection];
    this.renderConnections();
  }

  // --- connecting ----------------------------------------------------------------------------

  /** Runs one action at a time with the screen marked busy; a second tap meanwhile is ignored. */
  private async guarded(action: () => Promise<void>): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    const panel = el("portfolio-panel");
    panel.setAttribute("aria-busy", "true");
    try {
      await action();
    } finally {
      this.busy = false;
      panel.removeAttribute("aria-busy");
    }
  }

  /** Connect `provider`, or re-authorise `connection`: the paper broker completes at once, an
   * OAuth broker sends the user to its sign-in page, which redirects back here. */
  private connect(provider: Provider | undefined, connection?: Connection): void {
    const epoch = this.epoch;
    const context = this.context;
    if (context === undefined) return;
    this.confirming = undefined;
    void this.guarded(async () => {
      this.message("");
      try {
        const started = await context.clients.brokerage.startConnection(
          {
            parent: PARENT,
            provider: connection === undefined ? (provider?.name ?? "") : "",
            connection: connection?.name ?? "",
            redirectUri: provider?.authKind === AuthKind.NONE ? "" : callbackUrl(),
          },
          UNARY,
        );
        if (epoch !== this.epoch) return;
        if (started.authorizeUrl !== "") {
          this.message(`Opening the ${provider?.displayName ?? "broker"} sign-in…`, "ok");
          context.leaveForSignIn(started.authorizeUrl, started.state);
          return;
        }
        await this.complete(epoch, "", started.state, connection !== undefined);
      } catch (error) {
        if (epoch === this.epoch) this.failed("Not connected", error);
      }
    });
  }

  /** Back from the broker's sign-in page (the callback route). */
  private async finishSignIn(epoch: number, returned: BrokerReturn): Promise<void> {
    await this.guarded(async () => {
      if (returned.error !== "") {
        this.message(`The broker sign-in did not finish (${returned.error})`);
        return;
      }
      this.message("Finishing the broker connection…", "ok");
      try {
        // The connections before: the answer then tells a new connection from a re-authorised one.
        const before = await this.listConnections();
        if (epoch !== this.epoch) return;
        this.connections = before;
        await this.complete(epoch, returned.code, returned.state, false);
      } catch (error) {
        if (epoch === this.epoch) this.failed("Not connected", error);
      }
    });
    if (epoch === this.epoch) await this.reload(epoch);
  }

  private async complete(epoch: number, code: string, state: string, again: boolean): Promise<void> {
    const done = await this.clients().brokerage.completeConnection(
      { parent: PARENT, code, state },
      UNARY,
    );
    if (epoch !== this.epoch || done.connection === undefined) return;
    const connection = done.connection;
    const reauthorised = again || this.connections.some((c) => c.name === connection.name);
    this.replace(connection);
    const what = `${reauthorised ? "Re-authorised" : "Connected"} ${connection.displayName}`;
    this.message(`${what}: syncing…`, "ok");
    const box = el("pf-message");
    box.dataset.syncing = what;
    box.dataset.connection = connection.name;
    void this.follow(epoch, connection.name);
  }

  private sync(connection: Connection): void {
    const epoch = this.epoch;
    this.confirming = undefined;
    void this.guarded(async () => {
      this.message("");
      try {
        const { syncs } = await this.clients().brokerage.syncPortfolio(
          { connection: connection.name },
          UNARY,
        );
        if (epoch !== this.epoch) return;
        const sync: PortfolioSync | undefined = syncs[0];
        if (sync?.state === SyncState.FAILED) {
          this.message(`Not synced: ${sync.errorMessage || "the sync failed"}`);
        }
        void this.follow(epoch, connection.name);
      } catch (error) {
        if (epoch === this.epoch) this.failed(`${connection.displayName} not synced`, error);
      }
    });
  }

  private remove(connection: Connection): void {
    const epoch = this.epoch;
    this.confirming = undefined;
    void this.guarded(async () => {
      try {
        await this.clients().brokerage.deleteConnection({ name: connection.name }, UNARY);
        if (epoch !== this.epoch) return;
        this.message(`Deleted “${connection.displayName}”`, "ok");
      } catch (error) {
        if (epoch === this.epoch) this.failed("Not deleted", error);
      }
      if (epoch === this.epoch) await this.reload(epoch);
    });
  }

  // --- connections ---------------------------------------------------------------------------

  private providerOf(connection: Connection): Provider | undefined {
    return this.providers.find((p) => p.name === connection.provider);
  }

  private renderConnections(): void {
    el("pf-connections").replaceChildren(...this.connections.map((c) => this.connectionRow(c)));
    el("pf-connections-empty").hidden = this.connections.length > 0;
    const buttons = this.providers
      .filter((p) => p.enabled)
      .map((provider) => {
        const id = provider.name.split("/").at(-1) ?? provider.name;
        const label = id === "paper" ? "Connect paper broker" : `Connect ${provider.displayName}`;
        const b = make(
          "button",
          { type: "button", textContent: label, className: id === "paper" ? "primary" : "" },
          { testid: `pf-connect-${id}`, provider: provider.name },
        );
        b.addEventListener("click", () => this.connect(provider));
        return b;
      });
    el("pf-connect").replaceChildren(...buttons);
  }

  private connectionRow(connection: Connection): HTMLLIElement {
    const status = STATUS_NAMES[connection.status] ?? "UNKNOWN";
    const li = make(
      "li",
      { className: "pf-connection" },
      {
        testid: "pf-connection",
        name: connection.name,
        provider: connection.provider,
        status,
        reauthTime: stamp(connection.reauthRequiredTime),
        accounts: String(connection.accountCount),
      },
    );
    const main = make("div", { className: "pf-main" });
    main.append(
      make(
        "span",
        { className: "pf-title", textContent: connection.displayName },
        { testid: "pf-connection-name" },
      ),
    );
    const meta = make("div", { className: "pf-meta" });
    meta.append(
      make(
        "span",
        {
          className: `badge status-${status.toLowerCase()}`,
          textContent: STATUS_LABELS[status] ?? status,
        },
        { testid: "pf-status" },
      ),
    );
    const accounts = connection.accountCount === 1 ? "1 account" : `${connection.accountCount} accounts`;
    const synced = connection.lastSuccessfulSyncTime
      ? ` · synced ${when(connection.lastSuccessfulSyncTime)}`
      : "";
    meta.append(make("span", { textContent: `${accounts}${synced}` }));
    main.append(meta);
    const detail = this.detail(connection, status);
    if (detail !== "") {
      main.append(
        make(
          "p",
          {
            className: `pf-detail ${status === "ACTIVE" ? "note" : "pf-attention"}`,
            textContent: detail,
          },
          { testid: "pf-detail" },
        ),
      );
    }
    const actions = make("div", { className: "buttons pf-actions" });
    const button = (
      text: string,
      testid: string,
      label: string,
      onClick: () => void,
      className = "",
    ): HTMLButtonElement => {
      const b = make("button", { type: "button", textContent: text, className }, { testid });
      b.setAttribute("aria-label", `${label} ${connection.displayName}`);
      b.addEventListener("click", onClick);
      return b;
    };
    if (status === "REAUTH_REQUIRED" || status === "REVOKED") {
      actions.append(
        button("Re-authorise", "pf-reauth", "Re-authorise", () =>
          this.connect(this.providerOf(connection), connection),
        "primary"),
      );
    } else {
      const syncNow = button("Sync now", "pf-sync", "Sync", () => this.sync(connection));
      syncNow.disabled = status === "SYNCING";
      actions.append(syncNow);
    }
    actions.append(
      button(
        "Delete",
        "pf-delete",
        "Delete",
        () => {
          this.confirming = connection.name;
          this.renderConnections();
          el("portfolio-panel").querySelector<HTMLElement>("[data-testid=pf-delete-confirm]")?.focus();
        },
        "danger",
      ),
    );
    li.append(main, actions);
    if (this.confirming === connection.name) {
      const confirm = make("div", { className: "buttons confirm" }, { testid: "pf-delete-confirm-row" });
      confirm.append(
        make("span", {
          textContent:
            `Delete “${connection.displayName}” and its synced data? ` +
            "Access is revoked at the broker.",
        }),
        button(
          "Delete",
          "pf-delete-confirm",
          "Confirm deleting",
          () => this.remove(connection),
          "danger",
        ),
        button("Cancel", "pf-delete-cancel", "Keep", () => {
          this.confirming = undefined;
          this.renderConnections();
        }),
      );
      li.append(confirm);
    }
    return li;
  }

  /** The line under a connection: what needs doing, or when its sign-in ends. */
  private detail(connection: Connection, status: string): string {
    const reauth = connection.reauthRequiredTime;
    if (status === "REAUTH_REQUIRED" || status === "REVOKED") {
      const why = connection.statusMessage || "Sign in at the broker again to keep syncing";
      // A revoked sign-in ended when the broker withdrew it, not at its scheduled end.
      const due =
        reauth === undefined || status === "REVOKED" ? undefined : timestampDate(reauth);
      const time =
        due === undefined
          ? ""
          : due.getTime() <= Date.now()
            ? ` The sign-in ended ${due.toLocaleString()}.`
            : ` Re-authorise by ${due.toLocaleString()}.`;
      const sentence = `${why.charAt(0).toUpperCase()}${why.slice(1)}`.replace(/\.?$/, ".");
      return `${sentence}${time} The last synced data is still shown.`;
    }
    if (status === "ERROR") {
      return connection.statusMessage || connection.lastSyncErrorMessage || "The last sync failed";
    }
    if (reauth !== undefined) return `Sign-in valid until ${when(reauth)}`;
    return "";
  }

  // --- the portfolio -------------------------------------------------------------------------

  private renderPortfolio(portfolio: Portfolio | undefined): void {
    const currency = portfolio?.currencyCode ?? "USD";
    const money = (id: string, value: Money | undefined, change = false, percent?: number) => {
      const node = el(id);
      if (portfolio === undefined) {
        node.textContent = "";
        node.dataset.nanos = "";
        node.className = "";
        return;
      }
      const text = change ? formatChange(value, currency) : formatMoney(value, currency);
      node.textContent = percent === undefined ? text : `${text} (${formatPercent(percent)})`;
      node.dataset.nanos = moneyNanos(value).toString();
      node.className = change ? direction(value) : "";
    };
    const totals = portfolio?.totals;
    money("pf-market-value", totals?.marketValue);
    money("pf-cash", portfolio?.balances?.cash);
    money("pf-total-value", portfolio?.balances?.totalValue);
    money("pf-unrealized", totals?.unrealizedProfitLoss, true, totals?.unrealizedProfitLossPercent);
    money("pf-day", totals?.dayChange, true, totals?.dayChangePercent);
    this.renderGreeks(portfolio === undefined ? undefined : portfolio.greeks);
    el("pf-as-of").textContent = portfolio?.asOfTime ? `as of ${when(portfolio.asOfTime)}` : "";
    el("pf-quotes-note").hidden = portfolio?.quotesUnavailable !== true;
    const rows = (portfolio?.positions ?? []).map((p) => this.positionRow(p, currency));
    el("pf-positions").replaceChildren(...rows);
    el("pf-positions-empty").hidden = portfolio === undefined || rows.length > 0;
    const panel = el("portfolio-panel");
    panel.dataset.loaded = portfolio === undefined ? "" : "true";
    panel.dataset.positions = String(rows.length);
    panel.dataset.accounts = String(portfolio?.accounts.length ?? 0);
  }

  private renderGreeks(greeks: PositionGreeks | undefined): void {
    const put = (id: string, value: number | undefined, text: string) => {
      const node = el(id);
      node.textContent = value === undefined ? "" : text;
      node.dataset.value = value === undefined ? "" : String(value);
    };
    put("pf-delta", greeks?.delta, greek(greeks?.delta ?? 0, 2));
    put("pf-delta-dollars", greeks?.deltaDollars, dollars(greeks?.deltaDollars ?? 0));
    put("pf-gamma", greeks?.gamma, greek(greeks?.gamma ?? 0, 4));
    put("pf-theta", greeks?.theta, dollars(greeks?.theta ?? 0));
    put("pf-vega", greeks?.vega, dollars(greeks?.vega ?? 0));
    const missing = greeks?.missingCount ?? 0;
    el("pf-greeks-missing").textContent =
      missing > 0
        ? `${missing} option ${missing === 1 ? "position has" : "positions have"} no Greeks ` +
          `from market data and ${missing === 1 ? "is" : "are"} left out.`
        : "";
  }

  private positionRow(position: Position, currency: string): HTMLTableRowElement {
    const greeks = position.greeks;
    const lastSync = position.priceSource === PriceSource.LAST_SYNC;
    const tr = make(
      "tr",
      {},
      {
        testid: "pf-position",
        symbol: position.symbol,
        quantity: position.quantity?.value ?? "",
        marketValue: moneyNanos(position.marketValue).toString(),
        unrealized: moneyNanos(position.unrealizedProfitLoss).toString(),
        day: moneyNanos(position.dayChange).toString(),
        priceSource: lastSync ? "last-sync" : "quote",
        delta: greeks === undefined ? "" : String(greeks.delta),
        deltaDollars: greeks === undefined ? "" : String(greeks.deltaDollars),
        gamma: greeks === undefined ? "" : String(greeks.gamma),
        theta: greeks === undefined ? "" : String(greeks.theta),
        vega: greeks === undefined ? "" : String(greeks.vega),
      },
    );
    const cell = (text: string, className = "", label = "") =>
      make("td", { textContent: text, className }, label ? { label } : {});
    const sym = make("td", { className: "sym" });
    sym.append(make("span", { textContent: position.symbol }));
    if (lastSync) sym.append(make("span", { className: "src", textContent: "last sync" }));
    const change = (value: Money | undefined, percent: number, label: string) =>
      cell(`${formatChange(value, currency)} (${formatPercent(percent)})`, direction(value), label);
    // The labels head each value where a phone shows a position as a card (style.css).
    tr.append(
      sym,
      cell(formatQuantity(position.quantity), "", "Qty"),
      cell(formatPrice(position.price, currency), "", "Price"),
      cell(formatMoney(position.marketValue, currency), "", "Value"),
      change(position.unrealizedProfitLoss, position.unrealizedProfitLossPercent, "P/L"),
      change(position.dayChange, position.dayChangePercent, "Day"),
      cell(greeks === undefined ? "—" : greek(greeks.delta, 2), "", "Delta"),
      cell(greeks === undefined ? "—" : dollars(greeks.theta), "", "Theta/day"),
    );
    return tr;
  }
}
