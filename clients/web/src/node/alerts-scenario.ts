// Browser test scenario for the Alerts screen at one size (run by app.ts with `--scenario alerts`):
// a symbol added to the watchlist, "Set alert" on its row opens the Alerts screen pre-filled,
// field violations next to their fields, an alert that fires at once (its level below the price)
// shown COMPLETED with one firing and its event in the feed; then the feed is cut off (the
// browser offline), two alerts fire meanwhile (made by a Node grpc-web client of the same user),
// the first reconnect is refused UNAVAILABLE (a route stands in for the edge), the next one
// replays exactly the two missed events; a live one follows. Enable / disable / delete with a
// stale etag, a reload that resumes from sessionStorage, sign-out that clears it all.
import { fromBinary } from "@bufbuild/protobuf";
import type { Browser, Page, Route } from "playwright-core";
import type { OptixClients } from "../client.js";
import { StreamAlertEventsRequestSchema } from "../gen/optix/alert/v1/alert_service_pb.js";
import { measureLayout, type LayoutReport } from "./layout.js";
import { StreamWatch } from "./streams.js";
import { createNodeClients } from "./transport.js";
import { DESKTOP, PHONE, Ui } from "./ui.js";

/** What the Python test passes in. */
export interface AlertsScenarioArgs {
  page: string;
  /** The edge, for the second (Node) client of the same user. */
  edge: string;
  phone: boolean;
  email: string;
  password: string;
  timeoutMs: number;
  screenshots?: string;
}

const STREAM_CLOSE_TIMEOUT_MS = 10_000;
const FEED = "[data-testid=al-feed] [data-testid=al-event]";
const LONG_NOTE = "n".repeat(501);

/** What the feed shows, newest first. */
interface FeedItem {
  id: string;
  arrival: string;
  symbol: string;
  message: string;
}

/** One alert row. */
interface AlertRow {
  name: string;
  symbol: string;
  state: string;
  fires: string;
  title: string;
}

const feedItems = (page: Page): Promise<FeedItem[]> =>
  page.locator(FEED).evaluateAll((items) =>
    items.map((item) => {
      const li = item as HTMLElement;
      return {
        id: li.dataset.eventId ?? "",
        arrival: li.dataset.arrival ?? "",
        symbol: li.querySelector(".al-event-symbol")?.textContent ?? "",
        message: li.querySelector("[data-testid=al-event-message]")?.textContent ?? "",
      };
    }),
  );

const alertRows = (page: Page): Promise<AlertRow[]> =>
  page.locator("[data-testid=al-list] [data-testid=al-item]").evaluateAll((items) =>
    items.map((item) => {
      const li = item as HTMLElement;
      return {
        name: li.dataset.name ?? "",
        symbol: li.dataset.symbol ?? "",
        state: li.dataset.state ?? "",
        fires: li.dataset.fireCount ?? "",
        title: li.querySelector("[data-testid=al-title]")?.textContent ?? "",
      };
    }),
  );

const waitFeedCount = (page: Page, n: number) =>
  page.waitForFunction(
    ([selector, want]) => document.querySelectorAll(selector).length === want,
    [FEED, n] as const,
  );

/** The resume points the page keeps in sessionStorage. */
const stored = (page: Page): Promise<Record<string, string>> =>
  page.evaluate(() =>
    Object.fromEntries(
      Object.keys(sessionStorage)
        .filter((key) => key.startsWith("optix.alerts."))
        .map((key) => [key, sessionStorage.getItem(key) ?? ""]),
    ),
  );

