"""RiskEngine checks beyond the size caps: mode, pool liquidity, price impact and slippage (before and at
the executor), duplicate suppression, exposure as % of equity, balance sufficiency, the drawdown circuit
breaker, the stop-loss guard, and USD values from a PriceView."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.api import NATIVE_TOKEN, ApprovedOrder, ExecutionReport, Executor, Outcome, PluginConfig
from quantbot.clock import SimClock
from quantbot.config import OrdersConfig, RiskConfig
from quantbot.events import (
    OrderFailed,
    OrderFilled,
    OrderRejected,
    PriceUpdate,
    RejectReason,
    Tick,
    TradingStateChanged,
)
from quantbot.risk import NOTIONAL_KEY, TradingState, read_trading_state, set_trading_state, utc_day
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.paper import PaperExecutor
from tests.orderpath import OrderPath, order_path
from tests.test_risk import engine

SOL = 10**9
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
OPEN = RiskConfig(token_cooldown_s=0, duplicate_window_s=0, max_orders_per_minute=1000)


@dataclass
class FixedPrices:
    """A PriceView for tests (the PriceBook's interface): fresh prices are whatever the test sets."""

    native: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    usd: dict[str, Decimal] = field(default_factory=dict)

    def price_native(self, chain: str, token: str) -> Decimal | None:
        return self.native.get((chain, token))

    def usd_per_native(self, chain: str) -> Decimal | None:
        return self.usd.get(chain)


def buy(n: int | str = 1, **fields: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = {
        "intent_id": str(n),
        "notional_usd": Decimal(5),
        "price_native": Decimal(1000),
        "amount": SOL // 10,
    }
    return order_intent(**(base | fields))


def reasons(path: OrderPath) -> dict[str, RejectReason]:
    return {e.intent.intent_id: e.reason for e in path.events if isinstance(e, OrderRejected)}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"pool_liquidity_native": 20 * SOL}, None),
        ({"pool_liquidity_native": 20 * SOL - 1}, RejectReason.MIN_LIQUIDITY),
        ({"pool_liquidity_native": 30 * SOL, "amount": SOL // 2}, RejectReason.PRICE_IMPACT),  # 164 bps
        ({"price_impact_bps": 301}, RejectReason.PRICE_IMPACT),
        ({"price_impact_bps": 300}, None),
        ({"max_slippage_bps": 501}, RejectReason.SLIPPAGE),
        ({"max_slippage_bps": 500}, None),
        ({"side": "sell", "pool_reserve_token": 1000, "amount": 100}, RejectReason.PRICE_IMPACT),  # 910 bps
        ({"side": "sell", "reduce_only": True, "pool_liquidity_native": 1, "max_slippage_bps": 9999}, None),
    ],
)
def test_pool_liquidity_price_impact_and_slippage(fields: dict[str, object], reason: RejectReason | None) -> None:
    limits = RiskConfig(max_order_sol=Decimal(1), max_price_impact_bps=160)
    if fields.get("price_impact_bps") in (300, 301):
        limits = RiskConfig(max_price_impact_bps=300)
    verdict = engine(limits, held={buy().token: SOL}).evaluate(buy(**fields))
    assert (verdict[0] if verdict else None) is reason, verdict


