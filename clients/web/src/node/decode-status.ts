// Decodes google.rpc.Status trailers with the web client's error helper, for tests that build them
// with the Python server's own code (tests/clients/test_web_errors.py).
// stdin: JSON list of {code, message, details_bin}; stdout: JSON list of optixError(...) results.
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { optixError } from "../errors.js";

interface Trailer {
  code: number;
  message: string;
  details_bin: string;
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const decoded = (JSON.parse(input) as Trailer[]).map((trailer) =>
  optixError(
    findTrailerError(
      new Headers({
        "grpc-status": String(trailer.code),
        "grpc-message": encodeURIComponent(trailer.message),
        "grpc-status-details-bin": trailer.details_bin,
      }),
    ),
  ),
);
process.stdout.write(`${JSON.stringify(decoded)}\n`);
