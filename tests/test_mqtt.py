"""MQTT bridge against a real Mosquitto: mirrored events, operator commands, ACLs, broker outages."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from quantbot.bus import EventBus
from quantbot.clock import WallClock
from quantbot.config import ClusterConfig, ConfigError, MqttConfig, MqttTopic, load_config
from quantbot.events import (
    ConfigReloaded,
    OrderApproved,
    OrderFilled,
    OrderRejected,
    RejectReason,
    Tick,
    TokenAccepted,
    decode,
)
from quantbot.ops.mqtt import MqttBridge
from quantbot.secrets import Secret
from quantbot.testing import token_launch
from tests.conftest import start_daemon, write
from tests.mqttbroker import USERS, Broker, need_private
from tests.test_daemon import Recorder


class RecordingControl:
    """A Control that records what it was asked; `fail` makes the next call raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail: Exception | None = None

    async def _call(self, *call: str) -> object:
        self.calls.append(call)
        if self.fail is not None:
            raise self.fail
        return {"done": call[0]}

    async def halt(self, reason: str) -> object:
        return await self._call("halt", reason)

    async def resume(self) -> object:
        return await self._call("resume")

    async def reload(self) -> object:
        return await self._call("reload")


def mqtt_config(broker: Broker, **fields: Any) -> MqttConfig:
    auth: dict[str, Any] = {}
    if broker.private:
        auth = {"username": "quantbot", "password": Secret(USERS["quantbot"], "test")}
    return MqttConfig(enabled=True, host=broker.host, port=broker.port, **(auth | fields))


