// The OAuth callback route, the way a mobile app catches its redirect: a broker's sign-in page
// sends the user back to this page (its URL, exactly as configured in
// OPTIX_BROKERAGE_<PROVIDER>_REDIRECT_URIS) with `code` and `state` query parameters, or `error`
// and `state` when the user declined. At start-up the app reads them once, cleans them out of the
// address bar (a reload must not redeem the code again) and opens #portfolio, where the Portfolio
// screen calls CompleteConnection.
//
// A full-page redirect unloads the app and its in-memory session, so leaving for the broker hands
// the session over: the refresh token, the edge and the state go into this tab's sessionStorage,
// and the return redeems them at once (RefreshToken rotates it, so the stored one is dead after
// the first use) and removes them. The hand-off is only used when the returning `state` is the
// one it was saved with; otherwise the user signs in and the connection is completed then.

/** What the broker's redirect carried. */
export interface BrokerReturn {
  state: string;
  /** The authorization code; empty when the broker sent `error` instead. */
  code: string;
  /** The OAuth error ("access_denied"), with its description when given; empty on success. */
  error: string;
}

/** The session a redirect carried across. */
export interface Handoff {
  edge: string;
  refreshToken: string;
  state: string;
  /** The user's resource name, to check the resumed session is the same user. */
  user: string;
}

const HANDOFF_KEY = "optix.brokerage.handoff";
const CALLBACK_PARAMS = ["code", "state", "error", "error_description", "session"];

/** The URL a broker redirects back to: this page, without its query and fragment. */
export function callbackUrl(): string {
  return `${location.origin}${location.pathname}`;
}

/** Read the callback parameters once at start-up; when present, the address bar is cleaned and
 * set to #portfolio. Undefined on an ordinary load. */
export function takeBrokerReturn(): BrokerReturn | undefined {
  const query = new URLSearchParams(location.search);
  const state = query.get("state") ?? "";
  const code = query.get("code") ?? "";
  const error = query.get("error") ?? "";
  if (state === "" || (code === "" && error === "")) return undefined;
  const description = query.get("error_description") ?? "";
  for (const name of CALLBACK_PARAMS) query.delete(name);
  const rest = query.toString();
  history.replaceState(null, "", `${location.pathname}${rest ? `?${rest}` : ""}#portfolio`);
  return { state, code, error: description ? `${error}: ${description}` : error };
}

/** Keep the session for the trip to the broker (just before leaving the page). */
export function saveHandoff(handoff: Handoff): void {
  sessionStorage.setItem(HANDOFF_KEY, JSON.stringify(handoff));
}

/** The stored hand-off, removed from storage whatever it holds; returned only when it was
 * saved for `state`. */
export function takeHandoff(state: string | undefined): Handoff | undefined {
  const text = sessionStorage.getItem(HANDOFF_KEY);
  sessionStorage.removeItem(HANDOFF_KEY);
  if (text === null || state === undefined) return undefined;
  try {
    const handoff = JSON.parse(text) as Partial<Handoff>;
    const fields = [handoff.edge, handoff.refreshToken, handoff.state, handoff.user];
    if (!fields.every((f) => typeof f === "string" && f !== "")) return undefined;
    return handoff.state === state ? (handoff as Handoff) : undefined;
  } catch {
    return undefined;
  }
}

/** Forget any hand-off (sign-out). */
export function clearHandoff(): void {
  sessionStorage.removeItem(HANDOFF_KEY);
}
