// The user's alert events as one resumable StreamAlertEvents call. The feed remembers the id of
// the newest event it delivered (in memory, and in sessionStorage under the user, so a reload of
// the tab resumes too) and every (re)connection asks for the events after it: events that fired
// while the connection was down are replayed once (`replay: true`), then live ones follow.
// It reconnects when the stream ends UNAVAILABLE / UNAUTHENTICATED (the session refreshes its
// token first) or drops (the browser reports a lost connection as UNKNOWN), when the page comes
// back online, and when no message (event or heartbeat) arrived for three heartbeats.
import { Code, ConnectError } from "@connectrpc/connect";
import type { OptixClients } from "../client.js";
import { reconnectable } from "../errors.js";
import type { AlertEvent } from "../gen/optix/alert/v1/alert_event_pb.js";

/** All of the user's alerts, in StreamAlertEvents and ListAlertEvents. */
export const ALL_ALERTS = "users/me/alerts/-";

/** What the feed shows about its connection. */
export type FeedState = "idle" | "connecting" | "live" | "reconnecting" | "offline" | "error";

/** What an AlertFeed tells its owner. */
export interface AlertFeedEvents {
  /** A batch arrived: its new events, `event_id` ascending, each delivered once (any the feed had
   * already delivered are dropped and counted in `duplicates`); `replay` for events that fired
   * while the feed was not connected. */
  events(events: AlertEvent[], replay: boolean): void;
  /** The connection changed; `detail` says why it is not live. */
  state(state: FeedState, detail: string): void;
  /** A call is being opened, resuming after `afterEventId`. */
  opening(afterEventId: bigint): void;
  /** The session is gone (its refresh was refused): the user has to sign in again. */
  sessionEnded(): void;
}

const HEARTBEAT_SECONDS = 5;
const WATCHDOG_MS = 3 * HEARTBEAT_SECONDS * 1000;
const MAX_BACKOFF_MS = 15_000;
const STORAGE_PREFIX = "optix.alerts.lastEventId:";

/** The sessionStorage key of a user's resume point. */
export function storageKey(user: string): string {
  return `${STORAGE_PREFIX}${user}`;
}

/** The resume point remembered in this tab for `user`, if any. */
export function storedEventId(user: string): bigint | undefined {
  try {
    const text = sessionStorage.getItem(storageKey(user));
    return text !== null && /^\d+$/.test(text) ? BigInt(text) : undefined;
  } catch {
    return undefined; // storage disabled: the feed still resumes within the page
  }
}

/** Forget every user's resume point (sign-out). */
export function clearStoredEventIds(): void {
  try {
    for (let i = sessionStorage.length - 1; i >= 0; i -= 1) {
      const key = sessionStorage.key(i);
      if (key?.startsWith(STORAGE_PREFIX)) sessionStorage.removeItem(key);
    }
  } catch {
    // storage disabled: nothing was stored
  }
}

/** A wait that ends early when `wake` is called or `signal` aborts. */
class Pause {
  private wakeUp: (() => void) | undefined;

  wait(ms: number | undefined, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      signal.addEventListener("abort", done);
      this.wakeUp = done;
    });
  }

  wake(): void {
    this.wakeUp?.();
  }
}

/** The event stream of one signed-in user: `start()` connects, `stop()` ends it for good. */
export class AlertFeed {
  private readonly stopped = new AbortController();
  private attempt: AbortController | undefined;
  private readonly pause = new Pause();
  private last: bigint;
  private running = false;
  /** Events received a second time (and not delivered again): 0 unless the server repeated one. */
  duplicates = 0;
  private readonly onOnline = () => this.online();
  private readonly onOffline = () => this.attempt?.abort();

  /** `after`: the newest event already shown; the first call resumes after it. */
  constructor(
    private readonly clients: OptixClients,
    private readonly user: string,
    after: bigint,
    private readonly events: AlertFeedEvents,
  ) {
    this.last = after;
    this.remember();
  }

