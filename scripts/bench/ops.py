#!/usr/bin/env python3
"""Benchmark the operations room.

1. Scrape cost: /metrics and /status latency (p50, p95, ms) on a real in-process daemon whose bus has
   carried --events events and whose portfolio holds --positions open positions with prices.
2. Online backup: time to back up a SQLite store of --rows rows, and the slowest single store write
   of a task writing all the while (the backup must not stall the order journal), against the same
   writer with no backup running.

    .venv/bin/python scripts/bench/ops.py [--events 20000] [--positions 200] [--scrapes 200] [--rows 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp

from quantbot.config import load_config
from quantbot.daemon import Daemon
from quantbot.events import PriceUpdate, Tick
from quantbot.logs import setup_logging
from quantbot.ops.backup import backup_sqlite
from quantbot.plugins import PluginCatalog
from quantbot.secrets import Redactor
from quantbot.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def scrape_bench(tmp: Path, *, events: int, positions: int, scrapes: int) -> None:
    cfg = tmp / "q.toml"
    cfg.write_text(
        f'[daemon]\ndata_dir = "{tmp}"\ntick_interval = 3600\n[http]\nport = 0\n[[filters]]\nuse = "blocklist"\n'
    )
    catalog = PluginCatalog.discover()
    loaded = load_config([cfg], environ={}, plugins=catalog)
    daemon = Daemon(loaded=loaded, config_paths=[str(cfg)], catalog=catalog, redactor=Redactor(), environ={})
    run = asyncio.create_task(daemon.run())
    await daemon.started.wait()
    assert daemon.bus and daemon.portfolio and daemon.http and daemon.http.port  # noqa: S101
    for i in range(events):
        await daemon.bus.publish(Tick(seq=i))
    for i in range(positions):
        token = f"Tok{i:05d}"
        await daemon.portfolio.apply_fill(chain="solana", token=token, side="buy", amount_in=1_000_000, amount_out=1000)
        await daemon.bus.publish(
            PriceUpdate(chain="solana", token=token, price_native=Decimal(1100), source="bench", observed_at=T0)
        )
    await daemon.bus.drain(30)
    url = f"http://127.0.0.1:{daemon.http.port}"
    async with aiohttp.ClientSession() as session:
        for path in ("/metrics", "/status"):
            took: list[float] = []
            size = 0
            for _ in range(scrapes):
                began = time.perf_counter()
                async with session.get(url + path) as resp:
                    body = await resp.read()
                took.append((time.perf_counter() - began) * 1000)
                size = len(body)
            print(
                f"{path:9} {scrapes} requests, {size / 1024:.1f} KiB each: "
                f"p50 {pct(took, 50):.2f} ms  p95 {pct(took, 95):.2f} ms"
            )
    daemon.request_stop()
    await run


async def backup_bench(tmp: Path, *, rows: int) -> None:
    path = tmp / "quantbot.db"
    async with SqliteStore(path) as store:
        async with store.transaction():
            for i in range(rows):
                await store.execute(
                    "INSERT INTO records (kind, key, payload, updated_at) VALUES (?, ?, ?, ?)",
                    "bench",
                    f"k{i}",
                    '{"wallet": "Wa11et1111111111111111111111111111111111111", "score": 0.5}',
                    T0.isoformat(),
                )

        async def writer(stop: asyncio.Event, worst: list[float]) -> None:
            i = 0
            while not stop.is_set():
                began = time.perf_counter()
                await store.set_state(f"w{i % 100}", str(i), now=T0)
                worst.append(time.perf_counter() - began)
                i += 1

        async def measure(with_backup: bool) -> tuple[float, float, int]:
            stop, worst = asyncio.Event(), list[float]()
            task = asyncio.create_task(writer(stop, worst))
            began = time.perf_counter()
            if with_backup:
                await asyncio.to_thread(backup_sqlite, path, tmp / "backups", now=datetime.now(UTC), keep=2)
            else:
                await asyncio.sleep(0.5)
            elapsed = time.perf_counter() - began
            stop.set()
            await task
            return elapsed, max(worst) * 1000, len(worst)

        _, idle_worst, _ = await measure(False)
        took, busy_worst, busy_n = await measure(True)
    size = path.stat().st_size / 1_048_576
    print(f"backup    {rows} rows, {size:.1f} MiB: {took:.2f} s")
    print(
        f"writer    slowest write {busy_worst:.1f} ms during the backup ({busy_n} writes) vs {idle_worst:.1f} ms idle"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--positions", type=int, default=200)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    setup_logging(level="error")
    with tempfile.TemporaryDirectory() as a:
        await scrape_bench(Path(a), events=args.events, positions=args.positions, scrapes=args.scrapes)
    with tempfile.TemporaryDirectory() as b:
        await backup_bench(Path(b), rows=args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
