// Browser flavour: grpc-web over fetch (connect-web), the format Envoy's grpc_web filter speaks.
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { createOptixClients, type OptixClients } from "./client.js";
import { Session } from "./session.js";

/** Clients talking grpc-web to the edge at `baseUrl` (e.g. http://127.0.0.1:8080). */
export function createBrowserClients(baseUrl: string, session = new Session()): OptixClients {
  // No transport-wide timeout: it would also cut live streams. Unary calls get their deadline
  // from the edge route (30 s) unless the caller passes `{ timeoutMs }`.
  return createOptixClients(
    (interceptors) => createGrpcWebTransport({ baseUrl, interceptors }),
    session,
  );
}
