// Browser test scenario for the demo app at one size (run by app.ts): the edge from config.json,
// field violations next to their fields, register, watchlist / quotes / chain / alerts / account
// screens with layout checks on each, refused symbol lists that leave the live stream running, a
// chain NOT_FOUND that clears the chain, MFA set-up (QR decoded, codes computed from the secret),
// sign-in with a TOTP code, a wrong code, a recovery code used twice, sign-out clearing every
// screen and closing every stream, and a second user who sees nothing of the first. The Alerts
// screen's own flows are alerts-scenario.ts.
import type { Browser, Page } from "playwright-core";
import { decodeQr } from "./qr-decode.js";
import { measureLayout, type LayoutReport } from "./layout.js";
import { StreamWatch } from "./streams.js";
import { stepAt, totp } from "./totp.js";
import { DESKTOP, PHONE, Ui } from "./ui.js";

/** What the Python test passes in. */
export interface AppScenarioArgs {
  page: string;
  /** The same page served without config.json (its fallback note is checked), if given. */
  barePage?: string;
  phone: boolean;
  emailA: string;
  emailB: string;
  password: string;
  timeoutMs: number;
  screenshots?: string;
}

const STREAM_CLOSE_TIMEOUT_MS = 10_000;

/** A 6-digit code that is none of the codes valid around now (a typo, as far as the server knows). */
function wrongCode(secret: string): string {
  const now = stepAt(Date.now());
  const valid = new Set([-2, -1, 0, 1, 2, 3].map((d) => totp(secret, now + d)));
  for (let n = 0; ; n += 1) {
    const candidate = String((123456 + n * 7919) % 1_000_000).padStart(6, "0");
    if (!valid.has(candidate)) return candidate;
  }
}

