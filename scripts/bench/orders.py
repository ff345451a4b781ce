#!/usr/bin/env python3
"""Benchmark the order path.

1. Risk evaluation cost per intent (µs), every check on (state, mode, lists, caps, pool liquidity,
   price impact, slippage, rate, cooldown, duplicates, stop-loss guard, drawdown, open positions,
   exposure absolute and % of equity, balance), with open positions, pending buys and recent intents.
2. Approved orders per second through risk -> journal -> paper executor -> fill, on SQLite and on
   PostgreSQL (a throw-away database on --pg-dsn; skipped if unreachable).

    .venv/bin/python scripts/bench/orders.py [--intents 20000] [--orders 2000] [--pg-dsn DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from quantbot.api import PluginEnv
from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.config import OrdersConfig, RiskConfig
from quantbot.events import Event, OrderIntent
from quantbot.logs import setup_logging
from quantbot.orders import OrderRouter, Sealer
from quantbot.portfolio import Portfolio, Position
from quantbot.risk import Pending, RiskEngine, TradingState
from quantbot.store import Store
from quantbot.store.postgres import PostgresStore
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import make_plugin
from quantbot_executors.paper import PaperExecutor

LIMITS = RiskConfig(
    max_order_usd=Decimal(100),
    max_order_sol=Decimal(10),
    daily_notional_usd=Decimal(10) ** 12,
    max_open_positions=10_000,
    max_exposure_sol=Decimal(10) ** 6,
    max_orders_per_minute=10**9,
    token_cooldown_s=0,
    block_tokens=tuple(f"Blocked{i}" for i in range(50)),
    max_exposure_pct=Decimal(50),
    duplicate_window_s=30,
    max_daily_drawdown_pct=Decimal(10),
    stop_loss_guard_count=3,
)
BALANCE_SOL = 10**6


def intent(n: int) -> OrderIntent:
    return OrderIntent(
        chain="solana",
        intent_id=str(n),
        strategy=f"bench{n // 500}",  # each strategy buys each token once: no duplicate is suppressed
        side="buy",
        token=f"Tok{n % 500}",
        amount=10_000_000,
        notional_usd=Decimal(1),
        price_native=Decimal(1000),
        pool_liquidity_native=100 * 10**9,
        max_slippage_bps=100,
    )


def build(store: Store, clock: SimClock, tmp: Path) -> tuple[EventBus, OrderRouter, RiskEngine, PaperExecutor]:
    bus = EventBus(clock=clock, queue_size=100_000)
    paper = make_plugin(PaperExecutor, id="paper", balance_sol=Decimal(BALANCE_SOL), slippage_bps=50)
    portfolio = Portfolio(store=store, clock=clock, bus=bus, executors={"paper": paper}, routes=OrdersConfig())
    paper.attach(PluginEnv(clock=clock, data_dir=tmp / "paper"))
    sealer = Sealer()
    router = OrderRouter(
        bus=bus, store=store, portfolio=portfolio, executors={"paper": paper}, sealer=sealer, clock=clock, mode="paper"
    )
    risk = RiskEngine(
        bus=bus,
        limits=LIMITS,
        routes=OrdersConfig(),
        router=router,
        sealer=sealer,
        clock=clock,
        store=store,
        portfolio=portfolio,
        mode="paper",
    )
    return bus, router, risk, paper


def bench_evaluate(n: int) -> None:
    clock = SimClock()
    with tempfile.TemporaryDirectory() as tmp:
        _, _, risk, _ = build(SqliteStore(":memory:"), clock, Path(tmp))
        for i in range(200):  # a realistic book: open positions and pending buys
            risk.portfolio.positions[("solana", f"Tok{i}")] = Position(
                chain="solana", token=f"Tok{i}", quantity=10**6, cost_native=10**7
            )
        for i in range(50):
            risk.pending[uuid.uuid4().hex] = Pending(chain="solana", token=f"Tok{i}", native=10**7)
        for i in range(200):  # recent intents of other strategies (duplicate suppression looks them up)
            risk._last_intent[(f"other{i}", "solana", f"Tok{i}", "buy")] = clock.now()
        risk.portfolio.native["solana"] = BALANCE_SOL * 10**9
        risk.portfolio.day_start["solana"] = (clock.now().date().isoformat(), BALANCE_SOL * 10**9)
        intents = [intent(i) for i in range(n)]
        refused = [v for it in intents if (v := risk.evaluate(it, TradingState.ACTIVE)) is not None]
        if refused:
            raise SystemExit(f"the benchmark intents must pass every check; refused: {refused[0]}")
        runs = []
        for _ in range(5):
            t0 = time.perf_counter_ns()
            for it in intents:
                risk.evaluate(it, TradingState.ACTIVE)
            runs.append((time.perf_counter_ns() - t0) / n / 1000)
    print(
        f"risk.evaluate: {statistics.median(runs):.2f} µs per intent (median of 5 x {n}; all checks on, "
        "200 positions, 50 pending buys, 200 recent intents)"
    )


async def bench_flow(store: Store, label: str, n: int) -> None:
    clock = SimClock()
    with tempfile.TemporaryDirectory() as tmp:
        async with store:
            bus, router, risk, paper = build(store, clock, Path(tmp))
            done = asyncio.Event()
            filled = 0

            async def count(e: Event) -> None:
                nonlocal filled
                filled += 1
                if filled == n:
                    done.set()

            async def refused(e: Event) -> None:
                print(f"{label}: refused {e}", file=sys.stderr)
                done.set()

            async with bus:
                bus.subscribe("order.filled", count, name="bench")
                bus.subscribe(["order.rejected", "order.failed"], refused, name="bench.refused")
                await paper.start()
                await risk.portfolio.start()
                await risk.start()
                await router.start()
                t0 = time.perf_counter()
                for i in range(n):
                    await bus.publish(intent(i))
                await asyncio.wait_for(done.wait(), timeout=600)
                elapsed = time.perf_counter() - t0
                await router.stop()
    if filled != n:
        raise SystemExit(f"{label}: only {filled} of {n} orders filled")
    print(
        f"{label}: {n / elapsed:,.0f} approved orders/s end to end ({n} orders in {elapsed:.2f} s; "
        "journal + reservation + paper fill + position, each durably committed)"
    )


async def pg_store(dsn: str) -> tuple[PostgresStore | None, str | None, str]:
    import asyncpg

    try:
        admin = await asyncpg.connect(dsn, timeout=3)
    except Exception as exc:  # noqa: BLE001  (report and skip)
        return None, None, f"skipped: {type(exc).__name__}: {exc}"
    name = f"quantbot_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return PostgresStore(dsn.rsplit("/", 1)[0] + f"/{name}"), name, ""


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intents", type=int, default=20_000, help="intents for the evaluate benchmark")
    parser.add_argument("--orders", type=int, default=2_000, help="orders for the end-to-end benchmarks")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    setup_logging(level="warning", fmt="json", stream=sys.stderr)  # measure the path, not the log writer
    print(f"python {sys.version.split()[0]}")
    bench_evaluate(args.intents)
    with tempfile.TemporaryDirectory() as tmp:
        await bench_flow(SqliteStore(Path(tmp) / "bench.db"), "sqlite", args.orders)
    store, name, why = await pg_store(args.pg_dsn)
    if store is None:
        print(f"postgres: {why}")
        return 0
    try:
        await bench_flow(store, "postgres", args.orders)
    finally:
        import asyncpg

        admin = await asyncpg.connect(args.pg_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
