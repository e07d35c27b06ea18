// Browser test scenario for the Portfolio screen at one size (run by app.ts with `--scenario
// portfolio`, talking with the Python test over stdin/stdout): the paper broker connected in one
// tap, its merged portfolio (positions with Greeks, totals read back from the page); then Schwab
// through the stand-in: the tap leaves for the stand-in's authorize URL, the browser follows its
// 302 to the page's callback route, the page completes the connection over grpc-web. The Python
// test kills the stand-in's tokens, "Sync now" marks the connection REVOKED, and its
// Re-authorise button runs the OAuth dance again back to ACTIVE. A refused sync (the edge
// answering RESOURCE_EXHAUSTED with RetryInfo) shows its delay; delete; sign-out clears it all.
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack, durationFromMs } from "@bufbuild/protobuf/wkt";
import type { Browser, Page, Route } from "playwright-core";
import { RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { measureLayout, type LayoutReport } from "./layout.js";
import { DESKTOP, PHONE, Ui } from "./ui.js";

/** What the Python test passes in, and how the scenario asks it for things. */
export interface PortfolioScenarioArgs {
  page: string;
  phone: boolean;
  email: string;
  password: string;
  timeoutMs: number;
  screenshots?: string;
  /** Print a request for the Python test and wait for its one-line answer. */
  ask(request: Record<string, unknown>): Promise<string>;
}

const SCHWAB = "providers/schwab";
const PAPER = "providers/paper";
const HANDOFF_KEY = "optix.brokerage.handoff";
const REFUSED_RETRY_MS = 42_000;

/** One connection row as the page shows it. */
interface ConnectionRow {
  name: string;
  provider: string;
  status: string;
  reauthTime: string;
  accounts: string;
  title: string;
  detail: string;
  buttons: string[];
}

const connectionRows = (page: Page): Promise<ConnectionRow[]> =>
  page.locator("[data-testid=pf-connection]").evaluateAll((items) =>
    items.map((item) => {
      const li = item as HTMLElement;
      return {
        name: li.dataset.name ?? "",
        provider: li.dataset.provider ?? "",
        status: li.dataset.status ?? "",
        reauthTime: li.dataset.reauthTime ?? "",
        accounts: li.dataset.accounts ?? "",
        title: li.querySelector("[data-testid=pf-connection-name]")?.textContent ?? "",
        detail: li.querySelector("[data-testid=pf-detail]")?.textContent ?? "",
        buttons: [...li.querySelectorAll<HTMLElement>("button")].map((b) => b.dataset.testid ?? ""),
      };
    }),
  );

/** Everything the portfolio part of the screen shows, read from the page. */
const portfolioShown = (page: Page) =>
  page.evaluate(() => {
    const q = (id: string) => document.querySelector<HTMLElement>(`[data-testid=${id}]`);
    const money = (id: string) => ({
      text: q(id)?.textContent ?? "",
      nanos: q(id)?.dataset.nanos ?? "",
      kind: q(id)?.className ?? "",
    });
    const value = (id: string) => ({
      text: q(id)?.textContent ?? "",
      value: q(id)?.dataset.value ?? "",
    });
    const rows = [...document.querySelectorAll<HTMLElement>("[data-testid=pf-position]")];
    const positions = rows.map((tr) => ({
      ...tr.dataset,
      cells: [...tr.querySelectorAll("td")].map((td) => td.textContent ?? ""),
      classes: [...tr.querySelectorAll("td")].map((td) => td.className),
    }));
    const box = q("pf-positions-box");
    return {
      accounts: q("portfolio-panel")?.dataset.accounts ?? "",
      totals: {
        marketValue: money("pf-market-value"),
        cash: money("pf-cash"),
        totalValue: money("pf-total-value"),
        unrealized: money("pf-unrealized"),
        day: money("pf-day"),
      },
      greeks: {
        delta: value("pf-delta"),
        deltaDollars: value("pf-delta-dollars"),
        gamma: value("pf-gamma"),
        theta: value("pf-theta"),
        vega: value("pf-vega"),
      },
      missing: q("pf-greeks-missing")?.textContent ?? "",
      quotesNoteHidden: q("pf-quotes-note")?.hidden ?? null,
      positions,
      boxScrolls: box === null ? null : box.scrollWidth > box.clientWidth,
      boxWithinPage:
        box === null
          ? null
          : box.getBoundingClientRect().right <= document.documentElement.clientWidth,
    };
  });

/** A grpc-web answer with no body: the status, its message and google.rpc details in headers. */
function refusal(origin: string): Parameters<Route["fulfill"]>[0] {
  const status = create(StatusSchema, {
    code: 8,
    message: "synced moments ago; try again in 42 s",
    details: [
      anyPack(
        RetryInfoSchema,
        create(RetryInfoSchema, { retryDelay: durationFromMs(REFUSED_RETRY_MS) }),
      ),
    ],
  });
  return {
    status: 200,
    headers: {
      "access-control-allow-origin": origin,
      "access-control-expose-headers": "grpc-status, grpc-message, grpc-status-details-bin",
      "content-type": "application/grpc-web+proto",
      "grpc-status": "8",
      "grpc-message": encodeURIComponent(status.message),
      "grpc-status-details-bin": Buffer.from(toBinary(StatusSchema, status))
        .toString("base64")
        .replace(/=+$/, ""),
    },
    body: "",
  };
}

/** Runs the scenario in a fresh browser context; returns what the Python test asserts on. */
export async function runPortfolioScenario(
  browser: Browser,
  args: PortfolioScenarioArgs,
): Promise<Record<string, unknown>> {
  const context = await browser.newContext(args.phone ? PHONE : DESKTOP);
  context.setDefaultTimeout(args.timeoutMs);
  const r: Record<string, unknown> = {};
  const layouts: LayoutReport[] = [];
  const consoleErrors: string[] = [];
  let step = "start";
  const stepMs: Record<string, number> = {};
  let stepStart = Date.now();
  const begin = (name: string) => {
    stepMs[step] = Date.now() - stepStart;
    step = name;
    stepStart = Date.now();
  };
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  // The documents the tab loaded (the stand-in's authorize URL, the callback) and the calls.
  const documents: string[] = [];
  const calls: Record<string, number> = {};
  page.on("request", (request) => {
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
      documents.push(request.url());
    }
    const method = /\/optix\.brokerage\.v1\.BrokerageService\/(\w+)$/.exec(request.url());
    if (method !== null) calls[method[1]] = (calls[method[1]] ?? 0) + 1;
  });
  const ui = new Ui(page, args.phone);
  const layout = async (name: string) => {
    layouts.push(await measureLayout(page, name, args.phone ? 44 : 0));
    if (args.screenshots) {
      const size = args.phone ? "phone" : "desktop";
      const file = `${args.screenshots}/${size}-portfolio-${name.replace(/\W+/g, "-")}.png`;
      await page.screenshot({ path: file, fullPage: true });
    }
  };
  const rowOf = (provider: string) =>
    page.locator(`[data-testid=pf-connection][data-provider="${provider}"]`);
  const pressIn = async (provider: string, testid: string) => {
    const target = rowOf(provider).getByTestId(testid);
    if (args.phone) await target.tap();
    else await target.click();
  };
  /** Wait until the connection of `provider` shows `status`, `count` connections in all. */
  const waitStatus = (provider: string, status: string, count: number) =>
    page.waitForFunction(
      ([p, s, n]) => {
        const rows = [...document.querySelectorAll<HTMLElement>("[data-testid=pf-connection]")];
        const match = (row: HTMLElement) => row.dataset.provider === p && row.dataset.status === s;
        return rows.length === n && rows.some(match);
      },
      [provider, status, count] as const,
    );
  /** Wait until the portfolio shown covers `accounts` accounts, with positions, and nothing
   * is syncing. */
  const waitPortfolio = (accounts: number) =>
    page.waitForFunction(
      (want) => {
        const panel = document.querySelector<HTMLElement>("[data-testid=portfolio-panel]");
        const syncing = document.querySelector("[data-testid=pf-connection][data-status=SYNCING]");
        return (
          panel?.dataset.loaded === "true" &&
          Number(panel.dataset.accounts) === want &&
          Number(panel.dataset.positions) > 0 &&
          syncing === null
        );
      },
      accounts,
    );
  /** Tap a button that leaves for the broker; resolves once the callback document is loaded
   * and the app has taken the code out of the address bar. Returns the callback URL and the
   * documents the tab loaded on the way. */
  const brokerTrip = async (
    press: () => Promise<void>,
  ): Promise<{ callback: string; documents: string[] }> => {
    const before = documents.length;
    await press();
    await page.waitForURL((url) => url.searchParams.has("code") && url.searchParams.has("state"), {
      waitUntil: "commit",
    });
    const callback = page.url();
    await page.getByTestId("portfolio-panel").waitFor({ state: "visible" });
    return { callback, documents: documents.slice(before) };
  };
  const afterReturn = () =>
    page.evaluate((key) => ({
      url: location.href,
      hash: location.hash,
      handoff: sessionStorage.getItem(key),
      who: document.querySelector("[data-testid=who]")?.textContent ?? "",
    }), HANDOFF_KEY);

  try {
    begin("register");
    await page.goto(args.page);
    await page.getByTestId("email").waitFor();
    await ui.signIn(args.email, args.password, "register");

    begin("the empty portfolio");
    await ui.press("nav-portfolio");
    await page.getByTestId("portfolio-panel").waitFor({ state: "visible" });
    await page.getByTestId("pf-connect-paper").waitFor();
    await page.getByTestId("pf-connect-schwab").waitFor();
    await page.getByTestId("pf-connections-empty").waitFor({ state: "visible" });
    r.connectLabels = await page.locator("[data-testid=pf-connect] button").allTextContents();
    r.emptyTotals = (await portfolioShown(page)).totals;
    await layout("portfolio empty");

    begin("connect the paper broker");
    const startsBefore = calls.StartConnection ?? 0;
    await ui.press("pf-connect-paper");
    await waitStatus(PAPER, "ACTIVE", 1);
    await waitPortfolio(1);
    r.paperCalls = {
      start: (calls.StartConnection ?? 0) - startsBefore,
      complete: calls.CompleteConnection ?? 0,
    };
    r.paperRows = await connectionRows(page);
    r.paper = await portfolioShown(page);
    await layout("portfolio");

    begin("connect Schwab through the stand-in");
    r.schwabTrip = await brokerTrip(() => ui.press("pf-connect-schwab"));
    await waitStatus(SCHWAB, "ACTIVE", 2);
    await waitPortfolio(3);
    r.afterSchwab = await afterReturn();
    r.schwabCalls = { complete: calls.CompleteConnection ?? 0 };
    r.schwabRows = await connectionRows(page);
    r.merged = await portfolioShown(page);
    await layout("portfolio two brokers");

    begin("the stand-in's tokens die; a sync");
    const answer = await args.ask({ event: "kill-schwab-tokens" });
    if (answer !== "done") throw new Error(`the test answered ${answer}`);
    await pressIn(SCHWAB, "pf-sync");
    await waitStatus(SCHWAB, "REVOKED", 2);
    await rowOf(SCHWAB).getByTestId("pf-reauth").waitFor();
    r.reauthRows = await connectionRows(page);
    r.reauthPortfolio = await portfolioShown(page);
    await layout("portfolio access revoked");

    begin("re-authorise: the OAuth dance again");
    const completesBefore = calls.CompleteConnection ?? 0;
    r.reauthTrip = await brokerTrip(() => pressIn(SCHWAB, "pf-reauth"));
    await waitStatus(SCHWAB, "ACTIVE", 2);
    await waitPortfolio(3);
    r.afterReauth = await afterReturn();
    r.reauthCompletes = (calls.CompleteConnection ?? 0) - completesBefore;
    r.reauthorisedRows = await connectionRows(page);
    await page.waitForFunction(
      () =>
        !(document.querySelector("[data-testid=pf-message]")?.textContent ?? "").endsWith(
          "syncing…",
        ),
    );
    r.reauthMessage = await ui.text("pf-message");

    begin("a refused sync says how long to wait");
    const refuse = async (route: Route) => {
      if (route.request().method() !== "POST") await route.continue();
      else await route.fulfill(refusal(new URL(args.page).origin));
    };
    await page.route("**/SyncPortfolio", refuse);
    await pressIn(PAPER, "pf-sync");
    await ui.waitData("pf-message", "retryMs", String(REFUSED_RETRY_MS));
    r.refusedMessage = await ui.text("pf-message");
    r.refusedKind = await ui.data("pf-message", "kind");
    await page.unroute("**/SyncPortfolio", refuse);

    begin("delete the paper connection");
    await pressIn(PAPER, "pf-delete");
    await rowOf(PAPER).getByTestId("pf-delete-confirm").waitFor();
    await layout("portfolio delete confirmation");
    await pressIn(PAPER, "pf-delete-confirm");
    await rowOf(PAPER).waitFor({ state: "detached" });
    await waitPortfolio(2);
    r.deleteMessage = await ui.text("pf-message");
    r.afterDeleteRows = await connectionRows(page);
    r.afterDelete = await portfolioShown(page);

    begin("sign out");
    const secrets = [
      ...(r.afterDelete as { positions: { symbol?: string }[] }).positions.map((p) => p.symbol ?? ""),
      ...(r.schwabRows as ConnectionRow[]).map((row) => row.title),
    ].filter((s) => s !== "");
    await ui.signOut();
    r.afterSignOut = await page.evaluate(
      ([needles, key]) => {
        const q = (id: string) => document.querySelector<HTMLElement>(`[data-testid=${id}]`);
        const count = (selector: string) => document.querySelectorAll(selector).length;
        return {
          connections: count("[data-testid=pf-connection]"),
          positions: count("[data-testid=pf-position]"),
          connectButtons: count("[data-testid=pf-connect] button"),
          marketValue: q("pf-market-value")?.textContent ?? null,
          delta: q("pf-delta")?.textContent ?? null,
          message: q("pf-message")?.textContent ?? null,
          loaded: q("portfolio-panel")?.dataset.loaded ?? null,
          handoff: sessionStorage.getItem(key),
          visibleScreens: [...document.querySelectorAll<HTMLElement>("section.screen")]
            .filter((s) => !s.hidden)
            .map((s) => s.dataset.testid ?? ""),
          leaks: needles.filter((needle) => (document.body.textContent ?? "").includes(needle)),
        };
      },
      [secrets, HANDOFF_KEY] as const,
    );
    await layout("signed out");
    begin("end");
    r.stepMs = stepMs;
    r.calls = calls;
    r.layouts = layouts;
    r.consoleErrors = consoleErrors;
    return r;
  } catch (error) {
    r.documents = documents;
    r.messageAtFailure = await page
      .evaluate(() => {
        const box = document.querySelector<HTMLElement>("[data-testid=pf-message]");
        return { text: box?.textContent ?? "", retryMs: box?.dataset.retryMs ?? "" };
      })
      .catch(() => null);
    throw new Error(`portfolio step "${step}" failed: ${String(error)}; so far: ${JSON.stringify(r)}`);
  } finally {
    await context.close();
  }
}
