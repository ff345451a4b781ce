"""Aptos end to end: a watched wallet swaps on the local fullnode; the daemon's watcher (real REST pool, decimals
cache and AptosParser, built as `quantbot run` builds it) publishes the Swap with the amounts the chain moved."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from aptos_sdk.account import Account
from aptos_sdk.async_client import RestClient
from aptos_sdk.bcs import Serializer
from aptos_sdk.transactions import EntryFunction, TransactionArgument, TransactionPayload
from aptos_sdk.type_tag import StructTag, TypeTag

from quantbot.bus import EventBus
from quantbot.clock import WallClock
from quantbot.config import load_config
from quantbot.daemon import build_aptos_watcher
from quantbot.events import Event, Swap, Transfer
from quantbot.localnet.aptos import AptosLocalNode
from quantbot.localnet.aptos_ledger import RouterSwap
from quantbot.localnet.aptos_state import APT
from quantbot.store.sqlite import SqliteStore
from tests.conftest import write

USDC = "0xcafe::usdc::USDC"
ROUTER = "0xbeef"
POOL = "0x5001"
GUARD_S = 30.0  # a hang guard, not a speed assertion


async def swap_apt_for_usdc(rest: RestClient, trader: Account, amount_in: int, min_out: int) -> str:
    payload = EntryFunction.natural(
        "0x" + "0" * 60 + "beef::router",
        "swap_exact_input",
        [TypeTag(StructTag.from_str(APT)), TypeTag(StructTag.from_str(USDC))],
        [TransactionArgument(amount_in, Serializer.u64), TransactionArgument(min_out, Serializer.u64)],
    )
    signed = await rest.create_bcs_signed_transaction(trader, TransactionPayload(payload))
    return await rest.submit_bcs_transaction(signed)


async def test_a_watched_wallets_router_swap_reaches_the_bus_as_a_swap(tmp_path: Path) -> None:
    router = RouterSwap(address=ROUTER, pool=POOL, rates={(APT, USDC): Decimal("0.05")})
    async with AptosLocalNode(router=router) as node:
        node.add_coin(USDC, name="USD Coin", symbol="USDC", decimals=6)
        node.set_balance(POOL, USDC, 10**12)
        trader, bystander = Account.generate(), Account.generate()
        node.fund(str(trader.address()), 10**9)
        node.fund(str(bystander.address()), 10**9)
        cfg = write(
            tmp_path / "q.toml",
            f"""
            [aptos]
            enabled = true
            nodes = ["{node.url}"]
            source = "ledger"
            start_version = 0
            poll_interval = 0.05
            wallets = ["{trader.address()}"]
            """,
        )
        config = load_config([cfg], environ={}).config
        seen: list[Event] = []
        swapped = asyncio.Event()
        clock = WallClock()

        async def record(e: Event) -> None:
            seen.append(e)
            if isinstance(e, Swap):
                swapped.set()

        rest = RestClient(node.url)
        try:
            async with SqliteStore(tmp_path / "q.db") as store, EventBus(clock=clock) as bus:
                bus.subscribe(["chain.aptos.swap", "chain.aptos.transfer"], record, name="test")
                watcher = build_aptos_watcher(config, bus=bus, store=store, clock=clock)
                await watcher.start()
                try:
                    # The bystander's swap comes first in the ledger, so it was read (and dropped) before ours.
                    await swap_apt_for_usdc(rest, bystander, 10**8, 4_000_000)
                    mine = await swap_apt_for_usdc(rest, trader, 10**8, 4_000_000)
                    async with asyncio.timeout(GUARD_S):
                        await swapped.wait()
                        await bus.drain(5)
                finally:
                    await watcher.stop()
            committed = await rest.transaction_by_hash(mine)
        finally:
            await rest.close()

    swaps = [e for e in seen if isinstance(e, Swap)]
    assert [s.tx for s in swaps] == [mine], "only the watched wallet's swap, once"
    (s,) = swaps
    fee = int(committed["gas_used"]) * int(committed["gas_unit_price"])
    assert (s.wallet, s.mint_in, s.amount_in, s.decimals_in) == (str(trader.address()), APT, 10**8, 8)
    assert s.mint_out.endswith("::usdc::USDC") and s.amount_out == 5_000_000 and s.decimals_out == 6
    assert s.fee == fee and s.slot == int(committed["version"])
    assert not any(isinstance(e, Transfer) for e in seen), "a swap's legs are not reported as transfers"
