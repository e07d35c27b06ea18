// Browser test scenario for the watchlist home screen (run by browser.ts with `--watchlist 1`):
// default list, add symbols and see streamed quotes, reorder (buttons and one drag), a stale-etag
// edit (the Python test changes the list through the SDK in between), create / rename / delete a
// list, phone layout checks, sign out.
import type { Page } from "playwright-core";

/** How the scenario talks to the test that runs it (JSON lines on stdout, a line back on stdin). */
export interface ScenarioHooks {
  emit(record: Record<string, unknown>): void;
  nextLine(): Promise<string>;
  /** Where to save a screenshot of the screen (taken before signing out). */
  screenshot?: string;
}

/** The text the issue asks for (the page has its own copy: this checks it, not reuses it). */
const STALE_MESSAGE = "This list changed elsewhere — reloaded";

const symbolsInPage = (page: Page): Promise<string[]> =>
  page
    .getByTestId("wl-item")
    .evaluateAll((rows) => rows.map((row) => (row as HTMLElement).dataset.symbol ?? ""));

async function waitForOrder(page: Page, expected: string[], timeout?: number): Promise<void> {
  await page.waitForFunction(
    (want) =>
      JSON.stringify(
        [...document.querySelectorAll("[data-testid=wl-item]")].map(
          (row) => (row as HTMLElement).dataset.symbol,
        ),
      ) === JSON.stringify(want),
    expected,
    { timeout },
  );
}

/** Waits until the row shows a price delivered by the stream; returns it. */
async function waitForStreamedPrice(page: Page, symbol: string): Promise<string> {
  await page.waitForFunction((s) => {
    const row = document.querySelector<HTMLElement>(`[data-testid=wl-item][data-symbol="${s}"]`);
    const last = row?.querySelector("[data-testid=wl-last]")?.textContent ?? "";
    return row !== null && Number(row.dataset.updates ?? "0") > 0 && /^\d+\.\d\d$/.test(last);
  }, symbol);
  return (await row(page, symbol).getByTestId("wl-last").textContent()) ?? "";
}

/** Waits until the one watchlist stream follows exactly `symbols` (sorted) and is live. */
async function waitForStream(page: Page, symbols: string[]): Promise<number> {
  const key = [...symbols].sort().join(",");
  await page.waitForFunction((want) => {
    const badge = document.querySelector<HTMLElement>("[data-testid=wl-stream-state]");
    const state = badge?.textContent ?? "";
    return badge?.dataset.symbols === want && (want === "" ? state === "idle" : state === "live");
  }, key);
  return Number(await page.getByTestId("wl-stream-state").getAttribute("data-generation"));
}

async function waitForText(page: Page, testid: string, text: string): Promise<void> {
  await page.waitForFunction(
    ([id, want]) => document.querySelector(`[data-testid=${id}]`)?.textContent === want,
    [testid, text] as const,
  );
}

const row = (page: Page, symbol: string) =>
  page.locator(`[data-testid=wl-item][data-symbol="${symbol}"]`);

async function addSymbol(page: Page, symbol: string): Promise<void> {
  await page.getByTestId("wl-add-input").fill(symbol);
  await page.getByTestId("wl-add").click();
}

async function pickerLabels(page: Page): Promise<string[]> {
  return page
    .getByTestId("wl-picker")
    .locator("option")
    .evaluateAll((options) => options.map((o) => (o as HTMLElement).dataset.displayName ?? ""));
}

/** Sideways overflow and the smallest touch target in the watchlist panel (visible controls). */
async function phoneLayout(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => {
    const doc = document.documentElement;
    const controls = [
      ...document.querySelectorAll<HTMLElement>(
        "[data-testid=wl-panel] button, [data-testid=wl-panel] input, [data-testid=wl-panel] select",
      ),
    ].filter((c) => c.offsetParent !== null);
    const heights = controls.map((c) => c.getBoundingClientRect().height);
    const icons = [...document.querySelectorAll<HTMLElement>("[data-testid=wl-panel] .icon")];
    const widths = icons.map((c) => c.getBoundingClientRect().width);
    return {
      viewportWidth: window.innerWidth,
      scrollWidth: doc.scrollWidth,
      clientWidth: doc.clientWidth,
      controls: controls.length,
      minControlHeight: Math.min(...heights),
      minIconWidth: Math.min(...widths),
    };
  });
}

/** Runs the scenario on a signed-in page; returns what the Python test asserts on. */
export async function runWatchlistScenario(
  page: Page,
  hooks: ScenarioHooks,
): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  let step = "default list";
  try {
    // The home screen: the default list, created by the server on first use, empty.
    await page.getByTestId("wl-panel").waitFor({ state: "visible" });
    await waitForText(page, "wl-name", "My Watchlist");
    await page.getByTestId("wl-empty").waitFor({ state: "visible" });
    result.initialLists = await pickerLabels(page);
    result.defaultBadge = await page.getByTestId("wl-default-badge").isVisible();
    result.defaultDeleteDisabled = await page.getByTestId("wl-delete").isDisabled();
    result.defaultDeleteNote = await page.getByTestId("wl-delete-note").textContent();

    step = "add AAPL";
    await addSymbol(page, "aapl");
    await waitForOrder(page, ["AAPL"]);
    result.aaplPrice = await waitForStreamedPrice(page, "AAPL");
    result.generationAapl = await waitForStream(page, ["AAPL"]);

    step = "add an invalid symbol";
    await addSymbol(page, "??");
    await page.waitForFunction(
      () => (document.querySelector("[data-testid=wl-add-error]")?.textContent ?? "") !== "",
    );
    result.invalidError = await page.getByTestId("wl-add-error").textContent();
    result.afterInvalid = await symbolsInPage(page);

    step = "add MSFT";
    await addSymbol(page, "MSFT");
    await waitForOrder(page, ["AAPL", "MSFT"]);
    result.msftPrice = await waitForStreamedPrice(page, "MSFT");
    result.generationBoth = await waitForStream(page, ["AAPL", "MSFT"]);
    result.addErrorAfterValid = await page.getByTestId("wl-add-error").textContent();

    step = "move MSFT up (button)";
    await row(page, "MSFT").getByTestId("wl-up").click();
    await waitForOrder(page, ["MSFT", "AAPL"]);
    result.afterUp = await symbolsInPage(page);
    // A reorder keeps the same symbols: the stream is not restarted.
    result.generationAfterMove = await waitForStream(page, ["AAPL", "MSFT"]);

    step = "drag MSFT below AAPL";
    // HTML5 drag and drop: drop MSFT's handle on AAPL's row -> MSFT takes index 1.
    await row(page, "MSFT").locator(".wl-handle").dragTo(row(page, "AAPL"));
    try {
      await waitForOrder(page, ["AAPL", "MSFT"], 5_000);
      result.dragWorked = true;
      step = "move AAPL down (button)";
      await row(page, "AAPL").getByTestId("wl-down").click();
      await waitForOrder(page, ["MSFT", "AAPL"]);
    } catch {
      result.dragWorked = false;
    }
    result.afterReorder = await symbolsInPage(page);

    step = "stale etag";
    const panel = page.getByTestId("wl-panel");
    hooks.emit({
      event: "stale-ready",
      name: await panel.getAttribute("data-name"),
      etag: await panel.getAttribute("data-etag"),
    });
    await hooks.nextLine(); // the test has changed the list behind the page's back
    await row(page, "AAPL").getByTestId("wl-remove").click();
    await waitForText(page, "wl-message", STALE_MESSAGE);
    result.staleMessage = await page.getByTestId("wl-message").textContent();
    // Reloaded: the other client's symbol is shown, the page's edit was not applied.
    await page.waitForFunction(
      () => document.querySelector("[data-testid=wl-item][data-symbol=NVDA]") !== null,
    );
    result.afterStale = await symbolsInPage(page);
    await waitForStream(page, result.afterStale as string[]);

    step = "remove AAPL";
    await row(page, "AAPL").getByTestId("wl-remove").click();
    await page.waitForFunction(
      () => document.querySelector("[data-testid=wl-item][data-symbol=AAPL]") === null,
    );
    result.afterRemove = await symbolsInPage(page);
    result.generationAfterRemove = await waitForStream(page, result.afterRemove as string[]);
    result.messageAfterRemove = await page.getByTestId("wl-message").textContent();

    step = "create a list";
    await page.getByTestId("wl-create-input").fill("Earnings");
    await page.getByTestId("wl-create").click();
    await waitForText(page, "wl-name", "Earnings");
    await page.getByTestId("wl-empty").waitFor({ state: "visible" });
    result.afterCreateLists = await pickerLabels(page);
    result.createdIsDefault = await page.getByTestId("wl-default-badge").isVisible();
    result.createdDeleteEnabled = await page.getByTestId("wl-delete").isEnabled();
    await waitForStream(page, []); // an empty list streams nothing

    step = "rename the list";
    await page.getByTestId("wl-rename-input").fill("Earnings Q3");
    await page.getByTestId("wl-rename").click();
    await waitForText(page, "wl-name", "Earnings Q3");
    result.afterRenameLists = await pickerLabels(page);

    step = "switch lists";
    const picker = page.getByTestId("wl-picker");
    const names = await picker
      .locator("option")
      .evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value));
    await picker.selectOption(names[0]);
    await waitForText(page, "wl-name", "My Watchlist");
    result.afterSwitch = await symbolsInPage(page);
    await waitForStream(page, result.afterSwitch as string[]);
    await picker.selectOption(names[1]);
    await waitForText(page, "wl-name", "Earnings Q3");

    step = "delete the list";
    await page.getByTestId("wl-delete").click();
    await page.getByTestId("wl-delete-confirm").click();
    await waitForText(page, "wl-name", "My Watchlist");
    result.afterDeleteLists = await pickerLabels(page);
    result.afterDelete = await symbolsInPage(page);
    result.deleteMessage = await page.getByTestId("wl-message").textContent();

    step = "phone layout";
    result.layout = await phoneLayout(page);
    if (hooks.screenshot) await page.screenshot({ path: hooks.screenshot, fullPage: true });

    step = "sign out";
    await page.getByTestId("nav-account").tap();
    await page.getByTestId("sign-out").tap();
    await page.getByTestId("wl-panel").waitFor({ state: "hidden" });
    result.afterSignOutRows = await page.getByTestId("wl-item").count();
    result.afterSignOutName = await page.getByTestId("wl-name").textContent();
    return result;
  } catch (error) {
    const message = await page
      .getByTestId("wl-message")
      .textContent({ timeout: 1_000 })
      .catch(() => "");
    throw new Error(
      `watchlist step "${step}" failed: ${String(error)}; wl-message: ${JSON.stringify(message)}; so far: ${JSON.stringify(result)}`,
    );
  }
}
