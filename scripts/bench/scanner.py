#!/usr/bin/env python3
"""Benchmark the latency enrichment adds to one launch, against the local Solana endpoint.

The endpoint delays every request by a fixed time (its `delay` fault), so one round trip costs about
that much. A pump.fun launch needs five look-ups (mint, metadata PDA, bonding curve, creator token
accounts: one getMultipleAccounts; largest holders: getTokenLargestAccounts), issued as two concurrent
requests: they should cost one round trip. Reports the median
round trip, the median enrichment (cold cache) and their ratio. Target ratio <= 1.2.

    .venv/bin/python scripts/bench/scanner.py [--delay 0.1] [--runs 20] [--fixtures ../shared/fixtures/solana]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from solders.keypair import Keypair

from quantbot.chains.solana.parser import SolanaParser
from quantbot.chains.solana.rpc import SolanaRpcPool
from quantbot.clock import WallClock
from quantbot.config import SolanaEndpointConfig
from quantbot.enrich import SolanaEnricher
from quantbot.events import TokenLaunch
from quantbot.localnet.solana import LocalSolana

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.scanner_chain import CREATE_V2, MINT, serve_launch_accounts  # noqa: E402  (after the path fix)

DEFAULT = Path(os.environ.get("QUANTBOT_FIXTURES", REPO.parent / "shared" / "fixtures")) / "solana"


async def main(delay: float, runs: int, fixtures: Path) -> int:
    clock = WallClock()
    [launch] = [
        e for e in SolanaParser().parse_transaction((fixtures / CREATE_V2).read_bytes()) if isinstance(e, TokenLaunch)
    ]
    assert launch.mint == MINT  # noqa: S101  (the fixture is what the accounts are served for)
    async with LocalSolana() as node:
        serve_launch_accounts(node, fixtures, others=[str(Keypair().pubkey()) for _ in range(3)])
        endpoint = SolanaEndpointConfig(http=node.http_url, ws=node.ws_url, timeout=10.0, rps=0)
        async with SolanaRpcPool(endpoints=[endpoint], clock=clock) as pool:
            await pool.get_account_info(MINT)  # warm the connection
            node.faults.delay = delay
            trips, enrich = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                await pool.get_account_info(MINT)
                trips.append(time.perf_counter() - t0)
                enricher = SolanaEnricher(rpc=pool, clock=clock, timeout=10.0)  # a cold cache every run
                t0 = time.perf_counter()
                features = await enricher.enrich(launch)
                enrich.append(time.perf_counter() - t0)
                if features.failed:
                    print(f"look-ups failed: {features.missing}", file=sys.stderr)
                    return 1
    trip, took = statistics.median(trips), statistics.median(enrich)
    ratio = took / trip
    print("requests per launch: 2 concurrent (getMultipleAccounts: mint, metadata, curve, creator ATAs;")
    print("                     getTokenLargestAccounts)")
    print(f"one round trip (median of {runs}): {trip * 1000:.1f} ms  (endpoint delay {delay * 1000:.0f} ms)")
    print(f"enrichment, cold cache (median of {runs}): {took * 1000:.1f} ms  (max {max(enrich) * 1000:.1f} ms)")
    print(f"ratio: {ratio:.3f}  (target <= 1.2) {'OK' if ratio <= 1.2 else 'MISSED'}")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=0.1, help="seconds the endpoint waits before each answer")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--fixtures", type=Path, default=DEFAULT)
    args = ap.parse_args()
    sys.exit(asyncio.run(main(args.delay, args.runs, args.fixtures)))
