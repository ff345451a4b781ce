#!/usr/bin/env python3
"""Benchmark the first-party strategies' own work per event, and that their state stays bounded.

Each strategy gets its events straight through `on_event` with a recording context (no bus, no risk
engine: their costs are measured by orders.py), so the figure is the strategy's decision cost.

1. whale_follow: whale signals over --tokens tokens (every one buys, then re-buy windows hold).
2. copy_trade: --leaders leaders each buying and then half-selling --tokens tokens, with our fills
   fed back (approved + filled per copy): swaps and order events per second, and the remembered
   holdings after max_tokens evicted the oldest.
3. sniper: accepted tokens with random scores over three bands.

    .venv/bin/python scripts/bench/strategies.py [--events 100000] [--leaders 50] [--tokens 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec

from quantbot.api import Event, OrderApproved, OrderFilled, Strategy
from quantbot.clock import SimClock
from quantbot.testing import RecordingContext, make_plugin, swap, token_accepted, whale_signal
from quantbot_strategies.copy_trade import CopyTrade
from quantbot_strategies.sniper import Sniper
from quantbot_strategies.whale_follow import WhaleFollow

WSOL = "So11111111111111111111111111111111111111112"
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def address(prefix: str, n: int) -> str:
    return f"{prefix}x{n}x".replace("0", "z").ljust(43, "1")  # base58 has no 0


async def run(strategy: Strategy, events: list[Event], ctx: RecordingContext, *, feedback: bool) -> float:
    """Seconds for the strategy to take every event (and, with feedback, its own fills)."""
    n_orders = 0
    start = time.perf_counter()
    for event in events:
        before = len(ctx.intents)
        await strategy.on_event(event, ctx)
        if feedback:
            for intent in ctx.intents[before:]:
                n_orders += 1
                oid = f"o{n_orders}"
                await strategy.on_event(OrderApproved(order_id=oid, intent=intent), ctx)
                out = intent.amount // 1000 if intent.side == "buy" else intent.amount * 1000
                filled = OrderFilled(order_id=oid, executor="paper", tx=oid, amount_in=intent.amount, amount_out=out)
                await strategy.on_event(filled, ctx)
        ctx.clock.advance(0.01)  # type: ignore[attr-defined]
    return time.perf_counter() - start


def report(name: str, events: int, seconds: float, intents: int, extra: str = "") -> None:
    rate = events / seconds
    print(f"{name:13s} {events:>8,d} events {seconds:6.2f}s {rate:>9,.0f} events/s {intents:>7,d} intents {extra}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--leaders", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=20_000)
    args = ap.parse_args()
    rnd = random.Random(7)  # noqa: S311  (reproducible test data)
    tokens = [address("Tok", i) for i in range(args.tokens)]

    signals: list[Event] = [
        whale_signal(token=rnd.choice(tokens), wallets=(address("W", i % 500),), confidence=rnd.uniform(0.5, 1))
        for i in range(args.events)
    ]
    wf = make_plugin(WhaleFollow, id="wf", min_confidence=0.7, max_tokens=5_000)
    ctx = RecordingContext(strategy_id="wf", clock=SimClock(T0))
    report("whale_follow", len(signals), await run(wf, signals, ctx, feedback=False), len(ctx.intents))

    leaders = [address("L", i) for i in range(args.leaders)]
    swaps: list[Event] = []
    for i in range(args.events):
        leader, token = rnd.choice(leaders), rnd.choice(tokens)
        # fresh (run() advances the clock 10 ms per event) and in order: copy_trade skips stale buys
        at: dict[str, object] = {"slot": i, "block_time": T0 + timedelta(seconds=i / 100)}
        if i % 2 == 0:
            swaps.append(
                swap(wallet=leader, mint_in=WSOL, amount_in=10**9, mint_out=token, amount_out=10**6, tx=f"b{i}", **at)
            )
        else:
            swaps.append(
                swap(
                    wallet=leader, mint_in=token, amount_in=5 * 10**5, mint_out=WSOL, amount_out=10**8, tx=f"s{i}", **at
                )
            )

    def copier() -> tuple[CopyTrade, RecordingContext]:
        leader_list = [{"chain": "solana", "address": a} for a in leaders]
        return make_plugin(CopyTrade, id="ct", leaders=leader_list), RecordingContext("ct", SimClock(T0))

    ct, ctx = copier()
    seconds = await run(ct, swaps, ctx, feedback=True)
    books = len(ct._own) + len(ct._leader_holds) + len(ct._copies) + len(ct._order_ids) + len(ct._seen)
    unmatched = ct.skipped
    ct, ctx2 = copier()
    tracemalloc.start()
    await run(ct, swaps, ctx2, feedback=True)
    ctx2.intents.clear()  # what the recording context kept is not the strategy's
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    extra = f"(+ own fills; {books:,d} book entries, {held / 2**20:.1f} MiB heap held by it, {unmatched:,d} skipped)"
    report("copy_trade", len(swaps), seconds, len(ctx.intents), extra)

    accepted: list[Event] = [
        msgspec.structs.replace(token_accepted(mint=address("New", i)), score=rnd.random()) for i in range(args.events)
    ]
    bands = [
        {"min_score": 0.5, "amount": 10**7},
        {"min_score": 0.7, "amount": 3 * 10**7},
        {"min_score": 0.9, "equity_pct": Decimal(2)},
    ]
    sn = make_plugin(Sniper, id="sn", bands=bands, min_score=0.5)
    ctx = RecordingContext(strategy_id="sn", clock=SimClock(T0))
    report("sniper", len(accepted), await run(sn, accepted, ctx, feedback=False), len(ctx.intents))


if __name__ == "__main__":
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up: bench the work
    asyncio.run(main())
