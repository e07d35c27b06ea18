"""Watchlist benchmark (h2load, loopback only, ~2 min): GetWatchlist WITH_QUOTES (50 symbols) vs
the BatchGetQuotes call it wraps, with market data in the same process and in another one;
GetWatchlist BASIC vs GetMe; then 20 concurrent AddSymbols writers with etags on one list
(conflicts counted, no update lost). Prints ratios against baselines measured in the same run."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
from google.protobuf.message import Message

from optix.marketdata.v1 import marketdata_service_pb2 as md
from optix.user.v1 import user_service_pb2 as users
from optix.watchlist.v1 import watchlist_pb2
from optix.watchlist.v1 import watchlist_service_pb2 as wl
from optix_client import OptixClient, OptixError, StaticTokenCredentials
from tests.bench.bench_edge import grpc_frame
from tests.e2e.stack import BIN, REPO, LogPump, free_port, wait_until_serving

DURATION_S = 3
WARMUP_S = 1
# Targets are measured in interleaved rounds and each keeps its best round: on a shared 2-core
# machine, other processes steal CPU from whichever run they overlap, not from a target.
ROUNDS = 3
CONNECTIONS = 4
STREAMS_PER_CONNECTION = 8
# h2load counts HTTP 200s, and a gRPC error or a GetWatchlist without its quotes is one too: a
# real client samples every target while it is loaded and checks each answer it gets.
SAMPLE_INTERVAL_S = 0.1
MS = 1000.0

LIST_SYMBOLS = 50
WRITERS = 20
SYMBOLS_PER_WRITER = 3
# Ten built-in tickers plus SIM00..SIM59: every symbol the benchmark uses has a quote.
EXTRA_TICKERS = tuple(f"SIM{i:02d}" for i in range(WRITERS * SYMBOLS_PER_WRITER))
BUILT_IN = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD", "SPY", "QQQ")
UNIVERSE = ",".join((*BUILT_IN, *EXTRA_TICKERS))
LIST_OF_50 = (*BUILT_IN, *EXTRA_TICKERS[: LIST_SYMBOLS - len(BUILT_IN)])
MAX_ATTEMPTS_PER_SYMBOL = 500

PASSWORD = "Blue-Harbor-Lantern-42"
BATCH_GET_QUOTES = "/optix.marketdata.v1.MarketDataService/BatchGetQuotes"
GET_WATCHLIST = "/optix.watchlist.v1.WatchlistService/GetWatchlist"
GET_ME = "/optix.user.v1.UserService/GetMe"
SERVER_ENV = {
    "OPTIX_LOG_LEVEL": "WARNING",
    "OPTIX_SHUTDOWN_GRACE_SECONDS": "1",
    "OPTIX_MARKETDATA_UNIVERSE": UNIVERSE,
    "OPTIX_USER_BCRYPT_COST": "4",
}
BATCH_SAME = "BatchGetQuotes(50), same process"
QUOTED_SAME = "GetWatchlist WITH_QUOTES(50), same process"
BATCH_MD = "BatchGetQuotes(50), on the market data process"
QUOTED_SPLIT = "GetWatchlist WITH_QUOTES(50), md in another process"
ME = "GetMe"
BASIC = "GetWatchlist BASIC(50)"
# Ratio line: (measured, baseline, goal for measured / baseline QPS).
RATIOS = {
    "WITH_QUOTES / BatchGetQuotes, same process": (QUOTED_SAME, BATCH_SAME, 0.5),
    "WITH_QUOTES / BatchGetQuotes, md in another process": (QUOTED_SPLIT, BATCH_MD, 0.35),
    "GetWatchlist BASIC / GetMe": (BASIC, ME, 0.7),
}


@dataclass(frozen=True)
class Result:
    """One h2load run: requests per second and latency percentiles, plus the sampled answers."""

    qps: float
    p50_ms: float
    p99_ms: float
    succeeded: int
    failed: int
    sampled: int = 0
    # Sampled answers that were gRPC errors or incomplete (see Target.check).
    bad: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """One measured call: where it goes, its framed request, and what a full answer is."""

    address: str
    path: str
    body: bytes
    token: str
    # What is wrong with a serialized answer, or None when it is complete.
    check: Callable[[bytes], str | None]

    @property
    def url(self) -> str:
        """The URL h2load posts to."""
        return f"http://{self.address}{self.path}"


@dataclass(frozen=True)
class Server:
    """A started `optix serve` and its captured output."""

    proc: subprocess.Popen[bytes]
    logs: LogPump
    address: str


@dataclass
class Samples:
    """A target's sampled answers over all its runs."""

    sampled: int = 0
    bad: list[str] = field(default_factory=list)

    def add(self, result: Result) -> None:
        """Count one run's samples."""
        self.sampled += result.sampled
        self.bad += result.bad


