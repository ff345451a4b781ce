#!/usr/bin/env python3
"""Benchmark the Solana transaction parser over the recorded corpus.

Reports transactions parsed per second (raw bytes -> events) and the ratio of that time to a plain
`msgspec.json.decode` of the same bytes (the floor any parser pays). Target ratio <= 2.0.

    .venv/bin/python scripts/bench/solana_parse.py [--fixtures ../shared/fixtures/solana] [--rounds 300]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import msgspec

from quantbot.chains.solana.parser import SolanaParser

REPO = Path(__file__).resolve().parents[2]
DEFAULT = Path(os.environ.get("QUANTBOT_FIXTURES", REPO.parent / "shared" / "fixtures")) / "solana"


def corpus(folder: Path) -> list[bytes]:
    """Every fixture that is a transaction (the parser yields events and rejects nothing)."""
    out: list[bytes] = []
    for path in sorted(folder.glob("*.json")):
        raw = path.read_bytes()
        parser = SolanaParser()
        if parser.parse_transaction(raw) and not parser.rejected:
            out.append(raw)
    return out


def timed(fn: object, items: list[bytes], rounds: int) -> float:
    """Best-of-5 seconds for `rounds` passes over `items`."""
    call = fn  # type: ignore[assignment]
    best = float("inf")
    for _ in range(5):
        gc.collect()
        start = time.perf_counter()
        for _ in range(rounds):
            for raw in items:
                call(raw)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", type=Path, default=DEFAULT)
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    items = corpus(args.fixtures)
    if not items:
        print(f"no transactions found in {args.fixtures}", file=sys.stderr)
        return 1
    parser = SolanaParser()
    plain = msgspec.json.Decoder()
    n = len(items) * args.rounds
    t_decode = timed(plain.decode, items, args.rounds)
    t_parse = timed(parser.parse_transaction, items, args.rounds)
    sizes = [len(x) for x in items]
    print(f"corpus: {len(items)} transactions, median {statistics.median(sizes) / 1024:.1f} KiB, x{args.rounds} rounds")
    print(f"json decode only : {n / t_decode:10.0f} tx/s  ({t_decode / n * 1e6:7.1f} us/tx)")
    print(f"decode + parse   : {n / t_parse:10.0f} tx/s  ({t_parse / n * 1e6:7.1f} us/tx)")
    print(f"ratio parse/decode: {t_parse / t_decode:.2f} (target <= 2.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
