"""The three strategies inside the real order path (bus, plugin host, store, RiskEngine, sizer, paper
executor, portfolio, ExitManager): the risk engine approves or refuses what they submit, sizes their
hints, and their own order results feed back to them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from quantbot.api import Strategy
from quantbot.bus import Overflow
from quantbot.clock import SimClock
from quantbot.config import ExitRule, ExitsConfig, RiskConfig, SizingConfig, SizingRule
from quantbot.events import Event, OrderFilled, OrderIntent, OrderRejected, PriceUpdate, RejectReason
from quantbot.hosting import PluginHost
from quantbot.testing import make_plugin, swap, token_accepted, whale_signal
from quantbot_strategies.copy_trade import CopyTrade
from quantbot_strategies.sniper import Sniper
from quantbot_strategies.whale_follow import WhaleFollow
from tests.orderpath import OrderPath, order_path

SOL = 10**9
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
WSOL = "So11111111111111111111111111111111111111112"
WHALE = "Wha1e11111111111111111111111111111111111111"
MINT = "Mint111111111111111111111111111111111111111"
LIMITS = RiskConfig(token_cooldown_s=0, duplicate_window_s=0, max_order_usd=Decimal(100))
EXITS = ExitsConfig(take_profit_pct=Decimal(0), stop_loss_pct=Decimal(0))


@dataclass
class Prices:
    """A PriceView (the PriceBook's interface) with the answers the test sets."""

    native: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    usd: dict[str, Decimal] = field(default_factory=lambda: {"solana": Decimal(150)})

    def price_native(self, chain: str, token: str) -> Decimal | None:
        return self.native.get((chain, token))

    def usd_per_native(self, chain: str) -> Decimal | None:
        return self.usd.get(chain)


@asynccontextmanager
async def running(tmp: Path, strategy: Strategy, prices: Prices, **path_args: Any) -> AsyncIterator[OrderPath]:
    """The order path with the strategy hosted on its bus exactly as the daemon hosts it."""
    async with order_path(tmp, prices=prices, clock=SimClock(T0), **path_args) as path:
        host = PluginHost(bus=path.bus, section="strategies", plugins=[strategy], overflow=Overflow.BLOCK)
        await host.start()
        yield path
        await path.settle()
        await host.stop()


async def send(path: OrderPath, *events: Event) -> None:
    for e in events:
        await path.bus.publish(e)
        await path.settle()


def intents(path: OrderPath, strategy: str) -> list[OrderIntent]:
    return [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == strategy]


def refusals(path: OrderPath) -> list[tuple[str, RejectReason]]:
    return [(e.intent.intent_id, e.reason) for e in path.events if isinstance(e, OrderRejected)]


async def test_whale_follow_is_sized_by_its_rule_and_exits_when_the_whale_sells(tmp_path: Path) -> None:
    prices = Prices(native={("solana", MINT): Decimal(1000)})
    sizing = SizingConfig(strategies={"wf": SizingRule(method="fixed", fixed_sol=Decimal("0.2"))})
    s = make_plugin(WhaleFollow, id="wf", min_confidence=0.8)
    async with running(tmp_path, s, prices, limits=LIMITS, sizing=sizing, exits=EXITS) as path:
        await send(path, whale_signal(token=MINT, wallets=(WHALE,), confidence=0.79))
        assert await path.store.orders() == [], "a near miss submits nothing"
        await send(path, whale_signal(token=MINT, wallets=(WHALE,), confidence=0.95))
        (row,) = await path.store.orders()
        assert (row.strategy, row.side, row.amount, row.status) == ("wf", "buy", SOL // 5, "filled")
        pos = path.portfolio.position("solana", MINT)
        assert (pos.open, pos.strategy, pos.leader) == (True, "wf", WHALE)
        await send(path, whale_signal(kind="large_sell", token=MINT, wallets=(WHALE,), confidence=0.9))
        assert path.portfolio.position("solana", MINT).quantity == 0, "the ExitManager followed the whale out"
    (exit_,) = [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"]
    assert exit_.reason == "follow_leader"


async def test_a_whale_signal_derived_again_after_a_restart_is_refused_by_the_journal(tmp_path: Path) -> None:
    """After a restart the watcher's backfill can replay the whale's trade, and the tracker fires the same
    signal again; the new strategy instance remembers nothing, so only the journal's idempotency key
    stands between the operator and a second buy (the cooldowns are off here)."""
    prices = Prices(native={("solana", MINT): Decimal(1000)})
    sizing = SizingConfig(strategies={"wf": SizingRule(method="fixed", fixed_sol=Decimal("0.2"))})
    signal = whale_signal(token=MINT, wallets=(WHALE,), confidence=0.95, tx="5igWhaleBuy")
    async with running(tmp_path, make_plugin(WhaleFollow, id="wf"), prices, limits=LIMITS, sizing=sizing) as path:
        await send(path, signal)
    restarted = make_plugin(WhaleFollow, id="wf", rebuy_after_s=0)
    async with running(tmp_path, restarted, prices, limits=LIMITS, sizing=sizing) as path:
        await send(path, signal)
        (row,) = await path.store.orders()
        assert (row.side, row.status) == ("buy", "filled")
        ((intent_id, reason),) = refusals(path)
        assert reason == RejectReason.DUPLICATE_INTENT and "5igWhaleBuy" in intent_id
        # a different trade is a different signal: bought again (nothing else limits it here)
        await send(path, whale_signal(token=MINT, wallets=(WHALE,), confidence=0.95, tx="0therWhaleBuy"))
        assert len(await path.store.orders()) == 2


async def test_whale_follow_copy_sizing_is_refused_by_the_real_caps(tmp_path: Path) -> None:
    prices = Prices(native={("solana", MINT): Decimal(1000)})
    sizing = SizingConfig(copy_pct=Decimal(10))
    s = make_plugin(WhaleFollow, id="wf", sizing="copy")
    async with running(tmp_path, s, prices, limits=LIMITS, sizing=sizing) as path:
        await send(path, whale_signal(token=MINT, size=2 * SOL, confidence=0.9))  # 10%: 0.2 SOL
        await send(path, whale_signal(token="Big1111111111111111111111111111111111111111", size=60 * SOL))
        rows = await path.store.orders()
    assert [(r.token, r.amount) for r in rows] == [(MINT, SOL // 5)]
    (refused,) = refusals(path)
    assert refused[1] is RejectReason.MAX_ORDER_NATIVE, "6 SOL (10% of 60) is above max_order_sol 0.5"


async def test_copy_trade_buys_a_share_then_mirrors_the_leaders_sells_through_the_engine(tmp_path: Path) -> None:
    prices = Prices(native={("solana", MINT): Decimal(1000)})
    s = make_plugin(CopyTrade, id="copy", leaders=[{"chain": "solana", "address": WHALE}], copy_pct=10)
    leader_buy = swap(
        block_time=T0, wallet=WHALE, mint_in=WSOL, amount_in=2 * SOL, mint_out=MINT, amount_out=2_000_000, tx="lb"
    )
    async with running(tmp_path, s, prices, limits=LIMITS) as path:
        await send(path, leader_buy)
        bought = path.portfolio.position("solana", MINT).quantity
        assert bought > 0 and s.holding("solana", WHALE, MINT).quantity == bought
        await send(
            path,
            swap(block_time=T0, wallet=WHALE, mint_in=MINT, amount_in=500_000, mint_out=WSOL, amount_out=1, tx="s1"),
        )
        assert path.portfolio.position("solana", MINT).quantity == bought - bought // 4
        await send(
            path,
            swap(block_time=T0, wallet=WHALE, mint_in=MINT, amount_in=1_500_000, mint_out=WSOL, amount_out=1, tx="s2"),
        )
        assert path.portfolio.position("solana", MINT).quantity == 0
        rows = await path.store.orders()
    assert sorted((r.side, r.amount, r.status) for r in rows) == [
        ("buy", SOL // 5, "filled"),
        ("sell", bought // 4, "filled"),
        ("sell", bought - bought // 4, "filled"),
    ]
    assert all(i.reduce_only for i in intents(path, "copy") if i.side == "sell")
    assert refusals(path) == []


async def test_copy_trade_pauses_a_leader_whose_copies_the_engine_keeps_refusing(tmp_path: Path) -> None:
    prices = Prices(native={("solana", MINT): Decimal(1000)})
    s = make_plugin(CopyTrade, id="copy", leaders=[{"chain": "solana", "address": WHALE}], pause_after=2, pause_s=600)
    async with running(tmp_path, s, prices, limits=LIMITS) as path:
        for n in range(3):  # 10% of 10 SOL is 1 SOL, over max_order_sol: the leader trades too large for us
            await send(
                path,
                swap(
                    block_time=T0,
                    wallet=WHALE,
                    mint_in=WSOL,
                    amount_in=10 * SOL,
                    mint_out=MINT,
                    amount_out=9,
                    tx=f"t{n}",
                ),
            )
    assert [r for _, r in refusals(path)] == [RejectReason.MAX_ORDER_NATIVE] * 2
    assert len(intents(path, "copy")) == 2, "the third buy came while the leader was paused"


async def test_copy_trade_does_not_pause_a_leader_for_tokens_on_our_block_list(tmp_path: Path) -> None:
    blocked = "B1ocked111111111111111111111111111111111111"
    prices = Prices(native={("solana", blocked): Decimal(1000)})
    s = make_plugin(CopyTrade, id="copy", leaders=[{"chain": "solana", "address": WHALE}], pause_after=2, pause_s=600)
    limits = msgspec.structs.replace(LIMITS, block_tokens=(blocked,))
    async with running(tmp_path, s, prices, limits=limits) as path:
        for n in range(3):
            await send(
                path,
                swap(
                    block_time=T0, wallet=WHALE, mint_in=WSOL, amount_in=SOL, mint_out=blocked, amount_out=9, tx=f"t{n}"
                ),
            )
    assert [r for _, r in refusals(path)] == [RejectReason.BLOCKED_TOKEN] * 3, "a policy refusal is no failed copy"


async def test_sniper_bands_are_sized_by_the_engine_and_its_own_stop_loss_exits(tmp_path: Path) -> None:
    tokens = {score: f"Snipe{n}" + "1" * 38 for n, score in enumerate((0.3, 0.6, 0.9))}
    prices = Prices(native={("solana", t): Decimal(1000) for t in tokens.values()})
    s = make_plugin(
        Sniper,
        id="snipe",
        min_score=0.5,
        bands=[{"min_score": 0.5, "amount": SOL // 10}, {"min_score": 0.8, "equity_pct": 3}],
    )
    exits = msgspec.structs.replace(EXITS, strategies={"snipe": ExitRule(stop_loss_pct=Decimal(20))})
    async with running(tmp_path, s, prices, limits=LIMITS, exits=exits) as path:
        for score, token in tokens.items():
            await send(path, msgspec.structs.replace(token_accepted(mint=token), score=score))
        rows = {r.token: r.amount for r in await path.store.orders()}
        assert rows == {tokens[0.6]: SOL // 10, tokens[0.9]: 3 * SOL // 10}, "3% of the 10 SOL paper equity"
        cheap = tokens[0.6]
        await send(
            path, PriceUpdate(chain="solana", token=cheap, price_native=Decimal(790), source="t", observed_at=T0)
        )
        assert path.portfolio.position("solana", cheap).quantity == 0, "the sniper's own 20% stop-loss"
        assert path.portfolio.position("solana", tokens[0.9]).open
    fills = [e for e in path.events if isinstance(e, OrderFilled)]
    assert len(fills) == 3


async def test_copy_trade_follows_an_aptos_leader_through_the_engine(tmp_path: Path) -> None:
    apt, token, leader = "0x1::aptos_coin::AptosCoin", "0xcafe::meme::MEME", "0x" + "ab" * 32
    prices = Prices(native={("aptos", token): Decimal(50)}, usd={"aptos": Decimal(8)})
    s = make_plugin(CopyTrade, id="copy", leaders=[{"chain": "aptos", "address": "0xabab" + "ab" * 30}], copy_pct=10)
    buy = swap(
        block_time=T0,
        chain="aptos",
        wallet=leader,
        mint_in=apt,
        amount_in=10**9,
        mint_out=token,
        amount_out=2 * 10**7,
        tx="a1",
    )
    sell = swap(
        block_time=T0,
        chain="aptos",
        wallet=leader,
        mint_in=token,
        amount_in=10**7,
        mint_out="0xa",
        amount_out=1,
        tx="a2",
    )
    async with running(tmp_path, s, prices, limits=LIMITS) as path:
        await send(path, buy)
        bought = path.portfolio.position("aptos", token).quantity
        await send(path, sell)
        left = path.portfolio.position("aptos", token).quantity
        rows = await path.store.orders()
    assert bought > 0 and left == bought - bought // 2, "the leader sold half: so did we"
    assert sorted((r.chain, r.side, r.amount, r.status) for r in rows) == [
        ("aptos", "buy", 10**8, "filled"),
        ("aptos", "sell", bought // 2, "filled"),
    ]
