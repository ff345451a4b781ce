"""What the notifiers are told on a schedule: watcher lag over its bound, and the daily report.

`LagWatch.check` (job `watcher_lag`) reads the same `stats()` and `[http] max_lag_s` bounds as /readyz
(`bounded_lags`) and publishes `watcher.lag` when a component first goes over its bound and once more,
`recovered`, when it comes back under: edges, not every check.

`DailyReporter` counts fills and risk rejections per chain and UTC day in the store's day counters (so a
restart loses none) and its job `daily_report` publishes `report.daily` for the last complete UTC day:
its trades and rejections, the PnL realised since the previous report (with the default 00:05 schedule:
that day's), and the open positions' unrealised PnL and the equity when the report is made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import structlog

from quantbot.breakers import utc_day
from quantbot.bus import EventBus, Subscription
from quantbot.clock import Clock
from quantbot.events import ChainDay, DailyReport, Event, OrderFilled, OrderRejected, WatcherLag
from quantbot.ops.control import bounded_lags
from quantbot.portfolio import NATIVE_DECIMALS, Portfolio
from quantbot.store import Store

log = structlog.get_logger(component="reports")

TRADES_KEY = "report.trades.{chain}"
REJECTIONS_KEY = "report.rejections.{chain}"
REALISED_STATE = "report.realised_total.{chain}"
"""The chain's cumulative realised PnL when the last report was made (the next report's baseline)."""


class LagWatch:
    """Publishes `WatcherLag` on the edges of each component's lag crossing its bound."""

    def __init__(
        self,
        *,
        bus: EventBus,
        components: Callable[[], Sequence[Any]],
        max_lag_s: Callable[[], Mapping[str, float]],
    ) -> None:
        self.bus = bus
        self.components = components
        self.max_lag_s = max_lag_s
        self.over: set[str] = set()

    async def check(self) -> None:
        for name, (lag, bound) in bounded_lags(self.components(), self.max_lag_s()).items():
            if lag is None:
                continue  # no data yet: /readyz says so; not a crossing either way
            if lag > bound and name not in self.over:
                self.over.add(name)
                log.warning("watcher.lagging", target=name, lag_s=lag, bound_s=bound)
                await self.bus.publish(WatcherLag(component=name, lag_s=lag, bound_s=bound))
            elif lag <= bound and name in self.over:
                self.over.discard(name)
                log.info("watcher.lag_recovered", target=name, lag_s=lag, bound_s=bound)
                await self.bus.publish(WatcherLag(component=name, lag_s=lag, bound_s=bound, recovered=True))


class DailyReporter:
    """A daemon component on the trading side: counts the day's fills and rejections; `run` reports."""

    name = "reports"

    def __init__(self, *, bus: EventBus, store: Store, portfolio: Portfolio, clock: Clock) -> None:
        self.bus = bus
        self.store = store
        self.portfolio = portfolio
        self.clock = clock
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = self.bus.subscribe(["order.filled", "order.rejected"], self._count, name="reports")

    async def stop(self) -> None:
        if self._sub is not None:
            self.bus.unsubscribe(self._sub)
            self._sub = None

    async def _count(self, event: Event) -> None:
        day = utc_day(self.clock.now())
        if isinstance(event, OrderRejected):
            await self.store.add_counter(day, REJECTIONS_KEY.format(chain=event.intent.chain), Decimal(1))
        elif isinstance(event, OrderFilled):
            order = await self.store.get_order(event.order_id)
            if order is None:
                log.warning("report.fill_unknown_order", order_id=event.order_id)
                return
            await self.store.add_counter(day, TRADES_KEY.format(chain=order.chain), Decimal(1))

    async def report(self) -> DailyReport:
        """The report of the last complete UTC day (published by `run`)."""
        now = self.clock.now()
        day = utc_day(now - timedelta(days=1))
        chains = []
        for chain in NATIVE_DECIMALS:
            trades = int(await self.store.get_counter(day, TRADES_KEY.format(chain=chain)))
            rejections = int(await self.store.get_counter(day, REJECTIONS_KEY.format(chain=chain)))
            positions = [p for p in self.portfolio.positions.values() if p.chain == chain]
            equity = self.portfolio.equity_native(chain)
            if not (trades or rejections or positions or equity is not None):
                continue
            realised_total = sum(p.realised_pnl_native for p in positions)
            baseline = await self.store.get_state(REALISED_STATE.format(chain=chain))
            await self.store.set_state(REALISED_STATE.format(chain=chain), str(realised_total), now=now)
            chains.append(
                ChainDay(
                    chain=chain,  # type: ignore[arg-type]
                    realised_pnl_native=realised_total - int(baseline or 0),
                    unrealised_pnl_native=sum(self.portfolio.unrealised_pnl(chain, p.token) for p in positions),
                    equity_native=equity,
                    trades=trades,
                    rejections=rejections,
                )
            )
        return DailyReport(day=day, chains=tuple(chains))

    async def run(self) -> None:
        report = await self.report()
        log.info("report.daily", day=report.day, chains=len(report.chains))
        await self.bus.publish(report)
