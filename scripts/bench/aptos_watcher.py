#!/usr/bin/env python3
"""Benchmark the Aptos ledger stream: how fast the watcher catches up through recorded mainnet transactions.

The local fullnode (quantbot.localnet.aptos) serves the 20-swap account page fixture repeated
until the ledger holds --txs transactions (hashes made unique), and the watcher follows it from
version 0 with 100-transaction pages, keeping the transactions of one watched wallet (1 in 10; the
rest are re-addressed to strangers). The node runs in a child process, so the figure is the
watcher's own cost (HTTP client, JSON decoding, filter, parse, cursor writes) on this machine.
These swap transactions are large (~33 KB of JSON each); typical mainnet traffic is smaller.

    .venv/bin/python scripts/bench/aptos_watcher.py [--txs 20000] [--parser auto|sender]

`--parser auto` uses quantbot.chains.aptos.parser.AptosParser when installed, else a sender filter.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from quantbot.chains.aptos.client import AptosRest
from quantbot.chains.aptos.decimals import DecimalsCache, normalize_address
from quantbot.chains.aptos.watcher import AptosWatcher, TxParser
from quantbot.clock import WallClock
from quantbot.events import Event, Transfer
from quantbot.localnet.aptos import AptosLocalNode
from quantbot.logs import setup_logging
from quantbot.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("QUANTBOT_FIXTURES", REPO.parent / "shared" / "fixtures")) / "aptos"
PAGE = "account_transactions_page_0xbf9239_dex_swaps.json"


class SenderParser:
    """Fallback parser: one Transfer-shaped event per transaction whose sender is watched."""

    def __init__(self) -> None:
        self.rejected: Counter[str] = Counter()

    def touches(self, tx: Mapping[str, Any], watched: AbstractSet[str]) -> bool:
        return "sender" in tx and normalize_address(tx["sender"]) in watched

    def parse_transaction(self, raw: bytes | str | Mapping[str, Any]) -> list[Event]:
        tx = json.loads(raw) if isinstance(raw, bytes | str) else raw
        return [
            Transfer(
                chain="aptos",
                source=tx["sender"],
                destination=tx["sender"],
                mint="?",
                amount=0,
                tx=tx["hash"],
                slot=int(tx["version"]),
            )
        ]


class Counting:
    def __init__(self) -> None:
        self.events = 0

    async def publish(self, event: Event) -> Event:
        self.events += 1
        return event


def ledger(total: int, others_every: int) -> tuple[list[dict[str, Any]], str]:
    page = json.loads((FIXTURES / PAGE).read_text())
    wallet = page[0]["sender"]
    out = []
    for n in range(total):
        tx = dict(page[n % len(page)])
        tx["hash"] = "0x" + hashlib.sha3_256(f"{n}".encode()).hexdigest()
        if n % others_every:  # most of the chain is somebody else's
            tx["sender"] = "0x" + hashlib.sha3_256(f"other{n}".encode()).hexdigest()
        out.append(tx)
    return out, wallet


def make_parser(kind: str) -> tuple[TxParser, str]:
    if kind == "auto":
        try:
            from quantbot.chains.aptos.parser import AptosParser  # type: ignore[import-not-found, unused-ignore]

            return AptosParser(), "AptosParser"
        except ImportError:
            pass
    return SenderParser(), "sender filter"


def serve(total: int, urls: Any, stop: Any) -> None:
    """Child process: the local node with the benchmark ledger, until told to stop."""

    async def node_main() -> None:
        txs, _ = ledger(total, others_every=10)
        async with AptosLocalNode() as node:
            node.add_transactions(txs)
            urls.put((node.url, node.ledger.version))
            while not stop.is_set():  # noqa: ASYNC110  (a multiprocessing Event, not an asyncio one)
                await asyncio.sleep(0.05)

    setup_logging(level="warning", fmt="console")
    asyncio.run(node_main())


async def run(total: int, parser_kind: str, url: str, head: int) -> None:
    _, wallet = ledger(1, others_every=10)
    parser, parser_name = make_parser(parser_kind)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        await store.start()
        clock = WallClock()
        rest = AptosRest(nodes=[url], clock=clock)
        bus = Counting()
        watcher = AptosWatcher(
            bus=bus,
            store=store,
            parser=parser,
            rest=rest,
            clock=clock,
            decimals=DecimalsCache(rest=rest),
            wallets=[wallet],
            start_version=0,
            poll_interval=0.01,
        )
        started = time.perf_counter()
        await watcher.start()
        while (watcher.next_version or 0) <= head:  # noqa: ASYNC110  (polling the watcher from outside)
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await watcher.stop()
        await store.stop()
    stats = watcher.stats()
    print(f"parser: {parser_name}; ledger: {head + 1} versions, {stats['matched']} matched, {bus.events} events")
    print(
        f"caught up in {elapsed:.2f}s: {(head + 1) / elapsed:,.0f} versions/s over {stats['polls']} pages "
        f"({(head + 1) / elapsed * 33 / 1024:,.1f} MB/s of transaction JSON)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=20_000)
    parser.add_argument("--parser", choices=("auto", "sender"), default="auto")
    args = parser.parse_args()
    if not (FIXTURES / PAGE).is_file():
        print(f"fixture {FIXTURES / PAGE} not found (set QUANTBOT_FIXTURES)", file=sys.stderr)
        return 2
    setup_logging(level="warning", fmt="console")
    ctx = mp.get_context("spawn")
    urls, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=serve, args=(args.txs, urls, stop), name="aptos-localnet")
    child.start()
    try:
        url, head = urls.get(timeout=120)
        asyncio.run(run(args.txs, args.parser, url, head))
    finally:
        stop.set()
        child.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
