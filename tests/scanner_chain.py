"""Test helpers: a running SolanaWatcher (real parser) + MemeScanner against the local Solana endpoint,
with the recorded accounts of a pump.fun create_v2 launch served where the launch points."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solders.pubkey import Pubkey
from solders.token.state import TokenAccount, TokenAccountState

from quantbot.api import Filter
from quantbot.bus import EventBus
from quantbot.chains.solana.parser import SolanaParser
from quantbot.chains.solana.programs import METAPLEX_METADATA_PROGRAM, TOKEN_2022_PROGRAM
from quantbot.chains.solana.rpc import SolanaRpcPool
from quantbot.chains.solana.watcher import SolanaWatcher
from quantbot.clock import WallClock
from quantbot.config import ScannerConfig, SolanaConfig, SolanaEndpointConfig
from quantbot.creators import CreatorHistory
from quantbot.enrich import SolanaEnricher, ata, metadata_pda
from quantbot.events import Event
from quantbot.filtering import FilterStage
from quantbot.localnet.solana import LocalSolana
from quantbot.retry import Backoff
from quantbot.scanner import MemeScanner
from quantbot.store.sqlite import SqliteStore
from quantbot.store.writer import WriteBehind

GUARD_S = 20.0  # a hang guard, not a speed assertion

CREATE_V2 = "pumpfun_create_v2_gettransaction_jsonparsed.json"
MINT = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"
CURVE = "3jJ83NDorkbFkF1JKbEfFWGeX16aXUiwby9RwJm9kat3"
CREATOR = "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
MINT_SUPPLY = 99_998_926_239_436
"""Supply of the recorded Token-2022 mint account (web3js fixture) served as this launch's mint."""
HOLDINGS = {"curve": 60, "creator": 5, "w1": 10, "w2": 8, "w3": 2}
"""Percent of supply in each token account the test creates."""


def amount(pct: int) -> int:
    return MINT_SUPPLY * pct // 100


def token_account(mint: str, owner: str, amount: int) -> bytes:
    acc = TokenAccount(
        mint=Pubkey.from_string(mint),
        owner=Pubkey.from_string(owner),
        amount=amount,
        delegate=None,
        state=TokenAccountState.Initialized,
        is_native=None,
        delegated_amount=0,
        close_authority=None,
    )
    return bytes(acc)


def serve_launch_accounts(node: LocalSolana, fixtures: Path, *, others: Sequence[str]) -> dict[str, str]:
    """Recorded mint, metadata and bonding-curve accounts at the launch's addresses, plus holders.

    Returns token-account address by holder name."""
    mint_dump = json.loads((fixtures / "web3js_fixture_spl-token-22-mint-account.json").read_text())["account"]
    node.ledger.set_account(MINT, data=base64.b64decode(mint_dump["data"][0]), owner=mint_dump["owner"])
    node.set_account_response(
        metadata_pda(MINT), (fixtures / "metaplex_metadata_nft_getaccountinfo_base64.json").read_text()
    )
    node.set_account_response(CURVE, (fixtures / "pumpfun_bonding_curve_getaccountinfo.json").read_text())
    owners = {"curve": CURVE, "creator": CREATOR, **{f"w{i + 1}": o for i, o in enumerate(others)}}
    accounts: dict[str, str] = {}
    for name, owner in owners.items():
        address = ata(owner, MINT, TOKEN_2022_PROGRAM)
        node.ledger.set_account(
            address, data=token_account(MINT, owner, amount(HOLDINGS[name])), owner=TOKEN_2022_PROGRAM
        )
        accounts[name] = address
    assert metadata_pda(MINT) != MINT and METAPLEX_METADATA_PROGRAM
    return accounts


@dataclass
class Scanning:
    node: LocalSolana
    bus: EventBus
    scanner: MemeScanner
    watcher: SolanaWatcher
    writer: WriteBehind
    store: SqliteStore
    events: list[Event] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def until(self, predicate: Callable[[list[Event]], bool]) -> None:
        async with asyncio.timeout(GUARD_S), self.changed:
            await self.changed.wait_for(lambda: predicate(self.events))

    async def settled(self) -> None:
        async with asyncio.timeout(GUARD_S):
            await self.bus.drain(GUARD_S)
            await self.scanner.drained()
            await self.bus.drain(GUARD_S)


@asynccontextmanager
async def scanning(
    node: LocalSolana,
    store: SqliteStore,
    filters: Sequence[Filter],
    *,
    config: ScannerConfig | None = None,
    lookup_timeout: float = 5.0,
    watch: bool = True,
) -> AsyncIterator[Scanning]:
    clock = WallClock()
    endpoint = SolanaEndpointConfig(http=node.http_url, ws=node.ws_url, timeout=5.0, rps=0)
    solana = SolanaConfig(enabled=True, endpoints=(endpoint,), launch_programs=("pumpfun",) if watch else ())
    fast = Backoff(base=0.01, cap=0.05)
    config = config or ScannerConfig()
    async with EventBus(clock=clock) as bus, SolanaRpcPool(endpoints=[endpoint], clock=clock, backoff=fast) as pool:
        writer = WriteBehind(store=store, clock=clock, interval=3600)
        stage = FilterStage(bus=bus, filters=list(filters), timeout=5.0, evaluate_all=config.evaluate_all)
        enricher = SolanaEnricher(rpc=pool, clock=clock, timeout=lookup_timeout)
        history = CreatorHistory(store=store, writer=writer, clock=clock)
        scanner = MemeScanner(
            bus=bus, filters=stage, config=config, clock=clock, history=history, enricher=enricher, writer=writer
        )
        watcher = SolanaWatcher(
            bus=bus,
            rpc=pool,
            parser=SolanaParser(),
            store=store,
            clock=clock,
            config=solana,
            reconnect=fast,
            retry=fast,
        )
        s = Scanning(node=node, bus=bus, scanner=scanner, watcher=watcher, writer=writer, store=store)

        async def record(event: Event) -> None:
            async with s.changed:
                s.events.append(event)
                s.changed.notify_all()

        bus.subscribe(["token.#", "chain.solana.pump_trade"], record, name="test-recorder")
        for component in (writer, stage, scanner, watcher):
            await component.start()  # type: ignore[attr-defined]
        try:
            async with asyncio.timeout(GUARD_S):
                await watcher.wait_synced()
            yield s
        finally:
            for component in (watcher, scanner, stage, writer):
                await component.stop()  # type: ignore[attr-defined]


def payload(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data
