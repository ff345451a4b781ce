#!/usr/bin/env python3
"""Benchmark ingest: recorded mainnet transactions through the full pipeline, against bare JSON decoding.

Every recorded Solana transaction in the corpus (QUANTBOT_FIXTURES or ../shared/fixtures) goes raw
bytes -> SolanaParser -> EventBus -> WhaleTracker (discovering every wallet), PriceBook and
MemeScanner (no filters, no enrichment), passes times over, and the bus is drained before the clock
stops. The floor is `msgspec.json.decode` of the same bytes. Target: pipeline >= 0.5 x decode speed.

    .venv/bin/python scripts/bench/ingest.py [--passes 200] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import msgspec

from quantbot.bus import EventBus
from quantbot.chains.solana.parser import SolanaParser
from quantbot.clock import WallClock
from quantbot.config import PricesConfig, ScannerConfig, WhalesConfig
from quantbot.creators import CreatorHistory
from quantbot.filtering import FilterStage
from quantbot.logs import setup_logging
from quantbot.prices import PriceBook
from quantbot.scanner import MemeScanner
from quantbot.whales import WhaleTracker

REPO = Path(__file__).resolve().parents[2]
DEFAULT = Path(os.environ.get("QUANTBOT_FIXTURES", REPO.parent / "shared" / "fixtures")) / "solana"
TARGET = 0.5


def corpus(folder: Path) -> list[bytes]:
    """Every fixture that is a transaction the parser turns into events without rejecting it."""
    out: list[bytes] = []
    for path in sorted(folder.glob("*.json")):
        raw = path.read_bytes()
        parser = SolanaParser()
        if parser.parse_transaction(raw) and not parser.rejected:
            out.append(raw)
    return out


async def pipeline(items: list[bytes], passes: int) -> tuple[float, int]:
    """Seconds for `passes` x corpus through parser -> bus -> consumers, drained; and events published."""
    clock = WallClock()
    bus = EventBus(clock=clock, queue_size=4096)
    whales = msgspec.convert({"discover": True, "discover_usd": 0.000001, "discover_sol": 0.000000001}, WhalesConfig)
    parts = [
        WhaleTracker(bus=bus, clock=clock, config=whales),
        PriceBook(bus=bus, clock=clock, config=PricesConfig()),
        MemeScanner(
            bus=bus,
            filters=FilterStage(bus=bus, filters=[], timeout=1.0),
            config=ScannerConfig(),
            clock=clock,
            history=CreatorHistory(store=None, writer=None, clock=clock),
        ),
    ]
    parser = SolanaParser()
    published = 0
    async with bus:
        for p in parts:
            await p.start()  # type: ignore[attr-defined]
        gc.collect()
        start = time.perf_counter()
        for _ in range(passes):
            for raw in items:
                for event in parser.parse_transaction(raw):
                    await bus.publish(event)
                    published += 1
        await bus.drain(120.0)
        took = time.perf_counter() - start
        for p in reversed(parts):
            await p.stop()  # type: ignore[attr-defined]
    return took, published


def decode_only(items: list[bytes], passes: int) -> float:
    decode = msgspec.json.Decoder().decode
    gc.collect()
    start = time.perf_counter()
    for _ in range(passes):
        for raw in items:
            decode(raw)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", type=Path, default=DEFAULT)
    ap.add_argument("--passes", type=int, default=200, help="passes over the corpus per round")
    ap.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    ap.add_argument("--quick", action="store_true", help="a few passes, one round (smoke test)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    setup_logging(level="error", stream=sys.stderr)
    items = corpus(args.fixtures)
    if not items:
        print(f"no transactions found in {args.fixtures}", file=sys.stderr)
        return 1
    passes, rounds = (5, 1) if args.quick else (args.passes, args.rounds)
    n = len(items) * passes
    decodes: list[float] = []
    runs: list[tuple[float, int]] = []
    for _ in range(rounds):  # paired, back to back, so both see the same load from other processes
        decodes.append(decode_only(items, passes))
        runs.append(asyncio.run(pipeline(items, passes)))
    best_dec = min(decodes)
    best_pipe, events = min(runs)
    ratio = statistics.median(d / p for d, (p, _) in zip(decodes, runs, strict=True))
    result = {
        "bench": "ingest",
        "transactions": n,
        "corpus": len(items),
        "events": events,
        "decode_tps": n / best_dec,
        "pipeline_tps": n / best_pipe,
        "pipeline_eps": events / best_pipe,
        "ratio": ratio,
        "target_ratio": TARGET,
        "ok": ratio >= TARGET,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"corpus: {len(items)} transactions x {passes} passes, best of {rounds}")
    print(f"json decode only      : {n / best_dec:>10,.0f} tx/s")
    print(f"full pipeline, drained: {n / best_pipe:>10,.0f} tx/s  ({events / best_pipe:,.0f} events/s)")
    print(f"ratio pipeline/decode : {ratio:.2f} (median of paired rounds; target >= {TARGET})")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
