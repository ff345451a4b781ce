"""The systemd notify protocol (sd_notify(3)): datagrams on $NOTIFY_SOCKET.

Hand-written: the protocol is one sendto() per message, and the PyPI packages for it are either
unmaintained (sdnotify) or need libsystemd headers to build (systemd-python).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger(component="sdnotify")


class Notifier:
    """Sends READY/STATUS/STOPPING/WATCHDOG when $NOTIFY_SOCKET is set; does nothing otherwise."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        addr = environ.get("NOTIFY_SOCKET", "")
        self._addr: str | bytes | None = None
        if addr.startswith("@"):
            self._addr = b"\0" + addr[1:].encode()  # abstract namespace
        elif addr.startswith("/"):
            self._addr = addr
        self._sock: socket.socket | None = None
        if self._addr is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        self.watchdog_interval = watchdog_interval(environ)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> None:
        if self._sock is None or self._addr is None:
            return
        try:
            self._sock.sendto("\n".join(lines).encode(), self._addr)
        except OSError as exc:  # systemd gone or socket full: never fatal for the daemon
            log.warning("sdnotify.send_failed", error=str(exc))

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def stopping(self, status: str = "") -> None:
        self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> None:
        self.send("RELOADING=1")

    async def watchdog_loop(self) -> None:
        """Ping at half of WATCHDOG_USEC. It runs on the event loop, so a stalled loop stops pinging."""
        if self.watchdog_interval is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_interval)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Seconds between pings (half of WATCHDOG_USEC), or None when the watchdog is not for us."""
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2 / 1_000_000 if value > 0 else None
