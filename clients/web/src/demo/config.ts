// Where the page finds the edge (Envoy's grpc-web listener): `?edge=` wins; else the config.json
// that the server of this page serves (`make run` writes the real Envoy port into it); only
// when there is none, the page's host on port 8080, said on screen.

/** The edge address and how the page learned it. */
export interface EdgeChoice {
  url: string;
  source: "query" | "config" | "fallback" | "resumed";
  /** Shown to the user when the address is a guess. */
  note?: string;
}

/** The shape of config.json. */
interface PageConfig {
  edge?: unknown;
}

const FALLBACK_PORT = 8080;

/** Resolve the edge once at start-up. */
export async function resolveEdge(): Promise<EdgeChoice> {
  const fromQuery = new URLSearchParams(location.search).get("edge");
  if (fromQuery) return { url: fromQuery, source: "query" };
  try {
    const reply = await fetch("config.json", { cache: "no-store" });
    if (reply.ok) {
      const config = (await reply.json()) as PageConfig;
      if (typeof config.edge === "string" && config.edge) {
        return { url: config.edge, source: "config" };
      }
    }
  } catch {
    // No config (a plain file server): fall through to the guess below.
  }
  const url = `${location.protocol}//${location.hostname}:${FALLBACK_PORT}`;
  return {
    url,
    source: "fallback",
    note:
      `This page's server gave no config.json, so the app guesses the edge at ${url}. ` +
      "Open the page with ?edge=http://host:port (or set it under Connection) if Envoy listens elsewhere.",
  };
}