/** Runs the scenario in a fresh browser context; returns what the Python test asserts on. */
export async function runAppScenario(
  browser: Browser,
  args: AppScenarioArgs,
): Promise<Record<string, unknown>> {
  const context = await browser.newContext(args.phone ? PHONE : DESKTOP);
  context.setDefaultTimeout(args.timeoutMs);
  const r: Record<string, unknown> = {};
  const layouts: LayoutReport[] = [];
  const consoleErrors: string[] = [];
  let step = "start";
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  const streams = new StreamWatch(page);
  const ui = new Ui(page, args.phone);
  const layout = async (name: string) => {
    layouts.push(await measureLayout(page, name, args.phone ? 44 : 0));
    if (args.screenshots) {
      const file = `${args.screenshots}/${args.phone ? "phone" : "desktop"}-${name.replace(/\W+/g, "-")}.png`;
      await page.screenshot({ path: file, fullPage: true });
    }
  };
  try {
    if (args.barePage) {
      step = "a page server without config.json";
      const bare = await context.newPage();
      await bare.goto(args.barePage);
      await bare.getByTestId("edge-note").waitFor({ state: "visible" });
      r.bareNote = await bare.getByTestId("edge-note").textContent();
      r.bareEdge = await bare.getByTestId("edge").inputValue();
      await bare.close();
    }

    step = "open the app";
    await page.goto(args.page);
    await page.getByTestId("email").waitFor();
    r.edge = await page.getByTestId("edge").inputValue();
    r.edgeNoteHidden = await page.getByTestId("edge-note").isHidden();
    await layout("signed out");

    step = "register with invalid fields";
    await page.getByTestId("email").fill("not-an-email");
    await page.getByTestId("password").fill("short");
    await ui.press("register");
    await ui.waitNonEmpty("email-error");
    await ui.waitNonEmpty("password-error");
    r.emailError = await ui.text("email-error");
    r.passwordError = await ui.text("password-error");
    r.emailInvalid = await page.getByTestId("email").getAttribute("aria-invalid");
    r.generalErrorOnInvalid = await ui.text("auth-error");
    await layout("field errors");

    step = "register the first user";
    await ui.signIn(args.emailA, args.password, "register");
    r.whoA = await ui.text("who");
    r.authHiddenSignedIn = await page.getByTestId("auth-panel").isHidden();
    r.signInHiddenSignedIn = await page.getByTestId("sign-in").isHidden();
    r.registerHiddenSignedIn = await page.getByTestId("register").isHidden();

    step = "watchlists";
    await page.getByTestId("wl-panel").waitFor({ state: "visible" });
    await ui.waitText("wl-name", "My Watchlist");
    await page.getByTestId("wl-add-input").fill("NVDA");
    await ui.press("wl-add");
    await page.locator("[data-testid=wl-item][data-symbol=NVDA]").waitFor();
    await layout("watchlists");

    step = "alerts";
    await ui.press("nav-alerts");
    await page.getByTestId("alerts-panel").waitFor({ state: "visible" });
    await page.waitForFunction(
      () => document.querySelector<HTMLSelectElement>("[data-testid=al-symbol]")?.value === "NVDA",
    );
    r.alertSymbol = await page.getByTestId("al-symbol").inputValue();
    await layout("alerts");

    step = "quotes";
    await ui.press("nav-quotes");
    await page.getByTestId("quotes-panel").waitFor({ state: "visible" });
    await page.waitForFunction(() => {
      const rows = document.querySelectorAll("[data-testid=quotes] tr").length;
      const count = Number(document.querySelector("[data-testid=update-count]")?.textContent);
      return rows > 0 && count > rows;
    });
    r.defaultSymbols = await ui.data("quotes", "symbols");
    r.generationFirst = Number(await ui.data("quotes", "generation"));
    await layout("quotes");

    step = "a symbol list the page refuses";
    let calls = streams.total;
    await page.getByTestId("symbols").fill("AAPL, ??");
    await ui.press("stream");
    await ui.waitNonEmpty("symbols-error");
    r.clientRefusal = await ui.text("symbols-error");
    r.clientRefusalNote = await ui.text("quotes-note");
    await ui.updatesGrow();
    r.callsForClientRefusal = streams.total - calls;
    r.stateAfterClientRefusal = await ui.text("stream-state");
    r.symbolsAfterClientRefusal = await ui.data("quotes", "symbols");
    r.generationAfterClientRefusal = Number(await ui.data("quotes", "generation"));

    step = "a symbol list the server refuses";
    calls = streams.total;
    const shown = r.clientRefusal as string;
    await page.getByTestId("symbols").fill("AAPL, MSFT, SPY, TSLA, NVDA");
    await ui.press("stream");
    await page.waitForFunction(
      (before) => {
        const now = document.querySelector("[data-testid=symbols-error]")?.textContent ?? "";
        return now !== "" && now !== before;
      },
      shown,
    );
    r.serverRefusal = await ui.text("symbols-error");
    await ui.updatesGrow();
    r.callsForServerRefusal = streams.total - calls;
    r.stateAfterServerRefusal = await ui.text("stream-state");
    r.symbolsAfterServerRefusal = await ui.data("quotes", "symbols");
    r.generationAfterServerRefusal = Number(await ui.data("quotes", "generation"));

    step = "switch the stream";
    await page.getByTestId("symbols").fill("nvda, amd");
    await ui.press("stream");
    await ui.waitData("quotes", "symbols", "NVDA,AMD");
    await ui.updatesGrow();
    r.generationAfterSwitch = Number(await ui.data("quotes", "generation"));
    r.rowsAfterSwitch = await page
      .locator("[data-testid=quotes] tr")
      .evaluateAll((rows) => rows.map((row) => (row as HTMLElement).dataset.symbol));
    r.symbolsErrorAfterSwitch = await ui.text("symbols-error");

    step = "chain";
    await ui.press("nav-chain");
    await ui.press("load-chain");
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=chain] tr").length > 0);
    r.chainRows = await page.locator("[data-testid=chain] tr").count();
    await layout("chain");
    await page.getByTestId("underlying").fill("ZZZZ");
    await ui.press("load-chain");
    await ui.waitNonEmpty("underlying-error");
    r.notFoundError = await ui.text("underlying-error");
    r.chainRowsAfterNotFound = await page.locator("[data-testid=chain] tr").count();
    r.chainSummaryAfterNotFound = await ui.text("chain-summary");
    r.expirationsAfterNotFound = await page.getByTestId("expiration").locator("option").count();
    await page.getByTestId("underlying").fill("9ABC");
    await ui.press("load-chain");
    await page.waitForFunction(
      (before) => (document.querySelector("[data-testid=underlying-error]")?.textContent ?? before) !== before,
      r.notFoundError as string,
    );
    r.invalidUnderlyingError = await ui.text("underlying-error");
    await page.getByTestId("underlying").fill("AAPL");
    await ui.press("load-chain");
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=chain] tr").length > 0);
    r.underlyingErrorAfterReload = await ui.text("underlying-error");

    step = "MFA set-up";
    await ui.press("nav-account");
    r.accountEmail = await ui.text("account-email");
    r.mfaStateBefore = await ui.text("mfa-state");
    await ui.press("mfa-setup");
    await page.locator("[data-testid=mfa-qr] svg").waitFor();
    const secret = ((await ui.text("mfa-secret")) ?? "").replace(/\s+/g, "");
    r.secret = secret;
    r.qrText = await decodeQr(page, "[data-testid=mfa-qr] svg");
    r.linkHref = await page.getByTestId("mfa-link").getAttribute("href");
    await layout("account set-up");
    await page.getByTestId("mfa-setup-code").fill(wrongCode(secret));
    await ui.press("mfa-confirm");
    await ui.waitNonEmpty("mfa-setup-code-error");
    r.wrongSetupCodeError = await ui.text("mfa-setup-code-error");
    const confirmedStep = stepAt(Date.now());
    await page.getByTestId("mfa-setup-code").fill(totp(secret, confirmedStep));
    await ui.press("mfa-confirm");
    await page.locator("[data-testid=mfa-recovery-codes] li").first().waitFor();
    const codes = await page
      .locator("[data-testid=mfa-recovery-codes] li")
      .evaluateAll((items) => items.map((item) => item.textContent ?? ""));
    r.recoveryCodes = codes;
    r.mfaStateAfter = await ui.text("mfa-state");
    r.secretAfterConfirm = await ui.text("mfa-secret");
    r.qrAfterConfirm = await page.locator("[data-testid=mfa-qr] *").count();
    await layout("account recovery codes");
    await ui.press("mfa-codes-done");
    r.codesAfterDone = await page.locator("[data-testid=mfa-recovery-codes] li").count();

    step = "sign out";
    await ui.signOut();
    await streams.allClosed(STREAM_CLOSE_TIMEOUT_MS);
    r.openStreamsAfterSignOut = streams.open;
    r.afterSignOut = await snapshot(page, [args.emailA, secret, "NVDA", ...codes]);
    await layout("signed out again");

    step = "sign in with a wrong code";
    await ui.signIn(args.emailA, args.password, "sign-in", true);
    r.mfaPrompt = await ui.text("mfa-prompt");
    await layout("sign-in code step");
    await page.getByTestId("mfa-code").fill("12345");
    await ui.press("mfa-submit");
    await ui.waitNonEmpty("mfa-code-error");
    r.shortCodeError = await ui.text("mfa-code-error");
    await page.getByTestId("mfa-code").fill(wrongCode(secret));
    await ui.press("mfa-submit");
    await page.waitForFunction(
      (before) => {
        const now = document.querySelector("[data-testid=mfa-code-error]")?.textContent ?? "";
        return now !== "" && now !== before;
      },
      r.shortCodeError as string,
    );
    r.wrongCodeError = await ui.text("mfa-code-error");
    r.wrongCodeInvalid = await page.getByTestId("mfa-code").getAttribute("aria-invalid");
    r.stillOnCodeStep = await page.getByTestId("mfa-step").isVisible();

    step = "sign in with a TOTP code";
    // The server took the confirming step's code; the next step's is valid (one step of drift
    // either way is accepted) and has not been used.
    await page.getByTestId("mfa-code").fill(totp(secret, confirmedStep + 1));
    await ui.press("mfa-submit");
    await ui.waitText("who", args.emailA);
    r.whoAfterTotp = await ui.text("who");
    await ui.press("nav-account");
    r.mfaStateSignedIn = await ui.text("mfa-state");
    await ui.signOut();

    step = "sign in with a recovery code";
    await ui.signIn(args.emailA, args.password, "sign-in", true);
    await ui.press("mfa-use-recovery");
    await page.getByTestId("mfa-code").fill(codes[0]);
    await ui.press("mfa-submit");
    await ui.waitText("who", args.emailA);
    r.whoAfterRecovery = await ui.text("who");
    await ui.signOut();

    step = "the same recovery code again";
    await ui.signIn(args.emailA, args.password, "sign-in", true);
    await ui.press("mfa-use-recovery");
    await page.getByTestId("mfa-code").fill(codes[0]);
    await ui.press("mfa-submit");
    await ui.waitNonEmpty("mfa-code-error");
    r.reusedRecoveryError = await ui.text("mfa-code-error");
    r.whoAfterReuse = await ui.text("who");
    await ui.press("mfa-cancel");
    await page.getByTestId("sign-in").waitFor({ state: "visible" });

    step = "a second user";
    await ui.signIn(args.emailB, args.password, "register");
    r.whoB = await ui.text("who");
    await ui.waitText("wl-name", "My Watchlist");
    await page.getByTestId("wl-empty").waitFor({ state: "visible" });
    r.bWatchlist = await page.getByTestId("wl-item").count();
    await ui.press("nav-quotes");
    await page.waitForFunction(
      () => (document.querySelector<HTMLElement>("[data-testid=quotes]")?.dataset.symbols ?? "") !== "",
    );
    r.bQuoteSymbols = await ui.data("quotes", "symbols");
    await ui.press("nav-chain");
    r.bChainRows = await page.locator("[data-testid=chain] tr").count();
    r.bUnderlying = await page.getByTestId("underlying").inputValue();
    await ui.press("nav-account");
    r.bAccountEmail = await ui.text("account-email");
    r.bMfaState = await ui.text("mfa-state");
    r.bSeesOfA = await snapshot(page, [args.emailA, secret, "NVDA", ...codes]);
    await ui.signOut();
    await streams.allClosed(STREAM_CLOSE_TIMEOUT_MS);
    r.openStreamsAtEnd = streams.open;
    r.layouts = layouts;
    r.consoleErrors = consoleErrors;
    return r;
  } catch (error) {
    r.layouts = layouts;
    throw new Error(`app step "${step}" failed: ${String(error)}; so far: ${JSON.stringify(r)}`);
  } finally {
    await context.close();
  }
}

