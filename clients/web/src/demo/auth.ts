// The signed-out screen: sign in or create an account, and the second step (a TOTP or recovery
// code) when Login answers that the account has MFA. Errors land next to the field they name.
import { Code } from "@connectrpc/connect";
import type { OptixClients } from "../client.js";
import { optixError } from "../errors.js";
import type { EdgeChoice } from "./config.js";
import { el, section } from "./dom.js";
import { FieldErrors } from "./fields.js";

/** What the sign-in screen needs from the shell. */
export interface AuthHooks {
  /** Clients for the edge in the Connection field (new ones when it changed). */
  clients(): OptixClients;
  /** The session now holds tokens: load the user and the screens. */
  signedIn(): Promise<void>;
}

const TOTP = /^\d{6}$/;

const field = (id: string, label: string, attrs: string): string => `
  <div class="field">
    <label for="${id}">${label}</label>
    <input id="${id}" name="${id}" data-testid="${id}" ${attrs} />
    <p id="${id}-error" class="field-error" data-testid="${id}-error" role="alert"></p>
  </div>`;

const HTML = `
  <h2>Sign in</h2>
  <p class="note">Demo client: grpc-web through Envoy. Simulated prices are labelled.</p>
  <p id="edge-note" class="warn" data-testid="edge-note" hidden></p>
  <form id="auth-form" class="stack" novalidate>
    ${field("email", "Email", 'type="email" autocomplete="username" inputmode="email" autocapitalize="off" spellcheck="false"')}
    ${field("password", "Password", 'type="password" autocomplete="current-password"')}
    <p id="auth-error" class="form-error" data-testid="auth-error" role="alert"></p>
    <div class="buttons">
      <button type="submit" id="sign-in" class="primary" data-testid="sign-in">Sign in</button>
      <button type="button" id="register" data-testid="register">Create account</button>
    </div>
  </form>
  <form id="mfa-form" class="stack" data-testid="mfa-step" novalidate hidden>
    <p id="mfa-prompt" data-testid="mfa-prompt"></p>
    ${field("mfa-code", "Authenticator code", 'autocomplete="one-time-code" inputmode="numeric" autocapitalize="off" spellcheck="false" maxlength="32"')}
    <p id="mfa-error" class="form-error" data-testid="mfa-error" role="alert"></p>
    <div class="buttons">
      <button type="submit" class="primary" data-testid="mfa-submit">Verify</button>
      <button type="button" id="mfa-switch" data-testid="mfa-use-recovery">Use a recovery code</button>
      <button type="button" id="mfa-back" data-testid="mfa-cancel">Back</button>
    </div>
  </form>
  <details class="connection">
    <summary>Connection</summary>
    <div class="field">
      <label for="edge">Edge (grpc-web) address</label>
      <input id="edge" name="edge" data-testid="edge" autocomplete="off" spellcheck="false" />
    </div>
  </details>`;

/** The sign-in / create-account screen with its MFA step. */
export class AuthScreen {
  readonly root = section("auth", "auth-panel", HTML);
  private readonly credentialErrors: FieldErrors;
  private readonly codeErrors: FieldErrors;
  private challenge: { id: string; email: string } | undefined;
  private recovery = false; // the MFA step takes a recovery code instead of a TOTP code
  private busy = false;

  constructor(
    private readonly hooks: AuthHooks,
    edge: EdgeChoice,
  ) {
    this.credentialErrors = new FieldErrors(el("auth-error"))
      .bind("email", el("email"), el("email-error"))
      .bind("password", el("password"), el("password-error"));
    this.codeErrors = new FieldErrors(el("mfa-error"));
    // Whichever factor the server names, the one code box holds it.
    for (const path of ["totp_code", "recovery_code", "factor"]) {
      this.codeErrors.bind(path, el("mfa-code"), el("mfa-code-error"));
    }
    el<HTMLInputElement>("edge").value = edge.url;
    const note = el("edge-note");
    note.textContent = edge.note ?? "";
    note.hidden = edge.note === undefined;
    this.bind();
  }

  /** Show the screen with empty fields and the password step (sign-out, or after sign-in). */
  reset(): void {
    this.challenge = undefined;
    this.busy = false;
    for (const id of ["email", "password", "mfa-code"]) el<HTMLInputElement>(id).value = "";
    this.credentialErrors.clear();
    this.codeErrors.clear();
    this.passwordStep();
  }

  private get email(): string {
    return el<HTMLInputElement>("email").value.trim();
  }

  private passwordStep(): void {
    this.challenge = undefined;
    el("auth-form").hidden = false;
    el("mfa-form").hidden = true;
    el("mfa-prompt").textContent = "";
    el<HTMLInputElement>("mfa-code").value = "";
    this.codeErrors.clear();
  }

