// Unit tests of the error helper (node:test): every google.rpc detail OPTIX servers attach
// (grpc_errors.py: ErrorInfo, BadRequest, ResourceInfo, RetryInfo) is decoded from the
// grpc-status-details-bin trailer exactly as it arrives over grpc-web.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { fieldViolations, optixError, reconnectable } from "../errors.js";


function pack<D extends DescMessage>(desc: D, init: MessageInitShape<D>) {
  return anyPack(desc, create(desc, init));
}

/** The ConnectError connect-es makes from a trailer carrying `google.rpc.Status`. */
function fromTrailer(code: Code, message: string, details: ReturnType<typeof pack>[]): ConnectError {
  const status = create(StatusSchema, { code, message, details });
  const bin = Buffer.from(toBinary(StatusSchema, status)).toString("base64").replace(/=+$/, "");
  const trailer = new Headers({
    "grpc-status": String(code),
    "grpc-message": encodeURIComponent(message),
    "grpc-status-details-bin": bin,
  });
  const error = findTrailerError(trailer);
  assert.ok(error instanceof ConnectError);
  return error;
}

test("BadRequest: field violations in order, and the ErrorInfo reason", () => {
  const error = fromTrailer(Code.InvalidArgument, "the request has invalid fields", [
    pack(ErrorInfoSchema, { reason: "INVALID_ARGUMENT", domain: "optix.dev" }),
    pack(BadRequestSchema, {
      fieldViolations: [
        { field: "email", description: "must be an email address" },
        { field: "symbols[2]", description: "unknown symbol" },
      ],
    }),
  ]);
  const info = optixError(error);
  assert.equal(info.code, Code.InvalidArgument);
  assert.equal(info.codeName, "INVALID_ARGUMENT");
  assert.equal(info.message, "the request has invalid fields");
  assert.deepEqual(info.fieldViolations, [
    { field: "email", description: "must be an email address" },
    { field: "symbols[2]", description: "unknown symbol" },
  ]);
  assert.equal(info.reason, "INVALID_ARGUMENT");
  assert.equal(info.domain, "optix.dev");
  assert.deepEqual(info.metadata, {});
  assert.equal(info.retryDelayMs, undefined);
  assert.equal(info.resource, undefined);
  assert.deepEqual(fieldViolations(error), info.fieldViolations);
});

test("ErrorInfo: reason, domain and metadata", () => {
  const info = optixError(
    fromTrailer(Code.Unauthenticated, "bad credentials", [
      pack(ErrorInfoSchema, {
        reason: "INVALID_CREDENTIALS",
        domain: "optix.dev",
        metadata: { attempts: "3" },
      }),
    ]),
  );
  assert.equal(info.codeName, "UNAUTHENTICATED");
  assert.equal(info.reason, "INVALID_CREDENTIALS");
  assert.equal(info.domain, "optix.dev");
  assert.deepEqual(info.metadata, { attempts: "3" });
  assert.deepEqual(info.fieldViolations, []);
});

test("RetryInfo: the delay in milliseconds", () => {
  const info = optixError(
    fromTrailer(Code.ResourceExhausted, "slow down", [
      pack(ErrorInfoSchema, { reason: "RATE_LIMITED", domain: "optix.dev" }),
      pack(RetryInfoSchema, { retryDelay: { seconds: 2n, nanos: 500_000_000 } }),
    ]),
  );
  assert.equal(info.codeName, "RESOURCE_EXHAUSTED");
  assert.equal(info.retryDelayMs, 2500);
  assert.equal(info.reason, "RATE_LIMITED");
});

test("ResourceInfo: what was not found", () => {
  const info = optixError(
    fromTrailer(Code.NotFound, "no such watchlist", [
      pack(ErrorInfoSchema, { reason: "NOT_FOUND", domain: "optix.dev" }),
      pack(ResourceInfoSchema, { resourceType: "watchlist", resourceName: "watchlists/42" }),
    ]),
  );
  assert.equal(info.codeName, "NOT_FOUND");
  assert.deepEqual(info.resource, { type: "watchlist", name: "watchlists/42" });
});

test("no details, a malformed detail, and a plain Error", () => {
  const bare = optixError(new ConnectError("down", Code.Unavailable));
  assert.equal(bare.codeName, "UNAVAILABLE");
  assert.equal(bare.message, "down");
  assert.deepEqual(bare.fieldViolations, []);
  assert.equal(bare.reason, undefined);

  const broken = new ConnectError("bad", Code.InvalidArgument);
  broken.details.push({ type: "google.rpc.BadRequest", value: new Uint8Array([0x0a, 0x05, 0x01]) });
  broken.details.push({
    type: "google.rpc.BadRequest",
    value: toBinary(
      BadRequestSchema,
      create(BadRequestSchema, { fieldViolations: [{ field: "name", description: "empty" }] }),
    ),
  });
  assert.deepEqual(optixError(broken).fieldViolations, [{ field: "name", description: "empty" }]);

  const plain = optixError(new Error("boom"));
  assert.equal(plain.code, Code.Unknown);
  assert.equal(plain.message, "boom");
});

test("reconnectable: server went away or connection broke, not the server's own verdicts", () => {
  for (const code of [Code.Unavailable, Code.Unauthenticated, Code.Unknown, Code.DeadlineExceeded]) {
    assert.equal(reconnectable(new ConnectError("gone", code)), true, Code[code]);
  }
  // A body cut before its trailer, however connect-es words or codes it.
  assert.equal(reconnectable(new ConnectError("protocol error: missing trailer", Code.Internal)), true);
  assert.equal(reconnectable("missing trailer"), true);
  assert.equal(reconnectable(new TypeError("network error")), true);
  for (const code of [Code.Internal, Code.InvalidArgument, Code.NotFound, Code.PermissionDenied]) {
    assert.equal(reconnectable(new ConnectError("internal error", code)), false, Code[code]);
  }
});

