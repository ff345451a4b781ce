"""Held tokens that trade in an AMM pool are priced from their pool vaults, watched live on chain.

The PriceBook remembers the vaults of pool launches (`token.launch`), watches both vaults of a held
token (alongside its pump.fun curve), lets the pool take over when the curve completes, releases
them when the position closes, and, end to end against a local Solana node, feeds the exit rules
with no HTTP price source at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
from solders.pubkey import Pubkey

from quantbot.assets import WSOL
from quantbot.bus import EventBus
from quantbot.chains.solana.parser import SolanaParser
from quantbot.chains.solana.rpc import SolanaRpcPool
from quantbot.chains.solana.watcher import SolanaWatcher
from quantbot.clock import SimClock, WallClock
from quantbot.config import ExitsConfig, PricesConfig, RiskConfig, SolanaConfig, SolanaEndpointConfig
from quantbot.events import OrderIntent, PositionUpdate, PriceUpdate, TokenLaunch
from quantbot.localnet.solana import LocalSolana
from quantbot.prices import POOL_RECORD, PriceBook
from quantbot.reserves import bonding_curve_address
from quantbot.retry import Backoff
from quantbot.store import PositionRow
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import order_intent
from tests.orderpath import OrderPath, order_path
from tests.test_prices import (
    PUMP_MINT,
    T0,
    TOKENKEG,
    RecordingWatcher,
    account,
    curve_bytes,
    price_book,
    token_account_bytes,
)

GUARD_S = 20.0  # a hang guard, not a speed assertion
V4_AUTHORITY = "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"
RAYDIUM_INIT = "raydium_v4_initialize2_gettransaction_jsonparsed.json"
FIXTURE_MINT = "6Ed5YTw9AoUhr5VcsjZdGHqpdruqgCaZcLv7WU6npump"
FIXTURE_BASE_VAULT = "Dn1NMgHneoKZvtgec5Pnv336qGVV6AyPuqS5rNvNAFa1"  # holds the token (fixture token balances)
FIXTURE_QUOTE_VAULT = "9JQ4n7s9xnJvbmaG9wtkUiC8qLUR2MR4LQeJw1ka7X77"  # holds the WSOL


def launch(mint: str, base_vault: str | None, quote_vault: str | None) -> TokenLaunch:
    return TokenLaunch(
        chain="solana", mint=mint, source="Raydium AMM v4", base_mint=mint, quote_mint=WSOL,
        base_vault=base_vault, quote_vault=quote_vault,
    )  # fmt: skip


def held(mint: str, quantity: int = 10**9) -> PositionUpdate:
    return PositionUpdate(chain="solana", token=mint, quantity=quantity, avg_cost_native=Decimal("0.0004"))


def vaults() -> tuple[str, str]:
    return str(Pubkey.new_unique()), str(Pubkey.new_unique())


async def test_a_held_token_with_a_known_pool_gets_both_vaults_watched_and_released_on_close() -> None:
    base, quote = vaults()
    async with price_book() as b:
        await b.send(launch(PUMP_MINT, base, quote))
        assert b.watcher.watching == set(), "a launch alone watches nothing"
        await b.send(held(PUMP_MINT))
        assert b.watcher.watching == {bonding_curve_address(PUMP_MINT), base, quote}
        await b.send(held(PUMP_MINT, quantity=0))
        assert b.watcher.watching == set()


async def test_a_pool_launched_after_the_buy_is_watched_when_it_appears_and_prices_the_token() -> None:
    base, quote = vaults()
    async with price_book(publish_min_interval_s=0) as b:
        await b.send(held(PUMP_MINT))
        assert b.watcher.watching == {bonding_curve_address(PUMP_MINT)}
        await b.send(launch(PUMP_MINT, base, quote))
        assert b.watcher.watching == {bonding_curve_address(PUMP_MINT), base, quote}
        await b.send(
            account(base, token_account_bytes(PUMP_MINT, V4_AUTHORITY, 200_000_000_000_000), owner=TOKENKEG),
            account(quote, token_account_bytes(WSOL, V4_AUTHORITY, 80_000_000_000), owner=TOKENKEG),
        )
        [update] = b.updates()
        assert (update.source, update.price_native) == ("pool", Decimal("0.0004"))


async def test_when_the_curve_completes_the_pool_takes_over_the_price() -> None:
    base, quote = vaults()
    curve = bonding_curve_address(PUMP_MINT)
    async with price_book(publish_min_interval_s=0) as b:
        await b.send(held(PUMP_MINT))
        await b.send(account(curve, curve_bytes(10**15, 4 * 10**11)))
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and (q.source, q.native) == ("curve", Decimal("0.0004"))
        # Graduation: the pool is created (the migration launch), then the curve is marked complete.
        await b.send(launch(PUMP_MINT, base, quote))
        await b.send(account(curve, curve_bytes(10**15, 4 * 10**11, complete=True)))
        assert b.watcher.watching == {base, quote}
        assert b.book.quote("solana", PUMP_MINT) is None, "the completed curve prices nothing"
        await b.send(
            account(base, token_account_bytes(PUMP_MINT, V4_AUTHORITY, 10**14), owner=TOKENKEG),
            account(quote, token_account_bytes(WSOL, V4_AUTHORITY, 42 * 10**9), owner=TOKENKEG),
        )
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and (q.source, q.native) == ("pool", Decimal("0.00042"))


async def test_only_the_last_pool_memory_launches_are_remembered() -> None:
    first, second, third = vaults(), vaults(), vaults()
    mints = [str(Pubkey.new_unique()) for _ in range(3)]
    async with price_book(pool_memory=2) as b:
        for mint, (base, quote) in zip(mints, (first, second, third), strict=True):
            await b.send(launch(mint, base, quote))
        assert b.book.pool_vaults("solana", mints[0]) is None
        assert b.book.pool_vaults("solana", mints[2]) == third
        await b.send(held(mints[0]), held(mints[1]))
        assert b.watcher.watching == {bonding_curve_address(mints[0]), bonding_curve_address(mints[1]), *second}


async def test_a_launch_without_both_vaults_is_not_remembered() -> None:
    async with price_book() as b:
        await b.send(launch(PUMP_MINT, str(Pubkey.new_unique()), None), held(PUMP_MINT))
        assert b.book.pool_vaults("solana", PUMP_MINT) is None
        assert b.watcher.watching == {bonding_curve_address(PUMP_MINT)}


def test_pool_memory_defaults_and_rejects_zero() -> None:
    assert PricesConfig().pool_memory == 10_000
    try:
        msgspec.convert({"pool_memory": 0}, PricesConfig)
    except msgspec.ValidationError:
        return
    raise AssertionError("pool_memory = 0 was accepted")


# --- end to end: chain -> watcher -> parser -> PriceBook -> exits ------------------------------


async def _until(path: OrderPath, done: Callable[[], bool]) -> None:
    async with asyncio.timeout(GUARD_S):
        while not done():
            await path.bus.drain(5)
            await asyncio.sleep(0.01)


async def test_a_raydium_launched_token_is_priced_from_its_vaults_on_chain_and_its_stop_loss_fires(
    tmp_path: Path, local_solana: LocalSolana, solana_fixtures: Path
) -> None:
    node = local_solana
    wall = WallClock()
    clock = SimClock()
    endpoint = SolanaEndpointConfig(http=node.http_url, ws=node.ws_url, timeout=5.0, rps=0)
    solana = SolanaConfig(enabled=True, endpoints=(endpoint,), launch_programs=("raydium_v4",))
    fast = Backoff(base=0.01, cap=0.05)
    rules = ExitsConfig(stop_loss_pct=Decimal(20), take_profit_pct=Decimal(0))
    async with (
        order_path(tmp_path, exits=rules, limits=RiskConfig(token_cooldown_s=0), clock=clock) as path,
        SolanaRpcPool(endpoints=[endpoint], clock=wall, backoff=fast) as rpc,
    ):
        watcher = SolanaWatcher(
            bus=path.bus, rpc=rpc, parser=SolanaParser(), store=path.store, clock=wall, config=solana,
            reconnect=fast, retry=fast,
        )  # fmt: skip
        book = PriceBook(
            bus=path.bus, clock=clock, config=PricesConfig(publish_min_interval_s=0), watcher=watcher
        )  # no HTTP source: chain reserves only
        prices: list[PriceUpdate] = []

        async def record(e: object) -> None:
            if isinstance(e, PriceUpdate):
                prices.append(e)

        path.bus.subscribe("price.update", record, name="test.prices")
        await book.start()
        await watcher.start()
        try:
            async with asyncio.timeout(GUARD_S):
                await watcher.wait_synced()
            # 1. The pool is created on chain; the watcher fetches and parses it; the book learns its vaults.
            await node.announce(node.load_transaction(solana_fixtures / RAYDIUM_INIT))
            await _until(path, lambda: book.pool_vaults("solana", FIXTURE_MINT) is not None)
            assert book.pool_vaults("solana", FIXTURE_MINT) == (FIXTURE_BASE_VAULT, FIXTURE_QUOTE_VAULT)
            # 2. We buy at the pool's launch price (79 005 359 551 lamports / 206.9e12 base units).
            entry = Decimal(79_005_359_551) / Decimal(206_900_000_000_000)
            await path.bus.publish(
                order_intent(intent_id="buy", token=FIXTURE_MINT, notional_usd=Decimal(5), price_native=entry)
            )
            await path.settle()
            assert path.portfolio.position("solana", FIXTURE_MINT).quantity > 0
            subscribed = {p[0] for _, p in node.subscriptions("account")}
            assert {FIXTURE_BASE_VAULT, FIXTURE_QUOTE_VAULT} <= subscribed
            # 3. The vaults change on chain: the price follows the reserves.
            await node.set_account(
                FIXTURE_BASE_VAULT, data=token_account_bytes(FIXTURE_MINT, V4_AUTHORITY, 206_900_000_000_000),
                owner=TOKENKEG,
            )  # fmt: skip
            await node.set_account(
                FIXTURE_QUOTE_VAULT, data=token_account_bytes(WSOL, V4_AUTHORITY, 79_005_359_551), owner=TOKENKEG
            )
            await _until(path, lambda: len(prices) >= 1)
            assert (prices[0].source, prices[0].price_native) == ("pool", entry)
            assert not [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"]
            # 4. Liquidity leaves (a dump): SOL in the pool halves, and the stop-loss sells everything.
            await node.set_account(
                FIXTURE_QUOTE_VAULT, data=token_account_bytes(WSOL, V4_AUTHORITY, 39_502_679_775), owner=TOKENKEG
            )
            await _until(path, lambda: path.portfolio.position("solana", FIXTURE_MINT).quantity == 0)
            [sell] = [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"]
            assert (sell.side, sell.reduce_only, sell.reason) == ("sell", True, "stop_loss")
            assert prices[-1].source == "pool" and prices[-1].price_native < entry * Decimal("0.8")
            # 5. The position is closed: the vaults are no longer watched on chain.
            await _until(path, lambda: not node.subscriptions("account"))
        finally:
            await watcher.stop()
            await book.stop()


async def test_after_a_restart_a_held_pool_token_still_has_its_vaults_watched(tmp_path: Path) -> None:
    base, quote = vaults()
    other = str(Pubkey.new_unique())
    clock = SimClock(T0)
    async with SqliteStore(tmp_path / "q.db") as store:
        # First run: the pool launch is seen, the token is bought (the position is in the store).
        async with EventBus(clock=clock) as bus:
            book = PriceBook(bus=bus, clock=clock, config=PricesConfig(), watcher=RecordingWatcher(), store=store)
            await book.start()
            for e in (launch(PUMP_MINT, base, quote), launch(other, *vaults()), held(PUMP_MINT)):
                await bus.publish(e)
                await bus.drain(5)
            await book.stop()
        row = PositionRow(chain="solana", token=PUMP_MINT, quantity=10**9, cost_native=4 * 10**5, realised_pnl_native=0,
                          opened_at=T0, updated_at=T0)  # fmt: skip
        await store.put_position(row)
        await store.put_record(POOL_RECORD, "solana:garbage", "not json", now=T0)
        # Second run: no launch is replayed, yet the held token's vaults are watched again.
        async with EventBus(clock=clock) as bus:
            watcher = RecordingWatcher()
            book = PriceBook(bus=bus, clock=clock, config=PricesConfig(), watcher=watcher, store=store)
            await book.start()
            try:
                assert watcher.watching == {bonding_curve_address(PUMP_MINT), base, quote}
                assert book.bad_input == 1, "the unreadable record is counted and skipped"
                await bus.publish(held(PUMP_MINT, quantity=0))
                await bus.drain(5)
                assert watcher.watching == set()
                assert [k async for k, _ in store.records(POOL_RECORD)] == ["solana:garbage"]
            finally:
                await book.stop()
