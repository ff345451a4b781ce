#!/usr/bin/env python3
"""Reaction time: from a whale's WebSocket notification leaving the local node to our signed swap arriving at it.

The real path, in one process: LocalSolana (LiteSVM) and LocalJupiter answer at once; the
SolanaWatcher gets the logsNotification, fetches and parses the whale's transaction; a follow
strategy (PluginHost) submits a buy; the RiskEngine approves and journals it (SQLite commit); the
OrderRouter hands it to the `jupiter` executor, which quotes, builds, signs, fsyncs its sent-log
line and sends. Each run is a new real whale swap on the local chain. The clock starts just before
the node writes the notification frame and stops when its sendTransaction handler is entered.

Reported per run (µs): total; time inside the local endpoints' handlers on that path (their
work, not ours); our own overhead = total - endpoint time; the journal commit (the store
transaction around reserve + journal); the executor's sent-log fsync. "Without the commit" is
own overhead minus the commit time.

    .venv/bin/python scripts/bench/reaction.py [--runs 1000] [--warmup 50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.models import TxOpts
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
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


class Follow(Strategy):
    Config = FollowConfig
    config: FollowConfig

    def topics(self) -> tuple[str, ...]:
        return ("chain.*.swap",)

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        if not isinstance(event, Swap):
            return
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


class Timings:
    def __init__(self) -> None:
        self.t0: float | None = None
        self.t1: float | None = None
        self.endpoint = 0.0
        self.commit = 0.0
        self.fsync = 0.0
        self.marks: dict[str, float] = {}
        self.done = asyncio.Event()

    def reset(self) -> None:
        self.t0 = self.t1 = None
        self.endpoint = self.commit = self.fsync = 0.0
        self.marks = {}
        self.done.clear()


def timed_handler(t: Timings, handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any) -> Any:
        if t.t0 is None or t.t1 is not None:
            return await handler(*args)
        start = time.perf_counter()
        try:
            return await handler(*args)
        finally:
            t.endpoint += time.perf_counter() - start

    return wrapper


def instrument(node: LocalSolana, jup: LocalJupiter, store: SqliteStore, bot: str, t: Timings) -> None:
    notify = node._notify_logs

    async def notify_logs(landed: Any) -> int:
        if landed.addresses and landed.addresses[0] != bot and t.t0 is None:
            t.t0 = time.perf_counter()
        return await notify(landed)

    node._notify_logs = notify_logs  # type: ignore[method-assign]
    send = node._methods["sendTransaction"]

    async def send_transaction(params: list[Any]) -> object:
        raw = VersionedTransaction.from_bytes(base64.b64decode(params[0]))
        if str(raw.message.account_keys[0]) == bot and t.t0 is not None and t.t1 is None:
            t.t1 = time.perf_counter()
        return await send(params)

    node._methods["sendTransaction"] = send_transaction
    for name in ("getTransaction", "getBlockHeight", "getSignatureStatuses"):
        node._methods[name] = timed_handler(t, node._methods[name])
    jup._quote = timed_handler(t, jup._quote)  # type: ignore[method-assign]
    jup._swap = timed_handler(t, jup._swap)  # type: ignore[method-assign]

    transaction = store.transaction

    @asynccontextmanager
    async def timed_transaction() -> AsyncIterator[None]:
        start = time.perf_counter()
        async with transaction():
            yield
        if t.t0 is not None and t.t1 is None:
            t.commit += time.perf_counter() - start

    store.transaction = timed_transaction  # type: ignore[method-assign]
    append = durable._append_durably

    def timed_append(path: Path, line: bytes) -> None:
        start = time.perf_counter()
        append(path, line)
        t.fsync += time.perf_counter() - start

    durable._append_durably = timed_append  # the executors' sent log appends through this


async def run(runs: int, warmup: int) -> dict[str, list[float]]:
    clock = WallClock()
    t = Timings()
    tmp = Path(tempfile.mkdtemp(prefix="qb-reaction-"))
    async with LocalSolana() as node:
        jup = LocalJupiter(node)
        # handlers are wrapped before the server binds its routes
        bot, whale = Keypair(), Keypair()
        node.ledger.svm.airdrop(bot.pubkey(), 10**13)
        node.ledger.svm.airdrop(whale.pubkey(), 10**13)
        store = SqliteStore(tmp / "q.db")
        instrument(node, jup, store, str(bot.pubkey()), t)
        async with jup, store, EventBus(clock=clock, queue_size=10_000) as bus:
            pool = jup.add_pool(decimals=6, token_reserve=10**18, sol_reserve=10**15)
            executor = make_plugin(
                JupiterExecutor, id="jupiter", rpc_url=node.http_url, base_url=jup.base_url, confirm_poll=0.001
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
            strategy = make_plugin(Follow, id="follow", token=str(pool.mint))
            strategy.attach(PluginEnv(clock=clock, data_dir=tmp / "follow"))
            host = PluginHost(bus=bus, section="strategies", plugins=[strategy], overflow=Overflow.BLOCK)
            await host.start()

            async def finished(event: Event) -> None:
                t.done.set()

            bus.subscribe(["order.filled", "order.failed"], finished, name="bench")

            async def mark(event: Event) -> None:
                t.marks.setdefault(event.topic, time.perf_counter())

            bus.subscribe(["chain.solana.swap", "order.intent", "order.approved"], mark, name="bench.marks")
            endpoint = SolanaEndpointConfig(http=node.http_url, ws=node.ws_url, rps=0)
            config = SolanaConfig(
                enabled=True,
                endpoints=(endpoint,),
                wallets=(SolanaWalletConfig(address=str(whale.pubkey())),),
                launch_programs=(),
            )
            async with SolanaRpcPool(endpoints=[endpoint], clock=clock) as rpc:
                watcher = SolanaWatcher(
                    bus=bus, rpc=rpc, parser=SolanaParser(), store=store, clock=clock, config=config
                )
                await watcher.start()
                await watcher.wait_synced()
                out: dict[str, list[float]] = {"total": [], "endpoint": [], "own": [], "commit": [], "fsync": []}
                for stage in STAGES:
                    out[stage] = []
                async with AsyncClient(node.http_url) as client:
                    for n in range(runs + warmup):
                        tx, _, _ = jup.build(pool, whale.pubkey(), buy=True, amount_in=10**9 + n, out=10**6, fee=0)
                        msg = tx.message
                        sigs = list(tx.signatures)
                        sigs[0] = whale.sign_message(to_bytes_versioned(msg))
                        signed = VersionedTransaction.populate(msg, sigs)
                        t.reset()
                        await client.send_raw_transaction(bytes(signed), opts=TxOpts(skip_confirmation=True))
                        await asyncio.wait_for(t.done.wait(), 30)
                        if t.t0 is None or t.t1 is None:
                            raise SystemExit(f"run {n}: the bot did not send (t0={t.t0}, t1={t.t1})")
                        if n < warmup:
                            continue
                        total = (t.t1 - t.t0) * 1e6
                        out["total"].append(total)
                        out["endpoint"].append(t.endpoint * 1e6)
                        out["own"].append(total - t.endpoint * 1e6)
                        out["commit"].append(t.commit * 1e6)
                        out["fsync"].append(t.fsync * 1e6)
                        for stage in STAGES:
                            out[stage].append((t.marks.get(stage, t.t1) - t.t0) * 1e6)
                await watcher.stop()
            await host.stop()
            await router.stop()
            await executor.stop()
    return out


STAGES = ("chain.solana.swap", "order.intent", "order.approved", "executor.start", "executor.built")
"""Bus topics first delivered, and the executor's start and quote+swap built, timed from the notification."""


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    setup_logging(level="warning")
    out = asyncio.run(run(args.runs, args.warmup))
    without = [o - c for o, c in zip(out["own"], out["commit"], strict=True)]
    print(f"reaction over {len(out['total'])} runs (µs)            p50       p99")
    for label, values in (
        ("total (notification -> signed tx at RPC)", out["total"]),
        ("  in local endpoint handlers", out["endpoint"]),
        ("  our own overhead (with journal commit)", out["own"]),
        ("  our own overhead (without the commit)", without),
        ("  journal commit (store transaction)", out["commit"]),
        ("  sent-log append + fsync", out["fsync"]),
        *((f"  notification -> {stage}", out[stage]) for stage in STAGES),
    ):
        print(f"{label:<44} {pct(values, 50):>9.0f} {pct(values, 99):>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
