"""RiskEngine: a sell never asks for more than the position holds less what sells in flight are already selling."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from quantbot.api import ApprovedOrder, ExecutionReport, Outcome, PluginConfig
from quantbot.clock import SimClock
from quantbot.config import ExitsConfig, RiskConfig
from quantbot.events import OrderIntent, OrderRejected, PriceUpdate, RejectReason
from quantbot.portfolio import Position
from quantbot.risk import Selling
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.paper import PaperExecutor
from tests.orderpath import OrderPath, order_path
from tests.test_risk import engine

SOL = 10**9
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
OPEN = RiskConfig(token_cooldown_s=0, duplicate_window_s=0, max_orders_per_minute=1000)


class HeldSells(PaperExecutor):
    """Paper, except that each sell waits at its own gate until the test opens it, then ends as the test says:
    filled (by default), failed, expired, or filled for only `partial[intent_id]` tokens. A sell still at its gate
    is, to a restart's reconciliation, sent and not yet landed; once its gate opens, landed."""

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.ends: dict[str, Outcome] = {}
        self.partial: dict[str, int] = {}

    def release(self, *intent_ids: str) -> None:
        for intent_id in intent_ids:
            self.gates[intent_id].set()

    async def execute(self, order: ApprovedOrder) -> ExecutionReport:
        intent = order.intent
        if intent.side == "sell":
            await self.gates[intent.intent_id].wait()
            end = self.ends.get(intent.intent_id, Outcome.FILLED)
            if end is Outcome.FAILED:
                return ExecutionReport(outcome=end, reason=RejectReason.SLIPPAGE, detail="the pool moved")
            if end is Outcome.EXPIRED:
                return ExecutionReport(outcome=end, tx=f"tx-{intent.intent_id}", detail="blockhash expired")
            if intent.intent_id in self.partial:
                part = msgspec.structs.replace(intent, amount=self.partial[intent.intent_id])
                order = msgspec.structs.replace(order, intent=part)
        return await super().execute(order)

    async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
        if order.intent.side == "sell" and self.sent(order) is None:
            if not self.gates[order.intent.intent_id].is_set():
                return ExecutionReport(outcome=Outcome.SUBMITTED, detail="not landed yet")
            return await self.execute(order)  # the sell sent before the restart has landed
        return await super().reconcile(order, tx)


def venue() -> HeldSells:
    return make_plugin(HeldSells, id="paper", slippage_bps=0, fee_bps=0, network_fee=0)


def sell(intent_id: str, amount: int, **fields: object) -> OrderIntent:
    base: dict[str, object] = {
        "intent_id": intent_id,
        "strategy": "copy",
        "side": "sell",
        "token": "A",
        "amount": amount,
        "reduce_only": True,
        "price_native": Decimal(1000),
    }
    return order_intent(**(base | fields))


def rejected(path: OrderPath) -> dict[str, RejectReason]:
    return {e.intent.intent_id: e.reason for e in path.events if isinstance(e, OrderRejected)}


async def landed(path: OrderPath, *, left: int) -> None:
    """Wait until only `left` orders are still in the executor, and every event their results caused is handled."""
    await path.bus.drain(5)  # the intents published so far are answered (and their orders in the executor)
    async with asyncio.timeout(5):
        while path.router.inflight > left:
            await asyncio.wait(path.router.inflight_tasks(), return_when=asyncio.FIRST_COMPLETED)
    await path.bus.drain(5)