async def eventually(check: Callable[[], bool], within: float = 15.0) -> None:
    """Wait (bounded) for a condition the system reaches on its own."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110  (polls counters of a component that has no event to wait on)
            await asyncio.sleep(0.01)


@asynccontextmanager
async def client(broker: Broker, user: str = "operator") -> AsyncIterator[aiomqtt.Client]:
    creds = {"username": user, "password": USERS[user]} if broker.private else {}
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"test-{user}-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
        **creds,  # type: ignore[arg-type]
    ) as c:
        yield c


async def next_message(c: aiomqtt.Client, within: float = 15.0) -> aiomqtt.Message:
    async with asyncio.timeout(within):
        return await anext(aiter(c.messages))


@asynccontextmanager
async def running_bridge(
    broker: Broker, control: RecordingControl | None = None, instance: str = "", **fields: Any
) -> AsyncIterator[tuple[MqttBridge, EventBus, str]]:
    instance = instance or f"t{uuid.uuid4().hex[:8]}"
    async with EventBus(clock=WallClock(), origin=instance) as bus:
        bridge = MqttBridge(
            bus=bus,
            config=mqtt_config(broker, **fields),
            instance=instance,
            control=control or RecordingControl(),
            clock=WallClock(),
        )
        await bridge.start()
        try:
            await eventually(lambda: bridge.link.connected)
            yield bridge, bus, f"quantbot/{instance}"
        finally:
            await bridge.stop()


def filled(order_id: str = "o-1") -> OrderFilled:
    return OrderFilled(order_id=order_id, executor="paper", tx="paper-o-1", amount_in=10, amount_out=20, fee=1)


async def test_mirror_publishes_configured_topics_as_event_json_and_skips_the_rest(mqtt_broker: Broker) -> None:
    async with running_bridge(mqtt_broker) as (_, bus, base), client(mqtt_broker) as c:
        await c.subscribe(f"{base}/order/#", qos=1)
        await c.subscribe(f"{base}/clock/#", qos=1)
        await bus.publish(Tick(seq=1))  # not in the default mirror
        sent = await bus.publish(filled())
        message = await next_message(c)
    assert str(message.topic) == f"{base}/order/filled"
    assert message.qos == 1, "order.# is mirrored with QoS 1 by default"
    event = decode(message.payload)  # type: ignore[arg-type]
    assert event == sent and isinstance(event, OrderFilled)
    assert event.origin == base.split("/")[1] and event.id > 0


async def test_mirror_honours_per_topic_qos_and_retain(mqtt_broker: Broker) -> None:
    rules = (MqttTopic(topic="token.accepted", qos=1, retain=True),)
    async with running_bridge(mqtt_broker, mirror=rules) as (bridge, bus, base):
        sent = await bus.publish(TokenAccepted(launch=token_launch(mint="Ret1")))
        await eventually(lambda: bridge.link.sent >= 1)
        async with client(mqtt_broker) as late:  # subscribes after the publish: gets the retained copy
            await late.subscribe(f"{base}/token/accepted", qos=1)
            message = await next_message(late)
            assert message.retain and message.qos == 1
            assert decode(message.payload) == sent  # type: ignore[arg-type]
            await late.publish(f"{base}/token/accepted", b"", retain=True)  # clear it


async def test_status_topic_is_online_while_connected(mqtt_broker: Broker) -> None:
    async with running_bridge(mqtt_broker) as (_, _, base), client(mqtt_broker) as c:
        await c.subscribe(f"{base}/status", qos=1)
        message = await next_message(c)
    assert message.payload == b"online" and message.retain


async def command(
    c: aiomqtt.Client, base: str, name: str, payload: bytes, properties: Properties | None = None
) -> dict[str, Any]:
    """Publish a command and return the JSON reply from its default reply topic."""
    await c.subscribe(f"{base}/cmd/{name}/reply", qos=1)
    await c.publish(f"{base}/cmd/{name}", payload, qos=1, properties=properties)
    reply = await next_message(c)
    assert str(reply.topic) == f"{base}/cmd/{name}/reply"
    result: dict[str, Any] = json.loads(reply.payload)  # type: ignore[arg-type]
    return result


async def test_halt_command_calls_control_with_reason_and_replies_with_the_correlation_id(
    mqtt_broker: Broker,
) -> None:
    control = RecordingControl()
    async with running_bridge(mqtt_broker, control, commands=True) as (bridge, _, base), client(mqtt_broker) as c:
        reply = await command(c, base, "halt", b'{"reason": "maintenance", "correlation_id": "req-7"}')
        assert reply == {"command": "halt", "ok": True, "correlation_id": "req-7", "result": {"done": "halt"}}
        reply = await command(c, base, "resume", b"")
        assert reply["ok"] and "correlation_id" not in reply
        reply = await command(c, base, "reload", b"{}")
        assert reply["ok"]
        assert control.calls == [("halt", "maintenance"), ("resume",), ("reload",)]
        assert bridge.stats()["commands"] == 3


async def test_unknown_command_is_refused_with_an_error_on_its_reply_topic(mqtt_broker: Broker) -> None:
    control = RecordingControl()
    async with running_bridge(mqtt_broker, control, commands=True) as (bridge, _, base), client(mqtt_broker) as c:
        reply = await command(c, base, "liquidate", b'{"correlation_id": "x1"}')
        assert reply == {
            "command": "liquidate",
            "ok": False,
            "correlation_id": "x1",
            "error": "unknown command 'liquidate'; known: halt, resume, reload",
        }
        bad = await command(c, base, "halt", b"{not json")
        assert not bad["ok"] and bad["error"].startswith("bad payload")
        assert control.calls == []
        assert bridge.stats()["commands_refused"] == 2


async def test_reply_goes_to_the_mqtt5_response_topic_with_its_correlation_data(mqtt_broker: Broker) -> None:
    control = RecordingControl()
    async with running_bridge(mqtt_broker, control, commands=True) as (_, _, base), client(mqtt_broker) as c:
        inbox = f"{base}/replies/{uuid.uuid4().hex[:6]}"
        await c.subscribe(inbox, qos=1)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = inbox
        props.CorrelationData = b"\x01corr"
        await c.publish(f"{base}/cmd/resume", b"{}", qos=1, properties=props)
        reply = await next_message(c)
    assert str(reply.topic) == inbox
    assert reply.properties is not None and reply.properties.CorrelationData == b"\x01corr"
    assert json.loads(reply.payload)["ok"] is True  # type: ignore[arg-type]


async def test_a_failing_control_is_reported_to_the_operator_and_the_bridge_keeps_serving(
    mqtt_broker: Broker,
) -> None:
    control = RecordingControl()
    control.fail = RuntimeError("store is read-only")
    async with running_bridge(mqtt_broker, control, commands=True) as (_, _, base), client(mqtt_broker) as c:
        reply = await command(c, base, "halt", b"{}")
        assert reply["ok"] is False and reply["error"] == "RuntimeError: store is read-only"
        control.fail = None
        assert (await command(c, base, "resume", b"{}"))["ok"] is True


async def test_retained_commands_are_never_executed(mqtt_broker: Broker) -> None:
    need_private(mqtt_broker)
    control = RecordingControl()
    instance = f"t{uuid.uuid4().hex[:8]}"
    base = f"quantbot/{instance}"
    async with client(mqtt_broker) as c:
        await c.publish(f"{base}/cmd/halt", b'{"reason": "left behind"}', qos=1, retain=True)
    try:
        # The bridge starts after a retained halt was left on the broker.
        async with running_bridge(mqtt_broker, control, instance=instance, commands=True), client(mqtt_broker) as c:
            reply = await command(c, base, "resume", b"{}")
    finally:
        async with client(mqtt_broker) as c:
            await c.publish(f"{base}/cmd/halt", b"", retain=True)  # clear it
    assert reply["ok"]
    assert control.calls == [("resume",)], "the retained halt was not delivered to the bridge"


async def test_broker_acl_keeps_a_read_only_user_from_commanding(mqtt_broker: Broker) -> None:
    need_private(mqtt_broker)
    control = RecordingControl()
    async with running_bridge(mqtt_broker, control, commands=True) as (_, _, base):
        async with client(mqtt_broker, "viewer") as viewer:
            await viewer.publish(f"{base}/cmd/halt", b'{"reason": "not allowed"}', qos=1)
        async with client(mqtt_broker, "operator") as c:
            reply = await command(c, base, "resume", b"{}")
    assert reply["ok"]
    assert control.calls == [("resume",)], "the broker dropped the viewer's halt"


def test_commands_need_an_authenticated_session(tmp_path: Path) -> None:
    cfg = write(tmp_path / "q.toml", "[mqtt]\nenabled = true\ncommands = true\n")
    with pytest.raises(ConfigError) as err:
        load_config([cfg], environ={})
    (problem,) = err.value.problems
    assert "mqtt.commands = true needs an authenticated broker session" in problem
    assert "restrict cmd topics in the broker ACL" in problem
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"commands": True}, MqttConfig)


def test_password_from_the_config_never_shows_in_its_repr(tmp_path: Path) -> None:
    write(tmp_path / "pw", "s3cret-broker-pass")
    cfg = write(
        tmp_path / "q.toml",
        '[mqtt]\nenabled = true\ncommands = true\nusername = "qb"\npassword = { file = "pw" }\n',
    )
    loaded = load_config([cfg], environ={})
    assert loaded.config.mqtt.authenticated
    assert "s3cret-broker-pass" not in repr(loaded.config.mqtt)
    assert "s3cret-broker-pass" in loaded.secrets  # so the log redactor scrubs it


async def test_broker_outage_drops_oldest_beyond_the_buffer_and_reconnect_delivers_the_rest(
    own_mqtt_broker: Broker,
) -> None:
    broker = own_mqtt_broker
    async with running_bridge(broker, buffer_size=3, reconnect_max_s=0.5) as (bridge, bus, base):
        broker.stop()
        await eventually(lambda: not bridge.link.connected)
        for n in range(10):
            await bus.publish(filled(f"o-{n}"))  # never waits, broker or not
        await eventually(lambda: bridge.stats()["buffered"] == 3)
        assert bridge.stats()["dropped"] == 7
        broker.start()
        async with client(broker) as c:
            await c.subscribe(f"{base}/order/#", qos=1)
            await eventually(lambda: bridge.link.connected)
            # The bridge may have flushed before we subscribed; a fresh event proves delivery resumed.
            await bus.publish(filled("after"))
            while True:
                message = await next_message(c)
                event = decode(message.payload)  # type: ignore[arg-type]
                assert isinstance(event, OrderFilled)
                if event.order_id == "after":
                    break
                assert event.order_id in {"o-7", "o-8", "o-9"}, "only the newest three were kept"
        stats = bridge.stats()
        assert stats["reconnects"] == 1 and stats["connected"]
        assert stats["dropped"] == 7


# --- the daemon's own Control, driven over MQTT -----------------------------------------------------


async def test_operator_halts_and_resumes_a_running_daemon_over_mqtt(
    tmp_path: Path, mqtt_broker: Broker, plugin_site: Path
) -> None:
    need_private(mqtt_broker)
    instance = f"d{uuid.uuid4().hex[:8]}"
    text = (
        f'instance = "{instance}"\n[daemon]\ndata_dir = "{tmp_path / "data"}"\n'
        + mqtt_broker.config_toml(password_file=tmp_path / "mqtt.pw")
        + 'enabled = true\ncommands = true\n[[strategies]]\nuse = "buy_accepted"\nnotional_usd = 10\n'
    )
    cfg = write(tmp_path / "q.toml", text)
    daemon, run = await start_daemon(cfg, start_within=15)
    assert daemon.bus is not None and daemon.mqtt is not None
    bridge = daemon.mqtt
    await eventually(lambda: bridge.link.connected)
    rec = Recorder()
    daemon.bus.subscribe(["order.#", "config.reloaded"], rec, name="test")
    base = f"quantbot/{instance}"

    async with client(mqtt_broker) as c:
        reply = await command(c, base, "halt", b'{"reason": "desk closed", "correlation_id": "h1"}')
        change = {"before": "active", "after": "halted", "reason": "desk closed"}
        assert reply == {"command": "halt", "ok": True, "correlation_id": "h1", "result": change}
        n = len(rec.events)
        await daemon.bus.publish(token_launch(name="Moon Cat", mint="Halted1"))
        refused = await rec.next(OrderRejected, n)
        assert isinstance(refused, OrderRejected) and refused.reason is RejectReason.HALTED

        resumed = (await command(c, base, "resume", b"{}"))["result"]
        assert (resumed["before"], resumed["after"]) == ("halted", "active")
        n = len(rec.events)
        await daemon.bus.publish(token_launch(name="Star Dog", mint="Active1"))
        assert isinstance(await rec.next(OrderApproved, n), OrderApproved)

        n = len(rec.events)
        assert (await command(c, base, "reload", b"{}"))["ok"]
        assert isinstance(await rec.next(ConfigReloaded, n), ConfigReloaded)

    daemon.request_stop()
    assert await run == 0


def test_shipped_config_documents_the_mqtt_and_cluster_defaults() -> None:
    loaded = load_config([Path(__file__).parent.parent / "config" / "quantbot.toml"], environ={})
    assert loaded.config.mqtt == MqttConfig() and not loaded.config.mqtt.enabled
    assert loaded.config.cluster == ClusterConfig() and loaded.config.cluster.role == "all"
