"""systemd notify protocol, on a real unix datagram socket."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantbot.sdnotify import Notifier, watchdog_interval
from tests.conftest import DaemonProcess, cli_env, write
from tests.test_daemon import COMPONENTS, config_text


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd (short path: AF_UNIX allows 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="qbn")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield sock, path
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


def receive(sock: socket.socket, until: str, timeout: float = 20.0) -> list[str]:
    """Datagrams received until one contains `until` (inclusive)."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            raise AssertionError(f"no {until!r} within {timeout}s; got {got}") from None
        got.append(msg)
        if until in msg.split("\n"):
            return got


@pytest.mark.subprocess
def test_daemon_speaks_ready_status_watchdog_and_stopping(
    tmp_path: Path, notify_socket: tuple[socket.socket, str], daemons: list[DaemonProcess]
) -> None:
    sock, path = notify_socket
    cfg = write(tmp_path / "q.toml", config_text(tmp_path))
    d = DaemonProcess("-c", str(cfg), env=cli_env(NOTIFY_SOCKET=path, WATCHDOG_USEC="200000"))
    daemons.append(d)
    before_ready = receive(sock, "READY=1")
    assert before_ready[0] == "STATUS=starting"
    ready = before_ready[-1].split("\n")
    assert ready[1] == "STATUS=running mode=paper filters=1 strategies=0 notifiers=1"
    ready_line = d.wait_for("daemon.ready")  # the log comes through a pipe: it may lag the datagram
    started = [r["name"] for r in d.lines[: d.lines.index(ready_line)] if r["event"] == "component.started"]
    assert started == COMPONENTS, "READY=1 only after every component started"
    pings = [m for m in receive(sock, "WATCHDOG=1") if m == "WATCHDOG=1"]
    pings += [m for m in receive(sock, "WATCHDOG=1") if m == "WATCHDOG=1"]
    assert len(pings) >= 2
    d.signal(signal.SIGTERM)
    stopping = receive(sock, "STOPPING=1")[-1]
    assert stopping == "STOPPING=1\nSTATUS=stopping"
    assert d.wait() == 0


def test_nothing_is_sent_without_notify_socket() -> None:
    n = Notifier(environ={})
    assert not n.enabled
    n.ready("x")  # no socket: a no-op, not an error


def test_abstract_namespace_socket(notify_socket: tuple[socket.socket, str]) -> None:
    name = f"quantbot-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(b"\0" + name.encode())
    try:
        n = Notifier(environ={"NOTIFY_SOCKET": "@" + name})
        n.status("hello")
        server.settimeout(5)
        assert server.recv(100) == b"STATUS=hello"
        n.close()
    finally:
        server.close()


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_our_pid() -> None:
    env = {"WATCHDOG_USEC": "1000000"}
    assert watchdog_interval(env) == 0.5
    assert watchdog_interval(env | {"WATCHDOG_PID": str(os.getpid())}) == 0.5
    assert watchdog_interval(env | {"WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "garbage"}) is None


async def test_watchdog_pings_stop_while_the_event_loop_is_stalled(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    sock.setblocking(False)
    n = Notifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"})  # a ping every 10 ms
    task = asyncio.create_task(n.watchdog_loop())
    await asyncio.sleep(0.1)
    assert _drain(sock) >= 3
    time.sleep(0.3)  # noqa: ASYNC251  (this is the stall: the loop cannot run while we block it)
    assert _drain(sock) == 0, "no ping is sent while the loop is blocked"
    await asyncio.sleep(0.1)
    assert _drain(sock) >= 3, "pings resume when the loop runs again"
    task.cancel()
    n.close()


def _drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            assert sock.recv(100) == b"WATCHDOG=1"
        except BlockingIOError:
            return count
        count += 1
