"""BrokerLink: one MQTT connection that never stalls the daemon.

It owns an `aiomqtt.Client` (MQTT v5) inside a reconnect loop with jittered backoff
(quantbot.retry.Backoff), a bounded outgoing buffer (oldest dropped and counted while the broker is
away), and a reader that hands each incoming message to a callback whose errors are counted, never
fatal. The MQTT bridge and the cluster transport each own one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from quantbot.bus import EventBus, Handler, Overflow, Subscription
from quantbot.clock import Clock
from quantbot.config import MqttConfig
from quantbot.retry import Backoff

log = structlog.get_logger(component="mqtt")

MessageHandler = Callable[[aiomqtt.Message], Awaitable[None]]

FLUSH_GRACE_S = 2.0
"""How long `stop()` waits for buffered messages to reach a connected broker."""

WRITERS = 32
"""Publishes awaiting their acknowledgement at once (QoS 1 would otherwise cost a round trip each)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties | None = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A broker subscription: `no_local` skips our own publications, `retained` whether to get retained ones."""

    topic: str
    qos: int = 1
    no_local: bool = False
    retained: bool = True


class BrokerLink:
    """Connect, subscribe, publish from the buffer, read; on any broker error wait and start again."""

    def __init__(
        self,
        *,
        name: str,
        config: MqttConfig,
        client_id: str,
        clock: Clock,
        subscriptions: Sequence[Subscribe] = (),
        on_message: MessageHandler | None = None,
        buffer_size: int | None = None,
        will: Outgoing | None = None,
        birth: Outgoing | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.client_id = client_id
        self.clock = clock
        self.subscriptions = tuple(subscriptions)
        self.on_message = on_message
        self.buffer_size = buffer_size or config.buffer_size
        self.will = will
        self.birth = birth
        self.backoff = Backoff(base=0.2, cap=config.reconnect_max_s)
        self._buffer: deque[Outgoing] = deque()
        self._inflight: dict[int, Outgoing] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.connections = 0
        self.reconnects = 0
        self.connect_failures = 0
        self.sent = 0
        self.dropped = 0
        self.received = 0
        self.handler_errors = 0
        self._dropped_at_disconnect = 0

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"quantbot[{self.name}].connection")

    async def stop(self) -> None:
        """Give buffered messages a short grace to leave (if connected), then close."""
        if self._task is None:
            return
        if self.connected and (self._buffer or self._inflight):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_GRACE_S):
                    await self._empty.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self.connected = False

    # --- publishing ------------------------------------------------------------------------------

    def send(self, message: Outgoing) -> None:
        """Queue a message for the broker; never waits. When full, the oldest is dropped and counted."""
        if len(self._buffer) >= self.buffer_size:
            self._buffer.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("mqtt.buffer_full", link=self.name, dropped=self.dropped, connected=self.connected)
        self._buffer.append(message)
        self._empty.clear()
        self._wake.set()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "reconnects": self.reconnects,
            "connect_failures": self.connect_failures,
            "sent": self.sent,
            "dropped": self.dropped,
            "buffered": self.buffered,
            "received": self.received,
            "handler_errors": self.handler_errors,
        }

    # --- the connection loop ---------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        tls = None
        if cfg.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=cfg.ca_file or None, certfile=cfg.cert_file or None, keyfile=cfg.key_file or None
            )
        will = None
        if self.will is not None:
            w = self.will
            will = aiomqtt.Will(topic=w.topic, payload=w.payload, qos=w.qos, retain=w.retain)
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username or None,
            password=cfg.password.reveal() if cfg.password is not None else None,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            keepalive=cfg.keepalive,
            timeout=cfg.timeout,
            tls_params=tls,
            tls_insecure=cfg.tls_insecure if cfg.tls else None,
            will=will,
            max_inflight_messages=WRITERS,
        )
        client.pending_calls_threshold = 2 * WRITERS  # our writers keep up to WRITERS waiting by design
        return client

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with self._client() as client:
                    attempt = 0
                    await self._connected(client)
                    async with asyncio.TaskGroup() as tg:
                        for n in range(WRITERS):
                            tg.create_task(self._writer(client), name=f"quantbot[{self.name}].writer{n}")
                        tg.create_task(self._reader(client), name=f"quantbot[{self.name}].reader")
            except* (aiomqtt.MqttError, OSError, TimeoutError) as group:
                self._disconnected(group.exceptions[0])
            finally:
                self._requeue_inflight()
            delay = self.backoff.delay(attempt)
            attempt += 1
            await self.clock.sleep(delay)

    async def _connected(self, client: aiomqtt.Client) -> None:
        for sub in self.subscriptions:
            handling = (
                SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE if sub.retained else SubscribeOptions.RETAIN_DO_NOT_SEND
            )
            await client.subscribe(
                sub.topic, options=SubscribeOptions(qos=sub.qos, noLocal=sub.no_local, retainHandling=handling)
            )
        if self.birth is not None:
            b = self.birth
            await client.publish(b.topic, b.payload, qos=b.qos, retain=b.retain)
        self.connected = True
        if self.connections:
            self.reconnects += 1
        self.connections += 1
        log.info(
            "mqtt.connected",
            link=self.name,
            host=self.config.host,
            port=self.config.port,
            reconnects=self.reconnects,
            dropped=self.dropped,
            buffered=self.buffered,
        )

    def _disconnected(self, exc: BaseException) -> None:
        if self.connected:
            log.warning("mqtt.disconnected", link=self.name, error=str(exc), buffered=self.buffered)
        else:
            self.connect_failures += 1
            log.warning(
                "mqtt.connect_failed",
                link=self.name,
                host=self.config.host,
                port=self.config.port,
                error=str(exc),
                failures=self.connect_failures,
            )
        self.connected = False

    async def _writer(self, client: aiomqtt.Client) -> None:
        while True:
            while not self._buffer:
                self._wake.clear()
                await self._wake.wait()
            # Taken and handed to paho with no await in between, so messages leave in buffer order.
            message = self._buffer.popleft()
            key = next(self._seq)
            self._inflight[key] = message
            try:
                await client.publish(
                    message.topic,
                    message.payload,
                    qos=message.qos,
                    retain=message.retain,
                    properties=message.properties,
                )
            except ValueError as exc:  # a topic the protocol forbids (wildcards, empty): drop it, keep going
                self.dropped += 1
                log.error("mqtt.bad_message_dropped", link=self.name, topic=message.topic, error=str(exc))
            else:
                self.sent += 1
            del self._inflight[key]
            if not self._buffer and not self._inflight:
                self._empty.set()

    def _requeue_inflight(self) -> None:
        """Messages sent but not acknowledged when the connection broke go first on the next one."""
        for key in sorted(self._inflight, reverse=True):
            self._buffer.appendleft(self._inflight.pop(key))
        while len(self._buffer) > self.buffer_size:
            self._buffer.popleft()
            self.dropped += 1

    async def _reader(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.received += 1
            if self.on_message is None:
                continue
            try:
                await self.on_message(message)
            except Exception as exc:
                self.handler_errors += 1
                log.error("mqtt.message_failed", link=self.name, topic=str(message.topic), exc_info=exc)


def reply_properties(correlation: bytes | None) -> Properties | None:
    """MQTT v5 PUBLISH properties carrying a request's correlation data back, if it had any."""
    if correlation is None:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho ships no annotations here
    props.CorrelationData = correlation
    return props


