// Benchmark driver: many concurrent server-streaming gRPC calls from one Node process, so the
// load generator costs far less CPU per message than the server it measures (grpc-js hands
// each message over as raw bytes; nothing is decoded here). Python decodes the log afterwards.
//
// Usage: node fanout.mjs --address HOST:PORT --method /pkg.Service/Method --request HEX
//   --clients N --channels C --warmup S --measure S --grace S --out FILE [--token JWT]
// Prints JSON lines: {"started": N} once every stream has its first message, then
// {"window": [start, end]} (epoch seconds) and finally {"done": messages} after FILE is written.
// FILE holds one record per message received inside the run after warm-up:
// u32 client index, f64 arrival (epoch seconds), u32 length, message bytes (little endian).
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";

type Args = Record<string, string>;

function parseArgs(argv: string[]): Args {
  const args: Args = {};
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, "")] = argv[i + 1] ?? "";
  return args;
}

function emit(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

const nowSeconds = (): number => (performance.timeOrigin + performance.now()) / 1000;
const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const identity = (buffer: Buffer): Buffer => buffer;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const clients = Number(args.clients);
  const request = Buffer.from(args.request, "hex");
  const metadata = new grpc.Metadata();
  if (args.token) metadata.set("authorization", `Bearer ${args.token}`);
  // One HTTP/2 connection per channel: distinct options keep grpc-js from sharing them.
  const channels = Array.from(
    { length: Math.min(Number(args.channels), clients) },
    (_, i) =>
      new grpc.Client(args.address, grpc.credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
        "optix.bench.channel": i,
      }),
  );
  const records: Buffer[] = [];
  let recordFrom = Number.POSITIVE_INFINITY;
  let started = 0;
  let allStarted: () => void = () => {};
  const everyoneStarted = new Promise<void>((resolve) => {
    allStarted = resolve;
  });
  const failures: string[] = [];
  const calls = Array.from({ length: clients }, (_, index) => {
    const call = channels[index % channels.length].makeServerStreamRequest(
      args.method,
      identity,
      identity,
      request,
      metadata,
    );
    let first = true;
    call.on("data", (message: Buffer) => {
      const arrived = nowSeconds();
      if (first) {
        first = false;
        started += 1;
        if (started === clients) allStarted();
      }
      if (arrived < recordFrom) return;
      const head = Buffer.allocUnsafe(16);
      head.writeUInt32LE(index, 0);
      head.writeDoubleLE(arrived, 4);
      head.writeUInt32LE(message.length, 12);
      records.push(head, message);
    });
    call.on("error", (error: grpc.ServiceError) => {
      if (error.code !== grpc.status.CANCELLED) failures.push(`${index}: ${error.message}`);
    });
    return call;
  });
  const startTimeout = setTimeout(() => {
    emit({ error: `only ${started} of ${clients} streams started`, failures: failures.slice(0, 5) });
    process.exit(1);
  }, 120_000);
  await everyoneStarted;
  clearTimeout(startTimeout);
  emit({ started });
  await sleep(Number(args.warmup)); // a load test's fixed duration, not a wait for an event
  const windowStart = nowSeconds();
  recordFrom = windowStart;
  const windowEnd = windowStart + Number(args.measure);
  emit({ window: [windowStart, windowEnd] });
  await sleep(Number(args.measure) + Number(args.grace));
  for (const call of calls) call.cancel();
  for (const channel of channels) channel.close();
  writeFileSync(args.out, Buffer.concat(records));
  if (failures.length) emit({ failures: failures.slice(0, 5), count: failures.length });
  emit({ done: records.length / 2 });
}

main().catch((error: unknown) => {
  emit({ error: String(error) });
  process.exit(1);
});
