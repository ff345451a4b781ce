"""RugWatch: held tokens (from position.update) whose creator dumps (on the curve or on any venue) or
whose curve reserves collapse publish `token.rug_warning` once per kind; tokens not held are ignored."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.events import Event, PositionUpdate, PumpTrade, Swap, TokenRugWarning
from quantbot.rugwatch import RugWatch

MINT = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"
DEV = "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
T0 = datetime(2026, 7, 29, 12, 20, 18, tzinfo=UTC)
SOL = "So11111111111111111111111111111111111111112"
_txs = (f"sig{n}" for n in itertools.count())


def trade(*, user: str, is_buy: bool, tokens: int, reserves: int, mint: str = MINT, tx: str | None = None) -> PumpTrade:
    return PumpTrade(
        chain="solana",
        mint=mint,
        user=user,
        is_buy=is_buy,
        sol_amount=10**8,
        token_amount=tokens,
        quote_mint="So11111111111111111111111111111111111111112",
        quote_amount=10**8,
        virtual_sol_reserves=30 * 10**9 + reserves,
        virtual_token_reserves=10**15,
        real_sol_reserves=reserves,
        real_token_reserves=10**14,
        creator=DEV,
        timestamp=T0,
        tx=tx or next(_txs),
        slot=1,
    )


def swap(*, wallet: str, sells: int, tx: str | None = None) -> Swap:
    """`wallet` sells `sells` units of MINT for SOL on an AMM (its own net trade, as the parser reports it)."""
    return Swap(
        chain="solana",
        wallet=wallet,
        mint_in=MINT,
        amount_in=sells,
        mint_out=SOL,
        amount_out=10**8,
        venue="raydium_cpmm",
        tx=tx or next(_txs),
        slot=1,
    )


def held(token: str = MINT, quantity: int = 1000) -> PositionUpdate:
    return PositionUpdate(chain="solana", token=token, quantity=quantity, avg_cost_native=Decimal(1))


async def run(
    events: list[Event], *, creator_holding: int | None = 1000, clock: SimClock | None = None
) -> list[TokenRugWarning]:
    out: list[TokenRugWarning] = []

    async def record(e: Event) -> None:
        assert isinstance(e, TokenRugWarning)
        out.append(e)

    clock = clock or SimClock()
    async with EventBus(clock=clock) as bus:
        bus.subscribe("token.rug_warning", record, name="rec")
        watch = RugWatch(
            bus=bus,
            clock=clock,
            creator_of=lambda m: (DEV, creator_holding) if m == MINT else None,
            creator_sell_pct=50,
            liquidity_drop_pct=40,
            window_s=60,
        )
        await watch.start()
        for e in events:
            await bus.publish(e)
            await bus.drain(5)
    return out


async def test_creator_selling_half_of_the_holding_warns_once_and_a_near_miss_does_not() -> None:
    near = await run([held(), trade(user=DEV, is_buy=False, tokens=499, reserves=10**9)])
    assert near == []
    [warning] = await run(
        [
            held(),
            trade(user=DEV, is_buy=False, tokens=300, reserves=10**9),
            trade(user=DEV, is_buy=False, tokens=200, reserves=10**9),
            trade(user=DEV, is_buy=False, tokens=100, reserves=10**9),
        ]
    )
    assert (warning.token, warning.kind, warning.measured) == (MINT, "creator_sell", Decimal("50.00"))
    assert DEV in warning.detail


async def test_creator_buys_after_launch_count_towards_the_holding() -> None:
    out = await run(
        [
            held(),
            trade(user=DEV, is_buy=True, tokens=1000, reserves=10**9),
            trade(user=DEV, is_buy=False, tokens=999, reserves=10**9),
        ]
    )
    assert out == []  # 999 of 2000


async def test_curve_reserves_falling_by_the_threshold_within_the_window_warn() -> None:
    other = "Buyer11111111111111111111111111111111111111"
    [warning] = await run(
        [
            held(),
            trade(user=other, is_buy=True, tokens=1, reserves=10 * 10**9),
            trade(user=other, is_buy=False, tokens=1, reserves=6 * 10**9 + 1),  # 39.99...%: near miss
            trade(user=other, is_buy=False, tokens=1, reserves=6 * 10**9),
        ]
    )
    assert (warning.kind, warning.measured) == ("liquidity_drop", Decimal("40.00"))


async def test_a_drop_spread_beyond_the_window_does_not_warn() -> None:
    clock = SimClock()
    other = "Buyer11111111111111111111111111111111111111"

    async with EventBus(clock=clock) as bus:
        warnings: list[Event] = []

        async def record(e: Event) -> None:
            warnings.append(e)

        bus.subscribe("token.rug_warning", record, name="rec")
        watch = RugWatch(bus=bus, clock=clock, creator_of=lambda m: None, liquidity_drop_pct=40, window_s=60)
        await watch.start()
        await bus.publish(held())
        await bus.publish(trade(user=other, is_buy=True, tokens=1, reserves=10 * 10**9))
        await bus.drain(5)
        clock.advance(61)
        await bus.publish(trade(user=other, is_buy=False, tokens=1, reserves=5 * 10**9))
        await bus.drain(5)
    assert warnings == []


async def test_tokens_not_held_or_no_longer_held_are_not_watched() -> None:
    assert await run([trade(user=DEV, is_buy=False, tokens=1000, reserves=10**9)]) == []
    assert await run([held(), held(quantity=0), trade(user=DEV, is_buy=False, tokens=1000, reserves=10**9)]) == []


@pytest.mark.parametrize("holding", [None, 0])
async def test_a_creator_sale_without_a_known_holding_is_not_guessed_at(holding: int | None) -> None:
    assert (
        await run([held(), trade(user=DEV, is_buy=False, tokens=10**9, reserves=10**9)], creator_holding=holding) == []
    )


async def test_a_creator_dumping_through_an_amm_swap_warns() -> None:
    """Graduated coins trade on AMMs: the watched creator's own swaps count, not only curve trades."""
    [warning] = await run([held(), swap(wallet=DEV, sells=200), swap(wallet=DEV, sells=300)])
    assert (warning.token, warning.kind, warning.measured) == (MINT, "creator_sell", Decimal("50.00"))


async def test_a_curve_trade_and_the_creators_swap_from_one_transaction_count_once() -> None:
    same = [
        held(),
        trade(user=DEV, is_buy=False, tokens=300, reserves=10**9, tx="A"),
        swap(wallet=DEV, sells=300, tx="A"),
    ]
    assert await run(same) == []  # 300 of 1000, not 600
    [warning] = await run([*same, swap(wallet=DEV, sells=200, tx="B")])
    assert warning.measured == Decimal("50.00")


async def test_other_wallets_swaps_of_a_held_token_are_not_the_creators() -> None:
    assert await run([held(), swap(wallet="Buyer11111111111111111111111111111111111111", sells=1000)]) == []
