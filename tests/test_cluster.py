"""Cluster transport: events cross a real Mosquitto between roles, once, keeping id and origin."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair

from quantbot.bus import EventBus
from quantbot.clock import WallClock
from quantbot.config import ClusterConfig, MqttConfig, load_config
from quantbot.daemon import Daemon
from quantbot.events import ConfigReloaded, Event, OrderFilled, TokenLaunch, decode, encode
from quantbot.ops.cluster import ClusterTransport, SeenWindow, role_runs
from quantbot.plugins import PluginCatalog
from quantbot.secrets import Redactor, Secret
from quantbot.testing import token_launch
from tests.conftest import DaemonProcess, cli_env, write
from tests.mqttbroker import USERS, Broker
from tests.test_mqtt import client, eventually, next_message


def test_role_decides_what_runs_here() -> None:
    assert role_runs("all", "watchers") and role_runs("all", "trading")
    assert role_runs("watchers", "watchers") and not role_runs("watchers", "trading")
    assert role_runs("trading", "trading") and not role_runs("trading", "watchers")


@given(st.integers(1, 8), st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 20)), max_size=200))
def test_seen_window_remembers_exactly_the_most_recent_keys_and_stays_bounded(
    size: int, keys: list[tuple[str, int]]
) -> None:
    window = SeenWindow(size)
    recent: list[tuple[str, int]] = []  # model: most recently seen last
    for key in keys:
        assert window.seen(key) == (key in recent)
        if key in recent:
            recent.remove(key)
        recent.append(key)
        recent = recent[-size:]
        assert len(window) == len(recent) <= size


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived = asyncio.Condition()

    async def __call__(self, event: Event) -> None:
        async with self.arrived:
            self.events.append(event)
            self.arrived.notify_all()

    async def wait(self, count: int) -> list[Event]:
        async with asyncio.timeout(15), self.arrived:
            await self.arrived.wait_for(lambda: len(self.events) >= count)
        return self.events


def mqtt_for(broker: Broker) -> MqttConfig:
    auth: dict[str, Any] = {}
    if broker.private:
        auth = {"username": "quantbot", "password": Secret(USERS["quantbot"], "test")}
    return MqttConfig(host=broker.host, port=broker.port, reconnect_max_s=0.5, **auth)


@asynccontextmanager
async def node(
    broker: Broker, cluster: str, instance: str, role: str, **fields: Any
) -> AsyncIterator[tuple[EventBus, ClusterTransport, Recorder]]:
    """One instance: its own bus and transport; the recorder sees what reaches its bus."""
    async with EventBus(clock=WallClock(), origin=instance) as bus:
        transport = ClusterTransport(
            bus=bus,
            cluster=ClusterConfig(role=role, name=cluster, **fields),  # type: ignore[arg-type]
            mqtt=mqtt_for(broker),
            instance=instance,
            clock=WallClock(),
        )
        rec = Recorder()
        bus.subscribe(["token.#", "order.#"], rec, name="test.recorder")
        await transport.start()
        try:
            await eventually(lambda: transport.link.connected)
            yield bus, transport, rec
        finally:
            await transport.stop()


async def test_watcher_events_reach_the_trading_bus_with_id_and_origin_and_fills_come_back(
    mqtt_broker: Broker,
) -> None:
    cluster = f"c{uuid.uuid4().hex[:6]}"
    async with (
        node(mqtt_broker, cluster, "wa", "watchers") as (bus_a, _, rec_a),
        node(mqtt_broker, cluster, "tb", "trading") as (bus_b, _, rec_b),
    ):
        launch = await bus_a.publish(token_launch(mint="Cross1"))
        (got,) = await rec_b.wait(1)
        assert got == launch and got.origin == "wa" and got.id == launch.id and got.ts == launch.ts

        fill = await bus_b.publish(
            OrderFilled(order_id="o1", executor="paper", tx="paper-o1", amount_in=1, amount_out=2)
        )
        events = await rec_a.wait(2)
        assert events[1] == fill and events[1].origin == "tb"


async def test_imported_events_are_never_exported_again(mqtt_broker: Broker) -> None:
    cluster = f"c{uuid.uuid4().hex[:6]}"
    both = {"exports": ("token.launch",), "imports": ("token.launch",)}
    async with (
        node(mqtt_broker, cluster, "n1", "watchers", **both) as (bus_1, t1, _),
        node(mqtt_broker, cluster, "n2", "trading", **both) as (_, t2, rec_2),
    ):
        await bus_1.publish(token_launch(mint="Loop1"))
        await rec_2.wait(1)
        await eventually(lambda: t2.not_ours == 1)  # n2's exporter saw the imported launch and kept it
        assert t2.exported == 0 and t1.exported == 1
        assert t1.imported == 0, "n1 never got its own launch back"


async def test_duplicate_delivery_is_dropped_and_bad_messages_are_counted(mqtt_broker: Broker) -> None:
    cluster = f"c{uuid.uuid4().hex[:6]}"
    launch = token_launch(mint="Dup1", id=424242, origin="wa")
    other = token_launch(mint="Dup2", id=424243, origin="wa")
    topic = f"quantbot/{cluster}/events/token/launch"
    async with node(mqtt_broker, cluster, "tb", "trading") as (_, transport, rec), client(mqtt_broker, "quantbot") as c:
        for payload in (
            encode(launch),
            encode(launch),
            b"{not an event",
            encode(token_launch(mint="NoId")),
            encode(other),
        ):
            await c.publish(topic, payload, qos=1)
        events = await rec.wait(2)
        assert [e for e in events if isinstance(e, TokenLaunch)] == [launch, other]
        assert transport.duplicates == 1 and transport.rejected == 2
        assert transport.stats()["imported"] == 2


# --- two daemons, two roles, one broker -----------------------------------------------------------

DAEMON = """
instance = "{instance}"
[daemon]
data_dir = "{data}"
tick_interval = {tick}
shutdown_timeout = 10
log_level = "debug"
[cluster]
role = "{role}"
name = "{cluster}"
{mqtt}
enabled = true
buffer_size = {buffer}
reconnect_max_s = 0.5
{mirror}
[[notifiers]]
use = "log"
topics = ["order.#", "token.#"]
"""

TRADING_EXTRA = """
[[strategies]]
use = "buy_accepted"
notional_usd = 10
price_native = 0.001
"""


def daemon_config(tmp: Path, broker: Broker, *, instance: str, role: str, cluster: str, mirror: list[str]) -> Path:
    rules = "\n".join(f'[[mqtt.mirror]]\ntopic = "{t}"\nqos = 1' for t in mirror)
    text = DAEMON.format(
        instance=instance,
        data=tmp / instance / "data",
        role=role,
        cluster=cluster,
        mqtt=broker.config_toml(password_file=tmp / f"{instance}.pw").strip(),
        mirror=rules,
        tick=0.05 if role == "trading" else 1.0,
        buffer=4,
    )
    return write(tmp / f"{instance}.toml", text + (TRADING_EXTRA if role == "trading" else ""))


async def collect(c: aiomqtt.Client, want: str, stop: Any) -> list[Any]:
    """Messages until one satisfies `stop`; returns all events on topics ending in `want`."""
    seen = []
    while True:
        message = await next_message(c, within=30)
        if not str(message.topic).endswith(want):
            continue
        event = decode(message.payload)  # type: ignore[arg-type]
        seen.append(event)
        if stop(event):
            return seen


@pytest.mark.subprocess
async def test_two_daemons_split_by_role_trade_across_the_broker_and_survive_its_outage(
    tmp_path: Path, own_mqtt_broker: Broker, plugin_site: Path, daemons: list[DaemonProcess]
) -> None:
    broker = own_mqtt_broker
    cluster = "desk"
    cfg_a = daemon_config(tmp_path, broker, instance="wa", role="watchers", cluster=cluster, mirror=["order.#"])
    cfg_b = daemon_config(
        tmp_path, broker, instance="tb", role="trading", cluster=cluster, mirror=["token.accepted", "clock.tick"]
    )
    a = DaemonProcess("-c", str(cfg_a), env=cli_env())
    daemons.append(a)
    b = DaemonProcess("-c", str(cfg_b), env=cli_env())
    daemons.append(b)
    for d in (a, b):
        await asyncio.to_thread(d.wait_for, "daemon.ready")
        await asyncio.to_thread(d.wait_for, "mqtt.connected", link="cluster")
        await asyncio.to_thread(d.wait_for, "mqtt.connected", link="mqtt")
    started = {r["name"] for r in a.lines if r.get("event") == "component.started"}
    assert "risk" not in started and "strategies" not in started and "cluster" in started, "A only watches"
    assert "lease" not in started, "A places no orders: it needs no trading lease"
    assert "lease" in {r["name"] for r in b.lines if r.get("event") == "component.started"}

    def launch(mint: str, id: int) -> bytes:
        return encode(token_launch(mint=mint, name=f"Coin {mint}", id=id, origin="wa"))

    events_topic = f"quantbot/{cluster}/events/token/launch"
    async with client(broker, "operator") as watch, client(broker, "quantbot") as inject:
        await watch.subscribe("quantbot/wa/order/filled", qos=1)
        await watch.subscribe("quantbot/tb/token/accepted", qos=1)
        # What A's exporter would send when its watchers find a launch; delivered twice, as QoS 1 may.
        await inject.publish(events_topic, launch("Alpha1", 7001), qos=1)
        await inject.publish(events_topic, launch("Alpha1", 7001), qos=1)
        await inject.publish(events_topic, launch("Beta2", 7002), qos=1)

        accepted = await collect(watch, "token/accepted", lambda e: e.launch.mint == "Beta2")
        assert [e.launch.mint for e in accepted] == ["Alpha1", "Beta2"], "the duplicate never reached B's filters"
        fills: list[OrderFilled] = []
        while len(fills) < 2:  # one paper fill per accepted launch, back on A's bus and out through its mirror
            fills += await collect(watch, "order/filled", lambda e: True)
        assert all(isinstance(f, OrderFilled) and f.origin == "tb" for f in fills)
        assert len({f.order_id for f in fills}) == 2

    # The broker goes away: neither daemon stalls; B's bridge keeps ticking into its bounded buffer.
    broker.stop()
    for d in (a, b):
        await asyncio.to_thread(d.wait_for, "mqtt.disconnected", link="cluster")
    await asyncio.to_thread(b.wait_for, "mqtt.buffer_full", link="mqtt")
    broker.start()
    reconnected = await asyncio.to_thread(b.wait_for, "mqtt.connected", link="mqtt", reconnects=1)
    assert reconnected["dropped"] > 0
    await asyncio.to_thread(a.wait_for, "mqtt.connected", link="cluster", reconnects=1)
    await asyncio.to_thread(b.wait_for, "mqtt.connected", link="cluster", reconnects=1)

    async with client(broker, "operator") as watch, client(broker, "quantbot") as inject:
        await watch.subscribe("quantbot/wa/order/filled", qos=1)
        await inject.publish(events_topic, launch("Gamma3", 7003), qos=1)
        message = await next_message(watch, within=30)
    fill = decode(message.payload)  # type: ignore[arg-type]
    assert isinstance(fill, OrderFilled) and fill.origin == "tb"
    record = await asyncio.to_thread(a.wait_for, "notify", topic="order.filled")
    assert record["payload"]["origin"] == "tb"

    for d in (a, b):
        d.signal(signal.SIGTERM)
    assert [await asyncio.to_thread(d.wait, 30) for d in (a, b)] == [0, 0]


async def test_a_watchers_instance_runs_no_order_path_and_a_reload_starts_none_of_it(
    tmp_path: Path, mqtt_broker: Broker
) -> None:
    text = (
        f'instance = "w{uuid.uuid4().hex[:6]}"\n[daemon]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[cluster]\nrole = "watchers"\nname = "c{uuid.uuid4().hex[:6]}"\n'
        + mqtt_broker.config_toml(password_file=tmp_path / "mqtt.pw")
        + '[[filters]]\nuse = "blocklist"\nname_patterns = ["rug"]\n'
    )
    cfg = write(tmp_path / "q.toml", text)
    catalog = PluginCatalog.discover()
    daemon = Daemon(
        loaded=load_config([cfg], environ={}, plugins=catalog),
        config_paths=[str(cfg)],
        catalog=catalog,
        redactor=Redactor(),
        clock=WallClock(),
        environ={},
    )
    run = asyncio.create_task(daemon.run())
    async with asyncio.timeout(15):
        await daemon.started.wait()
    assert daemon.bus is not None and daemon.filters is not None
    running = [type(c).__name__ for c in daemon.components]
    order_path = {"Portfolio", "RiskEngine", "OrderRouter", "ExitManager", "FilterStage", "MemeScanner"}
    assert running[0] == "SqliteStore" and running[-1] == "ClusterTransport" and not order_path & set(running)
    assert running.count("PluginHost") == 1  # the notifiers; executors and strategies belong to the trading role
    rec = Recorder()
    daemon.bus.subscribe("config.reloaded", rec, name="test")
    write(cfg, text.replace('["rug"]', '["rug", "scam"]'))
    daemon.request_reload()
    (reloaded,) = await rec.wait(1)
    assert isinstance(reloaded, ConfigReloaded) and reloaded.applied == ()
    assert "filters" not in daemon.bus.queue_depths() and "risk" not in daemon.bus.queue_depths()
    daemon.request_stop()
    assert await run == 0


# --- a launch observed by one is traded by the other ----------------------------------------------

SOLANA = """
[scanner]
allow_no_filters = true
[solana]
enabled = true
launch_programs = ["pumpfun"]
[[solana.endpoints]]
http = "{http}"
ws = "{ws}"
rps = 0
"""


@pytest.mark.subprocess
async def test_a_launch_observed_by_the_watchers_host_is_traded_by_the_trading_host(
    tmp_path: Path,
    mqtt_broker: Broker,
    plugin_site: Path,
    daemons: list[DaemonProcess],
    local_solana: Any,
    solana_fixtures: Path,
) -> None:
    from tests.scanner_chain import CREATE_V2, MINT, serve_launch_accounts

    serve_launch_accounts(local_solana, solana_fixtures, others=[str(Keypair().pubkey()) for _ in range(3)])
    cluster = f"c{uuid.uuid4().hex[:6]}"
    solana = SOLANA.format(http=local_solana.http_url, ws=local_solana.ws_url)
    cfg_a = daemon_config(tmp_path, mqtt_broker, instance="wa", role="watchers", cluster=cluster, mirror=[])
    cfg_b = daemon_config(tmp_path, mqtt_broker, instance="tb", role="trading", cluster=cluster, mirror=[])
    for cfg in (cfg_a, cfg_b):  # B enriches the launch through its own pool: the same node
        write(cfg, cfg.read_text() + solana)
    a = DaemonProcess("-c", str(cfg_a), env=cli_env())
    daemons.append(a)
    b = DaemonProcess("-c", str(cfg_b), env=cli_env())
    daemons.append(b)
    # The node answers in this process's event loop: wait for the daemons in threads.
    await asyncio.to_thread(a.wait_for, "watcher.connected")
    for d in (a, b):
        await asyncio.to_thread(d.wait_for, "mqtt.connected", link="cluster")
    b_started = {r["name"] for r in b.lines if r.get("event") == "component.started"}
    assert not any("watcher" in name for name in b_started), "B trades; only A watches the chain"

    sig = local_solana.load_transaction(solana_fixtures / CREATE_V2)
    assert await local_solana.announce(sig) == 1

    launch = await asyncio.to_thread(a.wait_for, "notify", 30.0, topic="token.launch")
    assert launch["payload"]["mint"] == MINT and launch["payload"]["origin"] == "wa"
    await asyncio.to_thread(b.wait_for, "scanner.accepted", 30.0, mint=MINT)
    filled = await asyncio.to_thread(b.wait_for, "order.filled", 30.0, executor="paper")
    back = await asyncio.to_thread(a.wait_for, "notify", 30.0, topic="order.filled")
    assert back["payload"]["order_id"] == filled["order_id"] and back["payload"]["origin"] == "tb"
    assert local_solana.calls["getMultipleAccounts"] >= 1, "B's scanner read the launch's accounts from the node"

    for d in (a, b):
        d.signal(signal.SIGTERM)
    assert [await asyncio.to_thread(d.wait, 30) for d in (a, b)] == [0, 0]
