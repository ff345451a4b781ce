"""Sizing: fixed, % of equity, capped Kelly (config until the strategy has N realised round trips, then its
own), copy % of the leader; hinted intents are sized by the RiskEngine before any check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.clock import SimClock
from quantbot.config import RiskConfig, SizingConfig, SizingRule
from quantbot.events import OrderRejected, RejectReason
from quantbot.sizing import Sizer, SizingError, kelly_fraction
from quantbot.store import RoundTrip
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import order_intent
from tests.orderpath import order_path
from tests.test_risk_checks import FixedPrices

SOL = 10**9
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def hinted(**fields: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = {"amount": 0, "sizing": "fixed", "notional_usd": Decimal(5), "price_native": Decimal(1)}
    return order_intent(**(base | fields))


@given(
    win=st.decimals(min_value=0, max_value=1, places=4),
    payoff=st.decimals(min_value=Decimal("0.01"), max_value=1000, places=2),
    fraction=st.decimals(min_value=Decimal("0.01"), max_value=1, places=2),
    cap=st.decimals(min_value=Decimal("0.1"), max_value=100, places=1),
)
def test_kelly_share_is_never_above_the_cap_nor_below_zero(
    win: Decimal, payoff: Decimal, fraction: Decimal, cap: Decimal
) -> None:
    share = kelly_fraction(win, payoff, fraction=fraction, cap_pct=cap)
    assert Decimal(0) <= share <= cap / 100
    full = win - (1 - win) / payoff
    if full > 0 and full * fraction < cap / 100:
        assert share == full * fraction, "below the cap it is exactly the fractional Kelly bet"


async def sizer(tmp_path: Path, rule: SizingConfig, equity: int | None = 100 * SOL) -> tuple[Sizer, SqliteStore]:
    store = SqliteStore(tmp_path / "s.db")
    await store.start()
    return Sizer(config=rule, store=store, equity=lambda chain: equity), store


async def trips(store: SqliteStore, strategy: str, pnls: list[int]) -> None:
    for n, pnl in enumerate(pnls):
        await store.record_round_trip(
            RoundTrip(
                id=f"{strategy}-{n}",
                strategy=strategy,
                chain="solana",
                token=f"T{n}",
                opened_at=T0,
                closed_at=T0 + timedelta(seconds=n),
                cost_native=SOL,
                proceeds_native=SOL + pnl,
            )
        )


async def test_fixed_equity_pct_and_copy(tmp_path: Path) -> None:
    s, store = await sizer(
        tmp_path, SizingConfig(fixed_sol=Decimal("0.2"), equity_pct=Decimal(3), copy_pct=Decimal(25))
    )
    assert (await s.size(hinted(sizing="fixed")))[0] == SOL // 5
    assert (await s.size(hinted(sizing="fixed", chain="aptos")))[0] == 50_000_000  # 0.5 APT default
    assert (await s.size(hinted(sizing="equity_pct")))[0] == 3 * SOL
    assert (await s.size(hinted(sizing="copy", leader_amount=2 * SOL)))[0] == SOL // 2
    with pytest.raises(SizingError, match="leader"):
        await s.size(hinted(sizing="copy"))
    await store.close()


async def test_kelly_uses_config_until_n_trips_then_the_strategys_own_and_stays_capped(tmp_path: Path) -> None:
    rule = SizingConfig(
        kelly_min_trades=4,
        kelly_win_rate=Decimal("0.5"),
        kelly_payoff=Decimal(2),
        kelly_fraction=Decimal("0.5"),
        kelly_cap_pct=Decimal(20),
    )
    s, store = await sizer(tmp_path, rule)
    # Config: W=0.5, R=2 -> Kelly 0.25, half of it 0.125 of 100 SOL.
    amount, how = await s.size(hinted(sizing="kelly", strategy="k"))
    assert amount == 12_500_000_000 and "config (0 of 4 trips)" in how
    # Its own: 3 wins of +0.3 SOL, 1 loss of -0.1 SOL -> W=0.75, R=3 -> Kelly 0.6667, half 0.3333 > cap 0.2.
    await trips(store, "k", [3 * SOL // 10, 3 * SOL // 10, 3 * SOL // 10, -SOL // 10])
    await trips(store, "other", [-SOL] * 10)  # another strategy's losses do not count
    amount, how = await s.size(hinted(sizing="kelly", strategy="k"))
    assert amount == 20 * SOL and "4 realised trips" in how
    # A losing record: no edge, no order.
    await trips(store, "loser", [-SOL // 10] * 3 + [SOL // 10])
    s.config = msgspec.structs.replace(rule, strategies={"loser": SizingRule(kelly_min_trades=4)})
    with pytest.raises(SizingError, match="no edge"):
        await s.size(hinted(sizing="kelly", strategy="loser"))
    await store.close()


async def test_equity_sizing_without_a_known_equity_is_refused(tmp_path: Path) -> None:
    s, store = await sizer(tmp_path, SizingConfig(), equity=None)
    with pytest.raises(SizingError, match="equity"):
        await s.size(hinted(sizing="equity_pct"))
    await store.close()


async def test_the_risk_engine_sizes_hinted_buys_then_checks_them(tmp_path: Path) -> None:
    limits = RiskConfig(token_cooldown_s=0, duplicate_window_s=0, max_order_sol=Decimal(1))
    sizing = SizingConfig(strategies={"big": SizingRule(method="equity_pct", equity_pct=Decimal(20))})
    prices = FixedPrices(usd={"solana": Decimal(100)})
    async with order_path(tmp_path, limits=limits, sizing=sizing, clock=SimClock(T0), prices=prices) as path:
        await path.bus.publish(hinted(intent_id="a", token="A", strategy="small"))  # global: fixed 0.05 SOL
        await path.bus.publish(hinted(intent_id="b", token="B", strategy="big", sizing=None))  # 20% of 10 SOL
        await path.bus.publish(hinted(intent_id="c", token="C", sizing="copy"))
        await path.settle()
        (row,) = await path.store.orders()
    assert (row.token, row.amount, row.notional_usd) == ("A", 50_000_000, Decimal(5)), "0.05 SOL at 100 USD"
    refused = {e.intent.intent_id: (e.reason, e.intent.amount) for e in path.events if isinstance(e, OrderRejected)}
    assert refused == {"b": (RejectReason.MAX_ORDER_NATIVE, 2 * SOL), "c": (RejectReason.SIZING, 0)}


async def test_a_sized_buy_is_valued_at_its_sized_amount_not_the_usd_figure_the_strategy_declared(
    tmp_path: Path,
) -> None:
    """The USD limits must see what the order is worth: 0.5 SOL at 150 USD is 75 USD, whatever the intent said."""
    limits = RiskConfig(token_cooldown_s=0, duplicate_window_s=0, max_order_usd=Decimal(5))
    sizing = SizingConfig(fixed_sol=Decimal("0.5"))
    prices = FixedPrices(usd={"solana": Decimal(150)})
    async with order_path(tmp_path, limits=limits, sizing=sizing, clock=SimClock(T0), prices=prices) as path:
        await path.bus.publish(hinted(intent_id="a", token="A", notional_usd=Decimal(1)))
        await path.settle()
        assert await path.store.orders() == []
    (refused,) = [e for e in path.events if isinstance(e, OrderRejected)]
    assert refused.reason is RejectReason.MAX_ORDER_USD and refused.intent.notional_usd == Decimal(75)


async def test_a_sized_buy_without_a_usd_price_is_refused(tmp_path: Path) -> None:
    async with order_path(tmp_path, sizing=SizingConfig(), clock=SimClock(T0)) as path:
        await path.bus.publish(hinted(intent_id="a", token="A"))
        await path.settle()
        assert await path.store.orders() == []
    (refused,) = [e for e in path.events if isinstance(e, OrderRejected)]
    assert refused.reason is RejectReason.NO_USD_PRICE
