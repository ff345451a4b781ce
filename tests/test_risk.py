"""RiskEngine (engine-core cut): size caps, lists, and failing closed without a USD value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.config import OrdersConfig, RiskConfig
from quantbot.events import OrderApproved, OrderRejected, RejectReason
from quantbot.orders import OrderRouter, Sealer
from quantbot.portfolio import Portfolio, Position
from quantbot.risk import RiskEngine
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.paper import PaperExecutor
from tests.orderpath import order_path

LIMITS = RiskConfig(max_order_usd=Decimal(50), max_order_sol=Decimal("0.5"), max_order_apt=Decimal(5))


def engine(
    limits: RiskConfig = LIMITS, *, sol: int = 100, apt: int = 1000, held: dict[str, int] | None = None
) -> RiskEngine:
    """An engine for `evaluate` alone (its router is never called here), holding `sol` SOL and `apt` APT, and
    `held` base units of each Solana token it names (bought at no cost)."""
    clock = SimClock()
    bus = EventBus(clock=clock)
    sealer = Sealer()
    store = SqliteStore(":memory:")
    portfolio = Portfolio(store=store, clock=clock)
    portfolio.native = {"solana": sol * 10**9, "aptos": apt * 10**8}
    for token, quantity in (held or {}).items():
        portfolio.positions[("solana", token)] = Position(chain="solana", token=token, quantity=quantity)
    router = OrderRouter(
        bus=bus,
        store=store,
        portfolio=portfolio,
        executors={"paper": make_plugin(PaperExecutor, id="paper")},
        sealer=sealer,
        clock=clock,
        mode="paper",
    )
    return RiskEngine(
        bus=bus,
        limits=limits,
        routes=OrdersConfig(),
        router=router,
        sealer=sealer,
        clock=clock,
        store=store,
        portfolio=portfolio,
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"notional_usd": Decimal(50), "amount": 500_000_000}, None),
        ({"notional_usd": Decimal("50.01")}, RejectReason.MAX_ORDER_USD),
        ({"notional_usd": None}, RejectReason.NO_USD_PRICE),
        ({"notional_usd": Decimal(1), "amount": 500_000_001}, RejectReason.MAX_ORDER_NATIVE),
        ({"chain": "aptos", "notional_usd": Decimal(1), "amount": 500_000_000}, None),  # 5 APT, 8 decimals
        ({"chain": "aptos", "notional_usd": Decimal(1), "amount": 500_000_001}, RejectReason.MAX_ORDER_NATIVE),
        ({"side": "sell", "reduce_only": True, "notional_usd": None, "amount": 10**18}, None),  # exits pass
        ({"side": "sell", "notional_usd": None}, RejectReason.NO_USD_PRICE),
        ({"side": "sell", "reduce_only": True, "amount": 10**18 + 1}, RejectReason.INSUFFICIENT_POSITION),
    ],
)
def test_limits(fields: dict[str, object], reason: RejectReason | None) -> None:
    verdict = engine(held={order_intent().token: 10**18}).evaluate(order_intent(**fields))
    assert (verdict[0] if verdict else None) is reason


def test_block_and_allow_lists() -> None:
    limits = RiskConfig(allow_tokens=("Good",), block_tokens=("Evil",))
    e = engine(limits, held={"Other": 100_000_000, "Evil": 100_000_000})
    assert e.evaluate(order_intent(token="Evil", notional_usd=Decimal(1)))[0] is RejectReason.BLOCKED_TOKEN  # type: ignore[index]
    assert e.evaluate(order_intent(token="Other", notional_usd=Decimal(1)))[0] is RejectReason.NOT_ALLOWED_TOKEN  # type: ignore[index]
    assert e.evaluate(order_intent(token="Good", notional_usd=Decimal(1))) is None
    exit_other = order_intent(token="Other", side="sell", reduce_only=True)
    assert e.evaluate(exit_other) is None, "an exit from a token no longer allowed still passes"
    exit_evil = order_intent(token="Evil", side="sell", reduce_only=True, reason="stop_loss")
    assert e.evaluate(exit_evil) is None, "blocking a token held must not take away the way out"


def test_aptos_lists_match_an_address_however_it_is_spelled() -> None:
    short = "0xABCDEF0000000000000000000000000000000000000000000000000000000001"
    canonical = "0xabcdef0000000000000000000000000000000000000000000000000000000001"
    e = engine(RiskConfig(block_tokens=(short, "0x1::Evil::COIN"), allow_tokens=()))
    for token in (canonical, short, "0x0001::Evil::COIN"):
        verdict = e.evaluate(order_intent(chain="aptos", token=token, notional_usd=Decimal(1), amount=1))
        assert verdict is not None and verdict[0] is RejectReason.BLOCKED_TOKEN, token
    allowed = engine(RiskConfig(allow_tokens=(short,)))
    assert allowed.evaluate(order_intent(chain="aptos", token=canonical, notional_usd=Decimal(1), amount=1)) is None


@given(
    usd=st.decimals(min_value=0, max_value=1000, places=2),
    amount=st.integers(min_value=0, max_value=10**12),
    cap=st.decimals(min_value=Decimal("0.01"), max_value=1000, places=2),
)
def test_an_approved_buy_never_exceeds_a_limit(usd: Decimal, amount: int, cap: Decimal) -> None:
    e = engine(RiskConfig(max_order_usd=cap, max_order_sol=cap))
    if e.evaluate(order_intent(notional_usd=usd, amount=amount)) is None:
        assert usd <= cap
        assert amount <= cap * 10**9


async def test_intents_become_approved_or_rejected_events(tmp_path: Path) -> None:
    async with order_path(tmp_path, limits=LIMITS) as path:
        ok = await path.bus.publish(order_intent(intent_id="a", notional_usd=Decimal(5), price_native=Decimal(100)))
        await path.bus.publish(order_intent(intent_id="b", notional_usd=Decimal(500)))
        await path.bus.drain(5)
        await path.settle()
    approved = [e for e in path.events if isinstance(e, OrderApproved)]
    rejected = [e for e in path.events if isinstance(e, OrderRejected)]
    assert len(approved) == 1 and approved[0].intent == ok and len(approved[0].order_id) == 32
    assert len(rejected) == 1 and rejected[0].reason is RejectReason.MAX_ORDER_USD
    assert rejected[0].detail == "500 USD > 50 USD"
