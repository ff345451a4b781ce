"""Builds the real order path (bus, store, paper executor, portfolio, router, risk engine) for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from quantbot.api import ApprovedOrder, Executor, OrderIntent, PluginEnv, PriceView
from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.config import ExitsConfig, OrdersConfig, RiskConfig, SizingConfig
from quantbot.events import Event
from quantbot.exits import ExitManager
from quantbot.orders import OrderRouter, Sealer
from quantbot.portfolio import Portfolio
from quantbot.risk import RiskEngine
from quantbot.sizing import Sizer
from quantbot.store import OrderRow, Store
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import make_plugin
from quantbot_executors.paper import PaperExecutor


@dataclass
class OrderPath:
    bus: EventBus
    store: Store
    router: OrderRouter
    risk: RiskEngine
    sealer: Sealer
    executors: dict[str, Executor]
    portfolio: Portfolio
    events: list[Event] = field(default_factory=list)
    exits: ExitManager | None = None

    async def settle(self) -> None:
        """Wait until every queued event and every order in flight is handled (each can cause the other)."""
        await self.bus.drain(5)
        while self.router.busy:
            await self.router.stop()
            await self.bus.drain(5)

    def approve(self, order_id: str, intent: OrderIntent, *, at: datetime, executor: str = "paper") -> ApprovedOrder:
        """`intent` as the risk engine would approve it for `executor` (sealed), approved `at`; not journaled."""
        return self.sealer.seal(
            ApprovedOrder(
                order_id=order_id,
                idempotency_key=f"k:{order_id}",
                intent=intent,
                executors=(executor,),
                approved_at=at,
            )
        )


def order_row(order: ApprovedOrder, *, status: str = "pending") -> OrderRow:
    """The journal row of `order` (dated at its approval), for tests that write the store as another run did."""
    i = order.intent
    return OrderRow(
        order_id=order.order_id,
        idempotency_key=order.idempotency_key,
        strategy=i.strategy,
        chain=i.chain,
        side=i.side,
        token=i.token,
        amount=i.amount,
        notional_usd=i.notional_usd,
        executor=order.executors[0],
        status=status,
        intent=msgspec.json.encode(order).decode(),
        created_at=order.approved_at,
        updated_at=order.approved_at,
    )


@asynccontextmanager
async def order_path(
    tmp: Path,
    *,
    executors: dict[str, Executor] | None = None,
    routes: OrdersConfig | None = None,
    limits: RiskConfig | None = None,
    mode: str = "paper",
    clock: SimClock | None = None,
    exits: ExitsConfig | None = None,
    prices: PriceView | None = None,
    sizing: SizingConfig | None = None,
    make_store: Callable[[], Store] | None = None,
) -> AsyncIterator[OrderPath]:
    """`make_store` builds the backend (default: SQLite under `tmp`); called on every (re)start."""
    clock = clock or SimClock()
    routes = routes or OrdersConfig()
    if executors is None:
        executors = {"paper": make_plugin(PaperExecutor, id="paper")}
    for name, ex in executors.items():
        ex.attach(PluginEnv(clock=clock, data_dir=tmp / "executors" / name, prices=prices))
        await ex.start()
    sealer = Sealer()
    async with EventBus(clock=clock) as bus, (make_store or (lambda: SqliteStore(tmp / "q.db")))() as store:
        portfolio = Portfolio(store=store, clock=clock, bus=bus, executors=executors, routes=routes, prices=prices)
        await portfolio.start()
        router = OrderRouter(
            bus=bus, store=store, portfolio=portfolio, executors=executors, sealer=sealer, clock=clock, mode=mode
        )
        risk = RiskEngine(
            bus=bus,
            limits=limits or RiskConfig(),
            routes=routes,
            router=router,
            sealer=sealer,
            clock=clock,
            store=store,
            portfolio=portfolio,
            mode=mode,
            prices=prices,
            sizer=Sizer(config=sizing or SizingConfig(), store=store, equity=portfolio.equity_native),
        )
        path = OrderPath(
            bus=bus, store=store, router=router, risk=risk, sealer=sealer, executors=executors, portfolio=portfolio
        )

        async def record(e: Event) -> None:
            path.events.append(e)

        bus.subscribe(["order.#", "position.#", "risk.state", "portfolio.equity"], record, name="test.recorder")
        await risk.start()
        await router.start()
        if exits is not None:
            path.exits = ExitManager(bus=bus, store=store, portfolio=portfolio, rules=exits, clock=clock)
            await path.exits.start()
        yield path
        await path.settle()


def first_call(fn: Callable[[Any], Awaitable[Any]], answer: object) -> Callable[[Any], Awaitable[Any]]:
    """`fn`, except that its first call raises `answer` (an exception) or returns it."""
    calls = 0

    async def wrapped(arg: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > 1:
            return await fn(arg)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return wrapped