/** Everything a signed-out page (or another user) could still show of earlier data. */
async function snapshot(page: Page, secrets: string[]): Promise<Record<string, unknown>> {
  return page.evaluate((needles) => {
    const q = (id: string) => document.querySelector<HTMLElement>(`[data-testid=${id}]`);
    const text = (id: string) => q(id)?.textContent ?? null;
    const count = (selector: string) => document.querySelectorAll(selector).length;
    const inputs = [...document.querySelectorAll<HTMLInputElement>("input")].map((i) => i.value);
    // textContent includes hidden screens: what a screen would show the moment it is opened.
    const everything = `${document.body.textContent ?? ""}\n${inputs.join("\n")}`;
    return {
      who: text("who"),
      quotesRows: count("[data-testid=quotes] tr"),
      updateCount: text("update-count"),
      quotesSymbols: q("quotes")?.dataset.symbols ?? null,
      streamState: text("stream-state"),
      symbolsError: text("symbols-error"),
      chainRows: count("[data-testid=chain] tr"),
      chainSummary: text("chain-summary"),
      underlyingError: text("underlying-error"),
      expirations: count("[data-testid=expiration] option"),
      watchlistItems: count("[data-testid=wl-item]"),
      watchlistName: text("wl-name"),
      watchlistLists: count("[data-testid=wl-picker] option"),
      accountEmail: text("account-email"),
      mfaSecret: text("mfa-secret"),
      mfaQr: count("[data-testid=mfa-qr] *"),
      recoveryCodes: count("[data-testid=mfa-recovery-codes] li"),
      password: (q("password") as HTMLInputElement | null)?.value ?? null,
      alertSymbols: count("[data-testid=al-symbol] option"),
      alertItems: count("[data-testid=al-item]"),
      alertEvents: count("[data-testid=al-event]"),
      alertFeedState: text("al-feed-state"),
      alertStorage: Object.keys(sessionStorage).filter((key) => key.startsWith("optix.alerts.")),
      visibleScreens: [...document.querySelectorAll<HTMLElement>("section.screen")]
        .filter((s) => !s.hidden)
        .map((s) => s.dataset.testid),
      navHidden: q("nav")?.hidden ?? null,
      leaks: needles.filter((needle) => needle && everything.includes(needle)),
    };
  }, secrets);
}
