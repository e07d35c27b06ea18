// What the browser scenarios do with the page: tap on a phone, click on a desktop, read test ids,
// and wait on the page's own state (never on time).
import type { BrowserContextOptions, Page } from "playwright-core";

export const PHONE: BrowserContextOptions = {
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
};
export const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };

/** Taps on a phone, clicks on a desktop; waits on the page's own state, never on time. */
export class Ui {
  constructor(
    private readonly page: Page,
    private readonly touch: boolean,
  ) {}

  async press(testid: string): Promise<void> {
    const target = this.page.getByTestId(testid);
    if (this.touch) await target.tap();
    else await target.click();
  }

  text(testid: string): Promise<string | null> {
    return this.page.getByTestId(testid).textContent();
  }

  data(testid: string, key: string): Promise<string | null> {
    return this.page.getByTestId(testid).getAttribute(`data-${key}`);
  }

  async waitText(testid: string, want: string): Promise<void> {
    await this.page.waitForFunction(
      ([id, text]) => document.querySelector(`[data-testid=${id}]`)?.textContent === text,
      [testid, want] as const,
    );
  }

  async waitData(testid: string, key: string, want: string): Promise<void> {
    await this.page.waitForFunction(
      ([id, k, v]) => document.querySelector<HTMLElement>(`[data-testid=${id}]`)?.dataset[k] === v,
      [testid, key, want] as const,
    );
  }

  async waitNonEmpty(testid: string): Promise<void> {
    await this.page.waitForFunction(
      (id) => (document.querySelector(`[data-testid=${id}]`)?.textContent ?? "") !== "",
      testid,
    );
  }

  /** The live stream keeps delivering: more quotes rendered than now, and still live. */
  async updatesGrow(): Promise<void> {
    const now = Number(await this.text("update-count"));
    await this.page.waitForFunction(
      (n) =>
        Number(document.querySelector("[data-testid=update-count]")?.textContent) > n &&
        document.querySelector("[data-testid=stream-state]")?.textContent === "live",
      now,
    );
  }

  /** Sign in (or register); `mfa` expects the code step instead of the signed-in app. */
  async signIn(email: string, password: string, button: string, mfa = false): Promise<void> {
    await this.page.getByTestId("email").fill(email);
    await this.page.getByTestId("password").fill(password);
    await this.press(button);
    await this.page.waitForFunction(
      (withCode) => {
        const q = (id: string) => document.querySelector<HTMLElement>(`[data-testid=${id}]`);
        const done = withCode ? q("mfa-step")?.hidden === false : (q("who")?.textContent ?? "") !== "";
        const errors = ["auth-error", "email-error", "password-error"];
        return done || errors.some((id) => (q(id)?.textContent ?? "") !== "");
      },
      mfa,
    );
    const errors = await Promise.all(["auth-error", "email-error", "password-error"].map((id) => this.text(id)));
    if (errors.some(Boolean)) throw new Error(`sign-in of ${email} failed: ${errors.join(" ")}`);
  }

  async signOut(): Promise<void> {
    await this.press("nav-account");
    await this.press("sign-out");
    await this.page.getByTestId("auth-panel").waitFor({ state: "visible" });
  }
}