  /** The newest event id delivered (or the starting point). */
  get lastEventId(): bigint {
    return this.last;
  }

  start(): void {
    if (this.running || this.stopped.signal.aborted) return;
    this.running = true;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    void this.run();
  }

  /** End the call; no event follows. */
  stop(): void {
    this.stopped.abort();
    this.attempt?.abort();
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
  }

  /** Connect again now (after an error the feed gave up on, or the user asked). */
  retry(): void {
    if (this.stopped.signal.aborted) return;
    if (!this.running) this.start();
    else {
      this.attempt?.abort();
      this.pause.wake();
    }
  }

  /** Back online: reconnect at once (the old connection may not have survived the change). */
  private online(): void {
    this.attempt?.abort();
    this.pause.wake();
  }

  private remember(): void {
    try {
      sessionStorage.setItem(storageKey(this.user), this.last.toString());
    } catch {
      // storage disabled or full: the resume point stays in memory
    }
  }

  private async run(): Promise<void> {
    const stop = this.stopped.signal;
    let failures = 0;
    let connected = false;
    this.events.state("connecting", "");
    while (!stop.aborted) {
      if (!navigator.onLine) {
        this.events.state("offline", "this device is offline");
        await this.pause.wait(undefined, stop); // until back online (or stopped)
        failures = 0;
        if (stop.aborted) return;
        this.events.state("reconnecting", "back online");
      }
      const attempt = new AbortController();
      this.attempt = attempt;
      let watchdog: ReturnType<typeof setTimeout> | undefined;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => attempt.abort(), WATCHDOG_MS);
      };
      let error: ConnectError | undefined;
      try {
        this.events.opening(this.last);
        arm();
        const stream = this.clients.alert.streamAlertEvents(
          {
            parent: ALL_ALERTS,
            afterEventId: this.last,
            heartbeatInterval: { seconds: BigInt(HEARTBEAT_SECONDS) },
          },
          { signal: attempt.signal },
        );
        for await (const message of stream) {
          if (attempt.signal.aborted) break;
          arm();
          failures = 0;
          if (!connected) {
            connected = true;
            this.events.state("live", "");
          }
          if (message.payload.case === "events") {
            const batch = message.payload.value;
            this.deliver(batch.events, batch.replay);
          }
        }
        // A stream that ends without an error was cut short (a proxy's limit): resume it.
        error = new ConnectError("the event stream ended", Code.Unavailable);
      } catch (raw) {
        error = ConnectError.from(raw);
      } finally {
        clearTimeout(watchdog);
        if (this.attempt === attempt) this.attempt = undefined;
      }
      if (stop.aborted) return;
      connected = false;
      if (attempt.signal.aborted) {
        // Offline, back online, or silent too long: reconnect without waiting.
        if (navigator.onLine) this.events.state("reconnecting", "reconnecting");
        continue;
      }
      if (error.code === Code.Unauthenticated && !this.clients.session.signedIn) {
        this.events.state("error", "signed out");
        this.events.sessionEnded();
        return;
      }
      if (!reconnectable(error)) {
        this.running = false;
        this.events.state("error", `${Code[error.code]}: ${error.rawMessage}`);
        return;
      }
      this.events.state("reconnecting", `${Code[error.code]}: ${error.rawMessage}`);
      await this.pause.wait(Math.min(500 * 2 ** failures, MAX_BACKOFF_MS), stop);
      failures += 1;
    }
  }

  /** Pass on events the feed has not delivered yet, and remember the newest. */
  private deliver(events: AlertEvent[], replay: boolean): void {
    const fresh: AlertEvent[] = [];
    for (const event of events) {
      if (event.eventId > this.last) {
        fresh.push(event);
        this.last = event.eventId;
      } else {
        this.duplicates += 1;
      }
    }
    if (fresh.length > 0) this.remember();
    this.events.events(fresh, replay);
  }
}
