"""SQLite store (the embedded default): WAL, full fsync, one connection, one statement at a time."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import structlog

from quantbot.datadir import AlreadyRunning, FileLock
from quantbot.store.base import Lease, LeaseHeld, Store, StoreError
from quantbot.store.sqlite_thread import SqliteThread

T = TypeVar("T")

log = structlog.get_logger(component="store")

CLOSE_WAIT_S = 5.0
"""How long `close()` waits for a transaction in progress to finish before closing under it."""


class _FileLease(Lease):
    """A `flock` beside the database file: released by the kernel with the process, so never stale."""

    def __init__(self, lock: FileLock) -> None:
        self._lock = lock

    async def held(self) -> bool:
        return self._lock.held

    async def release(self) -> None:
        self._lock.release()


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
        self._tx: _Tx | None = None

    async def open(self) -> None:
        worker = SqliteThread(name=f"quantbot[store].sqlite[{self.path.name}]")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            await worker.open(self.path, self._configure)
        except (OSError, sqlite3.Error) as exc:
            await worker.close()
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        except BaseException:  # cancelled while opening: do not leave the thread and connection behind
            await asyncio.shield(worker.close())
            raise
        self._worker = worker

    def _configure(self, db: sqlite3.Connection) -> None:
        (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":  # unsynced cursor commits are durable only through the WAL
            raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
        db.execute("PRAGMA synchronous = FULL")  # the journal must survive a power cut
        db.execute("PRAGMA foreign_keys = ON")
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")

    async def close(self) -> None:
        """Close after the transaction in progress, if any, ends (or after CLOSE_WAIT_S, under it:
        SQLite then rolls it back and its task's next statement fails)."""
        if self._worker is None:
            return
        locked = False
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                locked = await self._lock.acquire()
        except TimeoutError:
            log.warning("store.close_under_transaction", path=str(self.path), waited_s=CLOSE_WAIT_S)
        try:
            if self._worker is not None:
                worker, self._worker = self._worker, None
                await worker.close()
        finally:
            if locked:
                self._lock.release()

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if self._worker is None:
            raise StoreError("store is not open")
        return self._worker.run(fn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._in_tx is asyncio.current_task() and self._tx is not None:
            tx = self._tx
            try:
                yield  # nested: part of the enclosing transaction
            except BaseException:
                tx.failed = True  # even if the enclosing block catches this, it must not commit half of it
                raise
            return
        async with self._lock:
            tx = _Tx()
            self._in_tx, self._tx = asyncio.current_task(), tx
            try:
                yield
            except BaseException:
                await self._rollback_after_error()
                raise
            else:
                if tx.failed:
                    await self._rollback_after_error()
                    raise StoreError("a nested transaction failed inside this one: rolled back whole")
                await self._run(tx.commit)
            finally:
                self._in_tx = self._tx = None

    async def _rollback_after_error(self) -> None:
        """Roll back for a failed or cancelled block without replacing its exception: a rollback that
        fails leaves the transaction open, and the next statement (`_alone`) rolls it back first."""
        if self._worker is None:
            return  # closed under the transaction: closing the connection rolled it back
        try:
            await asyncio.shield(self._run(_rollback))
        except (sqlite3.Error, StoreError) as exc:
            log.error("store.rollback_failed", path=str(self.path), error=str(exc))

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` in the store's thread: inside this task's transaction, or alone under the lock."""
        if self._in_tx is asyncio.current_task() and self._tx is not None:
            return await self._run(self._tx.within(fn))
        async with self._lock:
            return await self._run(_alone(fn))

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._call(lambda db: _execute(db, sql, args))

    async def execute_unsynced(self, sql: str, *args: Any) -> int:
        if self._in_tx is asyncio.current_task():
            return await self.execute(sql, *args)  # the enclosing transaction's commit decides
        # Alone, a synced commit (an fsync of the WAL) held the one connection for the whole fsync, and
        # a journal commit arriving meanwhile waited for it. In WAL mode the next synced commit makes
        # these frames durable too (the WAL is fsynced whole, and recovery keeps a valid prefix).
        return await self._call(lambda db: _execute_unsynced(db, sql, args))

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await self._call(lambda db: _fetch(db, sql, args))

    async def add_counter(self, day: str, key: str, delta: Decimal) -> Decimal:
        """The base's three statements as one trip to the store's thread (it reserves every order's budget)."""

        def add(db: sqlite3.Connection) -> Decimal:
            db.execute(self._COUNTER_CREATE, (day, key)).close()
            cursor = db.execute(self._COUNTER_READ, (day, key))
            (raw,) = cursor.fetchone()
            cursor.close()
            value = Decimal(raw) + delta
            db.execute(self._COUNTER_WRITE, (str(value), day, key)).close()
            return value

        async with self.transaction():
            return await self._call(add)

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    async def lease(self, name: str, *, holder: str, expire_s: float | None = None) -> Lease:
        """A lock file beside the database (`<db>.<name>.lease`): processes on this machine see the same
        one, which is as far as a SQLite file is shared. It ends with the process, so it needs no expiry."""
        lock = FileLock(
            self.path.with_name(f"{self.path.name}.{name}.lease"),
            what=f"the store {self.path}",
            remedy="stop it first, or give this one its own [store] sqlite_path",
        )
        try:
            lock.acquire()
        except AlreadyRunning as exc:
            raise LeaseHeld(str(exc)) from None
        except OSError as exc:
            raise StoreError(f"cannot take the {name} lease beside {self.path}: {exc}") from exc
        return _FileLease(lock)

    async def backup(self, target: str | Path) -> None:
        """An online, consistent copy of the database (SQLite's backup API)."""
        async with self._lock:
            await self._run(lambda db: _backup(db, Path(target)))


# Run in the store's thread, each as one hop: statement, rows and cursor clean-up together.


class _Tx:
    """One transaction, as the store's thread sees it. BEGIN IMMEDIATE goes with its first statement
    (one trip fewer); COMMIT only if it began. `begun` is touched only in the store's thread; `failed`
    (a nested block raised) only in the event loop."""

    def __init__(self) -> None:
        self.begun = False
        self.failed = False

    def within(self, fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        def run(db: sqlite3.Connection) -> T:
            if not self.begun:
                db.execute("BEGIN IMMEDIATE")
                self.begun = True
            elif not db.in_transaction:  # SQLite rolled it back itself after an error (full disk, I/O)
                raise StoreError("the transaction was rolled back after an earlier error")
            return fn(db)

        return run

    def commit(self, db: sqlite3.Connection) -> None:
        if self.begun:
            _commit(db)


def _commit(db: sqlite3.Connection) -> None:
    try:
        db.execute("COMMIT")
    except sqlite3.Error:
        _rollback(db)  # a failed COMMIT (busy, I/O) may leave the transaction open: the next BEGIN would fail
        raise


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:  # BEGIN itself may have failed (busy) or been cancelled before it ran
        db.execute("ROLLBACK")


def _alone(fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """`fn` outside any transaction. Were one still open (an earlier ROLLBACK failed), this statement
    would join it and never be committed: a journal row that looks written and is not. Roll it back
    first, or refuse."""

    def run(db: sqlite3.Connection) -> T:
        if db.in_transaction:
            db.execute("ROLLBACK")
        return fn(db)

    return run


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
        try:
            db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error:
            # Left at NORMAL, every later journal commit would skip its fsync. Closed, they fail loudly.
            db.close()
            raise


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
