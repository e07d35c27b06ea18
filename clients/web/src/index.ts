// Public entry point of the OPTIX web client package.
export { createOptixClients, type OptixClients, type SecondFactor } from "./client.js";
export { PUBLIC_METHODS, Session, type StoredTokens } from "./session.js";
export { createBrowserClients } from "./browser.js";
export {
  checkSymbols,
  normalizeOcc,
  normalizeSymbol,
  normalizeTicker,
  SymbolError,
  MAX_SYMBOLS_PER_REQUEST,
  type CheckedSymbols,
} from "./symbols.js";
export {
  fieldViolations,
  optixError,
  type FieldViolation,
  type OptixErrorInfo,
} from "./errors.js";
export {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
} from "./gen/grpc_health/v1/health_pb.js";
export {
  BadRequestSchema,
  ErrorInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
export { StatusSchema } from "./gen/google/rpc/status_pb.js";