class BusLinked:
    """Base of a component that carries bus events out through its own BrokerLink (the MQTT bridge's mirror,
    the cluster's export): the bus subscription feeding the link, stopping both, and their shared counters."""

    feed_name: str
    """The bus subscription's name (its drops are counted with the link's)."""

    def __init__(self, *, bus: EventBus, link: BrokerLink) -> None:
        self.bus = bus
        self.link = link
        self._feed: Subscription | None = None

    def feed(self, patterns: Sequence[str], handler: Handler, *, maxsize: int) -> None:
        """Subscribe `handler` to `patterns`; when the link cannot keep up, the oldest events are dropped."""
        self._feed = self.bus.subscribe(
            list(patterns), handler, name=self.feed_name, overflow=Overflow.DROP_OLDEST, maxsize=maxsize
        )

    async def stop(self) -> None:
        if self._feed is not None:
            self.bus.unsubscribe(self._feed)
            self._feed = None
        await self.link.stop()

    def link_stats(self) -> dict[str, Any]:
        """connected, reconnects, sent, dropped (by the link or by the bus feeding it), buffered."""
        link = self.link.stats()
        bus_dropped = sum(n for (sub, _), n in self.bus.dropped.items() if sub == self.feed_name)
        return {
            "connected": link["connected"],
            "reconnects": link["reconnects"],
            "sent": link["sent"],
            "dropped": link["dropped"] + bus_dropped,
            "buffered": link["buffered"],
        }
