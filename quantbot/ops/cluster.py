"""ClusterTransport: carries events between daemons on different hosts through the MQTT broker.

`[cluster] role` splits the work: "watchers" runs the chain watchers and the intelligence and
exports what they find; "trading" runs filters, strategies, the risk engine, orders and executors
and exports what they do; "all" (the default) runs everything in one process, with no transport.
Events cross with QoS 1 on `<prefix>/<cluster>/events/<topic with dots as slashes>`, keep their
id, time and origin, and are de-duplicated by (origin, id) in a bounded window. Only events this
instance made are exported (an imported event never goes back out), so no topology can loop.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

import aiomqtt
import msgspec
import structlog

from quantbot.bus import EventBus, compile_pattern, topic_matches
from quantbot.clock import Clock
from quantbot.config import ClusterConfig, MqttConfig
from quantbot.events import Event, decode, encode
from quantbot.ops.broker import BrokerLink, BusLinked, Outgoing, Subscribe
from quantbot.ops.mqtt import mqtt_topic

log = structlog.get_logger(component="cluster")

Part = Literal["watchers", "trading"]

WATCHER_TOPICS = (
    "chain.#",
    "token.launch",
    "token.rug_warning",
    "price.update",
    "whale.signal",
    "watcher.#",
    "plugin.disabled",
)
"""What the watchers role exports by default (and the trading role imports)."""

TRADING_TOPICS = (
    "order.#",
    "position.#",
    "portfolio.#",
    "risk.#",
    "plugin.disabled",
)
"""What the trading role exports by default (and the watchers role imports)."""


def role_runs(role: str, part: Part) -> bool:
    """Whether an instance of `role` runs `part` ("watchers" or "trading"); "all" runs both."""
    return role in ("all", part)


def default_exports(role: str) -> tuple[str, ...]:
    return {"watchers": WATCHER_TOPICS, "trading": TRADING_TOPICS}.get(role, ())


def default_imports(role: str) -> tuple[str, ...]:
    return {"watchers": TRADING_TOPICS, "trading": WATCHER_TOPICS}.get(role, ())


class SeenWindow:
    """The last `size` keys seen, oldest forgotten first: bounded memory de-duplication."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[tuple[str, int], None] = OrderedDict()

    def seen(self, key: tuple[str, int]) -> bool:
        """True if `key` was seen within the window; records it either way."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._keys)


class ClusterTransport(BusLinked):
    """A daemon component: exports this instance's events, imports the other roles' onto the bus."""

    name = "cluster"
    feed_name = "cluster.export"

    def __init__(self, *, bus: EventBus, cluster: ClusterConfig, mqtt: MqttConfig, instance: str, clock: Clock) -> None:
        if cluster.role == "all":
            raise ValueError('cluster role "all" runs everything in one process: no transport to build')
        self.instance = instance
        self.role = cluster.role
        self.base = f"{mqtt.topic_prefix}/{cluster.name}/events"
        self.exports = cluster.exports if cluster.exports is not None else default_exports(cluster.role)
        self.imports = cluster.imports if cluster.imports is not None else default_imports(cluster.role)
        for pattern in (*self.exports, *self.imports):
            compile_pattern(pattern)
        self._import_patterns = tuple(compile_pattern(p) for p in self.imports)
        self.window = SeenWindow(cluster.dedup_window)
        link = BrokerLink(
            name="cluster",
            config=mqtt,
            client_id=f"{mqtt.client_id or f'{mqtt.topic_prefix}-{instance}'}-cluster",
            clock=clock,
            subscriptions=[Subscribe(topic=f"{self.base}/#", qos=1, no_local=True, retained=False)]
            if self.imports
            else [],
            on_message=self._on_message,
        )
        super().__init__(bus=bus, link=link)
        self.exported = 0
        self.imported = 0
        self.duplicates = 0
        self.rejected = 0
        self.not_ours = 0

    async def start(self) -> None:
        if self.exports:
            self.feed(self.exports, self._export, maxsize=self.link.buffer_size)
        await self.link.start()
        log.info("cluster.started", role=self.role, base=self.base, exports=self.exports, imports=self.imports)

    def stats(self) -> dict[str, Any]:
        return {
            "role": self.role,
            **self.link_stats(),
            "exported": self.exported,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }

    async def _export(self, event: Event) -> None:
        if event.origin != self.instance:
            self.not_ours += 1  # imported (or foreign): never sent back out
            return
        self.link.send(Outgoing(topic=mqtt_topic(self.base, event.topic), payload=encode(event), qos=1))
        self.exported += 1

    async def _on_message(self, message: aiomqtt.Message) -> None:
        try:
            event = decode(message.payload)
        except (msgspec.DecodeError, TypeError) as exc:
            self._reject(message, f"not an event: {exc}")
            return
        if not event.origin or not event.id:
            self._reject(message, "event has no origin or id (not stamped by a bus)")
            return
        if event.origin == self.instance:
            return  # our own, echoed back (a broker without no-local)
        if not any(topic_matches(p, event.topic) for p in self._import_patterns):
            return
        if self.window.seen((event.origin, event.id)):
            self.duplicates += 1
            log.debug("cluster.duplicate_dropped", origin=event.origin, id=event.id, topic=event.topic)
            return
        await self.bus.publish(event)
        self.imported += 1
        log.debug("cluster.imported", origin=event.origin, id=event.id, topic=event.topic)

    def _reject(self, message: aiomqtt.Message, reason: str) -> None:
        self.rejected += 1
        log.warning("cluster.bad_message", topic=str(message.topic), reason=reason, rejected=self.rejected)
