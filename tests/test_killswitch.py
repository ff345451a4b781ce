"""The kill switch: `quantbot halt` / `resume` from another process, persisted, exits still pass."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from quantbot.events import OrderApproved, OrderRejected, RejectReason, TradingStateChanged
from quantbot.risk import TradingState, read_trading_state
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import order_intent
from tests.conftest import run_cli, write
from tests.orderpath import order_path
from tests.test_risk import engine


@pytest.mark.parametrize("state", [TradingState.HALTED, TradingState.REDUCE_ONLY])
def test_only_exits_pass_when_not_active(state: TradingState) -> None:
    e = engine(held={order_intent().token: 100_000_000})
    buy = order_intent(notional_usd=Decimal(1))
    verdict = e.evaluate(buy, state)
    assert verdict is not None and verdict[0] is RejectReason(state.value)
    exit_ = order_intent(side="sell", reduce_only=True, notional_usd=Decimal(1))
    assert e.evaluate(exit_, state) is None
    plain_sell = order_intent(side="sell", notional_usd=Decimal(1))
    assert e.evaluate(plain_sell, state) is not None, "a sell not marked reduce-only is not an exit"


async def test_an_unknown_stored_state_fails_closed(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "q.db") as store:
        from datetime import UTC, datetime

        await store.set_state("trading.state", "paused-ish", now=datetime(2026, 1, 1, tzinfo=UTC))
        assert await read_trading_state(store) is TradingState.HALTED


async def test_halt_and_resume_from_the_command_line_reach_a_running_engine(tmp_path: Path) -> None:
    cfg = write(tmp_path / "q.toml", f'[daemon]\ndata_dir = "{tmp_path}"\n[store]\nsqlite_path = "{tmp_path}/q.db"\n')

    async def cli(*args: str) -> str:
        result = await asyncio.to_thread(run_cli, *args, "-c", str(cfg))
        assert result.returncode == 0, result.stderr
        return result.stdout

    async with order_path(tmp_path) as path:
        held = order_intent(intent_id="held", token="H", notional_usd=Decimal(1), price_native=Decimal(1000))
        await path.bus.publish(held)  # a position for the exit below to sell
        await path.settle()
        assert (await cli("halt", "--reason", "manual test")).strip() == "trading: active -> halted (manual test)"
        await path.bus.publish(order_intent(intent_id="a", notional_usd=Decimal(1), price_native=Decimal(1000)))
        await path.settle()
        exit_ = order_intent(
            intent_id="b", token="H", side="sell", reduce_only=True, amount=10, price_native=Decimal(1000)
        )
        await path.bus.publish(exit_)
        await path.settle()
        assert (await cli("resume")).strip() == "trading: halted -> active (operator)"
        await path.bus.publish(order_intent(intent_id="c", notional_usd=Decimal(1), price_native=Decimal(1000)))
        await path.settle()
    rejected = [e for e in path.events if isinstance(e, OrderRejected)]
    approved = [e for e in path.events if isinstance(e, OrderApproved)]
    assert [(e.intent.intent_id, e.reason) for e in rejected] == [("a", RejectReason.HALTED)]
    assert [e.intent.intent_id for e in approved] == ["held", "b", "c"], "the exit passed while halted"
    changes = [(e.state, e.reason, e.source) for e in path.events if isinstance(e, TradingStateChanged)]
    assert changes == [("halted", "manual test", "store"), ("active", "operator", "store")], "announced on the bus"


async def test_a_halt_survives_a_restart(tmp_path: Path) -> None:
    cfg = write(tmp_path / "q.toml", f'[store]\nsqlite_path = "{tmp_path}/q.db"\n')
    assert (await asyncio.to_thread(run_cli, "halt", "-c", str(cfg))).returncode == 0
    async with SqliteStore(tmp_path / "q.db") as store:
        assert await read_trading_state(store) is TradingState.HALTED
