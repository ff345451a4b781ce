"""An executor's memory that survives a crash: an append-only JSON-lines file, each line fsynced before the
append returns, read back at start with a torn last line (a crash mid-write) logged and cut off.
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
        """Every complete entry, oldest first (creates the directory; no file yet is an empty log).

        A torn last write (no final newline: a crash mid-append) was never acknowledged, so what it was written
        for never happened. It is cut off here: the next entry must start a line of its own, or the two would
        merge into one unreadable line and the next read would lose an entry that was acknowledged."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            self.log.warning(
                self.skipped, line=data.count(b"\n") + 1, path=str(self.path), torn_bytes=len(data) - complete
            )
            _truncate_durably(self.path, complete)
            data = data[:complete]
        entries: list[T] = []
        for n, line in enumerate(data.splitlines(), 1):
            try:
                entries.append(self._decoder.decode(line))
            except msgspec.DecodeError:
                self.log.warning(self.skipped, line=n, path=str(self.path))  # not one of ours: never written so
        return entries

    async def append(self, entry: T) -> None:
        """Durable when it returns: written and fsynced (in a thread, off the event loop)."""
        await asyncio.to_thread(_append_durably, self.path, msgspec.json.encode(entry) + b"\n")


def _append_durably(path: Path, line: bytes) -> None:
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(line)
        while view:  # a short write (a full disk) must raise, never pass for durable
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(f"no progress writing {path}")
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the file's name is durable only once its directory is
        _fsync_dir(path.parent)


def _truncate_durably(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