def test_price_impact_is_estimated_from_reserves_with_the_constant_product_rule() -> None:
    from quantbot.risk import impact_bps

    # 0.5 SOL into a 30 SOL pool moves the price 0.5 / 30.5 = 163.9 bps (rounded up: 164).
    assert impact_bps(buy(pool_liquidity_native=30 * SOL, amount=SOL // 2)) == 164
    assert impact_bps(buy(side="sell", pool_reserve_token=900, amount=100)) == 1000
    assert impact_bps(buy(price_impact_bps=50, pool_liquidity_native=30 * SOL, amount=SOL // 2)) == 164
    assert impact_bps(buy()) is None


def test_exposure_as_a_share_of_equity_and_balance_sufficiency() -> None:
    e = engine(RiskConfig(max_exposure_pct=Decimal(25), max_order_sol=Decimal(5), max_exposure_sol=Decimal(50)), sol=2)
    assert e.evaluate(buy(amount=SOL // 2)) is None  # 0.5 of 2 SOL = 25%
    verdict = e.evaluate(buy(amount=SOL // 2 + 1))
    assert verdict is not None and verdict[0] is RejectReason.MAX_EXPOSURE_PCT

    e = engine(RiskConfig(max_exposure_pct=Decimal(0), max_order_sol=Decimal(5)), sol=1)
    rent, fee = 2_039_280, 1_000_000  # the configured reserves: ATA rent and fees
    assert e.evaluate(buy(amount=SOL - rent - fee)) is None
    verdict = e.evaluate(buy(amount=SOL - rent - fee + 1))
    assert verdict is not None and verdict[0] is RejectReason.INSUFFICIENT_BALANCE
    e.portfolio.native.clear()
    verdict = e.evaluate(buy())
    assert verdict is not None and verdict[0] is RejectReason.INSUFFICIENT_BALANCE and "unknown" in verdict[1]


def test_paper_mode_refuses_a_chain_served_only_by_live_executors() -> None:
    e = engine()
    e.router.executors["paper"].live = True  # type: ignore[misc]
    verdict = e.evaluate(buy())
    assert verdict is not None and verdict[0] is RejectReason.PAPER_MODE
    e.mode = "live"
    assert e.evaluate(buy()) is None


async def test_a_repeated_intent_from_the_same_strategy_is_suppressed_within_the_window(tmp_path: Path) -> None:
    clock = SimClock(T0)
    limits = msgspec.structs.replace(OPEN, duplicate_window_s=30)
    async with order_path(tmp_path, limits=limits, clock=clock) as path:
        await path.bus.publish(buy("a"))
        await path.settle()  # bought: the sell below sells tokens held
        await path.bus.publish(buy("b"))  # same strategy, token, side: a new id, still a duplicate
        await path.bus.publish(buy("c", strategy="other"))
        await path.bus.publish(buy("d", side="sell", amount=10, notional_usd=Decimal(1)))
        await path.settle()
        clock.advance(31)
        await path.bus.publish(buy("e"))
        await path.settle()
    assert reasons(path) == {"b": RejectReason.RECENT_DUPLICATE}


class Refusing(Executor):
    """Refuses every order as a live venue does when its real quote breaks the approved limits."""

    live = False

    def __init__(self, reason: RejectReason) -> None:
        super().__init__(id="venue", config=PluginConfig())
        self.reason = reason
        self.seen: list[ApprovedOrder] = []

    async def execute(self, order: ApprovedOrder) -> ExecutionReport:
        self.seen.append(order)
        return ExecutionReport(outcome=Outcome.FAILED, reason=self.reason, detail="quote beyond the limit")

    async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
        return ExecutionReport(outcome=Outcome.NOT_SENT)

    async def balances(self, tokens: Collection[str] = ()) -> Mapping[str, int]:
        return {NATIVE_TOKEN["solana"]: 10 * SOL}


@pytest.mark.parametrize("reason", [RejectReason.PRICE_IMPACT, RejectReason.SLIPPAGE])
async def test_an_executor_refusal_on_its_real_quote_releases_the_reservation(
    tmp_path: Path, reason: RejectReason
) -> None:
    venue = Refusing(reason)
    async with order_path(
        tmp_path, executors={"venue": venue}, routes=OrdersConfig(solana=("venue",)), limits=OPEN, clock=SimClock(T0)
    ) as path:
        await path.bus.publish(buy(1, notional_usd=Decimal(7)))
        await path.settle()
        assert await path.store.get_counter(utc_day(T0), NOTIONAL_KEY) == 0
        assert path.risk.pending == {}
    (failed,) = [e for e in path.events if isinstance(e, OrderFailed)]
    assert failed.reason == reason.value
    (order,) = venue.seen
    assert (order.max_price_impact_bps, order.max_slippage_bps) == (300, 500), "the venue gets the approved limits"


async def test_paper_enforces_the_approved_slippage_and_impact_limits(tmp_path: Path) -> None:
    paper = make_plugin(PaperExecutor, id="paper", slippage_bps=600)
    async with order_path(tmp_path, executors={"paper": paper}, limits=OPEN, clock=SimClock(T0)) as path:
        await path.bus.publish(buy(1))
        await path.settle()
        assert await path.store.get_counter(utc_day(T0), NOTIONAL_KEY) == 0
    (failed,) = [e for e in path.events if isinstance(e, OrderFailed)]
    assert failed.reason == "slippage"


async def test_usd_value_comes_from_the_price_view_and_fails_closed_without_it(tmp_path: Path) -> None:
    prices = FixedPrices(usd={"solana": Decimal("150.25")}, native={("solana", "A"): Decimal(2000)})
    async with order_path(tmp_path, limits=OPEN, prices=prices, clock=SimClock(T0)) as path:
        await path.bus.publish(buy(1, token="A", notional_usd=None))
        await path.bus.publish(buy(2, chain="aptos", token="B", notional_usd=None, amount=10**8))
        await path.settle()
        (row,) = await path.store.orders()
        assert row.notional_usd == Decimal("15.025")  # 0.1 SOL x 150.25
    assert reasons(path) == {"2": RejectReason.NO_USD_PRICE}
    (fill,) = [e for e in path.events if isinstance(e, OrderFilled)]
    assert fill.price_native == Decimal(2000), "paper fills at the current price over the intent's 1000"


async def test_drawdown_breaker_halts_persists_announces_and_lets_exits_through(tmp_path: Path) -> None:
    clock = SimClock(T0)
    limits = msgspec.structs.replace(OPEN, max_daily_drawdown_pct=Decimal("0.5"), max_order_sol=Decimal(2))
    paper = make_plugin(PaperExecutor, id="paper", balance_sol=Decimal(10), slippage_bps=0, fee_bps=0)
    async with order_path(tmp_path, executors={"paper": paper}, limits=limits, clock=clock) as path:
        assert path.portfolio.day_start["solana"] == (utc_day(T0), 10 * SOL)
        await path.bus.publish(buy(1, token="A", amount=SOL))  # 1 SOL for 1e6 units at 1000
        await path.settle()
        await path.bus.publish(
            PriceUpdate(chain="solana", token="A", price_native=Decimal(900), source="t", observed_at=T0)
        )
        clock.advance(61)
        await path.bus.publish(Tick(seq=1))  # equity 9 + 0.9 SOL: 1% below the day's start
        await path.settle()
        assert await read_trading_state(path.store) is TradingState.HALTED
        (changed,) = [e for e in path.events if isinstance(e, TradingStateChanged)]
        assert changed.state == "halted" and "drawdown" in changed.source
        await path.bus.publish(buy(2, token="B"))
        qty = path.portfolio.position("solana", "A").quantity
        await path.bus.publish(buy(3, token="A", side="sell", reduce_only=True, amount=qty, notional_usd=None))
        await path.settle()
        assert reasons(path) == {"2": RejectReason.HALTED}
        assert not path.portfolio.position("solana", "A").open, "the exit passed while halted"
        # The operator resumes: the breaker does not trip again the same UTC day.
        await set_trading_state(path.store, TradingState.ACTIVE, reason="operator", now=clock.now())
        clock.advance(61)
        await path.bus.publish(Tick(seq=2))
        await path.bus.publish(buy(4, token="C"))
        await path.settle()
        assert await read_trading_state(path.store) is TradingState.ACTIVE
        assert "4" not in reasons(path)


GUARD = msgspec.structs.replace(
    OPEN, stop_loss_guard_count=2, stop_loss_guard_window_s=600, stop_loss_guard_pause_s=900
)
"""Two stop-losses within 10 minutes pause entries for 15."""


async def two_stop_losses(path: OrderPath, clock: SimClock) -> None:
    """Buy A and B, each sold on a stop-loss, a minute apart (the clock ends a minute after the second)."""
    for token in "AB":
        await path.bus.publish(buy(f"buy-{token}", token=token))
        await path.settle()
        qty = path.portfolio.position("solana", token).quantity
        exit_ = buy(f"sl-{token}", token=token, side="sell", reduce_only=True, amount=qty, reason="stop_loss")
        await path.bus.publish(exit_)
        await path.settle()
        clock.advance(60)


async def test_stop_loss_guard_pauses_entries_after_n_stop_losses_and_survives_a_restart(tmp_path: Path) -> None:
    clock = SimClock(T0)
    limits = GUARD
    async with order_path(tmp_path, limits=limits, clock=clock) as path:
        await two_stop_losses(path, clock)
        await path.bus.publish(buy("c", token="C"))
        await path.settle()
    assert reasons(path) == {"c": RejectReason.STOP_LOSS_GUARD}
    async with order_path(tmp_path, limits=limits, clock=clock) as path:
        await path.bus.publish(buy("d", token="D"))
        await path.settle()
        assert reasons(path) == {"d": RejectReason.STOP_LOSS_GUARD}, "rebuilt from the journal"
        clock.advance(900)
        await path.bus.publish(buy("e", token="E"))
        await path.settle()
        assert "e" not in reasons(path)


async def test_a_restart_late_in_a_stop_loss_pause_keeps_it_until_it_ends(tmp_path: Path) -> None:
    """Paused at the second stop-loss for 900 s; a restart 700 s later (past the 600 s window) must not lift it."""
    clock = SimClock(T0)
    limits = GUARD
    async with order_path(tmp_path, limits=limits, clock=clock) as path:
        await two_stop_losses(path, clock)
    clock.advance(700 - 60)  # 700 s after the second stop-loss: 200 s of the pause left
    async with order_path(tmp_path, limits=limits, clock=clock) as path:
        await path.bus.publish(buy("d", token="D"))
        await path.settle()
        assert reasons(path) == {"d": RejectReason.STOP_LOSS_GUARD}
        clock.advance(200)
        await path.bus.publish(buy("e", token="E"))
        await path.settle()
        assert "e" not in reasons(path)


async def test_concurrent_hinted_intents_never_overspend_the_balance(tmp_path: Path) -> None:
    paper = make_plugin(PaperExecutor, id="paper", balance_sol=Decimal("0.35"))
    limits = msgspec.structs.replace(OPEN, max_exposure_pct=Decimal(0))
    async with order_path(tmp_path, executors={"paper": paper}, limits=limits, clock=SimClock(T0)) as path:
        await asyncio.gather(*(path.bus.publish(buy(n, token=f"T{n}")) for n in range(5)))
        await path.settle()
        balances = await paper.balances()
    assert balances[NATIVE_TOKEN["solana"]] >= 0
    assert sorted(reasons(path).values()) == [RejectReason.INSUFFICIENT_BALANCE] * 2  # 0.1 + reserves each


@given(
    amount=st.integers(min_value=1, max_value=2 * SOL),
    reserve=st.integers(min_value=0, max_value=200 * SOL),
    balance_sol=st.integers(min_value=0, max_value=3),
    impact_cap=st.integers(min_value=0, max_value=2000),
)
def test_an_approved_buy_respects_liquidity_impact_and_balance(
    amount: int, reserve: int, balance_sol: int, impact_cap: int
) -> None:
    limits = RiskConfig(max_order_sol=Decimal(2), max_exposure_sol=Decimal(2), max_price_impact_bps=impact_cap)
    e = engine(limits, sol=balance_sol)
    if e.evaluate(buy(amount=amount, pool_liquidity_native=reserve)) is None:
        assert reserve >= 20 * SOL
        assert amount * 10_000 <= impact_cap * (reserve + amount)
        assert amount + 1_000_000 + 2_039_280 <= balance_sol * SOL
        assert amount * 100 <= 25 * balance_sol * SOL


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": -(SOL // 10)},
        {"amount": -(SOL // 10), "notional_usd": None},  # valued from the price view: a negative USD value
        {"notional_usd": Decimal(-5)},
        {"notional_usd": Decimal("-Infinity")},
        {"notional_usd": Decimal("NaN")},
        {"price_native": Decimal(0)},
        {"price_native": Decimal(-1000)},
        {"pool_liquidity_native": -1},
        {"price_impact_bps": -1},
        {"max_slippage_bps": -1},
        {"side": "sell", "reduce_only": True, "amount": -5},
    ],
)
async def test_an_intent_with_a_negative_or_non_finite_figure_is_refused_and_costs_nothing(
    tmp_path: Path, fields: dict[str, object]
) -> None:
    """A buggy strategy's negative amount or USD value would pass every cap (all are upper bounds) and give back
    daily budget; it is refused before it is valued, reserved or sent."""
    prices = FixedPrices(usd={"solana": Decimal(150)})
    async with order_path(tmp_path, limits=OPEN, prices=prices, clock=SimClock(T0)) as path:
        await path.bus.publish(buy(1, **fields))
        await path.bus.publish(buy(2))  # a sound one after it is approved and reserves its own 5 USD only
        await path.settle()
        assert await path.store.get_counter(utc_day(T0), NOTIONAL_KEY) == Decimal(5)
        assert [row.idempotency_key for row in await path.store.orders()] == [f"{buy(2).strategy}:2"]
    assert reasons(path) == {"1": RejectReason.INVALID_INTENT}
