"""PriceBook: prices from swaps, curves and vaults; fresh only; outliers dropped; USD fails closed."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from quantbot.assets import APT_COIN, USDC_SOLANA, USDT_APTOS, WSOL
from quantbot.bus import EventBus
from quantbot.chains.solana.programs import PUMP_BONDING_CURVE_ACCOUNT as BONDING_CURVE_DISCRIMINATOR
from quantbot.chains.solana.programs import PUMP_FUN_PROGRAM as PUMP_PROGRAM
from quantbot.chains.solana.programs import TOKEN_2022_PROGRAM
from quantbot.clock import SimClock
from quantbot.config import PricesConfig
from quantbot.events import AccountUpdate, Event, PositionUpdate, PriceUpdate, Tick
from quantbot.price_quorum import pick
from quantbot.price_sources import NATIVE_ID, SourceQuote
from quantbot.prices import PriceBook
from quantbot.reserves import ReservesError, bonding_curve_address
from quantbot.store import PositionRow
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import swap

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
PUMP_MINT = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"  # create_v2 fixture's coin
PUMP_CURVE = "3jJ83NDorkbFkF1JKbEfFWGeX16aXUiwby9RwJm9kat3"  # its bonding curve, in the same transaction
WHALE = "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
TOKENKEG = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"


class RecordingWatcher:
    """An AccountWatcher that records what it was asked to watch (the Solana watcher's role)."""

    def __init__(self) -> None:
        self.watching: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    async def watch_account(self, pubkey: str) -> None:
        self.watching.add(pubkey)
        self.calls.append(("watch", pubkey))

    def unwatch_account(self, pubkey: str) -> None:
        self.watching.discard(pubkey)
        self.calls.append(("unwatch", pubkey))


@dataclass
class Book:
    book: PriceBook
    bus: EventBus
    clock: SimClock
    watcher: RecordingWatcher
    events: list[Event] = field(default_factory=list)

    async def send(self, *events: Event) -> None:
        for e in events:
            await self.bus.publish(e)
        await self.bus.drain(5)

    def updates(self) -> list[PriceUpdate]:
        return [e for e in self.events if isinstance(e, PriceUpdate)]


@asynccontextmanager
async def price_book(**config: object) -> AsyncIterator[Book]:
    clock = SimClock(T0)
    watcher = RecordingWatcher()
    async with EventBus(clock=clock) as bus:
        book = PriceBook(bus=bus, clock=clock, config=msgspec.convert(config, PricesConfig), watcher=watcher)
        b = Book(book=book, bus=bus, clock=clock, watcher=watcher)

        async def record(e: Event) -> None:
            b.events.append(e)

        bus.subscribe("price.update", record, name="test.record")
        await book.start()
        try:
            yield b
        finally:
            await book.stop()


def buy(sol: int, tokens: int, *, at: datetime = T0, mint: str = PUMP_MINT, **kw: object) -> object:
    return swap(
        wallet=WHALE, mint_in=WSOL, amount_in=sol, mint_out=mint, amount_out=tokens, decimals_out=6, block_time=at, **kw
    )


def sol_usdc(sol_lamports: int, usdc_units: int, *, at: datetime = T0) -> object:
    return swap(
        wallet=WHALE,
        mint_in=WSOL,
        amount_in=sol_lamports,
        decimals_in=9,
        mint_out=USDC_SOLANA,
        amount_out=usdc_units,
        decimals_out=6,
        block_time=at,
    )


def curve_bytes(v_tok: int, v_sol: int, *, complete: bool = False, quote_mint: str | None = None) -> bytes:
    data = BONDING_CURVE_DISCRIMINATOR + struct.pack("<QQQQQ", v_tok, v_sol, 0, 0, 10**15) + bytes([complete])
    data += bytes(32) + b"\x00\x00"
    data += bytes(Pubkey.from_string(quote_mint)) if quote_mint else bytes(32)
    return data + bytes(151 - len(data))


def token_account_bytes(mint: str, owner: str, amount: int) -> bytes:
    """An initialized SPL token account: mint, owner, amount, no delegate, state 1 at offset 108."""
    data = bytes(Pubkey.from_string(mint)) + bytes(Pubkey.from_string(owner)) + struct.pack("<Q", amount)
    data += bytes(36) + b"\x01"
    return data + bytes(165 - len(data))


def account(address: str, data: bytes, owner: str = PUMP_PROGRAM) -> AccountUpdate:
    return AccountUpdate(chain="solana", account=address, owner=owner, lamports=1, data=data, slot=1)


# --- swaps ---------------------------------------------------------------------------------------


async def test_swap_prices_token_in_lamports_per_base_unit_with_vwap_over_the_window() -> None:
    async with price_book(vwap_window_s=60, max_age_s=600) as b:
        await b.send(buy(1_000_000_000, 40_000_000_000))
        assert b.book.price_native("solana", PUMP_MINT) == Decimal("0.025")
        b.clock.advance(30)
        await b.send(buy(3_000_000_000, 60_000_000_000, at=T0 + timedelta(seconds=30)))
        # VWAP: 4 SOL for 100k tokens; the first trade is still inside the window.
        assert b.book.price_native("solana", PUMP_MINT) == Decimal("0.04")
        b.clock.advance(40)
        await b.send(buy(1_000_000_000, 10_000_000_000, at=T0 + timedelta(seconds=70)))
        # The first trade (t=0) left the window; VWAP of the last two: 4 SOL / 70k tokens.
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and q.source == "swap"
        assert q.native == Decimal(4_000_000_000) / Decimal(70_000_000_000)
        assert q.observed_at == T0 + timedelta(seconds=70) and q.age == 0


async def test_sells_price_the_token_too_and_dust_trades_are_ignored() -> None:
    async with price_book(min_trade_native=10_000_000) as b:
        sell = swap(
            wallet=WHALE,
            mint_in=PUMP_MINT,
            amount_in=50_000,
            decimals_in=6,
            mint_out=WSOL,
            amount_out=5_000_000,
            block_time=T0,
        )
        await b.send(sell)
        assert b.book.price_native("solana", PUMP_MINT) is None  # 0.005 SOL: below min_trade_native
        sell = msgspec.structs.replace(sell, amount_in=500_000_000, amount_out=20_000_000)
        await b.send(sell)
        assert b.book.price_native("solana", PUMP_MINT) == Decimal("0.04")


async def test_price_older_than_max_age_is_refused_and_counted() -> None:
    async with price_book(max_age_s=120) as b:
        await b.send(buy(1_000_000_000, 40_000_000_000))
        b.clock.advance(120)
        assert b.book.price_native("solana", PUMP_MINT) == Decimal("0.025")  # exactly at the bound: fresh
        assert b.book.quote("solana", PUMP_MINT).age == 120  # type: ignore[union-attr]
        b.clock.advance(0.001)
        assert b.book.price_native("solana", PUMP_MINT) is None
        assert b.book.quote("solana", PUMP_MINT) is None


async def test_backfilled_old_swap_never_becomes_a_fresh_price() -> None:
    async with price_book(max_age_s=120) as b:
        await b.send(buy(1_000_000_000, 40_000_000_000, at=T0 - timedelta(hours=1)))
        assert b.book.price_native("solana", PUMP_MINT) is None
        assert b.book.stats()["stale_refused"] == 1


# --- USD -----------------------------------------------------------------------------------------


async def test_usd_fails_closed_without_a_fresh_sol_usd_price() -> None:
    async with price_book(max_age_s=120) as b:
        await b.send(buy(1_000_000_000, 40_000_000_000))
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and q.usd is None
        assert b.book.usd_per_native("solana") is None
        # 2 SOL sold for 300 USDC: 150 USD per SOL, from decimals 9 and 6.
        await b.send(sol_usdc(2_000_000_000, 300_000_000))
        assert b.book.usd_per_native("solana") == Decimal(150)
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and q.usd == Decimal("0.025") * 150 / 10**9
        b.clock.advance(121)
        assert b.book.usd_per_native("solana") is None


async def test_apt_usd_from_a_usdt_swap_with_short_or_long_addresses() -> None:
    async with price_book() as b:
        apt_usdt = swap(
            chain="aptos",
            wallet="0xbf9239be9eb7e7a3d8e4c1f36083464fd47e6bd1f82a43b6ad2ba0a9f5ef3a2b",
            mint_in=APT_COIN,
            amount_in=10 * 10**8,
            decimals_in=8,
            mint_out=USDT_APTOS.upper().replace("0X", "0x"),
            amount_out=52_500_000,
            decimals_out=6,
            block_time=T0,
        )
        await b.send(apt_usdt)
        assert b.book.usd_per_native("aptos") == Decimal("5.25")
        assert b.book.usd_per_native("solana") is None
        aptos_buy = swap(
            chain="aptos",
            wallet="0xbf9239be9eb7e7a3d8e4c1f36083464fd47e6bd1f82a43b6ad2ba0a9f5ef3a2b",
            mint_in="0xa",
            amount_in=2 * 10**8,
            decimals_in=8,
            mint_out="0x1234::meme::MEME",
            amount_out=4 * 10**6,
            decimals_out=6,
            block_time=T0,
        )
        await b.send(aptos_buy)
        q = b.book.quote("aptos", "0x0000001234::meme::MEME")
        assert q is not None and q.native == Decimal(50) and q.usd == Decimal(50) * Decimal("5.25") / 10**8


async def test_usdc_quoted_trade_prices_the_token_once_sol_has_a_usd_price() -> None:
    async with price_book() as b:
        usdc_buy = swap(
            wallet=WHALE,
            mint_in=USDC_SOLANA,
            amount_in=30_000_000,
            decimals_in=6,
            mint_out=PUMP_MINT,
            amount_out=600_000_000_000,
            decimals_out=6,
            block_time=T0,
        )
        await b.send(usdc_buy)  # 30 USDC for 600k tokens: 5e-11 USD per base unit
        assert b.book.quote("solana", PUMP_MINT) is None  # USD only; no SOL/USD to convert with
        await b.send(sol_usdc(1_000_000_000, 200_000_000))
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and q.source == "swap_usd" and q.native == Decimal("5E-11") / Decimal("2E-7")


# --- agreement between sources -------------------------------------------------------------------


async def test_an_outlier_source_is_dropped_and_counted() -> None:
    async with price_book(max_deviation_pct=20) as b:
        await b.send(buy(1_000_000_000, 40_000_000_000))  # swap: 0.025
        await b.book.track("solana", PUMP_MINT, curve=PUMP_CURVE)
        await b.send(account(PUMP_CURVE, curve_bytes(40_000_000_000, 1_050_000_000)))  # curve: 0.02625
        await b.book.observe_quotes(
            "dexscreener", [SourceQuote(chain="solana", token=PUMP_MINT, native=Decimal("0.0001"))]
        )
        # 0.1 SOL per whole token = 0.1e9 / 1e6 = 0.1 lamports per base unit: four times the others.
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and q.source == "curve" and q.native == Decimal("0.02625")
        assert b.book.stats()["outliers_dropped"] == {"dexscreener": 1}


async def test_two_sources_that_disagree_give_no_price_until_one_goes_stale() -> None:
    async with price_book(max_deviation_pct=20, max_age_s=60) as b:
        await b.book.track("solana", PUMP_MINT, curve=PUMP_CURVE)
        await b.send(account(PUMP_CURVE, curve_bytes(40_000_000_000, 1_000_000_000)))  # 0.025
        b.clock.advance(30)
        await b.send(buy(2_000_000_000, 40_000_000_000, at=T0 + timedelta(seconds=30)))  # 0.05
        assert b.book.quote("solana", PUMP_MINT) is None
        assert b.book.stats()["disagreements"] == 1
        b.clock.advance(31)  # the curve reading is now 61 s old
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and q.source == "swap" and q.native == Decimal("0.05")


async def test_sources_within_the_bound_agree_and_the_preferred_one_answers() -> None:
    async with price_book(max_deviation_pct=20) as b:
        await b.send(buy(1_000_000_000, 40_000_000_000))  # 0.025
        await b.send(sol_usdc(1_000_000_000, 200_000_000))  # 200 USD / SOL
        # Jupiter: 0.0055 USD per whole token (6 decimals) at 200 USD/SOL = 0.0275 lamports per base unit.
        await b.book.observe_quotes(
            "jupiter", [SourceQuote(chain="solana", token=PUMP_MINT, usd=Decimal("0.0055"), decimals=6)]
        )
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and q.source == "swap"
        assert b.book.stats()["outliers_dropped"] == {}


@given(
    st.lists(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**6), places=6), min_size=1, max_size=6),
    st.decimals(min_value=Decimal(1), max_value=Decimal(100), places=1),
)
def test_pick_never_keeps_a_value_further_from_the_median_than_the_bound(values: list[Decimal], dev: Decimal) -> None:
    cands = [(f"s{i}", v, T0) for i, v in enumerate(values)]
    kept, dropped = pick(cands, dev)
    assert sorted(kept + dropped) == sorted(c[0] for c in cands)
    kept_values = [v for s, v, _ in cands if s in kept]
    if len(values) >= 3:
        mid = (
            sorted(values)[len(values) // 2] if len(values) % 2 else sum(sorted(values)[len(values) // 2 - 1 :][:2]) / 2
        )
        assert all(abs(v - mid) <= mid * dev / 100 for v in kept_values)
    if len(values) == 2 and kept:
        assert abs(values[0] - values[1]) <= (values[0] + values[1]) / 2 * dev / 100 * 2


# --- reserves ------------------------------------------------------------------------------------


async def test_recorded_bonding_curve_account_prices_its_token(solana_fixtures: Path) -> None:
    raw = json.loads((solana_fixtures / "pumpfun_bonding_curve_getaccountinfo.json").read_text())["result"]["value"]
    data = base64.b64decode(raw["data"][0])
    async with price_book() as b:
        await b.book.track("solana", PUMP_MINT, curve=PUMP_CURVE)
        assert b.watcher.watching == {PUMP_CURVE}
        await b.send(account(PUMP_CURVE, data, owner=raw["owner"]))
        q = b.book.quote("solana", PUMP_MINT)
        # virtual SOL 30_789_008_086 / virtual tokens 1_045_502_991_298_183 (notes: solana.md 2.3)
        assert q is not None and q.source == "curve"
        assert q.native == Decimal(30_789_008_086) / Decimal(1_045_502_991_298_183)
        assert [u.price_native for u in b.updates()] == [q.native]


@given(
    st.integers(min_value=1, max_value=2**64 - 1),
    st.integers(min_value=1, max_value=2**64 - 1),  # a zero price is refused as no price
)
async def test_a_curve_prices_its_token_from_the_reserves_written(v_tok: int, v_sol: int) -> None:
    async with price_book(max_age_s=600) as b:
        await b.book.track("solana", PUMP_MINT, curve=PUMP_CURVE)
        await b.send(account(PUMP_CURVE, curve_bytes(v_tok, v_sol)))
        q = b.book.quote("solana", PUMP_MINT)
    assert q is not None and q.source == "curve"
    assert q.native == Decimal(v_sol) / Decimal(v_tok)


@given(st.binary(max_size=200), st.booleans(), st.sampled_from(["curve", "vault"]))
def test_watched_account_garbage_is_a_reserves_error_only(data: bytes, with_disc: bool, kind: str) -> None:
    from quantbot.reserves import ReserveWatches

    watches = ReserveWatches()
    watches.add("acct", chain="solana", token=PUMP_MINT, kind=kind)  # type: ignore[arg-type]
    data = BONDING_CURVE_DISCRIMINATOR + data if with_disc else data
    owner = PUMP_PROGRAM if kind == "curve" else TOKENKEG
    try:
        watches.observe("acct", owner, data, at=T0)
    except ReservesError:
        pass


async def test_a_token_2022_vault_prices_the_pool_too() -> None:
    token_vault, sol_vault = str(Pubkey.new_unique()), str(Pubkey.new_unique())
    pool_authority = str(Pubkey.new_unique())
    async with price_book() as b:
        await b.book.track("solana", PUMP_MINT, vaults=[sol_vault, token_vault])
        await b.send(account(sol_vault, token_account_bytes(WSOL, pool_authority, 85_000_000_000), owner=TOKENKEG))
        await b.send(
            account(
                token_vault,
                token_account_bytes(PUMP_MINT, pool_authority, 200_000_000_000_000),
                owner=TOKEN_2022_PROGRAM,
            )
        )
        assert b.book.price_native("solana", PUMP_MINT) == Decimal(85_000_000_000) / Decimal(200_000_000_000_000)


async def test_completed_curve_is_unwatched_and_stops_pricing() -> None:
    async with price_book() as b:
        await b.book.track("solana", PUMP_MINT, curve=PUMP_CURVE)
        await b.send(account(PUMP_CURVE, curve_bytes(40_000_000_000, 1_000_000_000)))
        assert b.book.price_native("solana", PUMP_MINT) == Decimal("0.025")
        await b.send(account(PUMP_CURVE, curve_bytes(40_000_000_000, 1_000_000_000, complete=True)))
        assert b.book.price_native("solana", PUMP_MINT) is None
        assert b.watcher.calls[-1] == ("unwatch", PUMP_CURVE)


async def test_usdc_quoted_curve_prices_in_usd_then_native_via_sol_usd() -> None:
    async with price_book() as b:
        await b.book.track("solana", PUMP_MINT, curve=PUMP_CURVE)
        # 5000 USDC virtual against 1e15 token base units: 5e-12 USD per base unit.
        await b.send(account(PUMP_CURVE, curve_bytes(10**15, 5_000_000_000, quote_mint=USDC_SOLANA)))
        assert b.book.price_native("solana", PUMP_MINT) is None  # no SOL/USD yet: cannot convert
        await b.send(sol_usdc(1_000_000_000, 250_000_000))
        assert b.book.price_native("solana", PUMP_MINT) == Decimal("5E-12") / Decimal(250) * 10**9


async def test_pool_vault_amounts_price_the_token_whatever_order_the_vaults_come_in() -> None:
    token_vault, sol_vault = str(Pubkey.new_unique()), str(Pubkey.new_unique())
    pool_authority = "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"
    async with price_book() as b:
        await b.book.track("solana", PUMP_MINT, vaults=[sol_vault, token_vault])
        assert b.watcher.watching == {token_vault, sol_vault}
        await b.send(account(sol_vault, token_account_bytes(WSOL, pool_authority, 85_000_000_000), owner=TOKENKEG))
        assert b.book.price_native("solana", PUMP_MINT) is None  # one side only
        await b.send(
            account(token_vault, token_account_bytes(PUMP_MINT, pool_authority, 200_000_000_000_000), owner=TOKENKEG)
        )
        q = b.book.quote("solana", PUMP_MINT)
        assert q is not None and q.source == "pool" and q.native == Decimal("0.000425")


async def test_held_tokens_get_their_curve_watched_and_released_when_sold_out() -> None:
    async with price_book() as b:
        held = PositionUpdate(chain="solana", token=PUMP_MINT, quantity=10**9, avg_cost_native=Decimal("0.03"))
        await b.send(held)
        assert b.watcher.watching == {bonding_curve_address(PUMP_MINT)} == {PUMP_CURVE}
        await b.send(msgspec.structs.replace(held, quantity=0))
        assert b.watcher.watching == set()


async def test_after_a_restart_open_positions_in_the_store_are_held_and_their_curves_watched(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with SqliteStore(tmp_path / "q.db") as store, EventBus(clock=clock) as bus:
        row = PositionRow(chain="solana", token=PUMP_MINT, quantity=10**9, cost_native=3 * 10**7, realised_pnl_native=0,
                          opened_at=T0, updated_at=T0)  # fmt: skip
        await store.put_position(row)
        await store.put_position(
            msgspec.structs.replace(row, token="HhUVkZ1qz8vfMqZDemLyxBFxrHFKVSYAk7a6227Lpump", quantity=0)
        )
        watcher = RecordingWatcher()
        book = PriceBook(bus=bus, clock=clock, config=PricesConfig(), watcher=watcher, store=store)
        await book.start()
        try:
            assert watcher.watching == {PUMP_CURVE}
        finally:
            await book.stop()


async def test_malformed_account_data_is_counted_and_the_book_keeps_working() -> None:
    async with price_book() as b:
        await b.book.track("solana", PUMP_MINT, curve=PUMP_CURVE)
        await b.send(account(PUMP_CURVE, b"\x00" * 20))
        await b.send(account(PUMP_CURVE, b"\x01" * 151))
        assert b.book.stats()["bad_input"] == 2
        await b.send(account(PUMP_CURVE, curve_bytes(40_000_000_000, 1_000_000_000)))
        assert b.book.price_native("solana", PUMP_MINT) == Decimal("0.025")


# --- publishing ----------------------------------------------------------------------------------


async def test_price_updates_are_published_on_change_and_throttled() -> None:
    async with price_book(publish_min_interval_s=5, publish_min_change_pct=1, max_age_s=600) as b:
        await b.book.track("solana", PUMP_MINT, curve=PUMP_CURVE)
        await b.send(account(PUMP_CURVE, curve_bytes(40_000_000_000, 1_000_000_000)))
        await b.send(account(PUMP_CURVE, curve_bytes(40_000_000_000, 1_005_000_000)))  # +0.5%: not news
        await b.send(account(PUMP_CURVE, curve_bytes(40_000_000_000, 1_100_000_000)))  # +10% within 5 s: held back
        assert [u.price_native for u in b.updates()] == [Decimal("0.025")]
        b.clock.advance(5)
        await b.send(Tick(seq=1))
        assert [u.price_native for u in b.updates()] == [Decimal("0.025"), Decimal("0.0275")]
        u = b.updates()[-1]
        assert (u.chain, u.token, u.source, u.price_usd) == ("solana", PUMP_MINT, "curve", None)


async def test_native_usd_from_http_source_counts_as_a_fresh_usd_price() -> None:
    async with price_book() as b:
        await b.book.observe_quotes("coingecko", [SourceQuote(chain="solana", token=NATIVE_ID, usd=Decimal(140))])
        assert b.book.usd_per_native("solana") == Decimal(140)
        await b.send(sol_usdc(1_000_000_000, 20_000_000))  # a 20 USD/SOL print disagrees with 140
        assert b.book.usd_per_native("solana") is None
        assert b.book.stats()["disagreements"] == 1
