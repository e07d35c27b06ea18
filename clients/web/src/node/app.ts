// Test driver: runs the demo app scenario (app-scenario.ts), or with `--scenario alerts` the
// Alerts screen's (alerts-scenario.ts), or with `--scenario portfolio` the Portfolio screen's
// (portfolio-scenario.ts, which asks the Python test for things on stdout and reads its answers
// on stdin), in headless Chromium at phone (390x844, touch) or desktop (1280x800) size and
// prints one JSON line with what it saw.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import { runAlertsScenario } from "./alerts-scenario.js";
import { runAppScenario } from "./app-scenario.js";
import { runPortfolioScenario } from "./portfolio-scenario.js";

function parseArgs(argv: string[]): Record<string, string> {
  const args: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, "")] = argv[i + 1] ?? "";
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
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
  try {
    const common = {
      page: args.page,
      phone: args.size === "phone",
      password: args.password,
      timeoutMs: Number(args.timeout ?? "20000"),
      screenshots: args.screenshots || undefined,
    };
    let result: Record<string, unknown>;
    if (args.scenario === "alerts") {
      result = await runAlertsScenario(browser, { ...common, edge: args.edge, email: args["email-a"] });
    } else if (args.scenario === "portfolio") {
      const input = createInterface({ input: process.stdin });
      const lines = input[Symbol.asyncIterator]();
      try {
        result = await runPortfolioScenario(browser, {
          ...common,
          email: args["email-a"],
          ask: async (request) => {
            process.stdout.write(`${JSON.stringify(request)}\n`);
            const line = String((await lines.next()).value ?? "").trim();
            const answer = (JSON.parse(line || "{}") as { answer?: unknown }).answer;
            return typeof answer === "string" ? answer : line;
          },
        });
      } finally {
        input.close(); // an open stdin would keep the driver alive after a failure
        process.stdin.destroy();
      }
    } else {
      result = await runAppScenario(browser, {
        ...common,
        barePage: args["bare-page"] || undefined,
        emailA: args["email-a"],
        emailB: args["email-b"],
      });
    }
    process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
  } finally {
    await browser.close();
  }
}

main().catch((error: unknown) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(error) })}\n`);
  process.exitCode = 1;
});
