#!/usr/bin/env python3
"""Benchmark the Solana transaction parser over the recorded corpus.

Reports transactions parsed per second (raw bytes -> events) and the ratio of that time to a plain
`msgspec.json.decode` of the same bytes (the floor any parser pays). Target ratio <= 2.0.

    .venv/bin/python scripts/bench/solana_parse.py [--fixtures ../shared/fixtures/solana] [--rounds 40] [--passes 20]
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
from quantbot.logs import setup_logging

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


def paired(
    decode: object, parse: object, items: list[bytes], rounds: int, passes: int
) -> tuple[list[float], list[float]]:
    """Per round: one pass of `passes` x corpus through each, back to back, so both see the same load."""
    dec, par = decode, parse
    t_dec: list[float] = []
    t_par: list[float] = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        for _ in range(passes):
            for raw in items:
                dec(raw)  # type: ignore[operator]
        mid = time.perf_counter()
        for _ in range(passes):
            for raw in items:
                par(raw)  # type: ignore[operator]
        t_dec.append(mid - start)
        t_par.append(time.perf_counter() - mid)
    return t_dec, t_par


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", type=Path, default=DEFAULT)
    ap.add_argument("--rounds", type=int, default=40, help="paired decode/parse rounds")
    ap.add_argument("--passes", type=int, default=20, help="passes over the corpus per round")
    args = ap.parse_args()
    # the fixtures that are not transactions (account data, webhook and websocket samples) are refused
    # while the corpus is picked: their warnings are expected, not news
    setup_logging(level="error", stream=sys.stderr)
    items = corpus(args.fixtures)
    if not items:
        print(f"no transactions found in {args.fixtures}", file=sys.stderr)
        return 1
    parser = SolanaParser()
    plain = msgspec.json.Decoder()
    t_dec, t_par = paired(plain.decode, parser.parse_transaction, items, args.rounds, args.passes)
    n = len(items) * args.passes
    best_dec, best_par = min(t_dec), min(t_par)
    ratios = sorted(p / d for d, p in zip(t_dec, t_par, strict=True))
    sizes = [len(x) for x in items]
    print(
        f"corpus: {len(items)} transactions, median {statistics.median(sizes) / 1024:.1f} KiB; "
        f"{args.rounds} rounds x {args.passes} passes"
    )
    print(f"json decode only : {n / best_dec:10.0f} tx/s  ({best_dec / n * 1e6:7.1f} us/tx, best round)")
    print(f"decode + parse   : {n / best_par:10.0f} tx/s  ({best_par / n * 1e6:7.1f} us/tx, best round)")
    print(
        f"ratio parse/decode: best-vs-best {best_par / best_dec:.2f}, median of paired rounds "
        f"{statistics.median(ratios):.2f} (target <= 2.0)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
