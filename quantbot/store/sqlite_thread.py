"""SqliteThread: one thread owns a sqlite3 connection; the event loop hands it whole functions.

Each `run(fn)` is one hop to the thread and one back, so a statement with its rows and cursor
clean-up costs one round trip (aiosqlite's cursor API costs two or three). Functions run in the
order they were handed over; one that is running when its caller is cancelled still finishes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[sqlite3.Connection], Any]]


class SqliteThread:
    def __init__(self, *, name: str) -> None:
        self._jobs: SimpleQueue[_Job | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._db: sqlite3.Connection | None = None
        self._closing = False

    async def open(self, path: Path, configure: Callable[[sqlite3.Connection], None]) -> None:
        """Start the thread and connect there (autocommit: transactions are explicit BEGIN/COMMIT)."""
        self._thread.start()

        def connect(_: sqlite3.Connection) -> None:
            self._db = sqlite3.connect(path, isolation_level=None)
            configure(self._db)

        await self.run(connect)

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """`fn(connection)` in the thread; its result (or exception) in the returned future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._closing:
            future.set_exception(sqlite3.ProgrammingError("the store's connection is closed"))
            return future
        self._jobs.put((loop, future, fn))
        return future

    async def close(self) -> None:
        """Close the connection and end the thread (after every function already handed over)."""
        if not self._thread.is_alive():
            return

        def close(_: sqlite3.Connection) -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        try:
            await asyncio.shield(self.run(close))
        finally:
            self._closing = True  # nothing handed over after this could ever run
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn = job
            try:
                result = fn(self._db)  # type: ignore[arg-type]  # None only for the connect job itself
            except BaseException as exc:  # noqa: BLE001  (handed back to the caller)
                _settle(loop, future, None, exc)
            else:
                _settle(loop, future, result, None)


def _settle(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: object, exc: BaseException | None
) -> None:
    def settle() -> None:
        if future.done():  # the caller was cancelled meanwhile
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the loop is closed: nobody is waiting any more
