// Node flavour: grpc-web over HTTP/1.1 (connect-node), exactly what a browser sends to Envoy.
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { createOptixClients, type OptixClients } from "../client.js";
import { Session } from "../session.js";

/** Clients talking grpc-web to the edge at `baseUrl` from Node. */
export function createNodeClients(baseUrl: string, session = new Session()): OptixClients {
  return createOptixClients(
    (interceptors) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
    session,
  );
}
