#!/usr/bin/env python3
"""Benchmark the EventBus: events per second delivered to 1, 4 and 16 subscribers.

Each run publishes --events swap events (unstamped, as a watcher does) and waits until every
subscriber's handler has seen each one. The baseline is a bare asyncio fan-out: one bounded
asyncio.Queue and one consumer task per subscriber, the same handler, events already built.
The bus adds stamping (id, time, origin), topic routing, per-handler timeouts and failure
accounting. Target: bus rate >= 0.5 x the bare fan-out, at every subscriber count.

    .venv/bin/python scripts/bench/bus.py [--events 100000] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from quantbot.bus import EventBus
from quantbot.clock import WallClock
from quantbot.events import Event, Swap

SUBSCRIBERS = (1, 4, 16)
TARGET = 0.5
QUEUE = 1024


def events(n: int) -> list[Swap]:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    return [
        Swap(
            chain="solana",
            wallet="5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM",
            mint_in="So11111111111111111111111111111111111111112",
            amount_in=10**9 + i,
            mint_out="CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump",
            amount_out=10**12,
            tx=f"sig{i}",
            slot=i,
            block_time=at,
        )
        for i in range(n)
    ]


class Counter:
    def __init__(self) -> None:
        self.seen = 0

    async def handle(self, event: Event) -> None:
        self.seen += 1


async def through_bus(batch: list[Swap], subscribers: int) -> float:
    counters = [Counter() for _ in range(subscribers)]
    bus = EventBus(clock=WallClock(), queue_size=QUEUE)
    for i, c in enumerate(counters):
        bus.subscribe("chain.*.swap", c.handle, name=f"bench.{i}")
    async with bus:
        start = time.perf_counter()
        for e in batch:
            await bus.publish(e)
        await bus.drain(60.0)
        took = time.perf_counter() - start
    if any(c.seen != len(batch) for c in counters):
        raise RuntimeError(f"bus delivered {[c.seen for c in counters]} of {len(batch)}")
    return len(batch) / took


async def through_queues(batch: list[Swap], subscribers: int) -> float:
    counters = [Counter() for _ in range(subscribers)]
    queues: list[asyncio.Queue[Event]] = [asyncio.Queue(maxsize=QUEUE) for _ in range(subscribers)]

    async def consume(q: asyncio.Queue[Event], c: Counter) -> None:
        while True:
            event = await q.get()
            await c.handle(event)
            q.task_done()

    tasks = [
        asyncio.create_task(consume(q, c), name=f"bench.queue.{i}")
        for i, (q, c) in enumerate(zip(queues, counters, strict=True))
    ]
    start = time.perf_counter()
    for e in batch:
        for q in queues:
            await q.put(e)
    for q in queues:
        await q.join()
    took = time.perf_counter() - start
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(batch) / took


async def measure(n: int, rounds: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for subs in SUBSCRIBERS:
        bus_rate = queue_rate = 0.0
        for _ in range(rounds):  # best of `rounds`, each side fresh events (the bus stamps copies)
            queue_rate = max(queue_rate, await through_queues(events(n), subs))
            bus_rate = max(bus_rate, await through_bus(events(n), subs))
        out[str(subs)] = {"bus_eps": bus_rate, "queue_eps": queue_rate, "ratio": bus_rate / queue_rate}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a few thousand events, one round (smoke test)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    n, rounds = (3000, 1) if args.quick else (args.events, args.rounds)
    result = asyncio.run(measure(n, rounds))
    ok = all(r["ratio"] >= TARGET for r in result.values())
    if args.json:
        print(json.dumps({"bench": "bus", "events": n, "subscribers": result, "target_ratio": TARGET, "ok": ok}))
        return 0
    print(f"bus fan-out, {n} events, best of {rounds}")
    print("subscribers    bus events/s   asyncio.Queue events/s   ratio (target >= 0.5)")
    for subs, r in result.items():
        print(f"{subs:>11} {r['bus_eps']:>14,.0f} {r['queue_eps']:>24,.0f} {r['ratio']:>7.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
