// The app shell: the navigation built from the screens (a tab bar on a phone, a side bar on a
// desktop), one screen shown at a time (#hash routes), and the signed-in / signed-out switch:
// sign-in hands every screen the context, sign-out makes every screen forget what it showed.
import { createBrowserClients } from "../browser.js";
import type { OptixClients } from "../client.js";
import type { User } from "../gen/optix/user/v1/user_pb.js";
import { AuthScreen } from "./auth.js";
import { clearHandoff, type Handoff, saveHandoff } from "./broker-return.js";
import type { EdgeChoice } from "./config.js";
import { el, make } from "./dom.js";
import { explain } from "./fields.js";
import type { Screen, ScreenContext } from "./screen.js";

/** The demo app: sign-in screen, navigation and the screens it is given. */
export class App {
  private clients: OptixClients;
  private clientsEdge: string;
  private readonly auth: AuthScreen;
  private readonly links = new Map<string, HTMLAnchorElement>();
  private current: Screen | undefined;
  private signedIn = false;
  private epoch = 0; // bumped on sign-out: a sign-in still loading is then dropped

  constructor(
    edge: EdgeChoice,
    private readonly screens: readonly Screen[],
    resume?: Handoff,
  ) {
    this.clientsEdge = edge.url;
    this.clients = createBrowserClients(edge.url);
    this.auth = new AuthScreen(
      { clients: () => this.clientsFor(this.auth.edge()), signedIn: () => this.enter() },
      edge,
    );
    const nav = el("nav");
    for (const screen of screens) {
      const link = make("a", { href: `#${screen.id}` }, { testid: `nav-${screen.id}` });
      link.append(
        make("span", { className: "glyph", textContent: screen.glyph, ariaHidden: "true" }),
        make("span", { className: "label", textContent: screen.title }),
      );
      this.links.set(screen.id, link);
      nav.append(link);
    }
    window.addEventListener("hashchange", () => this.route());
    this.showSignedOut();
    if (resume !== undefined) void this.resume(resume);
  }

  /** Back from a broker's sign-in: the session handed over before leaving signs in again
   * (RefreshToken rotates the stored token), or the user signs in by hand. */
  private async resume(handoff: Handoff): Promise<void> {
    const clients = this.clientsFor(handoff.edge);
    this.status("Back from the broker: signing in again…", "ok");
    try {
      const reply = await clients.user.refreshToken(
        { refreshToken: handoff.refreshToken },
        { timeoutMs: 10_000 },
      );
      if (reply.tokens === undefined) throw new Error("RefreshToken returned no tokens");
      if (this.signedIn) return; // signed in by hand meanwhile
      clients.session.set(reply.tokens);
      await this.enter();
    } catch (error) {
      if (this.signedIn) return;
      clients.session.clear();
      this.status(`Sign in to finish connecting your broker (${explain(error)})`, "error");
    }
  }

  /** Clients for `edge`, made anew when the address changed (the old session is dropped). */
  private clientsFor(edge: string): OptixClients {
    if (edge && edge !== this.clientsEdge) {
      this.clientsEdge = edge;
      this.clients = createBrowserClients(edge);
    }
    return this.clients;
  }

  /** The session holds tokens: load the user, hand every screen its context, show one. */
  private async enter(): Promise<void> {
    const epoch = this.epoch;
    const clients = this.clients;
    let user: User | undefined;
    try {
      user = (await clients.user.getMe({}, { timeoutMs: 10_000 })).user;
      if (user === undefined) throw new Error("GetMe returned no user");
    } catch (error) {
      clients.session.clear();
      throw error;
    }
    if (epoch !== this.epoch) return;
    const userName = user.name;
    const context: ScreenContext = {
      clients,
      user,
      status: (text, kind) => this.status(text, kind),
      signOut: () => this.signOut(),
      leaveForSignIn: (url, state) => {
        const refreshToken = clients.session.current?.refreshToken ?? "";
        if (refreshToken !== "") {
          saveHandoff({ edge: this.clientsEdge, refreshToken, state, user: userName });
        }
        location.assign(url);
      },
    };
    this.signedIn = true;
    const who = el("who");
    who.textContent = user.email;
    who.title = user.email;
    document.body.classList.add("signed-in");
    el("nav").hidden = false;
    this.auth.root.hidden = true;
    this.auth.reset(); // no password left in the page
    this.status("");
    for (const screen of this.screens) screen.signedIn(context);
    this.route();
  }

  /** Every screen forgets what it showed; the session is revoked on the server. */
  signOut(): void {
    if (!this.signedIn) return;
    this.epoch += 1;
    this.signedIn = false;
    clearHandoff();
    for (const screen of this.screens) {
      try {
        screen.signedOut();
      } catch (error) {
        console.error(`screen ${screen.id} failed to clear`, error);
      }
    }
    this.showSignedOut();
    // The next user starts on the home screen, not where this one left off.
    history.replaceState(null, "", location.pathname + location.search);
    this.status("Signed out", "ok");
    const epoch = this.epoch;
    this.clients.signOut().catch((error: unknown) => {
      if (epoch === this.epoch) {
        this.status(`Signed out here; the server was not told (${explain(error)})`, "error");
      }
    });
  }

  private showSignedOut(): void {
    const who = el("who");
    who.textContent = "";
    who.title = "";
    document.body.classList.remove("signed-in");
    el("nav").hidden = true;
    for (const screen of this.screens) screen.root.hidden = true;
    this.current = undefined;
    this.auth.reset();
    this.auth.root.hidden = false;
  }

  /** Show the screen the URL names (the first one by default). */
  private route(): void {
    if (!this.signedIn) return;
    const wanted = location.hash.slice(1);
    const screen = this.screens.find((s) => s.id === wanted) ?? this.screens[0];
    if (screen === undefined) return;
    for (const other of this.screens) other.root.hidden = other !== screen;
    for (const [id, link] of this.links) {
      if (id === screen.id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const changed = this.current !== screen;
    this.current = screen;
    if (changed) {
      document.title = `${screen.title} · OPTIX`;
      screen.shown?.();
    }
  }

  private status(text: string, kind: "ok" | "error" = "error"): void {
    const line = el("status");
    line.textContent = text;
    line.dataset.kind = text ? kind : "";
  }
}
