"""Inbox: a bounded FIFO with one consumer task, asyncio.Queue's semantics at a fraction of its cost.

`put` waits while full (backpressure), `join` waits until every item taken was marked done, `qsize`
and `full` behave as asyncio.Queue's; maxsize <= 0 means unbounded. Unlike asyncio.Queue, an item
that fits is accepted by a plain call (`offer`) and the consumer waits (`wait`) only when empty, so
a publisher and a consumer that keep up never create a coroutine per item. Its one consumer may
also take items straight from `items` (then wake a waiting putter if `putters`) and mark a run of
them done at once: `task_done(n)` before it next waits. `close` releases waiting putters when the
consumer goes away for good.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    __slots__ = ("_getter", "_joiners", "_unfinished", "closed", "items", "maxsize", "putters")

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self.items: deque[T] = deque()
        self._unfinished = 0
        self._getter: asyncio.Future[None] | None = None
        self.putters: deque[asyncio.Future[None]] = deque()
        self._joiners: list[asyncio.Future[None]] = []
        self.closed = False
        """No consumer will ever take from it again: `put` returns at once instead of waiting for room."""

    def qsize(self) -> int:
        return len(self.items)

    def empty(self) -> bool:
        return not self.items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self.items)

    # --- producers -------------------------------------------------------------------------------

    def offer(self, item: T) -> bool:
        """Append `item` if there is room; False (and nothing done) when full."""
        if 0 < self.maxsize <= len(self.items):
            return False
        self.items.append(item)
        self._unfinished += 1
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)
        return True

    def force(self, item: T) -> None:
        """Append `item` even past maxsize (for a producer that must not wait: the consumer itself)."""
        self.items.append(item)
        self._unfinished += 1

    def put_nowait(self, item: T) -> None:
        if not self.offer(item):
            raise asyncio.QueueFull

    async def put(self, item: T) -> None:
        """Append `item`, waiting while the inbox is full; dropped if it is (or gets) closed while full."""
        while not self.offer(item):
            if self.closed:
                return
            putter = asyncio.get_running_loop().create_future()
            self.putters.append(putter)
            try:
                await putter
            except BaseException:
                putter.cancel()
                try:
                    self.putters.remove(putter)
                except ValueError:
                    pass
                if not self.full() and not putter.cancelled():
                    self.wake_putter()  # it was woken, then cancelled: pass its slot to the next one
                raise

    # --- the consumer ----------------------------------------------------------------------------

    def get_nowait(self) -> T:
        """Take the oldest item (the caller then owes a `task_done`); QueueEmpty when there is none."""
        if not self.items:
            raise asyncio.QueueEmpty
        item = self.items.popleft()
        if self.putters:
            self.wake_putter()
        return item

    async def wait(self) -> None:
        """Return once the inbox holds an item (for its one consumer)."""
        while not self.items:
            getter = asyncio.get_running_loop().create_future()
            self._getter = getter
            try:
                await getter
            finally:
                self._getter = None

    async def get(self) -> T:
        await self.wait()
        return self.get_nowait()

    def task_done(self, n: int = 1) -> None:
        """Mark `n` taken items done; `join` returns once every item put is."""
        if self._unfinished < n:
            if not self.closed:
                raise ValueError("task_done() called too many times")
            n = self._unfinished  # closing already counted the consumer's last items done
        self._unfinished -= n
        if not self._unfinished and self._joiners:
            joiners, self._joiners = self._joiners, []
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        """Wait until every item put has been taken and marked done."""
        while self._unfinished:
            joiner = asyncio.get_running_loop().create_future()
            self._joiners.append(joiner)
            await joiner

    def close(self) -> None:
        """Its consumer is gone for good: release every waiting putter (their items are dropped) and every
        joiner (what is left will never be done)."""
        self.closed = True
        putters, self.putters = self.putters, deque()
        for putter in putters:
            if not putter.done():
                putter.set_result(None)
        self.items.clear()
        if self._unfinished:
            self.task_done(self._unfinished)

    def wake_putter(self) -> None:
        while self.putters:
            putter = self.putters.popleft()
            if not putter.done():
                putter.set_result(None)
                return
