// Two-factor authentication on the Account screen: SetupMfa shows the otpauth QR code (and the
// secret as text for typing in), ConfirmMfa with a first code turns MFA on and returns the
// recovery codes, shown this once; DisableMfa with a code turns it off again.
import { Code } from "@connectrpc/connect";
import { optixError } from "../errors.js";
import type { ScreenContext } from "./screen.js";
import { el, make } from "./dom.js";
import { FieldErrors } from "./fields.js";
import { qrSvg } from "./qr.js";

const UNARY = { timeoutMs: 10_000 };
const TOTP = /^\d{6}$/;

/** The markup the Account screen includes (ids are unique on the page). */
export const MFA_HTML = `
  <h3>Two-factor authentication <span id="mfa-state" class="badge" data-testid="mfa-state"></span></h3>
  <div id="mfa-off" data-testid="mfa-off" hidden>
    <p class="note">Protect the account with a code from an authenticator app.</p>
    <button type="button" class="primary" data-testid="mfa-setup" id="mfa-setup">Set up two-factor authentication</button>
  </div>
  <form id="mfa-enrol" class="stack" data-testid="mfa-enrol" novalidate hidden>
    <p>Scan this code with an authenticator app, then enter the 6-digit code it shows.</p>
    <div id="mfa-qr" class="qr" data-testid="mfa-qr"></div>
    <p class="note">Can't scan it? Enter this key: <code id="mfa-secret" class="secret" data-testid="mfa-secret"></code></p>
    <a id="mfa-link" class="button-link" data-testid="mfa-link" href="#">Open in an authenticator app</a>
    <div class="field">
      <label for="mfa-setup-code">Code from the app</label>
      <input id="mfa-setup-code" data-testid="mfa-setup-code" autocomplete="one-time-code" inputmode="numeric" maxlength="6" />
      <p id="mfa-setup-code-error" class="field-error" data-testid="mfa-setup-code-error" role="alert"></p>
    </div>
    <p id="mfa-enrol-error" class="form-error" data-testid="mfa-enrol-error" role="alert"></p>
    <div class="buttons">
      <button type="submit" class="primary" data-testid="mfa-confirm">Turn on</button>
      <button type="button" id="mfa-cancel-setup" data-testid="mfa-cancel-setup">Cancel</button>
    </div>
  </form>
  <div id="mfa-codes" data-testid="mfa-codes" hidden>
    <p><strong>Two-factor authentication is on.</strong> Save these recovery codes somewhere safe:
      each signs you in once if you lose your phone. They are shown only now.</p>
    <ol id="mfa-recovery-codes" class="codes" data-testid="mfa-recovery-codes"></ol>
    <button type="button" class="primary" id="mfa-codes-done" data-testid="mfa-codes-done">I have saved them</button>
  </div>
  <form id="mfa-on" class="stack" data-testid="mfa-on" novalidate hidden>
    <p class="note">Sign-in asks for a code from your authenticator app (or a recovery code).</p>
    <div class="field">
      <label for="mfa-disable-code">Code or recovery code</label>
      <input id="mfa-disable-code" data-testid="mfa-disable-code" autocomplete="one-time-code" autocapitalize="off" spellcheck="false" />
      <p id="mfa-disable-code-error" class="field-error" data-testid="mfa-disable-code-error" role="alert"></p>
    </div>
    <p id="mfa-on-error" class="form-error" data-testid="mfa-on-error" role="alert"></p>
    <button type="submit" class="danger" data-testid="mfa-disable">Turn off two-factor authentication</button>
  </form>`;

type MfaView = "off" | "enrol" | "codes" | "on" | "none";

/** The MFA part of the Account screen (MFA_HTML must be on the page). */
export class MfaPanel {
  private context: ScreenContext | undefined;
  private readonly enrolErrors: FieldErrors;
  private readonly disableErrors: FieldErrors;
  private busy = false;

  constructor() {
    this.enrolErrors = new FieldErrors(el("mfa-enrol-error")).bind(
      "totp_code",
      el("mfa-setup-code"),
      el("mfa-setup-code-error"),
    );
    this.disableErrors = new FieldErrors(el("mfa-on-error"));
    for (const path of ["totp_code", "recovery_code", "factor"]) {
      this.disableErrors.bind(path, el("mfa-disable-code"), el("mfa-disable-code-error"));
    }
    this.bind();
    this.clear();
  }

  signedIn(context: ScreenContext): void {
    this.clear();
    this.context = context;
    this.view(context.user.mfaEnabled ? "on" : "off");
  }

  signedOut(): void {
    this.context = undefined;
    this.clear();
  }

