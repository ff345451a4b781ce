#!/usr/bin/env python3
"""Benchmark the cluster transport over a real MQTT broker.

By default it starts a private Mosquitto (anonymous, loopback, a free port) with the queue limit the
ops docs recommend (`max_queued_messages 10000`: Mosquitto's default of 1000 drops QoS 1 messages for
a subscriber that falls that far behind); `--host/--port` use an existing broker instead.

A "watchers" instance publishes TokenLaunch events on its bus; a "trading" instance receives them on
its bus through the broker (QoS 1). Reports events/s for a burst and the one-way latency
(publish on A's bus -> delivery on B's bus) of events sent one at a time.

    .venv/bin/python scripts/bench/cluster.py [--events 5000] [--pings 300] [--host H --port P]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from quantbot.bus import EventBus
from quantbot.clock import WallClock
from quantbot.config import ClusterConfig, MqttConfig
from quantbot.events import Event
from quantbot.logs import setup_logging
from quantbot.ops.cluster import ClusterTransport
from quantbot.testing import token_launch


@contextlib.contextmanager
def private_mosquitto() -> Iterator[int]:
    """A throw-away Mosquitto on a free loopback port; yields the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
            "persistence false\nlog_dest none\nmax_queued_messages 10000\n"
        )
        proc = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def wait_connected(*transports: ClusterTransport) -> None:
    async with asyncio.timeout(10):
        while not all(t.link.connected for t in transports):  # noqa: ASYNC110  (start-up only)
            await asyncio.sleep(0.01)


async def bench(host: str, port: int, events: int, pings: int) -> None:
    mqtt = MqttConfig(host=host, port=port, buffer_size=max(events, 1000))
    cluster = f"bench{uuid.uuid4().hex[:6]}"
    clock = WallClock()
    arrived: asyncio.Queue[tuple[Event, float]] = asyncio.Queue()

    async def on_launch(event: Event) -> None:
        arrived.put_nowait((event, time.perf_counter()))

    async with (
        EventBus(clock=clock, origin="wa", queue_size=events + 10) as bus_a,
        EventBus(clock=clock, origin="tb", queue_size=events + 10) as bus_b,
    ):
        a = ClusterTransport(
            bus=bus_a, cluster=ClusterConfig(role="watchers", name=cluster), mqtt=mqtt, instance="wa", clock=clock
        )
        b = ClusterTransport(
            bus=bus_b, cluster=ClusterConfig(role="trading", name=cluster), mqtt=mqtt, instance="tb", clock=clock
        )
        bus_b.subscribe("token.launch", on_launch, name="bench", maxsize=events + 10)
        await a.start()
        await b.start()
        try:
            await wait_connected(a, b)
            started = time.perf_counter()
            for n in range(events):
                await bus_a.publish(token_launch(mint=f"Burst{n}"))
            for _ in range(events):
                await arrived.get()
            elapsed = time.perf_counter() - started
            print(f"burst: {events} events in {elapsed:.2f}s = {events / elapsed:,.0f} events/s (QoS 1)")

            latencies = []
            for n in range(pings):
                sent = time.perf_counter()
                await bus_a.publish(token_launch(mint=f"Ping{n}"))
                _, got = await arrived.get()
                latencies.append((got - sent) * 1000)
            latencies.sort()
            p50 = statistics.median(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"one-way latency over {pings} events: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms"
            )
            print(f"duplicates dropped: {b.duplicates}, transport drops: {a.stats()['dropped']}")
        finally:
            await a.stop()
            await b.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="an existing broker's port (default: start a private one)")
    parser.add_argument("--events", type=int, default=5000, help="events in the throughput burst")
    parser.add_argument("--pings", type=int, default=300, help="events sent one at a time for latency")
    args = parser.parse_args()
    setup_logging(level="warning", fmt="console")
    with contextlib.ExitStack() as stack:
        port = args.port or stack.enter_context(private_mosquitto())
        print(f"python {sys.version.split()[0]}, broker {args.host}:{port}{'' if args.port else ' (private)'}")
        asyncio.run(bench(args.host, port, args.events, args.pings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
