"""SQLite store (the embedded default): WAL, full fsync, one connection, one statement at a time."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from quantbot.store.base import Store, StoreError
from quantbot.store.sqlite_thread import SqliteThread

T = TypeVar("T")


class SqliteStore(Store):
    backend = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._worker: SqliteThread | None = None
        # One connection is shared: without this lock, another task's statement could run
        # inside a transaction that is waiting on an await.
        self._lock = asyncio.Lock()
        self._in_tx: asyncio.Task[Any] | None = None

    async def open(self) -> None:
        worker = SqliteThread(name=f"quantbot[store].sqlite[{self.path.name}]")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            await worker.open(self.path, self._configure)
        except (OSError, sqlite3.Error) as exc:
            await worker.close()
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._worker = worker

    def _configure(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")  # the journal must survive a power cut
        db.execute("PRAGMA foreign_keys = ON")
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")

    async def close(self) -> None:
        if self._worker is not None:
            worker, self._worker = self._worker, None
            await worker.close()

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if self._worker is None:
            raise StoreError("store is not open")
        return self._worker.run(fn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._in_tx is asyncio.current_task():
            yield  # nested: part of the enclosing transaction
            return
        async with self._lock:
            self._in_tx = asyncio.current_task()
            try:
                await self._run(_begin)
                yield
            except BaseException:
                await asyncio.shield(self._run(_rollback))
                raise
            else:
                await self._run(_commit)
            finally:
                self._in_tx = None

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[None]:
        if self._in_tx is asyncio.current_task():
            yield
        else:
            async with self._lock:
                yield

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._statement():
            return await self._run(lambda db: _execute(db, sql, args))

    async def execute_unsynced(self, sql: str, *args: Any) -> int:
        if self._in_tx is asyncio.current_task():
            return await self.execute(sql, *args)  # the enclosing transaction's commit decides
        # Alone, a synced commit (an fsync of the WAL) held the one connection for the whole fsync, and
        # a journal commit arriving meanwhile waited for it. In WAL mode the next synced commit makes
        # these frames durable too (the WAL is fsynced whole, and recovery keeps a valid prefix).
        async with self._lock:
            return await self._run(lambda db: _execute_unsynced(db, sql, args))

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self._statement():
            return await self._run(lambda db: _fetch(db, sql, args))

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    async def backup(self, target: str | Path) -> None:
        """An online, consistent copy of the database (SQLite's backup API)."""
        async with self._lock:
            await self._run(lambda db: _backup(db, Path(target)))


# Run in the store's thread, each as one hop: statement, rows and cursor clean-up together.


def _begin(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")


def _commit(db: sqlite3.Connection) -> None:
    try:
        db.execute("COMMIT")
    except sqlite3.Error:
        _rollback(db)  # a failed COMMIT (busy, I/O) may leave the transaction open: the next BEGIN would fail
        raise


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:  # BEGIN itself may have failed (busy) or been cancelled before it ran
        db.execute("ROLLBACK")


def _execute(db: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> int:
    cursor = db.execute(sql, args)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def _execute_unsynced(db: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> int:
    db.execute("PRAGMA synchronous = NORMAL")
    try:
        return _execute(db, sql, args)
    finally:
        db.execute("PRAGMA synchronous = FULL")


def _fetch(db: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    cursor = db.execute(sql, args)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _backup(db: sqlite3.Connection, target: Path) -> None:
    dest = sqlite3.connect(target)
    try:
        db.backup(dest)
    finally:
        dest.close()
