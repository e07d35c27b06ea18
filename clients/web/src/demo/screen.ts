// The extension point of the demo app: every screen (Watchlists, Quotes, Chain, Alerts,
// Portfolio, Account) is one module implementing `Screen`, listed once in main.ts. The
// shell (app.ts) builds the navigation from the list, shows one screen at a time, and tells
// every screen when a user signs in and out.
import type { OptixClients } from "../client.js";
import type { User } from "../gen/optix/user/v1/user_pb.js";

/** What a screen gets from the shell while a user is signed in. */
export interface ScreenContext {
  /** Clients for the edge the user signed in through (their session carries the tokens). */
  readonly clients: OptixClients;
  /** The signed-in user, as GetMe returned it at sign-in. */
  readonly user: User;
  /** Show a short message in the app's status line. */
  status(text: string, kind?: "ok" | "error"): void;
  /** Sign out (the Account screen's button; a screen that finds the session gone). */
  signOut(): void;
  /** Leave the app for a broker's sign-in page that redirects back here with `state` (the
   * OAuth callback route, broker-return.ts): the session is handed over for the trip. */
  leaveForSignIn(url: string, state: string): void;
}

/** One screen of the app. */
export interface Screen {
  /** Short stable name: the URL hash (#quotes), the nav link's data-testid (nav-quotes). */
  readonly id: string;
  /** The label in the navigation. */
  readonly title: string;
  /** A one-character glyph shown above the label in the phone tab bar. */
  readonly glyph: string;
  /** The screen's section; the shell adds it to the page and toggles its `hidden`. */
  readonly root: HTMLElement;
  /** A user signed in: remember the context and load what the screen shows. */
  signedIn(context: ScreenContext): void;
  /** The user signed out: stop streams and timers, forget and clear everything shown. */
  signedOut(): void;
  /** The screen became the visible one (a first visit may start its stream). */
  shown?(): void;
}
