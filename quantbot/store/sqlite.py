"""SQLite store (the embedded default): WAL, full fsync, one connection, one statement at a time."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from quantbot.store.base import Store, StoreError


class SqliteStore(Store):
    backend = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None
        # aiosqlite shares one connection: without this lock, another task's statement could run
        # inside a transaction that is waiting on an await.
        self._lock = asyncio.Lock()
        self._in_tx: asyncio.Task[Any] | None = None

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        await self._db.execute("PRAGMA journal_mode = WAL")
        await self._db.execute("PRAGMA synchronous = FULL")  # the journal must survive a power cut
        await self._db.execute("PRAGMA foreign_keys = ON")
        await self._db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._in_tx is asyncio.current_task():
            yield  # nested: part of the enclosing transaction
            return
        async with self._lock:
            self._in_tx = asyncio.current_task()
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            else:
                await self.db.execute("COMMIT")
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
            cursor = await self.db.execute(sql, args)
            count = cursor.rowcount
            await cursor.close()
            return count

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self._statement():
            cursor = await self.db.execute(sql, args)
            rows = await cursor.fetchall()
            await cursor.close()
            return [tuple(r) for r in rows]

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    async def backup(self, target: str | Path) -> None:
        """An online, consistent copy of the database (SQLite's backup API)."""
        async with self._lock:
            dest = await aiosqlite.connect(Path(target))
            try:
                await self.db.backup(dest)
            finally:
                await dest.close()
