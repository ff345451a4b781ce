"""One daemon per data directory: an exclusive lock held for the daemon's whole run.

Two daemons on one data directory would share the store, the executors' sent-logs and the wallet:
each would trade, and each would take the other's orders in flight for orphans to reconcile (an
operator starting `quantbot run` by hand while the service runs is enough). The lock is an OS
`flock` on `daemon.lock`: released by the kernel when the process dies, so a crash never leaves a
stale lock behind. The file holds the holder's pid, for the error message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "daemon.lock"
EX_TEMPFAIL = 75
"""Exit status when another daemon holds the directory (sysexits: try again later)."""


class AlreadyRunning(Exception):
    """Another process holds the data directory."""


class DataDirLock:
    """`acquire()` or AlreadyRunning; `release()` when the daemon has stopped."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another quantbot (pid {holder}) is running on {self.path.parent}; stop it first "
                "(systemctl stop quantbot) or give this one its own [daemon] data_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock
