"""PluginHost: subscribes plugin instances (strategies, notifiers) to the topics they ask for.

Each instance gets one subscription (one ordered queue, one task) tagged with its PluginRef, so the
bus contains its failures and disables it after repeated ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
import structlog

from quantbot.api import Notifier, Plugin, PluginConfig, Strategy
from quantbot.bus import EventBus, Overflow, PluginRef
from quantbot.clock import Clock
from quantbot.events import Event, OrderIntent

log = structlog.get_logger(component="plugins")


class StrategyContextImpl:
    """What a strategy is handed: its id, the clock, and submit(). Never an executor or engine."""

    def __init__(self, *, strategy_id: str, bus: EventBus) -> None:
        self._id = strategy_id
        self._bus = bus

    @property
    def strategy_id(self) -> str:
        return self._id

    @property
    def clock(self) -> Clock:
        return self._bus.clock

    async def submit(self, intent: OrderIntent) -> None:
        if not isinstance(intent, OrderIntent):
            raise TypeError(f"submit() takes an OrderIntent, not {type(intent).__name__}")
        # The strategy id is the host's to set: a strategy cannot pose as another.
        await self._bus.publish(msgspec.structs.replace(intent, strategy=self._id, id=0))


class PluginHost:
    """Starts, subscribes, reconfigures and stops the instances of one plugin section."""

    def __init__(
        self,
        *,
        bus: EventBus,
        section: str,
        plugins: list[Plugin],
        overflow: Overflow,
        on_start_failed: Callable[[Plugin], None] | None = None,
    ) -> None:
        self.bus = bus
        self.section = section
        self.name = section
        self.plugins = plugins
        self.overflow = overflow
        self.on_start_failed = on_start_failed
        """Told of a plugin that could not start (disabled), e.g. to take an executor out of the order router."""

    def _handler(self, plugin: Plugin) -> Callable[[Event], Awaitable[None]]:
        if isinstance(plugin, Strategy):
            ctx = StrategyContextImpl(strategy_id=plugin.id, bus=self.bus)

            async def on_event(event: Event) -> None:
                await plugin.on_event(event, ctx)

            return on_event
        if isinstance(plugin, Notifier):
            return plugin.notify
        raise TypeError(f"{type(plugin).__name__} cannot be hosted here")

    async def start(self) -> None:
        for p in self.plugins:
            ref = PluginRef(self.section, p.id)
            try:
                await p.start()
            except Exception as exc:  # noqa: BLE001  (a plugin that cannot start is disabled, not fatal)
                await self.bus.report_failure(ref, exc, event=None, subscriber=f"{self.section}.{p.id}")
                await self.bus.disable_plugin(ref, failures=1, error=f"start failed: {type(exc).__name__}: {exc}")
                if self.on_start_failed is not None:
                    self.on_start_failed(p)
                continue
            if not isinstance(p, Strategy | Notifier):
                continue  # executors are called by the order router, not fed from the bus
            topics = p.topics()
            if not topics:
                log.warning("plugin.no_topics", plugin=f"{self.section}:{p.id}")
                continue
            self.bus.subscribe(
                topics,
                self._handler(p),
                name=f"{self.section}.{p.id}",
                plugin=ref,
                overflow=self.overflow,
            )

    async def stop(self) -> None:
        for p in reversed(self.plugins):
            try:
                await p.stop()
            except Exception as exc:
                log.error("plugin.stop_failed", plugin=f"{self.section}:{p.id}", exc_info=exc)

    def reconfigure(self, params: dict[str, PluginConfig]) -> None:
        """New parameters for the same instances (ids and plugins unchanged)."""
        for p in self.plugins:
            if p.config != params[p.id]:
                p.reconfigure(params[p.id])
                log.info("plugin.reconfigured", plugin=f"{self.section}:{p.id}")

    def describe(self) -> dict[str, object]:
        return {p.id: msgspec.to_builtins(p.config, enc_hook=str) for p in self.plugins}
