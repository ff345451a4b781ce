#!/usr/bin/env python3
"""Benchmark record/replay on a synthetic recording (default 100,000 events).

The recording mixes what a busy Solana session holds: swaps of --tokens tokens against SOL (random-walk
prices), a SOL/USDC swap every 100 events (the USD price), SOL transfers and pump.fun launches, 100
events per simulated second. Two figures, events per second of wall time:

1. read: decoding the gzip JSON-lines file back into events (quantbot.recording.read_recording);
2. replay --speed max: the whole pipeline (PriceBook, WhaleTracker, filters, risk, portfolio, exits, the
   daemon's ticks) on the discrete-event clock, with the configured strategies (none by default).

Target: >= 50,000 events/s.

    .venv/bin/python scripts/bench/replay.py [--events 100000] [--tokens 200] [-c CONFIG]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from quantbot.events import Event, Swap, TokenLaunch, Transfer
from quantbot.logs import setup_logging
from quantbot.recording import read_recording, write_recording
from quantbot.sweep import replay_once

WSOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
TARGET = 50_000


def synthetic(events: int, tokens: int, seed: int = 7) -> Iterator[Event]:
    rng = random.Random(seed)  # noqa: S311  (reproducible test data, nothing cryptographic)
    mints = [f"Tok{i:040d}"[:44] for i in range(tokens)]
    prices = [rng.uniform(0.5, 2.0) for _ in mints]
    for i in range(events):
        at = T0 + timedelta(milliseconds=10 * i)
        common = {"tx": f"sig{i}", "slot": 300_000_000 + i // 40, "id": i + 1, "ts": at}
        if i % 100 == 0:
            yield Swap(
                chain="solana", wallet="U", mint_in=WSOL, amount_in=10**9, mint_out=USDC,
                amount_out=150_000_000 + rng.randrange(-10**6, 10**6), decimals_out=6, block_time=at, **common,
            )  # fmt: skip
        elif i % 50 == 7:
            yield Transfer(
                chain="solana", source=f"W{rng.randrange(1000)}", destination=f"W{rng.randrange(1000)}",
                mint=WSOL, amount=rng.randrange(10**6, 10**10), decimals=9, block_time=at, **common,
            )  # fmt: skip
        elif i % 500 == 13:
            yield TokenLaunch(chain="solana", mint=f"New{i:041d}"[:44], source="pumpfun", creator="C", **common)
        else:
            k = rng.randrange(tokens)
            prices[k] *= 1 + rng.gauss(0, 0.01)
            lamports = rng.randrange(10**7, 10**10)
            yield Swap(
                chain="solana", wallet=f"W{rng.randrange(1000)}", mint_in=WSOL, amount_in=lamports,
                mint_out=mints[k], amount_out=max(1, int(lamports / prices[k])), decimals_out=6,
                block_time=at, **common,
            )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("-c", "--config", action="append", help="config for the replay (default: none)")
    args = parser.parse_args()
    setup_logging(level="error", stream=sys.stderr)
    structlog.get_logger()
    with tempfile.TemporaryDirectory(prefix="quantbot-bench-replay-") as tmp:
        work = Path(tmp)
        path = work / "synthetic.jsonl.gz"
        started = time.perf_counter()
        count = write_recording(path, synthetic(args.events, args.tokens))
        write_s = time.perf_counter() - started
        print(f"wrote {count} events ({path.stat().st_size / 1e6:.1f} MB gzip) in {write_s:.2f} s")

        started = time.perf_counter()
        read = sum(1 for _ in read_recording(path))
        read_s = time.perf_counter() - started
        print(f"read:   {read / read_s:>10,.0f} events/s  ({read} events in {read_s:.2f} s)")

        config = args.config or []
        if not config:
            empty = work / "bench.toml"
            empty.write_text('[daemon]\nlog_level = "error"\n')
            config = [str(empty)]
        started = time.perf_counter()
        cpu = time.process_time()
        result = asyncio.run(replay_once(path=path, config_paths=config, work_dir=work / "run"))
        replay_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu
        rate = result.events / replay_s
        print(
            f"replay: {rate:>10,.0f} events/s  ({result.events} events in {replay_s:.2f} s wall, "
            f"{cpu_s:.2f} s CPU; target {TARGET:,})"
        )
        return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
