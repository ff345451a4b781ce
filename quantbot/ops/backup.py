"""Online backup of the SQLite store with retention (sqlite3's backup API, in a worker thread).

The copy is taken from a connection of its own in one step, i.e. inside one read transaction: in WAL
mode that is a consistent snapshot while the daemon keeps writing, and the daemon is never blocked.
It is checked (`PRAGMA quick_check`) and renamed into place only when whole, so a crash mid-backup
never leaves a file that looks like a backup. PostgreSQL is backed up with pg_dump (systemd/README.md).
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

STAMP = "%Y%m%dT%H%M%S_%fZ"


class BackupError(Exception):
    """The backup could not be made or did not verify."""


def backup_name(stem: str, when: datetime) -> str:
    return f"{stem}-{when.astimezone(UTC).strftime(STAMP)}.db"


def _pattern(stem: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(stem)}-\d{{8}}T\d{{6}}_\d{{6}}Z\.db$")


def backup_sqlite(source: Path, dest_dir: Path, *, now: datetime, keep: int) -> Path:
    """Copy `source` to `dest_dir/<stem>-<UTC time>.db`, verify it, keep the `keep` newest. Blocking."""
    dest_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = dest_dir / backup_name(source.stem, now)
    partial = final.with_name(final.name + ".partial")
    for stale in dest_dir.glob(f"{source.stem}-*.db.partial"):
        stale.unlink(missing_ok=True)  # left by a crash during an earlier backup
    try:
        with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(partial)) as dst:
            src.backup(dst)  # pages=-1: the whole database in one step, one consistent snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # a self-contained file, no -wal beside it
            verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} to {final} failed: {exc}") from exc
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} did not verify: {verdict}")
    os.chmod(partial, 0o600)
    with open(partial, "rb") as fh:
        os.fsync(fh.fileno())
    partial.replace(final)
    dir_fd = os.open(dest_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    prune(dest_dir, source.stem, keep=keep)
    return final


def prune(dest_dir: Path, stem: str, *, keep: int) -> list[Path]:
    """Delete all but the `keep` newest backups of `stem` (other files are left alone); return the deleted."""
    pattern = _pattern(stem)
    backups = sorted(p for p in dest_dir.iterdir() if pattern.match(p.name))
    doomed = backups[: max(len(backups) - keep, 0)]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed
