"""Watched-wallet activity: gap-free backfill, dedup by signature, ordered commit with a persisted cursor.

Every signature of a watched wallet (from a logs notification or a getSignaturesForAddress backfill)
becomes one item in a FIFO queue. Transactions are fetched concurrently as soon as they are queued,
but parsed, published and committed strictly in queue order, and the wallet's cursor (the newest
signature fully handled, stored as `slot:signature`) only moves forward. While a wallet is being
backfilled its live notifications wait, so they commit after the older history. A wallet whose
backfill or fetch failed is *held*: its cursor stops until a later backfill covers the gap again.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from quantbot.chains.solana.rpc import RpcUnavailable, SolanaRpcError, SolanaRpcPool
from quantbot.clock import Clock
from quantbot.events import Event
from quantbot.retry import Backoff

if TYPE_CHECKING:
    from quantbot.chains.solana.watcher import TxParser

log = structlog.get_logger(component="solana.wallets")

Publish = Callable[[Sequence[Event]], Awaitable[None]]
RPC_FAILURES = (RpcUnavailable, SolanaRpcError)


class CursorStore(Protocol):
    """The part of the Store the watcher uses."""

    async def get_cursor(self, name: str) -> str | None: ...

    async def set_cursor(self, name: str, value: str, *, now: datetime) -> None: ...


class RecentSet:
    """The last `maxlen` keys seen, oldest forgotten first (bounded memory for dedup)."""

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, key: Hashable) -> bool:
        """Remember `key`; False if it was already there."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.maxlen:
            self._keys.popitem(last=False)
        return True

    def discard(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(frozen=True, slots=True)
class Cursor:
    signature: str
    slot: int

    def encode(self) -> str:
        return f"{self.slot}:{self.signature}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        slot, sep, signature = text.partition(":")
        return cls(signature=signature, slot=int(slot)) if sep else cls(signature=text, slot=0)


EMPTY = Cursor(signature="", slot=0)
"""The cursor of a wallet that had no history when first watched."""


@dataclass(eq=False, slots=True)
class _Item:
    wallet: str
    signature: str = ""
    slot: int = 0
    live: bool = True
    fetch: asyncio.Task[dict[str, Any] | None] | None = None
    release: int | None = None
    """A marker, not a transaction: release the wallet's hold if nothing failed since `release`."""


async def fetch_transaction(
    rpc: SolanaRpcPool,
    signature: str,
    *,
    slots: asyncio.Semaphore,
    retry: Backoff,
    clock: Clock,
    counters: Counter[str],
) -> dict[str, Any] | None:
    """The transaction, retried (3 attempts) while the node does not have it yet or fails; None if it never came
    (counted in `rpc_errors` and logged)."""
    attempts = Backoff(base=retry.base, cap=retry.cap, attempts=3).delays()
    while True:
        try:
            async with slots:
                raw = await rpc.get_transaction(signature)
            if raw is not None:
                return raw
            reason = "not found"
        except RPC_FAILURES as exc:
            reason = str(exc)
        delay = next(attempts, None)
        if delay is None:
            counters["rpc_errors"] += 1
            log.warning("watcher.fetch_failed", signature=signature, reason=reason)
            return None
        await clock.sleep(delay)


class WalletActivity:
    """Signatures in, parsed events out, in order, exactly once per signature while remembered."""

    def __init__(
        self,
        *,
        wallets: Sequence[str],
        labels: Mapping[str, str] | None = None,
        rpc: SolanaRpcPool,
        parser: TxParser,
        publish: Publish,
        store: CursorStore,
        clock: Clock,
        counters: Counter[str],
        page_size: int = 100,
        max_pages: int = 10,
        dedup_window: int = 20000,
        fetch_concurrency: int = 4,
        retry: Backoff | None = None,
    ) -> None:
        self.wallets = tuple(dict.fromkeys(wallets))
        self.labels = dict(labels or {})
        self.rpc = rpc
        self.parser = parser
        self.publish = publish
        self.store = store
        self.clock = clock
        self.counters = counters
        self.page_size = page_size
        self.max_pages = max_pages
        self.retry = retry or Backoff(base=0.5, cap=10.0)
        self.seen = RecentSet(dedup_window)
        self.lag_s: float | None = None
        self.lag_max_s = 0.0
        self._fetch_slots = asyncio.Semaphore(fetch_concurrency)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._cursors: dict[str, Cursor | None] = {}
        self._buffers: dict[str, list[tuple[str, int, object]]] = {}
        self._holds: Counter[str] = Counter()
        self._held: set[str] = set()
        self._retries: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._committed: dict[str, Cursor] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._commit_loop(), name="quantbot[solana].commit")

    async def stop(self) -> None:
        tasks = [t for t in (self._worker, *self._tasks, *self._retries.values()) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._worker = None

    @staticmethod
    def cursor_name(wallet: str) -> str:
        return f"solana.wallet.{wallet}"

    async def cursor(self, wallet: str) -> Cursor | None:
        if wallet not in self._cursors:
            raw = await self.store.get_cursor(self.cursor_name(wallet))
            self._cursors[wallet] = None if raw is None else Cursor.decode(raw)
        return self._cursors[wallet]

    def pending(self) -> int:
        return self._queue.qsize()

    async def drained(self) -> None:
        """Until every queued signature has been committed."""
        await self._queue.join()

    # --- input -------------------------------------------------------------------------------

    def notify(self, wallet: str, signature: str, slot: int, err: object) -> None:
        """A live logs notification for `wallet`."""
        buffer = self._buffers.get(wallet)
        if buffer is not None:
            buffer.append((signature, slot, err))
        else:
            self._enqueue(wallet, signature, slot, err, live=True)

    def _enqueue(self, wallet: str, signature: str, slot: int, err: object, *, live: bool) -> None:
        if not self.seen.add(signature):
            self.counters["deduped"] += 1
            return
        fetch = None
        if err is None:
            fetch = asyncio.get_running_loop().create_task(self._fetch(signature), name="quantbot[solana].fetch")
            self._tasks.add(fetch)
            fetch.add_done_callback(self._tasks.discard)
        else:
            self.counters["failed_tx_skipped"] += 1
        self._queue.put_nowait(_Item(wallet, signature, slot, live, fetch))

    def buffer_all(self) -> None:
        """Hold back every wallet's live notifications until its own backfill has run. Call it before subscribing:
        a live notification committed first would move the wallet's cursor past the gap its backfill fetches."""
        for wallet in self.wallets:
            self._buffers.setdefault(wallet, [])

    async def backfill_all(self) -> None:
        self.buffer_all()
        done: set[str] = set()
        try:
            for wallet in self.wallets:
                await self.backfill(wallet)
                done.add(wallet)
        finally:
            for wallet in self.wallets:  # cut off (a reconnect, a stop) before their turn
                buffered = None if wallet in done else self._buffers.pop(wallet, None)
                if buffered is None:
                    continue
                self._hold(wallet)  # its gap is not covered: the cursor waits for the next backfill
                for signature, slot, err in buffered:
                    self._enqueue(wallet, signature, slot, err, live=True)

    async def backfill(self, wallet: str) -> bool:
        """Queue every signature since the wallet's cursor, oldest first; True if the gap is covered."""
        async with self._locks.setdefault(wallet, asyncio.Lock()):
            return await self._backfill_locked(wallet)

    async def _backfill_locked(self, wallet: str) -> bool:
        self._buffers.setdefault(wallet, [])
        covered = False
        try:
            covered = await self._backfill(wallet)
        except RPC_FAILURES as exc:
            self.counters["rpc_errors"] += 1
            log.warning("watcher.backfill_failed", wallet=wallet, label=self.labels.get(wallet, ""), error=str(exc))
        except Exception as exc:  # the store, or a bug: the wallet is held and retried like an RPC failure
            self.counters["handler_errors"] += 1
            log.error("watcher.backfill_failed", wallet=wallet, label=self.labels.get(wallet, ""), exc_info=exc)
        finally:
            if not covered:
                self._hold(wallet)
            for signature, slot, err in self._buffers.pop(wallet, []):
                self._enqueue(wallet, signature, slot, err, live=True)
            if covered:
                self._queue.put_nowait(_Item(wallet, release=self._holds[wallet]))
        if not covered:
            self._retry_backfill(wallet)
        return covered

    async def _backfill(self, wallet: str) -> bool:
        cursor = await self.cursor(wallet)
        if cursor is None:
            # First sight of this wallet: start from now; replaying old trades would be stale signals.
            # A wallet without history gets the empty cursor: everything after it is new.
            newest = await self.rpc.get_signatures_for_address(wallet, limit=1)
            start = Cursor(newest[0].signature, newest[0].slot) if newest else EMPTY
            await self._advance(wallet, start, force=True)
            log.info(
                "watcher.wallet_cursor_initialised",
                wallet=wallet,
                label=self.labels.get(wallet, ""),
                cursor=start.signature,
            )
            return True
        collected = []
        before: str | None = None
        for _ in range(self.max_pages):
            page = await self.rpc.get_signatures_for_address(
                wallet, before=before, until=cursor.signature or None, limit=self.page_size
            )
            collected += page
            if len(page) < self.page_size:
                break
            before = page[-1].signature
        else:
            self.counters["backfill_truncated"] += 1
            log.warning(
                "watcher.backfill_truncated",
                wallet=wallet,
                label=self.labels.get(wallet, ""),
                kept=len(collected),
                since=cursor.signature,
            )
        # Older than the cursor can only come from a node that does not know the cursor's signature (a lagging
        # endpoint answers `until` with its whole history): already seen, never again.
        fresh = [s for s in reversed(collected) if s.signature not in self.seen and s.slot >= cursor.slot]
        for s in fresh:
            self._enqueue(wallet, s.signature, s.slot, s.err, live=False)
        self.counters["backfilled"] += len(fresh)
        if fresh:
            log.info(
                "watcher.backfilled",
                wallet=wallet,
                label=self.labels.get(wallet, ""),
                signatures=len(fresh),
                since=cursor.signature,
            )
        return True

    def _hold(self, wallet: str) -> None:
        self._holds[wallet] += 1
        self._held.add(wallet)

    def _retry_backfill(self, wallet: str) -> None:
        if wallet in self._retries:
            return

        async def later() -> None:
            try:
                for delay in self.retry.delays():
                    await self.clock.sleep(delay)
                    if wallet not in self._held or await self.backfill(wallet):
                        return
            finally:
                self._retries.pop(wallet, None)

        self._retries[wallet] = asyncio.get_running_loop().create_task(later(), name="quantbot[solana].rebackfill")

    # --- fetch and commit --------------------------------------------------------------------

    async def _fetch(self, signature: str) -> dict[str, Any] | None:
        return await fetch_transaction(
            self.rpc, signature, slots=self._fetch_slots, retry=self.retry, clock=self.clock, counters=self.counters
        )

    async def _commit_loop(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._commit(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters["handler_errors"] += 1
                log.error("watcher.commit_failed", wallet=item.wallet, signature=item.signature, exc_info=exc)
            finally:
                self._queue.task_done()

    async def _commit(self, item: _Item) -> None:
        if item.release is not None:
            if self._holds[item.wallet] == item.release and item.wallet in self._held:
                self._held.discard(item.wallet)
                last = self._committed.get(item.wallet)
                if last is not None:
                    await self._advance(item.wallet, last)
            return
        if item.fetch is not None:
            raw = await item.fetch
            if raw is None:
                self.seen.discard(item.signature)  # let the next backfill fetch it again
                self._hold(item.wallet)
                self._retry_backfill(item.wallet)
                return
            self._measure_lag(raw, item.live)
            try:
                events = self.parser.parse_transaction(raw)
            except Exception as exc:
                self.counters["parse_errors"] += 1
                log.error("watcher.parse_failed", signature=item.signature, exc_info=exc)
                events = []
            else:
                self.counters["parsed"] += 1
            await self.publish(events)
        done = Cursor(item.signature, item.slot)
        last = self._committed.get(item.wallet)
        if last is None or done.slot >= last.slot:
            # The newest handled, not the last: a fetch retried after a hold commits an older transaction after
            # newer ones, and a cursor set back to it would publish those again after a restart.
            self._committed[item.wallet] = done
        await self._advance(item.wallet, done)

    async def _advance(self, wallet: str, cursor: Cursor, *, force: bool = False) -> None:
        if wallet in self._held and not force:
            return
        current = await self.cursor(wallet)
        if current is not None and cursor.slot < current.slot:
            return
        self._cursors[wallet] = cursor
        await self.store.set_cursor(self.cursor_name(wallet), cursor.encode(), now=self.clock.now())

    def _measure_lag(self, raw: dict[str, Any], live: bool) -> None:
        block_time = raw.get("blockTime")
        if not live or not isinstance(block_time, int):
            return
        lag = (self.clock.now() - datetime.fromtimestamp(block_time, UTC)).total_seconds()
        self.lag_s = lag
        self.lag_max_s = max(self.lag_max_s, lag)
