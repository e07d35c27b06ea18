// Test driver: one call through the edge that the server refuses (Register with a bad email and a
// short password) and one health check; prints the helper's view of each as a JSON line.
import { optixError } from "../errors.js";
import { HealthCheckResponse_ServingStatus } from "../gen/grpc_health/v1/health_pb.js";
import { createNodeClients } from "./transport.js";

const edge = process.argv[2];
const clients = createNodeClients(edge);
try {
  await clients.user.register({ email: "not-an-email", password: "x", displayName: "" });
  process.stdout.write(`${JSON.stringify({ register: "ok" })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ register: optixError(error) })}\n`);
}
try {
  const reply = await clients.health.check({ service: "" });
  process.stdout.write(
    `${JSON.stringify({ health: HealthCheckResponse_ServingStatus[reply.status] })}\n`,
  );
} catch (error) {
  process.stdout.write(`${JSON.stringify({ health: optixError(error) })}\n`);
}