async def hold_a(path: OrderPath) -> int:
    """Buy token A (filled at once); return the quantity held."""
    await path.bus.publish(
        order_intent(intent_id="buy", token="A", amount=SOL // 10, notional_usd=Decimal(5), price_native=Decimal(1000))
    )
    await path.settle()
    qty = path.portfolio.position("solana", "A").quantity
    assert qty == 100_000
    return qty


async def test_a_sell_of_tokens_already_being_sold_is_rejected_and_the_rest_passes(tmp_path: Path) -> None:
    paper = venue()
    async with order_path(tmp_path, executors={"paper": paper}, limits=OPEN, clock=SimClock(T0)) as path:
        qty = await hold_a(path)
        await path.bus.publish(sell("copy-60", qty * 6 // 10))
        await path.bus.publish(sell("exit-all", qty, strategy="exits", reason="stop_loss"))
        await path.bus.publish(sell("copy-41", qty * 4 // 10 + 1))
        await path.bus.publish(sell("copy-40", qty * 4 // 10))
        await path.bus.publish(sell("not-ours", 1, token="B"))
        await path.bus.drain(5)
        assert rejected(path) == {
            "exit-all": RejectReason.INSUFFICIENT_POSITION,
            "copy-41": RejectReason.INSUFFICIENT_POSITION,
            "not-ours": RejectReason.INSUFFICIENT_POSITION,
        }
        detail = next(
            e.detail for e in path.events if isinstance(e, OrderRejected) and e.intent.intent_id == "exit-all"
        )
        assert detail == f"sell of {qty} A > held {qty} less {qty * 6 // 10} being sold"
        paper.release("copy-60", "copy-40")
        await path.settle()
        assert path.portfolio.position("solana", "A").quantity == 0
        assert path.risk.selling("solana", "A") == 0


@pytest.mark.parametrize("end", [Outcome.FAILED, Outcome.EXPIRED])
async def test_a_sell_that_fails_or_expires_gives_its_tokens_back(tmp_path: Path, end: Outcome) -> None:
    paper = venue()
    paper.ends["first"] = end
    async with order_path(tmp_path, executors={"paper": paper}, limits=OPEN, clock=SimClock(T0)) as path:
        qty = await hold_a(path)
        await path.bus.publish(sell("first", qty))
        await path.bus.drain(5)
        await path.bus.publish(sell("while-in-flight", 1))
        await path.bus.drain(5)
        paper.release("first", "while-in-flight")
        await path.settle()
        await path.bus.publish(sell("again", qty))
        paper.release("again")
        await path.settle()
    assert rejected(path) == {"while-in-flight": RejectReason.INSUFFICIENT_POSITION}
    assert path.portfolio.position("solana", "A").quantity == 0, "the retry sold it all"


async def test_a_partly_filled_sell_leaves_the_unsold_rest_to_sell_and_no_more(tmp_path: Path) -> None:
    paper = venue()
    paper.partial["part"] = 30_000
    async with order_path(tmp_path, executors={"paper": paper}, limits=OPEN, clock=SimClock(T0)) as path:
        qty = await hold_a(path)
        await path.bus.publish(sell("part", qty // 2))
        await path.bus.publish(sell("other", qty // 4))
        await path.bus.drain(5)
        paper.release("part")
        await landed(path, left=1)
        assert path.portfolio.position("solana", "A").quantity == 70_000, "30 000 of the 50 000 sold"
        await path.bus.publish(sell("too-much", 70_000 - qty // 4 + 1))
        await path.bus.publish(sell("the-rest", 70_000 - qty // 4))
        await path.bus.drain(5)  # answered while "other" is still in flight
        paper.release("other", "the-rest", "too-much")
        await path.settle()
    assert rejected(path) == {"too-much": RejectReason.INSUFFICIENT_POSITION}, "the other sell kept its reservation"
    assert path.portfolio.position("solana", "A").quantity == 0


async def test_sells_in_flight_at_a_restart_still_count(tmp_path: Path) -> None:
    clock = SimClock(T0)
    paper = venue()
    async with order_path(tmp_path, executors={"paper": paper}, limits=OPEN, clock=clock) as path:
        qty = await hold_a(path)
        await path.bus.publish(sell("in-flight", qty * 6 // 10))
        await path.bus.drain(5)
        path.router.crash()  # killed with the sell sent and not yet landed
    paper = venue()
    async with order_path(tmp_path, executors={"paper": paper}, limits=OPEN, clock=clock) as path:
        await path.bus.publish(sell("all", qty))
        await path.bus.publish(sell("rest", qty * 4 // 10))
        paper.release("rest", "all")
        await landed(path, left=0)
        assert rejected(path) == {"all": RejectReason.INSUFFICIENT_POSITION}, "rebuilt from the journal"
        assert path.risk.selling("solana", "A") == qty * 6 // 10
        assert path.portfolio.position("solana", "A").quantity == qty * 6 // 10
        paper.release("in-flight")
        await path.router.reconcile_open()
        await path.settle()
        assert path.portfolio.position("solana", "A").quantity == 0
        assert path.risk.selling("solana", "A") == 0


async def test_a_stop_loss_while_a_strategy_sells_part_sells_what_is_left_once_that_lands(tmp_path: Path) -> None:
    paper = venue()
    rules = ExitsConfig(stop_loss_pct=Decimal(20), take_profit_pct=Decimal(0))
    async with order_path(tmp_path, executors={"paper": paper}, limits=OPEN, exits=rules, clock=SimClock(T0)) as path:
        qty = await hold_a(path)
        await path.bus.publish(sell("copy-half", qty // 2))
        await path.bus.drain(5)
        drop = PriceUpdate(chain="solana", token="A", price_native=Decimal(700), source="t", observed_at=T0)
        await path.bus.publish(drop)
        await path.bus.drain(5)
        refused = [e.intent.intent_id for e in path.events if isinstance(e, OrderRejected)]
        assert len(refused) == 1 and refused[0].startswith("exit-"), "no exit of all while half is being sold"
        paper.release("copy-half")
        await path.settle()
        assert path.portfolio.position("solana", "A").quantity == qty // 2
        await path.bus.publish(drop)
        await path.bus.drain(5)
        (exit_,) = [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"][1:]
        assert exit_.amount == qty // 2
        paper.release(exit_.intent_id)
        await path.settle()
        assert path.portfolio.position("solana", "A").quantity == 0


def test_a_sell_may_take_what_is_held_less_what_is_being_sold() -> None:
    e = engine(RiskConfig())
    e.portfolio.positions[("solana", "A")] = Position(chain="solana", token="A", quantity=1000)
    e.sells["o1"] = Selling(chain="solana", token="A", amount=600, reason="")
    e.sells["o2"] = Selling(chain="aptos", token="A", amount=1000, reason="")  # another chain's A
    e.sells["o3"] = Selling(chain="solana", token="B", amount=1000, reason="")
    assert e.selling("solana", "A") == 600
    for amount, passes in [(400, True), (401, False), (0, False), (-1, False)]:
        verdict = e.evaluate(sell("s", amount))
        assert (verdict is None) is passes, (amount, verdict)
        assert verdict is None or verdict[0] is RejectReason.INSUFFICIENT_POSITION
    e.sells["o4"] = Selling(chain="solana", token="A", amount=400, reason="")
    assert e.evaluate(sell("s", 1)) is not None, "all 1000 are being sold"
    del e.sells["o1"]
    assert e.evaluate(sell("s", 600)) is None and e.evaluate(sell("s", 601)) is not None
