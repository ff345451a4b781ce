#!/usr/bin/env python3
"""Reaction time: from a whale's WebSocket notification leaving the local node to our signed swap arriving at it.

The real path: LocalSolana (LiteSVM) and LocalJupiter answer at once from their own process (so
their aiohttp servers do not share our event loop or count as our time); in this process the
SolanaWatcher gets the logsNotification, fetches and parses the whale's transaction; a follow
strategy (PluginHost) submits a buy; the RiskEngine approves and journals it (SQLite commit); the
OrderRouter hands it to the `jupiter` executor, which quotes, builds, signs, fsyncs its sent-log
line and sends. Each run is a new real whale swap on the local chain. The clock starts just before
the node writes the notification frame and stops when its sendTransaction handler is entered
(time.perf_counter is CLOCK_MONOTONIC, one clock for both processes on Linux).

Reported per run (µs): total; time the local endpoints spent on requests on that path (from
their HTTP handler's entry to its return, JSON parsing and rendering included: their work, not
ours; aiohttp's own HTTP framing on their side is still counted as ours); our own overhead =
total - endpoint time; the journal commit (the store transaction around reserve + journal); the
executor's sent-log fsync. "Without the commit" is own overhead minus the commit time. CPU: the CPU time
this process (every thread: the store's too) used from the whale's swap until our sendTransaction call; the
rest of "own overhead" is waiting (loopback transport, wake-ups, the disk). The floor: one bare getSlot
through the same RPC pool, handler included (the path makes four such calls: getTransaction, quote, swap,
sendTransaction), and the same request on a plain aiohttp session.

    .venv/bin/python scripts/bench/reaction.py [--runs 1000] [--warmup 50] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from quantbot.api import Event, OrderIntent, PluginConfig, PluginEnv, SigningKey, Strategy, StrategyContext, Swap
from quantbot.bus import EventBus
from quantbot.chains.solana.parser import SolanaParser
from quantbot.chains.solana.rpc import SolanaRpcPool
from quantbot.chains.solana.watcher import SolanaWatcher
from quantbot.clock import WallClock
from quantbot.config import (
    OrdersConfig,
    RiskConfig,
    SizingConfig,
    SolanaConfig,
    SolanaEndpointConfig,
    SolanaWalletConfig,
)
from quantbot.hosting import Overflow, PluginHost
from quantbot.localnet.jupiter import LocalJupiter
from quantbot.localnet.solana import LocalSolana
from quantbot.logs import setup_logging
from quantbot.orders import OrderRouter, Sealer
from quantbot.portfolio import Portfolio
from quantbot.risk import RiskEngine
from quantbot.sizing import Sizer
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import make_plugin
from quantbot_executors import durable
from quantbot_executors.jupiter import JupiterExecutor

LIMITS = RiskConfig(
    max_order_usd=Decimal(10) ** 6,
    max_order_sol=Decimal(10),
    daily_notional_usd=Decimal(10) ** 12,
    max_open_positions=10_000,
    max_exposure_sol=Decimal(10) ** 6,
    max_orders_per_minute=10**9,
    token_cooldown_s=0,
    max_exposure_pct=Decimal(100),
    min_pool_liquidity_sol=Decimal(0),
    duplicate_window_s=0,
)


class FollowConfig(PluginConfig, frozen=True, kw_only=True):
    token: str
    leader: str


class Follow(Strategy):
    Config = FollowConfig
    config: FollowConfig

    def topics(self) -> tuple[str, ...]:
        return ("chain.*.swap",)

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        if not isinstance(event, Swap) or event.wallet != self.config.leader:
            return  # (the local pool's authority co-signs every swap, so its side is a Swap of the same tx too)
        await ctx.submit(
            OrderIntent(
                chain="solana",
                intent_id=f"follow-{event.tx}",
                strategy="follow",
                side="buy",
                token=self.config.token,
                amount=10**6,
                notional_usd=Decimal(1),
                leader=event.wallet,
            )
        )


class Window:
    """The endpoint process's view of one run: t0 (notification written), t1 (our send arrived)."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.t1: float | None = None
        self.requests: list[tuple[float, float]] = []

    def reset(self) -> None:
        self.t0 = self.t1 = None
        self.requests = []

    def endpoint_time(self) -> float:
        """Seconds inside the endpoints' handlers between t0 and t1 (overlapping requests counted once)."""
        assert self.t0 is not None and self.t1 is not None  # noqa: S101
        return covered(self.requests, self.t0, self.t1)