@dataclass
class WriterStats:
    """What the concurrent writers saw."""

    conflicts: int = 0
    attempts: int = 0
    latencies: list[float] = field(default_factory=list)


def h2load(target: Target) -> Result:
    """Drive unary gRPC load at `target` for DURATION_S seconds and read QPS and latencies,
    while a real client samples the answers."""
    stop, sampled, bad = threading.Event(), [0], list[str]()
    sampler = threading.Thread(target=_sample, args=(target, stop, sampled, bad), daemon=True)
    sampler.start()
    try:
        result = _h2load(target)
    finally:
        stop.set()
        sampler.join(15)
    return replace(result, sampled=sampled[0], bad=bad)


def _sample(target: Target, stop: threading.Event, sampled: list[int], bad: list[str]) -> None:
    metadata = (("authorization", f"Bearer {target.token}"),)
    with grpc.insecure_channel(target.address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(target.path)
        while not stop.wait(SAMPLE_INTERVAL_S):
            sampled[0] += 1
            try:
                problem = target.check(call(target.body[5:], metadata=metadata, timeout=10))
            except grpc.RpcError as error:
                problem = f"{error.code().name}: {error.details()}"  # type: ignore[attr-defined]
            if problem is not None:
                bad.append(problem)


def _h2load(target: Target) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        data, log = Path(tmp) / "body.bin", Path(tmp) / "log.tsv"
        data.write_bytes(target.body)
        argv = [
            "h2load", target.url, "--data", str(data), "-c", str(CONNECTIONS),
            "-m", str(STREAMS_PER_CONNECTION), "-t", "1",
            "--duration", str(DURATION_S), "--warm-up-time", str(WARMUP_S),
            "--log-file", str(log),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            "-H", f"authorization: Bearer {target.token}",
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=DURATION_S + 60)
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed: {done.stderr or done.stdout}")
        # Each log line: start time (µs since epoch), HTTP status, elapsed (µs).
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    ok = sorted(int(r[2]) for r in rows if r[1] == "200")
    if not ok:
        raise RuntimeError(f"no successful requests at {target.url}")
    return Result(
        qps=len(ok) / DURATION_S,
        p50_ms=ok[len(ok) // 2] / MS,
        p99_ms=ok[min(len(ok) - 1, int(len(ok) * 0.99))] / MS,
        succeeded=len(ok),
        failed=len(rows) - len(ok),
    )


def start_server(var_dir: Path, env: Mapping[str, str]) -> Server:
    """`optix serve` on a free port of its own (not port 0: with port 0 the in-process
    watchlist -> market data stub would dial port 0), without waiting for it."""
    port = free_port()
    child_env = {**os.environ, **SERVER_ENV, "OPTIX_VAR_DIR": str(var_dir), **env}
    child_env["OPTIX_PORT"] = str(port)
    child_env.pop("OPTIX_DATABASE_URL", None)
    child_env.pop("OPTIX_REDIS_URL", None)
    proc = subprocess.Popen(
        [str(BIN / "optix"), "serve", "--host", "127.0.0.1"],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    logs = LogPump()
    threading.Thread(target=logs.run, args=(proc.stdout,), daemon=True).start()
    return Server(proc, logs, f"127.0.0.1:{port}")


@contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Wait until every server answers SERVING; stop them all on exit."""
    try:
        for server in servers:
            wait_until_serving(server.address, server.logs, server.proc)
        yield
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.proc.terminate()
        for server in servers:
            try:
                server.proc.wait(15)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(5)


async def prepare_user(address: str, email: str) -> tuple[str, str]:
    """Register a user with a 50-symbol list; returns its access token and the list's name."""
    async with OptixClient(address) as client:
        await client.register(email, PASSWORD)
        created = await client.watchlist.CreateWatchlist(
            wl.CreateWatchlistRequest(
                parent="users/me",
                watchlist=watchlist_pb2.Watchlist(
                    display_name="bench 50",
                    items=[watchlist_pb2.WatchlistItem(symbol=s) for s in LIST_OF_50],
                ),
            )
        )
        token = client.tokens.session.access_token
    assert token is not None
    assert len(created.watchlist.items) == LIST_SYMBOLS
    return token, created.watchlist.name


def call_raw(address: str, path: str, body: bytes, token: str) -> bytes:
    """One call with a real gRPC client (h2load only sees HTTP 200): the serialized answer."""
    with grpc.insecure_channel(address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
        answer: bytes = call(body[5:], metadata=(("authorization", f"Bearer {token}"),), timeout=10)
        return answer


def make_target(
    address: str,
    path: str,
    request: Message,
    token: str,
    check: Callable[[bytes], str | None] = lambda answer: None,
) -> Target:
    """A Target whose request was proven to give a complete answer."""
    target = Target(address, path, grpc_frame(request.SerializeToString()), token, check)
    problem = check(call_raw(address, path, target.body, token))
    if problem is not None:
        raise AssertionError(f"{path}: {problem}")
    return target


def _all_quoted(answer: bytes) -> str | None:
    reply = md.BatchGetQuotesResponse.FromString(answer)
    if len(reply.quotes) != LIST_SYMBOLS:
        return f"{len(reply.quotes)} quotes, missing {list(reply.missing_symbols)}"
    return None


def _check_list(view: watchlist_pb2.WatchlistView.ValueType) -> Callable[[bytes], str | None]:
    want = LIST_SYMBOLS if view == watchlist_pb2.WATCHLIST_VIEW_WITH_QUOTES else 0

    def check(answer: bytes) -> str | None:
        reply = wl.GetWatchlistResponse.FromString(answer)
        quoted = sum(item.HasField("quote") for item in reply.watchlist.items)
        if len(reply.watchlist.items) != LIST_SYMBOLS or quoted != want:
            return (
                f"{len(reply.watchlist.items)} items, {quoted} quoted"
                f" (quotes_unavailable={reply.quotes_unavailable})"
            )
        return None

    return check


def quotes_target(address: str, token: str) -> Target:
    """BatchGetQuotes for the 50 symbols; complete when it returns 50 quotes."""
    request = md.BatchGetQuotesRequest(symbols=LIST_OF_50)
    return make_target(address, BATCH_GET_QUOTES, request, token, _all_quoted)


def watchlist_target(
    address: str, token: str, name: str, view: watchlist_pb2.WatchlistView.ValueType
) -> Target:
    """GetWatchlist of the 50-symbol list; complete with 50 items, each quoted for WITH_QUOTES."""
    request = wl.GetWatchlistRequest(name=name, view=view)
    return make_target(address, GET_WATCHLIST, request, token, _check_list(view))


# --- concurrent writers ----------------------------------------------------------------------


async def _writer(
    client: OptixClient, name: str, symbols: Sequence[str], go: asyncio.Event, stats: WriterStats
) -> None:
    """Add `symbols` one at a time, each conditional on the etag last seen; on ABORTED,
    re-read the list and retry."""
    read = wl.GetWatchlistRequest(name=name)
    etag = (await client.watchlist.GetWatchlist(read)).watchlist.etag
    await go.wait()
    for symbol in symbols:
        for _ in range(MAX_ATTEMPTS_PER_SYMBOL):
            stats.attempts += 1
            began = time.perf_counter()
            try:
                reply = await client.watchlist.AddSymbols(
                    wl.AddSymbolsRequest(name=name, symbols=[symbol], etag=etag)
                )
            except OptixError as error:
                if error.code != grpc.StatusCode.ABORTED:
                    raise
                stats.conflicts += 1
                etag = (await client.watchlist.GetWatchlist(read)).watchlist.etag
                continue
            stats.latencies.append(time.perf_counter() - began)
            etag = reply.watchlist.etag
            break
        else:
            raise RuntimeError(f"{symbol}: still conflicting after {MAX_ATTEMPTS_PER_SYMBOL} tries")


async def run_writers(address: str, token: str) -> None:
    """WRITERS clients, each on its own connection, add distinct symbols to one list at once;
    every symbol must be in the list at the end."""
    async with OptixClient(address, credentials=StaticTokenCredentials(token)) as owner:
        created = await owner.watchlist.CreateWatchlist(
            wl.CreateWatchlistRequest(
                parent="users/me", watchlist=watchlist_pb2.Watchlist(display_name="writers")
            )
        )
        name = created.watchlist.name
        clients = [
            OptixClient(address, credentials=StaticTokenCredentials(token)) for _ in range(WRITERS)
        ]
        shares = [
            EXTRA_TICKERS[i * SYMBOLS_PER_WRITER : (i + 1) * SYMBOLS_PER_WRITER]
            for i in range(WRITERS)
        ]
        stats, go = WriterStats(), asyncio.Event()
        try:
            tasks = [
                asyncio.create_task(_writer(c, name, share, go, stats))
                for c, share in zip(clients, shares, strict=True)
            ]
            await asyncio.sleep(0.5)  # let every writer read its first etag
            began = time.perf_counter()
            go.set()
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - began
        finally:
            for client in clients:
                await client.close()
        final = await owner.watchlist.GetWatchlist(wl.GetWatchlistRequest(name=name))
    present = [item.symbol for item in final.watchlist.items]
    wanted = [s for share in shares for s in share]
    lost = sorted(set(wanted) - set(present))
    writes = len(stats.latencies)
    print(
        f"  {WRITERS} writers x {SYMBOLS_PER_WRITER} AddSymbols with etags on one list: "
        f"{writes} writes in {elapsed:.2f} s ({writes / elapsed:.0f}/s), "
        f"{stats.attempts} attempts, {stats.conflicts} ABORTED conflicts (re-read, retried)"
    )
    print(
        f"  AddSymbols (successful attempt) p50 {statistics.median(stats.latencies) * MS:.1f} ms"
        f"   p99 {_p99(stats.latencies) * MS:.1f} ms"
    )
    verdict = "none" if not lost and len(present) == len(set(present)) == len(wanted) else lost
    print(f"  lost updates: {verdict} (list holds {len(present)} of {len(wanted)} symbols)")
    if verdict != "none":
        raise AssertionError(f"lost updates: {lost}; list: {present}")


def _p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# --- report ----------------------------------------------------------------------------------


def _errors(server: Server) -> list[str]:
    """Lines the server logged at ERROR level (or above) so far."""
    return [line for line in server.logs.lines if "[error" in line or "[critical" in line]


def _line(name: str, result: Result, samples: Samples) -> str:
    flag = f"   INCOMPLETE ANSWERS: {sorted(set(samples.bad))[:3]}" if samples.bad else ""
    return (
        f"  {name:<52} {result.qps:7.0f} req/s   p50 {result.p50_ms:6.2f} ms"
        f"   p99 {result.p99_ms:6.2f} ms   ({result.succeeded} ok, {result.failed} failed;"
        f" {len(samples.bad)} of {samples.sampled} sampled incomplete){flag}"
    )


def _ratio(name: str, top: Result, bottom: Result, goal: float) -> str:
    ratio = top.qps / bottom.qps
    verdict = "met" if ratio >= goal else "NOT MET"
    return (
        f"  {name:<52} {ratio:5.2f}x (goal >= {goal:.2f}x, {verdict})"
        f"   p50 {top.p50_ms / bottom.p50_ms:5.2f}x   p99 {top.p99_ms / bottom.p99_ms:5.2f}x"
    )


def main() -> None:
    """Start the servers, measure the interleaved rounds, run the writers, print the ratios."""
    if shutil.which("h2load") is None:
        print("bench_watchlist: h2load not found (apt-get install nghttp2-client); skipped")
        return
    with ExitStack() as stack:
        var = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="optix-bench-wl-")))
        # One process with user, market data and watchlist, and a split pair sharing one var dir
        # (so one keyring): market data alone, and user + watchlist calling it at its address.
        single = start_server(var / "single", {"OPTIX_SERVICES": "user,marketdata,watchlist"})
        market = start_server(var / "split", {"OPTIX_SERVICES": "marketdata"})
        stack.enter_context(running(single, market))
        front = start_server(
            var / "split",
            {"OPTIX_SERVICES": "user,watchlist", "OPTIX_MARKETDATA_ADDRESS": market.address},
        )
        stack.enter_context(running(front))
        token, name = asyncio.run(prepare_user(single.address, "bench-wl@example.com"))
        split_token, split_name = asyncio.run(prepare_user(front.address, "bench-wl2@example.com"))
        quoted, basic = watchlist_pb2.WATCHLIST_VIEW_WITH_QUOTES, watchlist_pb2.WATCHLIST_VIEW_BASIC
        targets = {
            BATCH_SAME: quotes_target(single.address, token),
            QUOTED_SAME: watchlist_target(single.address, token, name, quoted),
            BATCH_MD: quotes_target(market.address, split_token),
            QUOTED_SPLIT: watchlist_target(front.address, split_token, split_name, quoted),
            ME: make_target(single.address, GET_ME, users.GetMeRequest(), token),
            BASIC: watchlist_target(single.address, token, name, basic),
        }
        best: dict[str, Result] = {}
        samples: dict[str, Samples] = {label: Samples() for label in targets}
        for _ in range(ROUNDS):
            for label, target in targets.items():
                result = h2load(target)
                samples[label].add(result)
                if label not in best or result.qps > best[label].qps:
                    best[label] = result
        print(
            f"bench_watchlist (h2load, {CONNECTIONS}x{STREAMS_PER_CONNECTION} streams, "
            f"best of {ROUNDS} interleaved {DURATION_S}s runs; answers sampled during all runs)"
        )
        for label in targets:
            print(_line(label, best[label], samples[label]))
        for label, (top, bottom, goal) in RATIOS.items():
            print(_ratio(label, best[top], best[bottom], goal))
        asyncio.run(run_writers(single.address, token))
        errors = [line.strip() for s in (single, market, front) for line in _errors(s)]
        print(
            f"  errors in the servers' logs: {len(errors)}"
            + (f", first: {errors[0]}" if errors else "")
        )


if __name__ == "__main__":
    main()