/** Reads `count` events after `after` from the user's stream (the Node client's own call). */
async function waitForEvents(
  clients: OptixClients,
  after: bigint,
  count: number,
  timeoutMs: number,
): Promise<bigint[]> {
  const ids: bigint[] = [];
  const abort = new AbortController();
  // A timer of our own (connect's `timeoutMs` timer outlives an aborted call, keeping the
  // driver alive until it fires).
  const timer = setTimeout(
    () => abort.abort(new Error(`no ${count} events in ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    const stream = clients.alert.streamAlertEvents(
      { parent: "users/me/alerts/-", afterEventId: after },
      { signal: abort.signal },
    );
    for await (const message of stream) {
      if (message.payload.case !== "events") continue;
      ids.push(...message.payload.value.events.map((event) => event.eventId));
      if (ids.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    abort.abort(); // the call ends here, not when the server next writes
  }
  if (ids.length < count) {
    throw new Error(`the stream ended after ${ids.length} of ${count} events`);
  }
  return ids;
}

/** Runs the scenario in a fresh browser context; returns what the Python test asserts on. */
export async function runAlertsScenario(
  browser: Browser,
  args: AlertsScenarioArgs,
): Promise<Record<string, unknown>> {
  const context = await browser.newContext(args.phone ? PHONE : DESKTOP);
  context.setDefaultTimeout(args.timeoutMs);
  const r: Record<string, unknown> = {};
  const layouts: LayoutReport[] = [];
  const consoleErrors: string[] = [];
  let step = "start";
  // How long each step took (diagnostics in the output; nothing is asserted on time).
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
  const streams = new StreamWatch(page, "StreamAlertEvents");
  // Every StreamAlertEvents call the page makes, with the after_event_id it asked for.
  const opened: (string | null)[] = [];
  let creates = 0;
  page.on("request", (request) => {
    if (request.url().endsWith("/CreateAlert")) creates += 1;
    if (!request.url().endsWith("/StreamAlertEvents")) return;
    const body = request.postDataBuffer();
    if (body === null || body.length < 5) {
      opened.push("?");
      return;
    }
    // One grpc-web frame: a flag byte, a 4-byte length, the message.
    const frame = body.subarray(5, 5 + body.readUInt32BE(1));
    const message = fromBinary(StreamAlertEventsRequestSchema, frame);
    opened.push(message.afterEventId === undefined ? null : message.afterEventId.toString());
  });
  const ui = new Ui(page, args.phone);
  const layout = async (name: string) => {
    layouts.push(await measureLayout(page, name, args.phone ? 44 : 0));
    if (args.screenshots) {
      const size = args.phone ? "phone" : "desktop";
      const file = `${args.screenshots}/${size}-alerts-${name.replace(/\W+/g, "-")}.png`;
      await page.screenshot({ path: file, fullPage: true });
    }
  };
  const node = createNodeClients(args.edge);
  const feedState = (want: string) => ui.waitText("al-feed-state", want);
  /** Fill the form and set the alert; resolves once the new row is in the list. */
  const setAlert = async (kind: string, level: string, note: string): Promise<string> => {
    const before = new Set((await alertRows(page)).map((row) => row.name));
    await page.getByTestId("al-kind").selectOption(kind);
    await page.getByTestId("al-level").fill(level);
    await page.getByTestId("al-note").fill(note);
    await ui.press("al-create");
    await page.waitForFunction(
      (known) =>
        [...document.querySelectorAll<HTMLElement>("[data-testid=al-item]")].some(
          (row) => !known.includes(row.dataset.name ?? ""),
        ),
      [...before],
    );
    const row = (await alertRows(page)).find((a) => !before.has(a.name));
    if (row === undefined) throw new Error("no new alert row");
    return row.name;
  };
  const rowOf = (name: string) => page.locator(`[data-testid=al-item][data-name="${name}"]`);
  const pressIn = async (name: string, testid: string) => {
    const target = rowOf(name).getByTestId(testid);
    if (args.phone) await target.tap();
    else await target.click();
  };
  const waitRow = (name: string, state: string, fires: string) =>
    page.waitForFunction(
      ([n, s, f]) => {
        const row = [...document.querySelectorAll<HTMLElement>("[data-testid=al-item]")].find(
          (li) => li.dataset.name === n,
        );
        return row?.dataset.state === s && row.dataset.fireCount === f;
      },
      [name, state, fires] as const,
    );
  /** The price the form knows and the level it suggested from it (read together: a fresher
   * quote may replace both at any moment). */
  const prefilled = async (): Promise<{ last: number; level: string; hint: string }> => {
    await page.waitForFunction(
      () =>
        (document.querySelector<HTMLElement>("[data-testid=al-level]")?.dataset.last ?? "") !== "",
    );
    return page.evaluate(() => {
      const level = document.querySelector<HTMLInputElement>("[data-testid=al-level]");
      return {
        last: Number(level?.dataset.last),
        level: level?.value ?? "",
        hint: document.querySelector("[data-testid=al-level-hint]")?.textContent ?? "",
      };
    });
  };

  try {
    begin("register");
    await page.goto(args.page);
    await page.getByTestId("email").waitFor();
    await ui.signIn(args.email, args.password, "register");

    begin("watch a symbol");
    await ui.waitText("wl-name", "My Watchlist");
    await page.getByTestId("wl-add-input").fill("NVDA");
    await ui.press("wl-add");
    const row = page.locator("[data-testid=wl-item][data-symbol=NVDA]");
    await page.waitForFunction(() => {
      const last = document.querySelector(
        "[data-testid=wl-item][data-symbol=NVDA] [data-testid=wl-last]",
      )?.textContent;
      return last !== undefined && last !== "—";
    });
    r.watchedPrice = Number(await row.getByTestId("wl-last").textContent());
    await layout("watchlists");

    begin("set alert from the watchlist row");
    const setFromRow = row.getByTestId("wl-alert");
    r.rowAlertLabel = await setFromRow.getAttribute("aria-label");
    if (args.phone) await setFromRow.tap();
    else await setFromRow.click();
    await page.getByTestId("alerts-panel").waitFor({ state: "visible" });
    r.hash = await page.evaluate(() => location.hash);
    r.pickedSymbol = await page.getByTestId("al-symbol").inputValue();
    const { last, level, hint } = await prefilled();
    r.prefilledLast = last;
    r.prefilledLevel = level;
    r.levelHint = hint;
    r.symbolOptions = await page
      .locator("[data-testid=al-symbol] option")
      .evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value));
    r.kindDefault = await page.getByTestId("al-kind").inputValue();
    r.directionHiddenForAbove = await page.getByTestId("al-direction").isHidden();
    await page.getByTestId("al-kind").selectOption("crossing");
    r.directionVisibleForCrossing = await page.getByTestId("al-direction").isVisible();
    r.crossingDirection = await page.getByTestId("al-direction").inputValue();
    await page.getByTestId("al-kind").selectOption("above");

    begin("field violations");
    await page.getByTestId("al-level").fill("abc");
    await ui.press("al-create");
    await ui.waitNonEmpty("al-level-error");
    r.clientLevelError = await ui.text("al-level-error");
    r.createCallsForClientError = creates;
    await page.getByTestId("al-level").fill("0");
    await page.getByTestId("al-note").fill(LONG_NOTE);
    await ui.press("al-create");
    await page.waitForFunction(
      (before) => {
        const now = document.querySelector("[data-testid=al-level-error]")?.textContent ?? "";
        return now !== "" && now !== before;
      },
      r.clientLevelError as string,
    );
    await ui.waitNonEmpty("al-note-error");
    r.levelError = await ui.text("al-level-error");
    r.noteError = await ui.text("al-note-error");
    r.formErrorOnInvalid = await ui.text("al-form-error");
    r.levelInvalid = await page.getByTestId("al-level").getAttribute("aria-invalid");
    r.createCallsForServerError = creates;
    r.alertsAfterInvalid = (await alertRows(page)).length;
    await layout("alerts field errors");

    begin("the feed is live");
    await feedState("live");
    r.feedEmptyShown = await page.getByTestId("al-feed-empty").isVisible();

    begin("an alert that fires");
    const firstNote = "first alert from the watchlist";
    const first = await setAlert("above", (last * 0.5).toFixed(2), firstNote);
    r.levelErrorAfterCreate = await ui.text("al-level-error");
    await waitRow(first, "COMPLETED", "1");
    await waitFeedCount(page, 1);
    r.firstRow = (await alertRows(page)).find((a) => a.name === first);
    r.firstFires = await rowOf(first).getByTestId("al-fires").textContent();
    const [firstEvent] = await feedItems(page);
    r.firstEvent = firstEvent;
    r.lastIdAfterFirst = await ui.data("al-feed", "last-event-id");
    r.storedAfterFirst = await stored(page);
    r.opensBeforeDisconnect = [...opened];
    await layout("alerts");

    begin("offline");
    await context.setOffline(true);
    await feedState("offline");
    await streams.allClosed(STREAM_CLOSE_TIMEOUT_MS);
    r.openStreamsOffline = streams.open;
    const opensBefore = opened.length;

    begin("two alerts fire while the page is offline");
    await node.signIn(args.email, args.password);
    const nvda = (await node.marketdata.getQuote({ symbol: "NVDA" })).quote?.last ?? last;
    const spy = (await node.marketdata.getQuote({ symbol: "SPY" })).quote?.last ?? 1;
    const missedWanted = waitForEvents(node, BigInt(firstEvent.id), 2, args.timeoutMs);
    await node.alert.createAlert({
      parent: "users/me",
      alert: {
        symbol: "NVDA",
        note: "missed one",
        condition: { kind: { case: "priceBelow", value: { price: Math.ceil(nvda * 2) } } },
      },
    });
    await node.alert.createAlert({
      parent: "users/me",
      alert: {
        symbol: "SPY",
        note: "missed two",
        condition: { kind: { case: "priceAbove", value: { price: Math.floor(spy / 2) } } },
      },
    });
    r.missedIds = (await missedWanted).map(String);
    r.feedWhileOffline = (await feedItems(page)).length;

    begin("back online, the edge refuses the first reconnect");
    let refused = 0;
    let firstRefusal: () => void = () => undefined;
    const refusedOnce = new Promise<void>((resolve) => {
      firstRefusal = resolve;
    });
    const origin = new URL(args.page).origin;
    const refuse = async (route: Route) => {
      if (route.request().method() !== "POST") {
        await route.continue();
        return;
      }
      refused += 1;
      await route.fulfill({
        status: 200,
        headers: {
          "access-control-allow-origin": origin,
          "access-control-expose-headers": "grpc-status, grpc-message",
          "content-type": "application/grpc-web+proto",
          "grpc-status": "14",
          "grpc-message": "edge unavailable (test)",
        },
        body: "",
      });
      firstRefusal();
    };
    await page.route("**/StreamAlertEvents", refuse);
    await context.setOffline(false);
    await refusedOnce;
    await feedState("reconnecting");
    r.refusedDetail = await ui.data("al-feed-state", "detail");
    await page.unroute("**/StreamAlertEvents", refuse);
    r.refusedCalls = refused;

    begin("the missed events, once");
    await waitFeedCount(page, 3);
    await feedState("live");
    r.afterReconnect = await feedItems(page);
    r.opensAfterReconnect = opened.slice(opensBefore);
    r.feedNote = await ui.text("al-feed-note");
    r.lastIdAfterReconnect = await ui.data("al-feed", "last-event-id");

    begin("then a live one");
    const live = await setAlert("below", (last * 2).toFixed(2), "live again");
    await waitRow(live, "COMPLETED", "1");
    await waitFeedCount(page, 4);
    r.afterLive = await feedItems(page);
    await page.waitForFunction(
      () =>
        document.querySelectorAll("[data-testid=al-item]").length === 4 &&
        [...document.querySelectorAll<HTMLElement>("[data-testid=al-item]")].every(
          (li) => li.dataset.state === "COMPLETED" && li.dataset.fireCount === "1",
        ),
    );
    r.rowsAfterLive = await alertRows(page);
    r.duplicates = await ui.data("al-feed", "duplicates");
    r.opensTotal = opened.length;

    begin("disable, a stale enable, delete");
    const idle = await setAlert("above", (last * 10).toFixed(2), "far away");
    await waitRow(idle, "ACTIVE", "0");
    await pressIn(idle, "al-disable");
    await waitRow(idle, "DISABLED", "0");
    // Enabled elsewhere: the page still shows DISABLED, with the etag from before.
    await node.alert.enableAlert({ name: idle });
    r.etagBeforeStale = await rowOf(idle).getAttribute("data-etag");
    await pressIn(idle, "al-enable");
    await ui.waitNonEmpty("al-message");
    await waitRow(idle, "ACTIVE", "0");
    r.staleMessage = await ui.text("al-message");
    r.etagAfterStale = await rowOf(idle).getAttribute("data-etag");
    await pressIn(idle, "al-delete");
    await rowOf(idle).getByTestId("al-delete-confirm").waitFor();
    await layout("alerts delete confirmation");
    await pressIn(idle, "al-delete-confirm");
    await rowOf(idle).waitFor({ state: "detached" });
    r.deleteMessage = await ui.text("al-message");
    r.rowsAfterDelete = (await alertRows(page)).length;
    r.storedBeforeReload = await stored(page);

    begin("reload: the tab resumes from sessionStorage");
    await page.reload();
    await page.getByTestId("email").waitFor();
    const newest = BigInt((r.afterLive as FeedItem[])[0].id);
    const whileAway = waitForEvents(node, newest, 1, args.timeoutMs);
    await node.alert.createAlert({
      parent: "users/me",
      alert: {
        symbol: "NVDA",
        note: "while reloading",
        condition: { kind: { case: "priceAbove", value: { price: Math.floor(nvda / 2) } } },
      },
    });
    r.awayIds = (await whileAway).map(String);
    r.storedAfterReload = await stored(page);
    const opensBeforeSignIn = opened.length;
    await ui.signIn(args.email, args.password, "sign-in");
    await ui.press("nav-alerts");
    await waitFeedCount(page, 5);
    r.afterReloadFeed = await feedItems(page);
    r.opensAfterReload = opened.slice(opensBeforeSignIn);

    begin("sign out");
    await ui.signOut();
    await streams.allClosed(STREAM_CLOSE_TIMEOUT_MS);
    r.openStreamsAfterSignOut = streams.open;
    r.afterSignOut = await page.evaluate((secrets) => {
      const q = (id: string) => document.querySelector<HTMLElement>(`[data-testid=${id}]`);
      const count = (selector: string) => document.querySelectorAll(selector).length;
      const inputs = [...document.querySelectorAll<HTMLInputElement>("input")].map((i) => i.value);
      const everything = `${document.body.textContent ?? ""}\n${inputs.join("\n")}`;
      return {
        feedItems: count("[data-testid=al-event]"),
        alertItems: count("[data-testid=al-item]"),
        symbolOptions: count("[data-testid=al-symbol] option"),
        feedState: q("al-feed-state")?.textContent ?? null,
        feedNote: q("al-feed-note")?.textContent ?? null,
        lastEventId: q("al-feed")?.dataset.lastEventId ?? null,
        level: (q("al-level") as HTMLInputElement | null)?.value ?? null,
        note: (q("al-note") as HTMLInputElement | null)?.value ?? null,
        message: q("al-message")?.textContent ?? null,
        storage: Object.keys(sessionStorage).filter((key) => key.startsWith("optix.alerts.")),
        leaks: secrets.filter((needle) => everything.includes(needle)),
      };
    }, [firstNote, "missed one", "NVDA"]);
    await layout("signed out");

    begin("sign in again: history only");
    const opensBeforeAgain = opened.length;
    await ui.signIn(args.email, args.password, "sign-in");
    await ui.press("nav-alerts");
    await waitFeedCount(page, 5);
    r.afterSignInAgain = await feedItems(page);
    r.opensAfterSignInAgain = opened.slice(opensBeforeAgain);
    await ui.signOut();
    await streams.allClosed(STREAM_CLOSE_TIMEOUT_MS);
    r.openStreamsAtEnd = streams.open;
    begin("end");
    r.stepMs = stepMs;
    r.layouts = layouts;
    r.consoleErrors = consoleErrors;
    return r;
  } catch (error) {
    r.layouts = layouts;
    r.opened = opened;
    throw new Error(`alerts step "${step}" failed: ${String(error)}; so far: ${JSON.stringify(r)}`);
  } finally {
    await node.signOut().catch(() => undefined);
    await context.close();
  }
}