def covered(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Length of the union of `intervals` clipped to [lo, hi]."""
    total, reach = 0.0, lo
    for start, end in sorted(intervals):
        start, end = max(start, reach), min(end, hi)
        if end > start:
            total += end - start
            reach = end
    return total


def timed_handler(w: Window, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        try:
            return await handler(request)
        finally:
            w.requests.append((start, time.perf_counter()))

    return wrapper


def instrument_endpoints(node: LocalSolana, jup: LocalJupiter, bot: str, w: Window) -> None:
    """Before the servers bind their routes: time every request, mark t0 and t1."""
    notify = node._notify_logs

    async def notify_logs(landed: Any) -> int:
        if landed.addresses and landed.addresses[0] != bot and w.t0 is None:
            w.t0 = time.perf_counter()
        return await notify(landed)

    node._notify_logs = notify_logs  # type: ignore[method-assign]
    send = node._methods["sendTransaction"]

    async def send_transaction(params: list[Any]) -> object:
        raw = VersionedTransaction.from_bytes(base64.b64decode(params[0]))
        if str(raw.message.account_keys[0]) == bot and w.t0 is not None and w.t1 is None:
            w.t1 = time.perf_counter()
        return await send(params)

    node._methods["sendTransaction"] = send_transaction
    node._http = timed_handler(w, node._http)  # type: ignore[method-assign]
    jup._quote = timed_handler(w, jup._quote)  # type: ignore[method-assign]
    jup._swap = timed_handler(w, jup._swap)  # type: ignore[method-assign]


def serve_endpoints(conn: Connection, bot: str) -> None:
    """The endpoint process: LocalSolana + LocalJupiter, driven over `conn` (swap / timings / stop)."""
    setup_logging(level="warning")
    asyncio.run(_serve_endpoints(conn, bot))


async def _serve_endpoints(conn: Connection, bot: str) -> None:
    w = Window()
    loop = asyncio.get_running_loop()
    node = LocalSolana()
    jup = LocalJupiter(node)
    instrument_endpoints(node, jup, bot, w)
    whale = Keypair()
    node.ledger.svm.airdrop(Pubkey.from_string(bot), 10**13)
    node.ledger.svm.airdrop(whale.pubkey(), 10**13)
    async with node, jup:
        pool = jup.add_pool(decimals=6, token_reserve=10**18, sol_reserve=10**15)
        conn.send(
            {
                "http": node.http_url,
                "ws": node.ws_url,
                "jupiter": jup.base_url,
                "mint": str(pool.mint),
                "whale": str(whale.pubkey()),
            }
        )
        while True:
            command, n = await loop.run_in_executor(None, conn.recv)
            if command == "swap":
                w.reset()
                tx, _, _ = jup.build(pool, whale.pubkey(), buy=True, amount_in=10**9 + n, out=10**6, fee=0)
                sigs = list(tx.signatures)
                sigs[0] = whale.sign_message(to_bytes_versioned(tx.message))
                signed = bytes(VersionedTransaction.populate(tx.message, sigs))
                await node._send_transaction([base64.b64encode(signed).decode(), {"encoding": "base64"}])
            elif command == "timings":
                conn.send((w.t0, w.t1, w.endpoint_time() if w.t0 and w.t1 else 0.0))
            else:
                return


class Timings:
    """This process's marks for the run under way (absolute perf_counter times)."""

    def __init__(self) -> None:
        self.commits: list[tuple[float, float]] = []
        self.fsyncs: list[tuple[float, float]] = []
        self.marks: dict[str, float] = {}
        self.done = asyncio.Event()

    def reset(self) -> None:
        self.commits, self.fsyncs, self.marks = [], [], {}
        self.done.clear()


def instrument_daemon(store: SqliteStore, t: Timings) -> None:
    transaction = store.transaction

    @asynccontextmanager
    async def timed_transaction() -> AsyncIterator[None]:
        start = time.perf_counter()
        async with transaction():
            yield
        t.commits.append((start, time.perf_counter()))

    store.transaction = timed_transaction  # type: ignore[method-assign]
    append = durable._append_durably

    def timed_append(path: Path, line: bytes) -> None:
        start = time.perf_counter()
        append(path, line)
        t.fsyncs.append((start, time.perf_counter()))

    durable._append_durably = timed_append  # the executors' sent log appends through this


async def run(runs: int, warmup: int) -> dict[str, list[float]]:
    clock = WallClock()
    t = Timings()
    tmp = Path(tempfile.mkdtemp(prefix="qb-reaction-"))
    loop = asyncio.get_running_loop()
    bot = Keypair()
    mp = multiprocessing.get_context("spawn")
    conn, child_conn = mp.Pipe()
    endpoints = mp.Process(target=serve_endpoints, args=(child_conn, str(bot.pubkey())), daemon=True)
    endpoints.start()
    try:
        info: dict[str, str] = await loop.run_in_executor(None, conn.recv)
        return await _run(runs, warmup, clock, t, tmp, bot, conn, info)
    finally:
        conn.send(("stop", 0))
        endpoints.join(10)


async def _run(
    runs: int,
    warmup: int,
    clock: WallClock,
    t: Timings,
    tmp: Path,
    bot: Keypair,
    conn: Connection,
    info: dict[str, str],
) -> dict[str, list[float]]:
    loop = asyncio.get_running_loop()
    store = SqliteStore(tmp / "q.db")
    instrument_daemon(store, t)
    async with store, EventBus(clock=clock, queue_size=10_000) as bus:
        executor = make_plugin(
            JupiterExecutor, id="jupiter", rpc_url=info["http"], base_url=info["jupiter"], confirm_poll=0.001
        )
        executor.use_wallet_key(SigningKey(bot.to_json(), "bench"))
        executor.attach(PluginEnv(clock=clock, data_dir=tmp / "jupiter"))
        await executor.start()
        build = executor.build

        async def timed_build(order: Any) -> Any:
            start = time.perf_counter()
            t.marks.setdefault("executor.start", start)
            try:
                return await build(order)
            finally:
                t.marks.setdefault("executor.built", time.perf_counter())

        executor.build = timed_build  # type: ignore[method-assign]
        assert executor.rpc is not None  # noqa: S101  (started)
        send = executor.rpc.send

        async def timed_send(*args: Any, **kwargs: Any) -> str:
            t.marks.setdefault("cpu.send", time.process_time())
            return await send(*args, **kwargs)

        executor.rpc.send = timed_send  # type: ignore[method-assign]
        executors: dict[str, Any] = {"jupiter": executor}
        routes = OrdersConfig(solana=("jupiter",), aptos=())
        portfolio = Portfolio(store=store, clock=clock, bus=bus, executors=executors, routes=routes)
        await portfolio.start()
        sealer = Sealer()
        router = OrderRouter(
            bus=bus, store=store, portfolio=portfolio, executors=executors, sealer=sealer, clock=clock, mode="live"
        )
        risk = RiskEngine(
            bus=bus,
            limits=LIMITS,
            routes=routes,
            router=router,
            sealer=sealer,
            clock=clock,
            store=store,
            portfolio=portfolio,
            mode="live",
            sizer=Sizer(config=SizingConfig(), store=store, equity=portfolio.equity_native),
        )
        await risk.start()
        await router.start()
        strategy = make_plugin(Follow, id="follow", token=info["mint"], leader=info["whale"])
        strategy.attach(PluginEnv(clock=clock, data_dir=tmp / "follow"))
        host = PluginHost(bus=bus, section="strategies", plugins=[strategy], overflow=Overflow.BLOCK)
        await host.start()

        async def finished(event: Event) -> None:
            t.done.set()

        bus.subscribe(["order.filled", "order.failed"], finished, name="bench")

        async def mark(event: Event) -> None:
            t.marks.setdefault(event.topic, time.perf_counter())

        bus.subscribe(["chain.solana.swap", "order.intent", "order.approved"], mark, name="bench.marks")
        endpoint = SolanaEndpointConfig(http=info["http"], ws=info["ws"], rps=0)
        config = SolanaConfig(
            enabled=True,
            endpoints=(endpoint,),
            wallets=(SolanaWalletConfig(address=info["whale"]),),
            launch_programs=(),
        )
        async with SolanaRpcPool(endpoints=[endpoint], clock=clock) as rpc:
            watcher = SolanaWatcher(bus=bus, rpc=rpc, parser=SolanaParser(), store=store, clock=clock, config=config)
            await watcher.start()
            await watcher.wait_synced()
            out: dict[str, list[float]] = {
                "total": [],
                "endpoint": [],
                "own": [],
                "commit": [],
                "fsync": [],
                "floor": [],
                "cpu": [],
                "bare": [],
            }
            for stage in STAGES:
                out[stage] = []
            for n in range(runs + warmup):
                t.reset()
                cpu = time.process_time()  # this process idles until the notification arrives
                conn.send(("swap", n))
                await asyncio.wait_for(t.done.wait(), 30)
                conn.send(("timings", 0))
                t0, t1, endpoint_s = await loop.run_in_executor(None, conn.recv)
                if t0 is None or t1 is None:
                    raise SystemExit(f"run {n}: the bot did not send (t0={t0}, t1={t1})")
                if n < warmup:
                    continue
                total = (t1 - t0) * 1e6
                out["total"].append(total)
                out["endpoint"].append(endpoint_s * 1e6)
                out["own"].append(total - endpoint_s * 1e6)
                out["commit"].append(covered(t.commits, t0, t1) * 1e6)
                out["fsync"].append(covered(t.fsyncs, t0, t1) * 1e6)
                out["cpu"].append((t.marks["cpu.send"] - cpu) * 1e6)
                for stage in STAGES:
                    out[stage].append((t.marks.get(stage, t1) - t0) * 1e6)
            for _ in range(FLOOR_CALLS):  # the floor: one bare JSON-RPC call through the same pool
                start = time.perf_counter()
                await rpc.get_slot()
                out["floor"].append((time.perf_counter() - start) * 1e6)
            body = b'{"jsonrpc":"2.0","id":1,"method":"getSlot"}'
            async with aiohttp.ClientSession() as session:  # and the same call on plain aiohttp
                for _ in range(FLOOR_CALLS):
                    start = time.perf_counter()
                    async with session.post(info["http"], data=body, headers=JSON) as resp:
                        await resp.read()
                    out["bare"].append((time.perf_counter() - start) * 1e6)
            await watcher.stop()
        await host.stop()
        await router.stop()
        await executor.stop()
    return out


FLOOR_CALLS = 500
JSON = {"content-type": "application/json"}
STAGES = ("chain.solana.swap", "order.intent", "order.approved", "executor.start", "executor.built")
"""Bus topics first delivered, and the executor's start and quote+swap built, timed from the notification."""


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--profile", type=Path, help="write a cProfile of this process (not the endpoints) here")
    args = parser.parse_args()
    setup_logging(level="warning")
    if args.profile:
        with cProfile.Profile() as profile:
            out = asyncio.run(run(args.runs, args.warmup))
        profile.dump_stats(args.profile)
    else:
        out = asyncio.run(run(args.runs, args.warmup))
    without = [o - c for o, c in zip(out["own"], out["commit"], strict=True)]
    print(f"reaction over {len(out['total'])} runs (µs)                p50       p99")
    for label, values in (
        ("total (notification -> signed tx at RPC)", out["total"]),
        ("  in local endpoint handlers", out["endpoint"]),
        ("  our own overhead (with journal commit)", out["own"]),
        ("  our own overhead (without the commit)", without),
        ("  journal commit (store transaction)", out["commit"]),
        ("  sent-log append + fsync", out["fsync"]),
        ("  CPU of this process (all threads) until send", out["cpu"]),
        *((f"  notification -> {stage}", out[stage]) for stage in STAGES),
        ("floor: one getSlot round trip (of 4 on the path)", out["floor"]),
        ("  the same on plain aiohttp (no pool, no solana-py)", out["bare"]),
    ):
        print(f"{label:<48} {pct(values, 50):>9.0f} {pct(values, 99):>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
