"""MqttBridge: mirrors chosen bus topics to an MQTT broker and takes operator commands from it.

Topics: events go to `<prefix>/<instance>/<topic with dots as slashes>` (JSON, `events.encode`);
commands arrive on `<prefix>/<instance>/cmd/<name>` (halt, resume, reload; payload JSON with an
optional `reason` and `correlation_id`) and are answered on `.../cmd/<name>/reply`, or on the MQTT v5
response topic the request names (correlation data echoed). Commands are taken only over an
authenticated session, and never from retained messages; the broker's ACL decides who may publish them.
`<prefix>/<instance>/status` holds a retained "online" (the last will says "offline").
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import msgspec
import structlog

from quantbot.bus import EventBus, compile_pattern, topic_matches
from quantbot.clock import Clock
from quantbot.config import MqttConfig, MqttTopic
from quantbot.events import Event, encode
from quantbot.ops.broker import BrokerLink, BusLinked, Outgoing, Subscribe, reply_properties
from quantbot.ops.control import Controls

log = structlog.get_logger(component="mqtt")

COMMANDS = ("halt", "resume", "reload")


class CommandRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A command's JSON payload; both fields optional, an empty payload is `{}`."""

    reason: str = ""
    correlation_id: str | None = None


class CommandReply(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    command: str
    ok: bool
    correlation_id: str | None = None
    result: Any = None
    error: str | None = None


_request_decoder = msgspec.json.Decoder(CommandRequest)
_reply_encoder = msgspec.json.Encoder()


def mqtt_topic(base: str, bus_topic: str) -> str:
    """`quantbot/prod` + `order.filled` -> `quantbot/prod/order/filled`."""
    return f"{base}/{bus_topic.replace('.', '/')}"


class MqttBridge(BusLinked):
    """A daemon component: bus -> broker mirror, broker -> Controls commands."""

    name = "mqtt"
    feed_name = "mqtt.mirror"

    def __init__(self, *, bus: EventBus, config: MqttConfig, instance: str, control: Controls, clock: Clock) -> None:
        if config.commands and not config.authenticated:
            raise ValueError("mqtt commands need an authenticated broker session (username/password or client cert)")
        self.config = config
        self.control = control
        self.base = f"{config.topic_prefix}/{instance}"
        self.rules: tuple[tuple[tuple[str, ...], MqttTopic], ...] = tuple(
            (compile_pattern(m.topic), m) for m in config.mirror
        )
        status = f"{self.base}/status"
        link = BrokerLink(
            name="mqtt",
            config=config,
            client_id=config.client_id or f"{config.topic_prefix}-{instance}",
            clock=clock,
            subscriptions=([Subscribe(topic=f"{self.base}/cmd/+", qos=1, retained=False)] if config.commands else []),
            on_message=self._on_command,
            will=Outgoing(topic=status, payload=b"offline", qos=1, retain=True),
            birth=Outgoing(topic=status, payload=b"online", qos=1, retain=True),
        )
        super().__init__(bus=bus, link=link)
        self.mirrored = 0
        self.commands = 0
        self.refused = 0

    async def start(self) -> None:
        if self.rules:
            self.feed([m.topic for _, m in self.rules], self._mirror, maxsize=self.config.buffer_size)
        await self.link.start()
        log.info(
            "mqtt.bridge_started",
            base=self.base,
            mirror=[m.topic for _, m in self.rules],
            commands=self.config.commands,
        )

    def stats(self) -> dict[str, Any]:
        return {
            **self.link_stats(),
            "mirrored": self.mirrored,
            "commands": self.commands,
            "commands_refused": self.refused,
        }

    # --- mirror ----------------------------------------------------------------------------------

    async def _mirror(self, event: Event) -> None:
        topic = event.topic
        for pattern, rule in self.rules:
            if topic_matches(pattern, topic):
                self.link.send(
                    Outgoing(
                        topic=mqtt_topic(self.base, topic), payload=encode(event), qos=rule.qos, retain=rule.retain
                    )
                )
                self.mirrored += 1
                return

    # --- commands --------------------------------------------------------------------------------

    async def _on_command(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        prefix = f"{self.base}/cmd/"
        if not topic.startswith(prefix):
            return
        name = topic[len(prefix) :]
        props = message.properties
        response_topic: str | None = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation: bytes | None = getattr(props, "CorrelationData", None) if props is not None else None
        if response_topic is not None and (not response_topic or "+" in response_topic or "#" in response_topic):
            response_topic = None  # not a topic one may publish to
        reply_to = response_topic or f"{topic}/reply"
        try:
            request = _request_decoder.decode(message.payload or b"{}")
        except msgspec.DecodeError as exc:
            self._refuse(name, reply_to, correlation, None, f"bad payload: {exc}")
            return
        if message.retain:
            self._refuse(name, reply_to, correlation, request.correlation_id, "retained commands are ignored")
            return
        if name not in COMMANDS:
            known = ", ".join(COMMANDS)
            self._refuse(
                name, reply_to, correlation, request.correlation_id, f"unknown command {name!r}; known: {known}"
            )
            return
        log.warning("mqtt.command", command=name, reason=request.reason, correlation_id=request.correlation_id)
        try:
            result: object = None
            async with asyncio.timeout(self.config.timeout):
                if name == "halt":
                    result = await self.control.halt(request.reason or "mqtt")
                elif name == "resume":
                    result = await self.control.resume()
                else:
                    await self.control.reload()
        except Exception as exc:
            log.error("mqtt.command_failed", command=name, correlation_id=request.correlation_id, exc_info=exc)
            self._refuse(name, reply_to, correlation, request.correlation_id, f"{type(exc).__name__}: {exc}")
            return
        self.commands += 1
        self._reply(
            reply_to,
            correlation,
            CommandReply(
                command=name,
                ok=True,
                correlation_id=request.correlation_id,
                result=msgspec.to_builtins(result, enc_hook=str),
            ),
        )

    def _refuse(self, name: str, reply_to: str, correlation: bytes | None, cid: str | None, error: str) -> None:
        self.refused += 1
        log.warning("mqtt.command_refused", command=name, correlation_id=cid, error=error)
        self._reply(reply_to, correlation, CommandReply(command=name, ok=False, correlation_id=cid, error=error))

    def _reply(self, topic: str, correlation: bytes | None, reply: CommandReply) -> None:
        self.link.send(
            Outgoing(topic=topic, payload=_reply_encoder.encode(reply), qos=1, properties=reply_properties(correlation))
        )
