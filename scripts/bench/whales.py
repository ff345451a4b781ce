#!/usr/bin/env python3
"""Benchmark the WhaleTracker with 100,000 tracked wallets.

1. Memory: tracemalloc (Python heap held by the tracker) and process RSS after every wallet has
   been discovered and holds tokens.
2. Throughput: swaps per second through `observe_swap` (the tracker's work per event) and through
   the bus (publish -> subscriber -> tracker, signals published), with every wallet a whale.
3. Saving: seconds to write every profile to SQLite in batches.

    .venv/bin/python scripts/bench/whales.py [--wallets 100000] [--swaps 200000] [--bus-swaps 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from solders.pubkey import Pubkey

from quantbot.assets import WSOL
from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.config import WhalesConfig
from quantbot.events import Swap
from quantbot.logs import setup_logging
from quantbot.store.sqlite import SqliteStore
from quantbot.whales import WhaleTracker

T0 = datetime(2026, 6, 1, tzinfo=UTC)


class Prices:
    def price_native(self, chain: str, token: str) -> Decimal | None:
        return Decimal("0.03")

    def usd_per_native(self, chain: str) -> Decimal | None:
        return Decimal(150)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_swaps(wallets: list[str], tokens: list[str], n: int, rng: random.Random, start: datetime) -> list[Swap]:
    out = []
    for i in range(n):
        wallet, token = rng.choice(wallets), rng.choice(tokens)
        at = start + timedelta(milliseconds=10 * i)
        if rng.random() < 0.6:
            out.append(
                Swap(chain="solana", wallet=wallet, mint_in=WSOL, amount_in=rng.randint(10**7, 10**11),
                     decimals_in=9, mint_out=token, amount_out=rng.randint(10**9, 10**13), decimals_out=6,
                     venue="pumpfun", tx=f"b{i}", slot=i, block_time=at)
            )  # fmt: skip
        else:
            out.append(
                Swap(chain="solana", wallet=wallet, mint_in=token, amount_in=rng.randint(10**8, 10**12),
                     decimals_in=6, mint_out=WSOL, amount_out=rng.randint(10**7, 10**11), decimals_out=9,
                     venue="pumpfun", tx=f"s{i}", slot=i, block_time=at)
            )  # fmt: skip
    return out


def config(wallets: int) -> WhalesConfig:
    return WhalesConfig(
        discover=True,
        discover_usd=Decimal("0.01"),
        discover_sol=Decimal("0.000001"),
        max_auto_wallets=wallets,
        accumulation_window_s=3600,
        cluster_window_s=900,
    )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wallets", type=int, default=100_000)
    ap.add_argument("--swaps", type=int, default=200_000)
    ap.add_argument("--bus-swaps", type=int, default=50_000)
    args = ap.parse_args()
    setup_logging(level="warning", fmt="console")
    rng = random.Random(7)  # noqa: S311  (reproducible test data)
    wallets = [str(Pubkey.new_unique()) for _ in range(args.wallets)]
    tokens = [str(Pubkey.new_unique()) for _ in range(2_000)]
    # One buy per wallet (everyone discovered and holding), then the measured mix.
    seed = [
        Swap(chain="solana", wallet=w, mint_in=WSOL, amount_in=10**9, decimals_in=9, mint_out=rng.choice(tokens),
             amount_out=10**11, decimals_out=6, tx=f"seed{i}", slot=i, block_time=T0)
        for i, w in enumerate(wallets)
    ]  # fmt: skip
    mix = make_swaps(wallets, tokens, args.swaps, rng, T0 + timedelta(seconds=1))
    print(f"wallets={args.wallets} tokens={len(tokens)} swaps={args.swaps} (60% buys)")

    # 1. memory
    clock = SimClock(T0)
    gc.collect()
    rss0 = rss_mb()
    tracemalloc.start()
    t = WhaleTracker(bus=EventBus(clock=clock), clock=clock, config=config(args.wallets), prices=Prices())
    for s in seed:
        t.observe_swap(s)
    t._dirty.clear()  # what remains is the tracker's steady state, not the unsaved-profile queue
    for s in mix[: args.swaps // 4]:
        clock.set(max(clock.now(), s.block_time or clock.now()))
        t.observe_swap(s)
    t.rules.prune(clock.now())
    t._dirty.clear()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = t.stats()
    print(
        f"memory: tracemalloc {current / 2**20:.1f} MiB held ({current / args.wallets:.0f} B/wallet), "
        f"peak {peak / 2**20:.1f} MiB; "
        f"discovered={stats['discovered_wallets']} acc_windows={stats['accumulation_windows']} "
        f"cluster_windows={stats['cluster_windows']}"
    )
    del t
    gc.collect()

    # 2a. observe_swap throughput
    clock = SimClock(T0)
    gc.collect()
    rss0 = rss_mb()
    t = WhaleTracker(bus=EventBus(clock=clock), clock=clock, config=config(args.wallets), prices=Prices())
    for s in seed:
        t.observe_swap(s)
    t._dirty.clear()
    gc.collect()
    print(f"memory without tracemalloc: RSS +{rss_mb() - rss0:.1f} MiB for {len(t._auto)} discovered wallets")
    clock.set(mix[-1].block_time or T0)  # every trade fresh enough to signal
    signals = 0
    started = time.perf_counter()
    for s in mix:
        signals += len(t.observe_swap(s))
    took = time.perf_counter() - started
    print(f"observe_swap: {args.swaps / took:,.0f} swaps/s ({took * 1e6 / args.swaps:.1f} µs each), {signals} signals")

    # 2b. through the bus
    async with EventBus(clock=clock, queue_size=4096) as bus:
        t.bus = bus
        await t.start()
        started = time.perf_counter()
        for s in mix[: args.bus_swaps]:
            await bus.publish(s)
        await bus.drain(600)
        took = time.perf_counter() - started
        print(f"bus: {args.bus_swaps / took:,.0f} swaps/s published and handled ({args.bus_swaps} swaps)")

        # 3. saving every profile
        with tempfile.TemporaryDirectory() as tmp:
            async with SqliteStore(Path(tmp) / "bench.db") as store:
                t.store = store
                for p in list(t._auto.values()):
                    t._mark(p)
                n = len(t._dirty)
                started = time.perf_counter()
                await t.flush()
                took = time.perf_counter() - started
                print(f"flush: {n} profiles to SQLite in {took:.2f} s ({n / took:,.0f} profiles/s)")
        t.store = None
        await t.stop()


if __name__ == "__main__":
    asyncio.run(main())
