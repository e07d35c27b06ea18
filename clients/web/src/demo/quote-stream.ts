// One StreamQuotes call for a fixed set of symbols, reconnected with backoff after UNAVAILABLE
// (server restart), UNAUTHENTICATED (the access token expired; the session refreshes it first) or
// a connection broken on its way (see reconnectable in errors.ts). A call refused before it delivered anything is reported as refused, so the caller
// can keep the stream it already had.
import { ConnectError } from "@connectrpc/connect";
import type { OptixClients } from "../client.js";
import { reconnectable } from "../errors.js";
import type { Quote } from "../gen/optix/marketdata/v1/quote_pb.js";

/** What a QuoteStream tells its owner. */
export interface QuoteStreamEvents {
  /** A message arrived: its quotes ([] for a heartbeat). */
  message(quotes: Quote[]): void;
  /** "connecting", "live", "reconnecting" or "ended". */
  state(state: string): void;
  /** Failed for good before delivering any message (e.g. INVALID_ARGUMENT). */
  refused(error: ConnectError): void;
  /** Failed for good after having delivered messages. */
  failed(error: ConnectError): void;
}

const MAX_RETRIES = 5;
// Heartbeats every few seconds: an accepted stream of symbols nobody trades still answers soon.
const HEARTBEAT_SECONDS = 5n;

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A stream for `symbols`: `start()` calls, `stop()` cancels (no event follows). */
export class QuoteStream {
  private readonly abort = new AbortController();
  private delivered = false;

  constructor(
    private readonly clients: OptixClients,
    readonly symbols: readonly string[],
    private readonly events: QuoteStreamEvents,
  ) {}

  /** Make the call (events may follow at once: set up whatever they refer to first). */
  start(): void {
    void this.run();
  }

  /** Cancel the call; its events stop at once. */
  stop(): void {
    this.abort.abort();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    this.events.state("connecting");
    for (let failures = 0; !signal.aborted; ) {
      try {
        const stream = this.clients.marketdata.streamQuotes(
          { symbols: [...this.symbols], heartbeatInterval: { seconds: HEARTBEAT_SECONDS } },
          { signal },
        );
        for await (const message of stream) {
          if (signal.aborted) return;
          failures = 0;
          this.delivered = true;
          this.events.state("live");
          this.events.message(message.payload.case === "quotes" ? message.payload.value.quotes : []);
        }
        if (!signal.aborted) this.events.state("ended");
        return;
      } catch (raw) {
        if (signal.aborted) return;
        const error = ConnectError.from(raw);
        if (!reconnectable(error) || failures >= MAX_RETRIES) {
          if (this.delivered) this.events.failed(error);
          else this.events.refused(error);
          return;
        }
        this.events.state("reconnecting");
        await pause(500 * 2 ** failures, signal);
        failures += 1;
      }
    }
  }
}
