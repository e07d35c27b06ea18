// Test driver: runs one grpc-web scenario against the edge and prints one JSON object per line,
// flushed as things happen, so the Python tests can watch messages arrive one by one.
import { Code, ConnectError } from "@connectrpc/connect";
import { createNodeClients } from "./transport.js";

type Args = Record<string, string>;

function parseArgs(argv: string[]): { command: string; args: Args } {
  const [command = "", ...rest] = argv;
  const args: Args = {};
  for (let i = 0; i < rest.length; i += 2) args[rest[i].replace(/^--/, "")] = rest[i + 1] ?? "";
  return { command, args };
}

function emit(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

function errorRecord(error: unknown): Record<string, unknown> {
  const e = ConnectError.from(error);
  return { error: { code: Code[e.code], message: e.rawMessage } };
}

async function main(): Promise<void> {
  const { command, args } = parseArgs(process.argv.slice(2));
  const clients = createNodeClients(args.edge);
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  const signIn = async () => {
    if (args.register === "1") await clients.register(args.email, args.password, "probe");
    else await clients.signIn(args.email, args.password);
  };
  switch (command) {
    case "register": {
      await clients.register(args.email, args.password, args.name ?? "");
      const me = await clients.user.getMe({});
      emit({ ok: true, user: me.user?.name, email: me.user?.email });
      break;
    }
    case "login": {
      await clients.signIn(args.email, args.password);
      const jwks = await clients.user.getJwks({});
      emit({ ok: true, keys: jwks.keys.length, signedIn: clients.session.signedIn });
      break;
    }
    case "quote": {
      await signIn();
      const reply = await clients.marketdata.getQuote({ symbol: args.symbol });
      emit({ ok: true, symbol: reply.quote?.symbol, last: reply.quote?.last });
      break;
    }
    case "stream": {
      // Reads until `count` messages arrived or `seconds` passed, then cancels the call.
      await signIn();
      const abort = new AbortController();
      const count = Number(args.count ?? "3");
      const limitMs = Number(args.seconds ?? "0") * 1000;
      const heartbeat = Number(args.heartbeat ?? "0");
      const request = {
        symbols: args.symbols.split(","),
        ...(heartbeat > 0 ? { heartbeatInterval: { seconds: BigInt(heartbeat), nanos: 0 } } : {}),
      };
      let received = 0;
      emit({ started: true, t: elapsed() });
      try {
        for await (const message of clients.marketdata.streamQuotes(request, {
          signal: abort.signal,
        })) {
          received += 1;
          const quotes =
            message.payload.case === "quotes"
              ? message.payload.value.quotes.map((q) => ({ symbol: q.symbol, seq: Number(q.sequence) }))
              : [];
          emit({ message: received, kind: message.payload.case, quotes, t: elapsed() });
          const done = limitMs > 0 ? elapsed() >= limitMs : received >= count;
          if (done) {
            abort.abort();
            break;
          }
        }
        emit({ end: "client-cancelled", received, t: elapsed() });
      } catch (error) {
        const e = ConnectError.from(error);
        if (e.code === Code.Canceled && abort.signal.aborted) {
          emit({ end: "client-cancelled", received, t: elapsed() });
        } else {
          emit({ ...errorRecord(error), received, t: elapsed() });
        }
      }
      break;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main().catch((error: unknown) => {
  emit(errorRecord(error));
  process.exitCode = 1;
});