  /** Nothing of the last user's set-up stays: no QR, secret, link, codes, inputs or errors. */
  private clear(): void {
    this.busy = false;
    el("mfa-qr").replaceChildren();
    el("mfa-secret").textContent = "";
    el<HTMLAnchorElement>("mfa-link").href = "#";
    el("mfa-recovery-codes").replaceChildren();
    for (const id of ["mfa-setup-code", "mfa-disable-code"]) el<HTMLInputElement>(id).value = "";
    this.enrolErrors.clear();
    this.disableErrors.clear();
    this.view("none");
  }

  private view(view: MfaView): void {
    el("mfa-off").hidden = view !== "off";
    el("mfa-enrol").hidden = view !== "enrol";
    el("mfa-codes").hidden = view !== "codes";
    el("mfa-on").hidden = view !== "on";
    const label = { off: "off", enrol: "setting up", codes: "on", on: "on", none: "" }[view];
    el("mfa-state").textContent = label;
    el("mfa-state").dataset.state = view;
  }

  private async guarded(action: (context: ScreenContext) => Promise<void>): Promise<void> {
    const context = this.context;
    if (context === undefined || this.busy) return;
    this.busy = true;
    try {
      await action(context);
    } finally {
      this.busy = false;
    }
  }

  private setUp(): void {
    void this.guarded(async (context) => {
      this.enrolErrors.clear();
      try {
        const reply = await context.clients.user.setupMfa({}, UNARY);
        if (this.context !== context) return;
        el("mfa-qr").replaceChildren(qrSvg(reply.otpauthUri, "QR code for your authenticator app"));
        el("mfa-secret").textContent = reply.secret.replace(/(.{4})(?=.)/g, "$1 ");
        el<HTMLAnchorElement>("mfa-link").href = reply.otpauthUri;
        el<HTMLInputElement>("mfa-setup-code").value = "";
        this.view("enrol");
      } catch (error) {
        if (this.context !== context) return;
        if (optixError(error).reason === "MFA_ALREADY_ENABLED") this.view("on");
        else context.status(optixError(error).message || "Could not start the set-up");
      }
    });
  }

  private confirm(): void {
    const code = el<HTMLInputElement>("mfa-setup-code").value.trim();
    if (!TOTP.test(code)) {
      this.enrolErrors.clear();
      this.enrolErrors.set("totp_code", "must be a 6-digit code");
      return;
    }
    void this.guarded(async (context) => {
      this.enrolErrors.clear();
      try {
        const reply = await context.clients.user.confirmMfa({ totpCode: code }, UNARY);
        if (this.context !== context) return;
        // The secret has done its job: it leaves the page with the QR code.
        el("mfa-qr").replaceChildren();
        el("mfa-secret").textContent = "";
        el<HTMLAnchorElement>("mfa-link").href = "#";
        el("mfa-recovery-codes").replaceChildren(
          ...reply.recoveryCodes.map((c) => make("li", { textContent: c })),
        );
        this.view("codes");
      } catch (error) {
        if (this.context !== context) return;
        const info = optixError(error);
        if (info.reason === "MFA_CODE_USED") {
          this.enrolErrors.set("totp_code", "This code was used already: enter the next one.");
        } else if (info.reason === "MFA_NOT_SET_UP") {
          this.view("off");
          context.status("The set-up expired: start it again.");
        } else {
          this.enrolErrors.showError(error);
        }
      }
    });
  }

  private disable(): void {
    const code = el<HTMLInputElement>("mfa-disable-code").value.trim();
    if (code === "") {
      this.disableErrors.clear();
      this.disableErrors.set("factor", "Enter a code from your app or a recovery code.");
      return;
    }
    void this.guarded(async (context) => {
      this.disableErrors.clear();
      const factor = TOTP.test(code)
        ? { case: "totpCode" as const, value: code }
        : { case: "recoveryCode" as const, value: code };
      try {
        await context.clients.user.disableMfa({ factor }, UNARY);
        if (this.context !== context) return;
        el<HTMLInputElement>("mfa-disable-code").value = "";
        this.view("off");
        context.status("Two-factor authentication is off", "ok");
      } catch (error) {
        if (this.context !== context) return;
        if (optixError(error).code === Code.PermissionDenied) {
          this.disableErrors.set("factor", "This code is not right, or it was used already.");
        } else {
          this.disableErrors.showError(error);
        }
      }
    });
  }

  private bind(): void {
    el("mfa-setup").addEventListener("click", () => this.setUp());
    el("mfa-enrol").addEventListener("submit", (event) => {
      event.preventDefault();
      this.confirm();
    });
    el("mfa-cancel-setup").addEventListener("click", () => {
      el("mfa-qr").replaceChildren();
      el("mfa-secret").textContent = "";
      this.enrolErrors.clear();
      this.view("off");
    });
    el("mfa-codes-done").addEventListener("click", () => {
      el("mfa-recovery-codes").replaceChildren();
      this.view("on");
    });
    el("mfa-on").addEventListener("submit", (event) => {
      event.preventDefault();
      this.disable();
    });
  }
}
