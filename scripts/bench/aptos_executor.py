#!/usr/bin/env python3
"""Benchmark the `aptos` executor against the local fullnode (127.0.0.1, real HTTP, real BCS and signatures).

1. Latency of one order, executed alone: build, simulate, sign, log the hash (fsync), submit, follow to
   commit, read the fill. Median and p95 over N orders.
2. Throughput of N orders submitted at once (they share the sequence-number lock from build to submit).
3. The fill reader (`aptos_wallet_deltas`) alone, per committed transaction.

    .venv/bin/python scripts/bench/aptos_executor.py [--orders 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from aptos_sdk.account import Account

from quantbot.api import NATIVE_TOKEN, ApprovedOrder, Outcome, PluginEnv, SigningKey, aptos_wallet_deltas
from quantbot.clock import WallClock
from quantbot.localnet.aptos import AptosLocalNode
from quantbot.localnet.aptos_ledger import RouterSwap
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.aptos import AptosExecutor

APT = NATIVE_TOKEN["aptos"]
ROUTER = "0xc7efb4076dbe143cbcd98cfaaa929ecfc8f299203dfff63b95ccb6bfe19850fa"
POOL = "0x5001"
MEME = "0xcafe::meme::MEME"


def order(i: int) -> ApprovedOrder:
    intent = order_intent(chain="aptos", token=MEME, intent_id=f"b{i}", amount=10**5, price_native=Decimal("0.2"))
    return ApprovedOrder(
        order_id=f"o{i}",
        idempotency_key=f"o{i}",
        intent=intent,
        executors=("aptos",),
        approved_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def main(n: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    router = RouterSwap(address=ROUTER, pool=POOL, rates={(APT, MEME): Decimal(5)})
    async with AptosLocalNode(router=router) as node:
        node.add_coin(MEME, name="Meme", symbol="MEME", decimals=6)
        node.set_balance(POOL, MEME, 10**18)
        account = Account.generate()
        node.fund(str(account.address()), 10**12)
        with tempfile.TemporaryDirectory() as tmp:
            ex = make_plugin(
                AptosExecutor,
                id="aptos",
                nodes=[node.url],
                router={"function": f"{ROUTER}::router::swap_exact_input"},
                poll_interval=0.005,
            )
            ex.use_wallet_key(SigningKey(account.private_key.hex(), "bench"))
            ex.attach(PluginEnv(clock=WallClock(), data_dir=Path(tmp)))
            await ex.start()
            try:
                latencies = []
                for i in range(n):
                    t0 = time.perf_counter()
                    report = await ex.execute(order(i))
                    latencies.append(time.perf_counter() - t0)
                    if report.outcome is not Outcome.FILLED:
                        raise SystemExit(f"order {i} not filled: {report}")
                t0 = time.perf_counter()
                reports = await asyncio.gather(*(ex.execute(order(n + i)) for i in range(n)))
                burst = time.perf_counter() - t0
                if any(r.outcome is not Outcome.FILLED for r in reports):
                    raise SystemExit("a concurrent order was not filled")
            finally:
                await ex.stop()
        txs: list[dict[str, Any]] = [node.ledger.txs[node.ledger.by_hash[r.tx or ""]] for r in reports]
        me = str(account.address())
        t0 = time.perf_counter()
        for tx in txs:
            aptos_wallet_deltas(tx, me)
        read = (time.perf_counter() - t0) / len(txs)
    latencies.sort()
    print(f"orders: {n} sequential, {n} concurrent against AptosLocalNode on 127.0.0.1")
    print(
        f"one order end to end: median {statistics.median(latencies) * 1e3:.1f} ms, "
        f"p95 {latencies[int(0.95 * (n - 1))] * 1e3:.1f} ms"
    )
    print(f"concurrent burst: {n / burst:.1f} orders/s ({burst:.2f} s for {n})")
    print(f"fill reading (aptos_wallet_deltas): {read * 1e6:.0f} µs per transaction")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200)
    asyncio.run(main(parser.parse_args().orders))