  private codeStep(challengeId: string): void {
    this.challenge = { id: challengeId, email: this.email };
    this.setRecovery(false);
    el("mfa-prompt").textContent =
      `Two-factor authentication is on for ${this.challenge.email}. Enter the 6-digit code ` +
      "from your authenticator app.";
    el("auth-form").hidden = true;
    el("mfa-form").hidden = false;
    el<HTMLInputElement>("password").value = "";
    el("mfa-code").focus();
  }

  private setRecovery(recovery: boolean): void {
    this.recovery = recovery;
    const input = el<HTMLInputElement>("mfa-code");
    input.value = "";
    input.inputMode = recovery ? "text" : "numeric";
    input.placeholder = recovery ? "xxxxx-xxxxx" : "123456";
    const label = this.root.querySelector<HTMLLabelElement>("label[for=mfa-code]");
    if (label) label.textContent = recovery ? "Recovery code" : "Authenticator code";
    el("mfa-switch").textContent = recovery ? "Use an authenticator code" : "Use a recovery code";
    this.codeErrors.clear();
  }

  /** Runs one call with the form's buttons disabled; a second tap meanwhile is ignored. */
  private async guarded(form: string, action: () => Promise<void>): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    const buttons = el(form).querySelectorAll("button");
    for (const b of buttons) b.disabled = true;
    try {
      await action();
    } finally {
      this.busy = false;
      for (const b of buttons) b.disabled = false;
    }
  }

  private signIn(): void {
    void this.guarded("auth-form", async () => {
      this.credentialErrors.clear();
      const password = el<HTMLInputElement>("password").value;
      try {
        const challenge = await this.hooks.clients().login(this.email, password);
        if (challenge !== undefined) this.codeStep(challenge.challengeId);
        else await this.hooks.signedIn();
      } catch (error) {
        this.credentialErrors.showError(error);
      }
    });
  }

  private register(): void {
    void this.guarded("auth-form", async () => {
      this.credentialErrors.clear();
      const password = el<HTMLInputElement>("password").value;
      try {
        await this.hooks.clients().register(this.email, password, this.email.split("@")[0]);
        await this.hooks.signedIn();
      } catch (error) {
        this.credentialErrors.showError(error);
      }
    });
  }

  private redeem(): void {
    const challenge = this.challenge;
    if (challenge === undefined) return;
    const code = el<HTMLInputElement>("mfa-code").value.trim();
    const path = this.recovery ? "recovery_code" : "totp_code";
    // The server's rule (user/validation.py), checked first so a typo costs no attempt.
    if (!this.recovery && !TOTP.test(code)) {
      this.codeErrors.clear();
      this.codeErrors.set(path, "must be a 6-digit code");
      return;
    }
    if (this.recovery && code === "") {
      this.codeErrors.clear();
      this.codeErrors.set(path, "is required");
      return;
    }
    void this.guarded("mfa-form", async () => {
      this.codeErrors.clear();
      const factor = this.recovery ? { recoveryCode: code } : { totpCode: code };
      try {
        await this.hooks.clients().completeMfaLogin(challenge.id, factor);
        await this.hooks.signedIn();
      } catch (error) {
        this.mfaFailed(error, path);
      }
    });
  }

  private mfaFailed(error: unknown, path: string): void {
    const info = optixError(error);
    if (info.reason === "INVALID_MFA_CODE") {
      this.codeErrors.set(
        path,
        this.recovery
          ? "This recovery code is not valid, or it was used already (each works once)."
          : "This code is not right, or it was used already: enter the next code your app shows.",
      );
    } else if (info.code === Code.Unauthenticated) {
      // The challenge expired or ran out of attempts: start again from the password.
      const email = challengeEmail(this.challenge);
      this.passwordStep();
      el<HTMLInputElement>("email").value = email;
      this.credentialErrors.note("The sign-in timed out: enter your password again.");
    } else {
      this.codeErrors.showError(error);
    }
  }

  private bind(): void {
    el("auth-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.signIn();
    });
    el("register").addEventListener("click", () => this.register());
    el("mfa-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.redeem();
    });
    el("mfa-switch").addEventListener("click", () => this.setRecovery(!this.recovery));
    el("mfa-back").addEventListener("click", () => {
      const email = challengeEmail(this.challenge);
      this.passwordStep();
      el<HTMLInputElement>("email").value = email;
    });
  }

  /** The edge address in the Connection field. */
  edge(): string {
    return el<HTMLInputElement>("edge").value.trim();
  }
}

function challengeEmail(challenge: { email: string } | undefined): string {
  return challenge?.email ?? "";
}
