"""The order path end to end on both store backends (SQLite and a throw-away PostgreSQL database):
reservation, an executor's refusal on its quote giving the budget back, fills, a round trip, equity
history, and what a restart rebuilds (duplicate suppression, stop-loss guard, positions)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from quantbot.clock import SimClock
from quantbot.config import RiskConfig
from quantbot.events import OrderFailed, OrderRejected, RejectReason
from quantbot.risk import NOTIONAL_KEY, utc_day
from quantbot.store import Store
from quantbot.store.postgres import PostgresStore
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.paper import PaperExecutor
from tests.orderpath import order_path
from tests.test_store import pg_database

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
SOL = 10**9
LIMITS = RiskConfig(token_cooldown_s=0, duplicate_window_s=600, stop_loss_guard_count=1, stop_loss_guard_pause_s=60)


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    if request.param == "sqlite":
        yield lambda: SqliteStore(tmp_path / "q.db")
    else:
        async with pg_database() as dsn:
            yield lambda: PostgresStore(dsn)


def intent(n: str, **fields: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = {"intent_id": n, "notional_usd": Decimal(4), "price_native": Decimal(1000)}
    return order_intent(**(base | fields))


async def test_the_order_path_behaves_the_same_on_both_backends(
    tmp_path: Path, make_store: Callable[[], Store]
) -> None:
    clock = SimClock(T0)
    paper = make_plugin(PaperExecutor, id="paper", slippage_bps=50)
    kw = {"executors": {"paper": paper}, "limits": LIMITS, "clock": clock, "make_store": make_store}
    async with order_path(tmp_path, **kw) as path:  # type: ignore[arg-type]
        await path.bus.publish(intent("a", token="A"))
        await path.bus.publish(intent("b", token="B", max_slippage_bps=40))  # paper needs 50: refused, released
        await path.settle()
        assert await path.store.get_counter(utc_day(T0), NOTIONAL_KEY) == Decimal(4)
        qty = path.portfolio.position("solana", "A").quantity
        await path.bus.publish(
            intent("sl", token="A", side="sell", reduce_only=True, amount=qty, notional_usd=None, reason="stop_loss")
        )
        await path.settle()
        (trip,) = await path.store.round_trips()
        assert trip.token == "A" and trip.pnl_native < 0, "paper slippage and fee make the quick round trip a loss"
        assert len(await path.store.equity_history("solana", kind="daily")) == 1
    (failed,) = [e for e in path.events if isinstance(e, OrderFailed)]
    assert failed.reason == RejectReason.SLIPPAGE.value
    clock.advance(30)
    async with order_path(tmp_path, **kw) as path:  # type: ignore[arg-type]
        await path.bus.publish(intent("c", token="C"))  # stop-loss guard still pausing entries
        await path.settle()
        clock.advance(60)
        await path.bus.publish(intent("a2", token="A"))  # same strategy, token, side 90 s later: duplicate
        await path.bus.publish(intent("d", token="D"))
        await path.settle()
        assert path.portfolio.position("solana", "D").open
    refused = {e.intent.intent_id: e.reason for e in path.events if isinstance(e, OrderRejected)}
    assert refused == {"c": RejectReason.STOP_LOSS_GUARD, "a2": RejectReason.RECENT_DUPLICATE}
