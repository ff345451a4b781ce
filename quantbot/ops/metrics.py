"""Prometheus metrics: one CollectorRegistry per daemon, read from the live components at scrape time.

Counters the bus and the watchers already keep are exported as they are (a custom collector, the
prometheus-client way to mirror existing counts); what only events tell (risk rejections by reason,
the latest mark price per token) is counted from the bus. Order counts by status come from the
store, so they survive restarts. Watchers are read generically through `stats()`: a mapping with
`lag_s` (seconds behind the chain head, or None before any data), `reconnects` and `rpc_errors`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from quantbot.bus import EventBus, Overflow
from quantbot.events import Event, OrderRejected, PriceUpdate
from quantbot.ops.control import component_stats
from quantbot.portfolio import Portfolio
from quantbot.store import Store
from quantbot.store.base import STATUSES

log = structlog.get_logger(component="metrics")

NATIVE_DECIMALS = {"solana": 9, "aptos": 8}
WATCHER_KEYS = {
    "lag_s": ("quantbot_watcher_lag_seconds", "gauge", "Seconds the component is behind the chain head."),
    "reconnects": ("quantbot_watcher_reconnects_total", "counter", "Reconnects since start."),
    "rpc_errors": ("quantbot_watcher_rpc_errors_total", "counter", "RPC/API errors since start."),
}
STORE_TIMEOUT_S = 5.0


def _split(key: str) -> tuple[str, str]:
    subscriber, _, topic = key.partition("|")
    return subscriber, topic


class Metrics(Collector):
    """Register with `registry`; call `await refresh()` before rendering (the store is async)."""

    name = "metrics"

    def __init__(
        self,
        *,
        bus: EventBus,
        store: Store,
        portfolio: Portfolio,
        components: Callable[[], Sequence[Any]],
        extra: Sequence[Callable[[], Iterator[Metric]]] = (),
    ) -> None:
        self.bus = bus
        self.store = store
        self.portfolio = portfolio
        self.components = components
        self.extra = list(extra)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.rejections: Counter[str] = Counter()
        self.prices: dict[tuple[str, str], Decimal] = {}
        self.orders: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self.store_errors = 0

    async def start(self) -> None:
        # Observers: never hold back the order path, so a full queue drops (and the bus counts it).
        self.bus.subscribe(
            "order.rejected", self._on_rejected, name="metrics.rejections", overflow=Overflow.DROP_OLDEST
        )
        self.bus.subscribe("price.update", self._on_price, name="metrics.prices", overflow=Overflow.DROP_OLDEST)

    async def stop(self) -> None:
        pass

    async def _on_rejected(self, event: Event) -> None:
        assert isinstance(event, OrderRejected)  # noqa: S101  (the subscription guarantees it)
        self.rejections[event.reason.value] += 1

    async def _on_price(self, event: Event) -> None:
        assert isinstance(event, PriceUpdate)  # noqa: S101
        self.prices[(event.chain, event.token)] = event.price_native

    async def refresh(self) -> None:
        """Read what only the store knows (orders by status); keep the last values if it fails."""
        try:
            async with asyncio.timeout(STORE_TIMEOUT_S):
                rows = await self.store.fetch("SELECT status, COUNT(*) FROM orders GROUP BY status")
        except Exception as exc:  # noqa: BLE001  (a scrape must answer even when the store is slow)
            self.store_errors += 1
            log.warning("metrics.store_failed", error=f"{type(exc).__name__}: {exc}")
            return
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({str(status): int(n) for status, n in rows})
        self.orders = counts

    async def render(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)

    # --- the collector ---------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        yield from self._bus()
        yield from self._watchers()
        yield from self._orders()
        yield from self._pnl()
        yield from self._scanner()
        for extra in self.extra:
            yield from extra()

    def _bus(self) -> Iterator[Metric]:
        stats = self.bus.stats()
        published = CounterMetricFamily("quantbot_bus_published", "Events published, by topic.", labels=["topic"])
        for topic, n in sorted(stats["published"].items()):
            published.add_metric([topic], n)
        yield published
        for key, text in (
            ("delivered", "Events a subscriber handled."),
            ("dropped", "Events dropped from a full drop_oldest queue."),
            ("failed", "Events whose handler raised or timed out."),
        ):
            family = CounterMetricFamily(f"quantbot_bus_{key}", text, labels=["subscriber", "topic"])
            for pair, n in sorted(stats[key].items()):
                family.add_metric(list(_split(pair)), n)
            yield family
        depth = GaugeMetricFamily("quantbot_bus_queue_depth", "Events waiting, by subscriber.", labels=["subscriber"])
        for sub, n in sorted(stats["queue_depth"].items()):
            depth.add_metric([sub], n)
        yield depth
        latency = SummaryMetricFamily(
            "quantbot_bus_handler_seconds", "Handler run time, by subscriber.", labels=["subscriber"]
        )
        slowest = GaugeMetricFamily(
            "quantbot_bus_handler_max_seconds", "Slowest handler run since start.", labels=["subscriber"]
        )
        for sub, lat in sorted(stats["latency"].items()):
            latency.add_metric([sub], count_value=lat["count"], sum_value=lat["total_s"])
            slowest.add_metric([sub], lat["max_s"])
        yield latency
        yield slowest
        disabled = GaugeMetricFamily("quantbot_plugins_disabled", "Plugins disabled after repeated failures.")
        disabled.add_metric([], len(stats["disabled_plugins"]))
        yield disabled

    def _watchers(self) -> Iterator[Metric]:
        stats = component_stats(self.components())
        for key, (name, kind, text) in WATCHER_KEYS.items():
            family: GaugeMetricFamily | CounterMetricFamily
            if kind == "gauge":
                family = GaugeMetricFamily(name, text, labels=["component"])
            else:
                family = CounterMetricFamily(name, text, labels=["component"])
            for component, values in sorted(stats.items()):
                value = values.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    family.add_metric([component], float(value))
            yield family

    def _scanner(self) -> Iterator[Metric]:
        """The scanner's verdicts and rejection reasons, from any component whose stats() has `rejections`."""
        tokens = CounterMetricFamily("quantbot_scanner_tokens", "Launches judged, by verdict.", labels=["verdict"])
        rejections = CounterMetricFamily(
            "quantbot_scanner_rejections", "Tokens each filter rejected.", labels=["filter"]
        )
        for values in component_stats(self.components()).values():
            reasons = values.get("rejections")
            if not isinstance(reasons, dict):
                continue
            for verdict in ("accepted", "rejected"):
                tokens.add_metric([verdict], float(values.get(verdict, 0)))
            for name, n in sorted(reasons.items()):
                rejections.add_metric([str(name)], float(n))
        yield tokens
        yield rejections

    def _orders(self) -> Iterator[Metric]:
        orders = GaugeMetricFamily("quantbot_orders", "Journaled orders, by status.", labels=["status"])
        for status, n in sorted(self.orders.items()):
            orders.add_metric([status], n)
        yield orders
        errors = CounterMetricFamily("quantbot_metrics_store_errors", "Scrapes whose store query failed.")
        errors.add_metric([], self.store_errors)
        yield errors
        rejections = CounterMetricFamily(
            "quantbot_risk_rejections", "Order intents the risk engine refused, by reason.", labels=["reason"]
        )
        for reason, n in sorted(self.rejections.items()):
            rejections.add_metric([reason], n)
        yield rejections

    def _pnl(self) -> Iterator[Metric]:
        """Whole native units (SOL, APT). Unrealised marks open positions at the last `price.update`."""
        realised: Counter[str] = Counter()
        unrealised: Counter[str] = Counter()
        value: Counter[str] = Counter()
        unpriced: Counter[str] = Counter()
        for (chain, token), pos in self.portfolio.positions.items():
            realised[chain] += pos.realised_pnl_native
            if not pos.open:
                continue
            price = self.prices.get((chain, token))
            if price is None:
                unpriced[chain] += 1
                value[chain] += pos.cost_native  # at cost until a price arrives
                continue
            marked = int(price * pos.quantity)
            value[chain] += marked
            unrealised[chain] += marked - pos.cost_native
        total: Counter[str] = Counter()
        for chain in NATIVE_DECIMALS:
            total[chain] = realised[chain] + unrealised[chain]  # (Counter `+` would drop losses)
        families = {
            "quantbot_pnl_realised": ("Realised PnL, whole native units.", realised),
            "quantbot_pnl_unrealised": ("Unrealised PnL of open positions at the last price.", unrealised),
            "quantbot_pnl_total": ("Realised plus unrealised PnL.", total),
            "quantbot_positions_value": ("Open positions at the last price (at cost if none).", value),
        }
        chains = sorted(NATIVE_DECIMALS)
        for name, (text, counts) in families.items():
            family = GaugeMetricFamily(name, text, labels=["chain"])
            for chain in chains:
                family.add_metric([chain], _whole(counts[chain], chain))
            yield family
        missing = GaugeMetricFamily(
            "quantbot_positions_unpriced", "Open positions with no price yet.", labels=["chain"]
        )
        for chain in chains:
            missing.add_metric([chain], unpriced[chain])
        yield missing
        yield from self._equity(chains)

    def _equity(self, chains: list[str]) -> Iterator[Metric]:
        """Native balance plus positions at their marks, from a portfolio that knows its balance."""
        equity_native = getattr(self.portfolio, "equity_native", None)
        if not callable(equity_native):
            return
        family = GaugeMetricFamily(
            "quantbot_equity",
            "Native balance plus open positions at their marks, whole native units.",
            labels=["chain"],
        )
        for chain in chains:
            try:
                equity = equity_native(chain)
            except Exception as exc:  # noqa: BLE001  (a scrape must answer)
                log.warning("metrics.equity_failed", chain=chain, error=f"{type(exc).__name__}: {exc}")
                continue
            if isinstance(equity, int):
                family.add_metric([chain], _whole(equity, chain))
        yield family


def _whole(base_units: int, chain: str) -> float:
    return float(Decimal(base_units).scaleb(-NATIVE_DECIMALS[chain]))
