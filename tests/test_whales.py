"""WhaleTracker: who is a whale, what each signal needs (and what just misses it), profiles that survive restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantbot.assets import APT_COIN, USDC_SOLANA, WSOL
from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.config import PricesConfig, WhalesConfig
from quantbot.events import Event, Swap, Transfer, WhaleSignal
from quantbot.prices import PriceBook
from quantbot.store import Store
from quantbot.store.postgres import PostgresStore
from quantbot.store.sqlite import SqliteStore
from quantbot.store.writer import WriteBehind
from quantbot.testing import swap
from quantbot.whale_signals import confidence
from quantbot.whales import WhaleTracker
from tests.test_store import pg_database

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
SOL = 10**9
# Real mainnet mints and wallets from the recorded fixtures (shared/fixtures/solana).
MEME = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"
MEME2 = "HhUVkZ1qz8vfMqZDemLyxBFxrHFKVSYAk7a6227Lpump"
W1 = "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
W2 = "8hnZamLJMaHYzTXGxWTEGUnyCXkjdtTV3EQ4JWaUwzGF"
W3 = "Ef64qrMb664ht8yc7TzUxr5dUACufk9LNuRqQS6GFAVH"
W4 = "GHa33oDG4yioeufqZkPUrbpYM5Vkb8pZFPaReZGRgd3w"
NOBODY = "39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg"


class FixedPrices:
    """A PriceView with set answers (what the PriceBook would say)."""

    def __init__(self, usd_per_sol: Decimal | None = None, prices: dict[str, Decimal] | None = None) -> None:
        self.usd_per_sol = usd_per_sol
        self.prices = prices or {}

    def price_native(self, chain: str, token: str) -> Decimal | None:
        return self.prices.get(token)

    def usd_per_native(self, chain: str) -> Decimal | None:
        return self.usd_per_sol


def cfg(**kw: Any) -> WhalesConfig:
    base: dict[str, Any] = {
        "wallets": [{"chain": "solana", "address": w, "label": f"whale-{i}"} for i, w in enumerate((W1, W2, W3, W4))],
        "large_sol": 50,
        "large_usd": 10_000,
        "accumulation_buys": 3,
        "accumulation_window_s": 600,
        "cluster_whales": 3,
        "cluster_window_s": 300,
        "dump_pct": 50,
    }
    return msgspec.convert(base | kw, WhalesConfig, strict=False)


def buy(wallet: str, sol: float, tokens: int = 10**12, *, at: datetime = T0, token: str = MEME) -> Swap:
    return swap(wallet=wallet, mint_in=WSOL, amount_in=int(sol * SOL), mint_out=token, amount_out=tokens, block_time=at)


def sell(wallet: str, tokens: int, sol: float, *, at: datetime = T0, token: str = MEME) -> Swap:
    return swap(
        wallet=wallet,
        mint_in=token,
        amount_in=tokens,
        decimals_in=6,
        mint_out=WSOL,
        amount_out=int(sol * SOL),
        decimals_out=9,
        block_time=at,
    )


def tracker(config: WhalesConfig | None = None, prices: FixedPrices | None = None) -> WhaleTracker:
    clock = SimClock(T0)
    return WhaleTracker(bus=EventBus(clock=clock), clock=clock, config=config or cfg(), prices=prices)


def run(t: WhaleTracker, *swaps: Swap) -> list[WhaleSignal]:
    out: list[WhaleSignal] = []
    for s in swaps:
        if s.block_time is not None and s.block_time > t.clock.now():
            t.clock.set(s.block_time)  # type: ignore[attr-defined]
        out += t.observe_swap(s)
    return out


def kinds(signals: list[WhaleSignal]) -> list[str]:
    return [s.kind for s in signals]


# --- large trades --------------------------------------------------------------------------------


def test_large_buy_fires_at_the_native_threshold_when_no_usd_price_exists() -> None:
    t = tracker()
    whale_buy = buy(W1, 50)
    [sig] = run(t, whale_buy)
    assert (sig.kind, sig.wallets, sig.token, sig.size, sig.size_usd) == ("large_buy", (W1,), MEME, 50 * SOL, None)
    assert sig.tx == whale_buy.tx != "", "the signal names the trade that fired it"
    assert 0.5 * 0.5 <= sig.confidence <= 1
    near = swap(wallet=W1, mint_in=WSOL, amount_in=50 * SOL - 1, mint_out=MEME, amount_out=10**12, block_time=T0)
    assert run(tracker(), near) == []


def test_usd_threshold_wins_over_native_when_sol_has_a_fresh_usd_price() -> None:
    prices = FixedPrices(usd_per_sol=Decimal(150))
    # 60 SOL passes large_sol=50 but is only 9000 USD < large_usd=10000: no signal.
    assert run(tracker(prices=prices), buy(W1, 60)) == []
    [sig] = run(tracker(prices=prices), buy(W1, 66.67))
    assert sig.kind == "large_buy" and sig.size_usd == Decimal("10000.50")


def test_usdc_funded_buy_is_valued_in_usd_and_in_lamports() -> None:
    t = tracker(prices=FixedPrices(usd_per_sol=Decimal(200)))
    usdc_buy = swap(
        wallet=W2, mint_in=USDC_SOLANA, amount_in=12_000 * 10**6, mint_out=MEME, amount_out=10**12, block_time=T0
    )
    [sig] = run(t, usdc_buy)
    assert (sig.kind, sig.size, sig.size_usd) == ("large_buy", 60 * SOL, Decimal("12000.00"))


def test_large_sell_fires_for_a_whale_selling_past_the_threshold() -> None:
    t = tracker(cfg(dump_pct=100))
    run(t, buy(W1, 1, tokens=10**12))
    assert kinds(run(t, sell(W1, 5 * 10**11, 55))) == ["large_sell"]


# --- accumulation --------------------------------------------------------------------------------


def test_accumulation_fires_on_the_kth_buy_within_the_window() -> None:
    t = tracker()
    buys = [buy(W1, 1, at=T0 + timedelta(seconds=s)) for s in (0, 200, 599)]
    signals = run(t, *buys)
    assert kinds(signals) == ["accumulation"]
    assert signals[0].size == 3 * SOL and signals[0].wallets == (W1,)


def test_accumulation_does_not_fire_on_k_minus_one_buys() -> None:
    assert run(tracker(), buy(W1, 1), buy(W1, 1, at=T0 + timedelta(seconds=100))) == []


def test_accumulation_does_not_fire_when_the_first_buy_is_just_outside_the_window() -> None:
    buys = [buy(W1, 1, at=T0 + timedelta(seconds=s)) for s in (0, 200, 600.001)]
    assert run(tracker(), *buys) == []


def test_accumulation_counts_buys_of_the_same_token_only() -> None:
    t = tracker()
    assert run(t, buy(W1, 1), buy(W1, 1, token=MEME2), buy(W1, 1, at=T0 + timedelta(seconds=1))) == []


# --- cluster -------------------------------------------------------------------------------------


def test_cluster_fires_when_n_distinct_whales_buy_within_the_window() -> None:
    t = tracker()
    signals = run(t, buy(W3, 2), buy(W1, 1, at=T0 + timedelta(seconds=100)), buy(W2, 3, at=T0 + timedelta(seconds=300)))
    assert kinds(signals) == ["cluster"]
    assert signals[0].wallets == tuple(sorted((W1, W2, W3))) and signals[0].size == 6 * SOL


def test_cluster_does_not_fire_on_n_minus_one_whales_or_a_repeat_buyer() -> None:
    t = tracker(cfg(accumulation_buys=10))
    assert (
        run(t, buy(W1, 1), buy(W2, 1, at=T0 + timedelta(seconds=10)), buy(W2, 1, at=T0 + timedelta(seconds=20))) == []
    )


def test_cluster_does_not_fire_when_one_buy_is_just_outside_the_window() -> None:
    t = tracker()
    late = T0 + timedelta(seconds=300.001)
    assert run(t, buy(W1, 1), buy(W2, 1, at=T0 + timedelta(seconds=100)), buy(W3, 1, at=late)) == []


def test_buys_by_wallets_that_are_not_whales_never_make_a_cluster() -> None:
    t = tracker()
    assert run(t, buy(W1, 1), buy(W2, 1), buy(NOBODY, 1)) == []


# --- dump ----------------------------------------------------------------------------------------


def test_dump_fires_when_a_whale_sells_exactly_the_configured_share() -> None:
    t = tracker()
    run(t, buy(W1, 2, tokens=1_000_000))
    [sig] = run(t, sell(W1, 500_000, 1))
    assert (sig.kind, sig.wallets, sig.token, sig.size) == ("dump", (W1,), MEME, SOL)


def test_dump_does_not_fire_just_below_the_share() -> None:
    t = tracker()
    run(t, buy(W1, 2, tokens=1_000_000))
    assert run(t, sell(W1, 499_999, 1)) == []


def test_selling_what_was_never_seen_bought_is_not_a_dump() -> None:
    assert run(tracker(), sell(W1, 10**12, 1)) == []


# --- who is a whale ------------------------------------------------------------------------------


def test_unknown_wallets_are_ignored_without_discovery() -> None:
    t = tracker()
    assert run(t, buy(NOBODY, 500)) == [] and t.profile("solana", NOBODY) is None


def test_discovery_adopts_a_wallet_whose_trade_passes_the_threshold_and_not_one_just_below() -> None:
    t = tracker(cfg(discover=True, discover_sol=25), prices=None)
    run(t, buy(NOBODY, 24.999999999))
    assert t.profile("solana", NOBODY) is None
    run(t, buy(NOBODY, 25))
    p = t.profile("solana", NOBODY)
    assert p is not None and not p.watched and p.trades == 1


def test_discovered_wallets_are_bounded_least_recently_active_forgotten_first() -> None:
    t = tracker(cfg(wallets=[], discover=True, discover_sol=1, max_auto_wallets=3))
    wallets = [W1, W2, W3, W4, NOBODY]
    run(t, *(buy(w, 1, at=T0 + timedelta(seconds=i)) for i, w in enumerate(wallets[:3])))
    run(t, buy(W1, 1, at=T0 + timedelta(seconds=10)))  # W1 active again: W2 is now the oldest
    run(t, buy(W4, 1, at=T0 + timedelta(seconds=11)), buy(NOBODY, 1, at=T0 + timedelta(seconds=12)))
    assert [w for w in wallets if t.is_whale("solana", w)] == [W1, W4, NOBODY]
    assert t.stats()["evicted"] == 2 and t.stats()["discovered_wallets"] == 3


def test_backfilled_old_trades_update_the_profile_but_never_signal() -> None:
    t = tracker()
    old = T0 - timedelta(seconds=301)
    assert run(t, buy(W1, 100, at=old)) == []
    assert t.profile("solana", W1).trades == 1  # type: ignore[union-attr]


def test_aptos_whale_is_matched_whatever_the_address_spelling() -> None:
    long = "0x00bf9239be9eb7e7a3d8e4c1f36083464fd47e6bd1f82a43b6ad2ba0a9f5ef3a"
    t = tracker(cfg(wallets=[{"chain": "aptos", "address": long.upper().replace("0X", "0x")}], large_apt=100))
    apt_buy = swap(
        chain="aptos",
        wallet="0xbf9239be9eb7e7a3d8e4c1f36083464fd47e6bd1f82a43b6ad2ba0a9f5ef3a",
        mint_in=APT_COIN,
        amount_in=100 * 10**8,
        decimals_in=8,
        mint_out="0x1234::meme::MEME",
        amount_out=10**9,
        block_time=T0,
    )
    [sig] = run(t, apt_buy)
    assert sig.chain == "aptos" and sig.kind == "large_buy" and sig.wallets == (long,)


# --- profiles ------------------------------------------------------------------------------------


def test_profile_tracks_volume_holdings_average_cost_pnl_and_win_rate() -> None:
    t = tracker(cfg(dump_pct=100, large_sol=1000), prices=FixedPrices(usd_per_sol=Decimal(100)))
    run(
        t,
        buy(W1, 1, tokens=1000),
        buy(W1, 3, tokens=1000),  # average cost 2 SOL per 1000
        sell(W1, 500, 2),  # cost out 1 SOL: +1 SOL
        sell(W1, 1500, 1.5),  # cost out 3 SOL: -1.5 SOL; round trip closed at -0.5 SOL: a loss
        buy(W1, 1, tokens=100, token=MEME2),
        sell(W1, 100, 3, token=MEME2),  # +2 SOL: a win
    )
    p = t.profile("solana", W1)
    assert p is not None
    assert (p.trades, p.volume_native, p.volume_usd_micro) == (6, int(11.5 * SOL), 1150 * 10**6)
    assert p.pnl_native == int(1.5 * SOL) and (p.round_trips, p.wins, p.win_rate) == (2, 1, 0.5)
    assert p.holdings is None and p.last_seen == int(T0.timestamp())


def test_transfers_move_holdings_between_whales_without_pnl() -> None:
    t = tracker(cfg(dump_pct=60), prices=FixedPrices(prices={MEME: Decimal("0.001")}))
    run(t, buy(W1, 2, tokens=10**6))
    move = Transfer(
        chain="solana",
        source=W1,
        destination=W2,
        mint=MEME,
        amount=4 * 10**5,
        decimals=6,
        tx="t",
        slot=2,
        block_time=T0,
    )
    t.observe_transfer(move)
    assert t.profile("solana", W1).held(MEME) == 6 * 10**5  # type: ignore[union-attr]
    assert t.profile("solana", W2).held(MEME) == 4 * 10**5  # type: ignore[union-attr]
    assert t.profile("solana", W1).pnl_native == 0  # type: ignore[union-attr]
    assert kinds(run(t, sell(W2, 3 * 10**5, 1))) == ["dump"]  # 75% of what W2 now holds


@asynccontextmanager
async def store_factory(backend: str, tmp: Path) -> AsyncIterator[Callable[[], Store]]:
    """Opens the same database again and again (a restart), on SQLite or the local PostgreSQL."""
    if backend == "sqlite":
        yield lambda: SqliteStore(tmp / "q.db")
    else:
        async with pg_database() as dsn:
            yield lambda: PostgresStore(dsn)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_profiles_survive_a_restart_through_the_store(tmp_path: Path, backend: str) -> None:
    config = cfg(discover=True, discover_sol=10)
    clock = SimClock(T0)
    async with store_factory(backend, tmp_path) as open_store:
        async with open_store() as store, EventBus(clock=clock) as bus:
            t = WhaleTracker(bus=bus, clock=clock, config=config, store=store)
            await t.start()
            run(t, buy(W1, 2, tokens=1000), buy(NOBODY, 12, tokens=5000))
            await t.stop()
        async with open_store() as store, EventBus(clock=clock) as bus:
            again = WhaleTracker(bus=bus, clock=clock, config=config, store=store)
            await again.start()
            w1, found = again.profile("solana", W1), again.profile("solana", NOBODY)
            assert w1 is not None and w1.watched and w1.label == "whale-0" and w1.held(MEME) == 1000
            assert found is not None and not found.watched and found.volume_native == 12 * SOL
            run(again, sell(W1, 1000, 3))
            assert w1.pnl_native == SOL and w1.round_trips == 1
            await again.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_swap_delivered_again_after_a_restart_counts_once(tmp_path: Path, backend: str) -> None:
    """Delivery is at least once: a watcher restart can publish a swap again. Its profile figures must not double."""
    config = cfg(dump_pct=100, large_sol=1000)
    clock = SimClock(T0)
    first = buy(W1, 2, tokens=1000, token=MEME)
    async with store_factory(backend, tmp_path) as open_store:
        async with open_store() as store, EventBus(clock=clock) as bus:
            t = WhaleTracker(bus=bus, clock=clock, config=config, store=store)
            await t.start()
            run(t, first, first)
            assert t.counts["repeated_swaps"] == 1
            await t.stop()
        async with open_store() as store, EventBus(clock=clock) as bus:
            again = WhaleTracker(bus=bus, clock=clock, config=config, store=store)
            await again.start()
            run(again, first, sell(W1, 1000, 3))
            w1 = again.profile("solana", W1)
            await again.stop()
    assert w1 is not None and (w1.trades, w1.volume_native) == (2, 5 * SOL)
    assert (w1.round_trips, w1.pnl_native, w1.held(MEME)) == (1, SOL, 0)


async def test_a_forgotten_wallet_that_comes_back_keeps_its_saved_history(tmp_path: Path) -> None:
    config = cfg(wallets=[], discover=True, discover_sol=1, max_auto_wallets=1)
    clock = SimClock(T0)
    async with SqliteStore(tmp_path / "q.db") as store, EventBus(clock=clock) as bus:
        t = WhaleTracker(bus=bus, clock=clock, config=config, store=store)
        run(t, buy(W1, 2, tokens=1000), sell(W1, 1000, 3))  # +1 SOL round trip
        await t.flush()
        run(t, buy(W2, 5))  # W1 forgotten (bound of 1)
        assert t.profile("solana", W1) is None
        run(t, buy(W1, 4, tokens=500))  # W1 is back, built afresh
        await t.flush()
        p = t.profile("solana", W1)
        assert p is not None and (p.trades, p.round_trips, p.wins, p.pnl_native) == (3, 1, 1, SOL)
        assert p.volume_native == 9 * SOL and p.held(MEME) == 500


async def test_signals_are_published_on_the_bus_from_swaps_on_the_bus(tmp_path: Path) -> None:
    clock = SimClock(T0)
    seen: list[Event] = []

    async def record(e: Event) -> None:
        seen.append(e)

    async with EventBus(clock=clock) as bus:
        book = PriceBook(bus=bus, clock=clock, config=PricesConfig())
        t = WhaleTracker(bus=bus, clock=clock, config=cfg(), prices=book)
        bus.subscribe("whale.signal", record, name="test.signals")
        await book.start()
        await t.start()
        sol_usdc = swap(
            wallet=W4, mint_in=WSOL, amount_in=SOL, mint_out=USDC_SOLANA, amount_out=150 * 10**6, block_time=T0
        )
        await bus.publish(sol_usdc)  # 150 USD per SOL, seen by the PriceBook
        await bus.drain(5)
        await bus.publish(buy(W1, 70))  # 10_500 USD
        await bus.publish(swap(wallet=W1, mint_in=WSOL, amount_in=-1, mint_out=MEME, amount_out=1, block_time=T0))
        await bus.drain(5)
        await t.stop()
        await book.stop()
    [sig] = seen
    assert isinstance(sig, WhaleSignal) and sig.kind == "large_buy" and sig.size_usd == Decimal("10500.00")
    assert t.stats()["bad_input"] == 1


async def test_signals_are_kept_in_the_store_through_the_write_behind_queue(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with SqliteStore(tmp_path / "q.db") as store, EventBus(clock=clock) as bus:
        writer = WriteBehind(store=store, clock=clock, interval=1.0)
        t = WhaleTracker(bus=bus, clock=clock, config=cfg(), store=store, writer=writer)
        await t.start()
        await bus.publish(buy(W1, 70))  # 70 SOL > large_sol 50, no USD price needed
        await bus.drain(5)
        await writer.flush()
        await t.stop()
        [row] = await store.signals()
    assert (row.chain, row.kind, row.token) == ("solana", "large_buy", MEME)
    kept = msgspec.json.decode(row.payload)
    assert kept["wallets"] == [W1] and kept["size"] == 70 * SOL


# --- properties ----------------------------------------------------------------------------------


@given(
    st.decimals(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=Decimal("0.000001"), max_value=10**9),
    st.floats(min_value=0, max_value=1),
)
def test_confidence_is_always_between_0_and_1(measured: Decimal, threshold: Decimal, quality: float) -> None:
    assert 0.0 <= confidence(measured, threshold, quality) <= 1.0


trade = st.tuples(
    st.sampled_from([W1, W2, W3, NOBODY]),
    st.sampled_from(["buy", "sell"]),
    st.sampled_from([MEME, MEME2]),
    st.integers(min_value=1, max_value=120 * SOL),
    st.integers(min_value=1, max_value=10**9),
    st.floats(min_value=0, max_value=400),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(trade, max_size=40), st.sampled_from([None, Decimal(150)]))
def test_no_signal_fires_without_its_threshold_being_met(
    trades: list[tuple[str, str, str, int, int, float]], usd: Decimal | None
) -> None:
    config = cfg(wallets=[{"chain": "solana", "address": w} for w in (W1, W2, W3)])
    t = tracker(config, prices=FixedPrices(usd_per_sol=usd))
    at = T0
    history: list[tuple[datetime, str, str, str]] = []
    held: dict[tuple[str, str], int] = {}
    for wallet, side, token, lamports, tokens, gap in trades:
        at += timedelta(seconds=gap)
        s = buy(wallet, 0, tokens, at=at, token=token) if side == "buy" else sell(wallet, tokens, 0, at=at, token=token)
        s = (
            msgspec.structs.replace(s, amount_in=lamports)
            if side == "buy"
            else msgspec.structs.replace(s, amount_out=lamports)
        )
        before = held.get((wallet, token), 0)
        signals = run(t, s)
        history.append((at, wallet, side, token))
        value_usd = Decimal(lamports) * usd / SOL if usd is not None else None
        for sig in signals:
            assert 0.0 <= sig.confidence <= 1.0
            assert wallet != NOBODY and all(w != NOBODY for w in sig.wallets)
            if sig.kind in ("large_buy", "large_sell"):
                assert (value_usd >= 10_000) if value_usd is not None else lamports >= 50 * SOL
            elif sig.kind == "dump":
                assert before > 0 and min(tokens, before) * 2 >= before
            elif sig.kind == "accumulation":
                recent = [h for h in history if h[1:] == (wallet, "buy", token) and h[0] >= at - timedelta(seconds=600)]
                assert len(recent) >= 3
            elif sig.kind == "cluster":
                recent = {h[1] for h in history if h[2:] == ("buy", token) and h[0] >= at - timedelta(seconds=300)}
                assert len(recent) >= 3 and set(sig.wallets) <= recent
        p = t.profile("solana", wallet)
        if p is not None:
            held[(wallet, token)] = p.held(token)
