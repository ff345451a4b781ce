"""An executor's memory that survives a crash: an append-only JSON-lines file, each line fsynced before the
append returns, read back at start with a torn last line (a crash mid-write) skipped and logged.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class DurableLog(Generic[T]):
    """`path` holds one `entry_type` per line; `skipped` names the log event for an unreadable line."""

    def __init__(self, path: Path, entry_type: type[T], *, log: Any, skipped: str) -> None:
        self.path = path
        self.log = log
        self.skipped = skipped
        self._decoder = msgspec.json.Decoder(entry_type)

    def read(self) -> list[T]:
        """Every complete entry, oldest first (creates the directory; no file yet is an empty log)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return []
        entries: list[T] = []
        for n, line in enumerate(self.path.read_bytes().splitlines(), 1):
            try:
                entries.append(self._decoder.decode(line))
            except msgspec.DecodeError:
                self.log.warning(self.skipped, line=n, path=str(self.path))  # a torn last write
        return entries

    async def append(self, entry: T) -> None:
        """Durable when it returns: written and fsynced (in a thread, off the event loop)."""
        await asyncio.to_thread(_append_durably, self.path, msgspec.json.encode(entry) + b"\n")


def _append_durably(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
