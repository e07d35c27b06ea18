// The Account screen: who is signed in, two-factor authentication, and signing out.
import { el, section } from "../dom.js";
import { MFA_HTML, MfaPanel } from "../mfa.js";
import type { Screen, ScreenContext } from "../screen.js";

const HTML = `
  <h2>Account</h2>
  <dl class="facts">
    <dt>Email</dt><dd id="account-email" data-testid="account-email"></dd>
    <dt>Name</dt><dd id="account-name" data-testid="account-name"></dd>
  </dl>
  <div class="mfa">${MFA_HTML}</div>
  <h3>Session</h3>
  <p class="note">Signing out ends this session on the server and clears every screen here.</p>
  <button type="button" id="sign-out" class="danger" data-testid="sign-out">Sign out</button>`;

/** The signed-in user's security settings. */
export class AccountScreen implements Screen {
  readonly id = "account";
  readonly title = "Account";
  readonly glyph = "☺";
  readonly root = section("account-panel", "account-panel", HTML);
  private readonly mfa = new MfaPanel();
  private context: ScreenContext | undefined;

  constructor() {
    el("sign-out").addEventListener("click", () => this.context?.signOut());
    this.clear();
  }

  signedIn(context: ScreenContext): void {
    this.context = context;
    el("account-email").textContent = context.user.email;
    el("account-name").textContent = context.user.displayName;
    this.mfa.signedIn(context);
  }

  signedOut(): void {
    this.context = undefined;
    this.mfa.signedOut();
    this.clear();
  }

  private clear(): void {
    el("account-email").textContent = "";
    el("account-name").textContent = "";
  }
}
