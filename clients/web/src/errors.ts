// Reading `google.rpc` error details out of a ConnectError. The generated code has no
// google/rpc types, so google.rpc.BadRequest (two nested string fields) is decoded by hand.
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { ConnectError } from "@connectrpc/connect";

/** One `google.rpc.BadRequest.FieldViolation`: which request field is wrong, and why. */
export interface FieldViolation {
  field: string;
  description: string;
}

const BAD_REQUEST = "google.rpc.BadRequest";

/** Decodes `FieldViolation { string field = 1; string description = 2; }`. */
function decodeViolation(bytes: Uint8Array): FieldViolation {
  const reader = new BinaryReader(bytes);
  const violation: FieldViolation = { field: "", description: "" };
  while (reader.pos < reader.len) {
    const [no, type] = reader.tag();
    if (no === 1 && type === WireType.LengthDelimited) violation.field = reader.string();
    else if (no === 2 && type === WireType.LengthDelimited) violation.description = reader.string();
    else reader.skip(type, no);
  }
  return violation;
}

/** Decodes `BadRequest { repeated FieldViolation field_violations = 1; }`. */
function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const reader = new BinaryReader(bytes);
  const violations: FieldViolation[] = [];
  while (reader.pos < reader.len) {
    const [no, type] = reader.tag();
    if (no === 1 && type === WireType.LengthDelimited) violations.push(decodeViolation(reader.bytes()));
    else reader.skip(type, no);
  }
  return violations;
}

/** The field violations an error carries (INVALID_ARGUMENT from OPTIX); [] when there are none
 * or the details cannot be decoded. */
export function fieldViolations(error: unknown): FieldViolation[] {
  const violations: FieldViolation[] = [];
  for (const detail of ConnectError.from(error).details) {
    if (!("type" in detail) || detail.type !== BAD_REQUEST) continue;
    try {
      violations.push(...decodeBadRequest(detail.value));
    } catch {
      // A malformed detail is not worth failing over: the caller falls back to the message.
    }
  }
  return violations;
}
