#!/usr/bin/env python3
"""Benchmark the Solana watcher against the local endpoint (real solana-py clients, real WebSocket).

1. Launch logs: notifications per second from the node's announce to the event on the bus
   (logs-only path, no getTransaction), using a recorded pump.fun create with distinct signatures.
2. Wallet activity: latency from sendTransaction's return to the published event
   (logsNotification -> getTransaction -> parse -> publish), p50/p99, one transaction at a time.
3. Backfill: signatures per second recovered after a restart (getSignaturesForAddress pages +
   getTransaction), from start() to the last event.

A trivial parser stands in for SolanaParser, so the numbers are the watcher's and the wire's.

    .venv/bin/python scripts/bench/solana_watcher.py [--launches 2000] [--wallet-txs 200] [--backfill 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from solana.rpc.async_api import AsyncClient
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from quantbot.bus import EventBus
from quantbot.chains.solana.rpc import SolanaRpcPool
from quantbot.chains.solana.watcher import SolanaWatcher
from quantbot.clock import WallClock
from quantbot.config import SolanaConfig, SolanaEndpointConfig, SolanaWalletConfig
from quantbot.events import Event, TokenLaunch, Transfer
from quantbot.localnet.solana import LocalSolana
from quantbot.store.sqlite import SqliteStore

FIXTURES = Path(os.environ.get("QUANTBOT_FIXTURES", Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"))


class BenchParser:
    def __init__(self) -> None:
        self.rejected: Counter[str] = Counter()

    def parse_transaction(self, raw: bytes | str | Mapping[str, Any]) -> list[Event]:
        if not isinstance(raw, Mapping):
            raise TypeError("the watcher hands the parser decoded JSON")
        keys = raw["transaction"]["message"]["accountKeys"]
        key = keys[0]["pubkey"] if isinstance(keys[0], Mapping) else keys[0]
        sig = raw["transaction"]["signatures"][0]
        return [Transfer(chain="solana", source=key, destination=key, mint="SOL", amount=1, tx=sig, slot=raw["slot"])]

    def parse_logs(
        self, *, signature: str, slot: int, logs: Sequence[str], err: object = None, block_time: datetime | None = None
    ) -> list[Event]:
        return [TokenLaunch(chain="solana", mint=signature, tx=signature)]


class Recorder:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def __call__(self, event: Event) -> None:
        if isinstance(event, TokenLaunch | Transfer):
            self.arrived[event.tx] = time.perf_counter()
            self.changed.set()

    async def until(self, n: int) -> None:
        while len(self.arrived) < n:
            self.changed.clear()
            await self.changed.wait()


class Running:
    """A started bus + RPC pool + watcher; `await running.stop()` tears all three down."""

    def __init__(self, store: SqliteStore, config: SolanaConfig, rec: Recorder) -> None:
        clock = WallClock()
        self.bus = EventBus(clock=clock, queue_size=100_000)
        self.bus.subscribe("#", rec, name="bench")
        self.pool = SolanaRpcPool(endpoints=config.endpoints, clock=clock)
        self.watcher = SolanaWatcher(
            bus=self.bus, rpc=self.pool, parser=BenchParser(), store=store, clock=clock, config=config
        )

    async def start(self) -> Running:
        await self.bus.__aenter__()
        await self.pool.start()
        await self.watcher.start()
        await self.watcher.wait_synced()
        return self

    async def stop(self) -> None:
        await self.watcher.stop()
        await self.pool.stop()
        await self.bus.aclose()


async def run_watcher(node: LocalSolana, store: SqliteStore, config: SolanaConfig, rec: Recorder) -> Running:
    return await Running(store, config, rec).start()


async def bench_launches(n: int) -> None:
    recorded = json.loads((FIXTURES / "solana" / "pumpfun_create_v2_gettransaction_jsonparsed.json").read_text())
    async with LocalSolana() as node:
        endpoint = SolanaEndpointConfig(http=node.http_url, ws=node.ws_url, rps=0)
        config = SolanaConfig(enabled=True, endpoints=(endpoint,), launch_programs=("pumpfun",))
        sigs = []
        for _ in range(n):
            copy = json.loads(json.dumps(recorded))
            copy["result"]["transaction"]["signatures"][0] = str(Keypair().sign_message(b"bench"))
            sigs.append(node.add_transaction(copy))
        with tempfile.TemporaryDirectory() as tmp:
            async with SqliteStore(Path(tmp) / "q.db") as store:
                rec = Recorder()
                watcher = await run_watcher(node, store, config, rec)
                start = time.perf_counter()
                for sig in sigs:
                    await node.announce(sig)
                await rec.until(n)
                elapsed = time.perf_counter() - start
                await watcher.stop()
    print(f"launch logs: {n} notifications in {elapsed:.2f}s = {n / elapsed:,.0f}/s (announce -> bus)")


async def bench_wallet(n: int, backfill: int) -> None:
    async with LocalSolana() as node:
        whale = Keypair()
        node.ledger.svm.airdrop(whale.pubkey(), 10**13)
        blockhash = Hash.from_string(str(node.ledger.svm.latest_blockhash()))
        endpoint = SolanaEndpointConfig(http=node.http_url, ws=node.ws_url, rps=0)
        config = SolanaConfig(
            enabled=True,
            endpoints=(endpoint,),
            launch_programs=(),
            wallets=(SolanaWalletConfig(address=str(whale.pubkey())),),
            backfill_page_size=1000,
            backfill_max_pages=100,
        )

        def tx(i: int) -> bytes:
            ix = transfer(TransferParams(from_pubkey=whale.pubkey(), to_pubkey=Keypair().pubkey(), lamports=10**7 + i))
            return bytes(VersionedTransaction(MessageV0.try_compile(whale.pubkey(), [ix], [], blockhash), [whale]))

        with tempfile.TemporaryDirectory() as tmp:
            async with SqliteStore(Path(tmp) / "q.db") as store, AsyncClient(node.http_url) as client:
                rec = Recorder()
                watcher = await run_watcher(node, store, config, rec)
                latencies = []
                for i in range(n):
                    sig = str((await client.send_raw_transaction(tx(i))).value)
                    sent = time.perf_counter()
                    await rec.until(i + 1)
                    latencies.append((rec.arrived[sig] - sent) * 1000)
                await watcher.stop()
                latencies.sort()
                p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
                print(
                    f"wallet tx: {n} sent one by one; send-return -> event p50 {statistics.median(latencies):.1f} ms, "
                    f"p99 {p99:.1f} ms"
                )
                for i in range(backfill):
                    await client.send_raw_transaction(tx(n + i))
                rec2 = Recorder()
                start = time.perf_counter()
                watcher = await run_watcher(node, store, config, rec2)
                await rec2.until(backfill)
                elapsed = time.perf_counter() - start
                await watcher.stop()
                print(
                    f"backfill: {backfill} missed signatures recovered in {elapsed:.2f}s = {backfill / elapsed:,.0f}/s"
                )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launches", type=int, default=2000)
    parser.add_argument("--wallet-txs", type=int, default=200)
    parser.add_argument("--backfill", type=int, default=500)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if not (FIXTURES / "solana").is_dir():
        print(f"recorded fixtures not found at {FIXTURES} (set QUANTBOT_FIXTURES)", file=sys.stderr)
        return 1
    await bench_launches(args.launches)
    await bench_wallet(args.wallet_txs, args.backfill)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
