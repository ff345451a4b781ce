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
"""Exit status when another daemon holds the directory or the store (sysexits: try again later)."""


class AlreadyRunning(Exception):
    """Another process holds what this one needs to itself (the message says which and what to do)."""


class FileLock:
    """An exclusive `flock` on `path`, which records the holder's pid: `acquire()` or AlreadyRunning."""

    def __init__(self, path: Path, *, what: str, remedy: str) -> None:
        self.path = path
        self.what = what
        self.remedy = remedy
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(f"another quantbot (pid {holder}) is running on {self.what}; {self.remedy}") from None
        except OSError:  # no locks on this filesystem (ENOLCK), say
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock


class DataDirLock(FileLock):
    """The data directory's lock (`daemon.lock` in it)."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            data_dir / LOCK_NAME,
            what=str(data_dir),
            remedy="stop it first (systemctl stop quantbot) or give this one its own [daemon] data_dir",
        )
