// Test driver: drives the demo page in headless Chromium (playwright-core + Debian chromium):
// register or sign in, wait until a streamed quote updates a row on the Quotes screen, load an
// options chain on the Chain screen; or, with `--watchlist 1`, run the watchlist scenario at
// phone width (watchlist-scenario.ts).
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import { runWatchlistScenario } from "./watchlist-scenario.js";

type Args = Record<string, string>;

function parseArgs(argv: string[]): Args {
  const args: Args = {};
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, "")] = argv[i + 1] ?? "";
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const timeout = Number(args.timeout ?? "30000");
  const browser = await chromium.launch({
    executablePath: args.chromium ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
    ],
  });
  const consoleErrors: string[] = [];
  try {
    const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
    const page = await browser.newPage(args.watchlist === "1" ? phone : {});
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.setDefaultTimeout(timeout);
    await page.goto(args.page);
    await page.getByTestId("email").fill(args.email);
    await page.getByTestId("password").fill(args.password);
    await page.getByTestId(args.register === "1" ? "register" : "sign-in").click();
    // Signed in: the header shows the account; errors land next to the fields or under them.
    const errorBoxes = ["auth-error", "email-error", "password-error"];
    await page.waitForFunction(
      (boxes) =>
        (document.querySelector("[data-testid=who]")?.textContent ?? "") !== "" ||
        boxes.some((id) => (document.querySelector(`[data-testid=${id}]`)?.textContent ?? "") !== ""),
      errorBoxes,
    );
    const who = (await page.getByTestId("who").textContent()) ?? "";
    if (who === "") {
      const errors = await Promise.all(errorBoxes.map((id) => page.getByTestId(id).textContent()));
      throw new Error(`sign-in failed: ${errors.filter(Boolean).join("; ")}`);
    }
    if (args.watchlist === "1") {
      const input = createInterface({ input: process.stdin });
      const lines = input[Symbol.asyncIterator]();
      const emit = (record: Record<string, unknown>) =>
        process.stdout.write(`${JSON.stringify(record)}\n`);
      try {
        const watchlist = await runWatchlistScenario(page, {
          emit,
          nextLine: async () => String((await lines.next()).value ?? ""),
          screenshot: args.screenshot,
        });
        emit({ ok: true, who, ...watchlist, consoleErrors });
      } finally {
        input.close(); // an open stdin would keep the driver alive after a failure
        process.stdin.destroy();
      }
      return;
    }
    // A quote *update*: more rendered quotes than rows, so some row was rendered twice.
    await page.getByTestId("nav-quotes").click();
    await page.waitForFunction(() => {
      const rows = document.querySelectorAll("[data-testid=quotes] tr").length;
      const updates = Number(document.querySelector("[data-testid=update-count]")?.textContent ?? 0);
      return rows > 0 && updates > rows;
    });
    const rows = await page.locator("[data-testid=quotes] tr").count();
    const updates = Number(await page.getByTestId("update-count").textContent());
    let chainRows = -1;
    const state = await page.getByTestId("stream-state").textContent();
    if (args.chain === "1") {
      await page.getByTestId("nav-chain").click();
      await page.getByTestId("load-chain").click();
      await page.waitForFunction(
        () => document.querySelectorAll("[data-testid=chain] tr").length > 0,
      );
      chainRows = await page.locator("[data-testid=chain] tr").count();
    }
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    process.stdout.write(
      `${JSON.stringify({ ok: true, who, rows, updates, chainRows, state, consoleErrors })}\n`,
    );
  } finally {
    await browser.close();
  }
}

main().catch((error: unknown) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(error) })}\n`);
  process.exitCode = 1;
});
