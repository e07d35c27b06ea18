// Reading `google.rpc` error details out of a ConnectError, like the Python SDK's OptixError.
// OPTIX servers attach ErrorInfo, BadRequest, ResourceInfo and RetryInfo to failed calls
// (server/optix_server/infra/grpc_errors.py); over grpc-web they arrive in grpc-status-details-bin
// and connect-es keeps them on `ConnectError.details`. The message types are generated from the
// descriptors the installed Python packages carry (see clients/web/descriptors/image.py).
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

/** One `google.rpc.BadRequest.FieldViolation`: which request field is wrong, and why. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** What a failed OPTIX call says, with its google.rpc details decoded. */
export interface OptixErrorInfo {
  /** The gRPC status code (connect-es `Code`, same numbers as grpc). */
  code: Code;
  /** The status name, e.g. "INVALID_ARGUMENT". */
  codeName: string;
  /** The server's message, without connect-es's "[code]" prefix. */
  message: string;
  /** BadRequest field violations, in the server's order ([] when there are none). */
  fieldViolations: FieldViolation[];
  /** RetryInfo: how long the server asks the caller to wait before retrying, in ms. */
  retryDelayMs?: number;
  /** ErrorInfo: the machine-readable reason, e.g. "INVALID_CREDENTIALS". */
  reason?: string;
  /** ErrorInfo: the domain of the reason ("optix.dev"). */
  domain?: string;
  /** ErrorInfo: extra key/value context. */
  metadata?: Record<string, string>;
  /** ResourceInfo: what was not found. */
  resource?: { type: string; name: string };
}

const CODE_NAMES: Record<number, string> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

/** Decodes any thrown value (a ConnectError, or anything else as UNKNOWN) into an OptixErrorInfo.
 * Details that cannot be decoded are skipped: the caller still has code and message. */
export function optixError(error: unknown): OptixErrorInfo {
  const err = ConnectError.from(error);
  const info: OptixErrorInfo = {
    code: err.code,
    codeName: CODE_NAMES[err.code] ?? `CODE_${err.code}`,
    message: err.rawMessage,
    fieldViolations: fieldViolations(err),
  };
  const errorInfo = err.findDetails(ErrorInfoSchema)[0];
  if (errorInfo !== undefined) {
    info.reason = errorInfo.reason;
    info.domain = errorInfo.domain;
    info.metadata = { ...errorInfo.metadata };
  }
  const retry = err.findDetails(RetryInfoSchema)[0];
  if (retry?.retryDelay !== undefined) {
    const { seconds, nanos } = retry.retryDelay;
    info.retryDelayMs = Number(seconds) * 1000 + Math.round(nanos / 1_000_000);
  }
  const resource = err.findDetails(ResourceInfoSchema)[0];
  if (resource !== undefined) {
    info.resource = { type: resource.resourceType, name: resource.resourceName };
  }
  return info;
}

/** The field violations an error carries (INVALID_ARGUMENT from OPTIX); [] when there are none
 * or the details cannot be decoded. */
export function fieldViolations(error: unknown): FieldViolation[] {
  return ConnectError.from(error)
    .findDetails(BadRequestSchema)
    .flatMap((bad) =>
      bad.fieldViolations.map(({ field, description }) => ({ field, description })),
    );
}

/** Whether a stream that ended with `error` is worth opening again (after a backoff): the server
 * went away or asked for it (UNAVAILABLE, as on its shutdown), the token needs refreshing
 * (UNAUTHENTICATED), the deadline passed, or the connection broke on its way. connect-es reports
 * a dropped connection as UNKNOWN, and a response cut before its trailer (what Envoy sends when
 * the replica behind it vanished mid-stream) as "missing trailer" (UNKNOWN or INTERNAL); an
 * INTERNAL the server itself sent is not retried. */
export function reconnectable(error: unknown): boolean {
  const err = ConnectError.from(error);
  switch (err.code) {
    case Code.Unavailable:
    case Code.Unauthenticated:
    case Code.Unknown:
    case Code.DeadlineExceeded:
      return true;
    case Code.Internal:
      return /missing trailer|RST_STREAM/i.test(err.rawMessage);
    default:
      return false;
  }
}
