"""WriteBehind: non-journal writes queued off the hot path and committed in batches.

`enqueue` never waits for the database; a named background task flushes the queue in one
transaction every `interval` seconds of the injected clock, and `stop` flushes what is left, so a
clean stop loses nothing. A failed flush keeps its batch for the next one. The order journal never
goes through here: it is written before an order is sent, synchronously.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from quantbot.clock import Clock
from quantbot.store.base import Store

log = structlog.get_logger(component="store.writer")

Write = Callable[[Store], Awaitable[None]]


class WriteBehind:
    name = "store.writer"

    def __init__(self, *, store: Store, clock: Clock, interval: float = 2.0, max_queue: int = 100_000) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.max_queue = max_queue
        self._queue: deque[Write] = deque()
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self.dropped = 0
        self.flushed = 0
        self.failures = 0
        self.committed = asyncio.Event()
        """Set after each flush that committed writes (clear it to wait for the next)."""

    def enqueue(self, write: Write) -> None:
        """Queue one write (e.g. `lambda s: s.put_signal(row)`). Oldest dropped, and counted, when full."""
        if len(self._queue) >= self.max_queue:
            self._queue.popleft()
            self.dropped += 1
            log.error("store.writer_overflow", dropped=self.dropped, max_queue=self.max_queue)
        self._queue.append(write)

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="quantbot[store].write_behind")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
            self._task = None
        await self.flush()

    async def _loop(self) -> None:
        while True:
            await self.clock.sleep(self.interval)
            await self.flush()

    async def flush(self) -> int:
        """Commit everything queued so far in one transaction; return how many writes. Failures keep them."""
        async with self._flush_lock:
            batch, self._queue = self._queue, deque()
            if not batch:
                return 0
            try:
                async with self.store.transaction():
                    for write in batch:
                        await write(self.store)
            except BaseException as exc:
                batch.extend(self._queue)  # keep them, in order, ahead of what arrived meanwhile
                self._queue = batch
                if not isinstance(exc, Exception):
                    raise
                self.failures += 1
                log.error("store.writer_flush_failed", writes=len(batch), failures=self.failures, exc_info=exc)
                return 0
            self.flushed += len(batch)
            self.committed.set()
            return len(batch)
