"""The Aptos watcher (component "aptos"): follows the chain from persisted cursors and publishes events.

Two sources, chosen by `aptos.source`:
* "ledger": page `GET /v1/transactions?start=&limit=` from the version cursor `aptos.ledger`,
  keeping only transactions that touch a watched address (`parser.touches`, O(1) per address);
* "accounts": page `GET /v1/accounts/{addr}/transactions?start=` for each wallet in
  `aptos.wallets`, each from its own sequence-number cursor `aptos.account.<address>`.
The starting point is stored at once; after that a cursor is stored only once its page's events
are published, so a restart resumes with no gap, and after a clean stop with no duplicate (a crash
between publishing and storing re-publishes that page: at-least-once; events carry the tx hash).
Failures are counted and retried; they never end a loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, Literal, Protocol

import structlog
from aptos_sdk.account_address import AccountAddress
from aptos_sdk.async_client import ApiError, RestClient

from quantbot.chains.aptos.addresses import normalize_address
from quantbot.chains.aptos.client import AptosRest, AptosUnavailable, error_code
from quantbot.chains.aptos.decimals import DecimalsCache
from quantbot.clock import Clock
from quantbot.events import Event
from quantbot.retry import Backoff

log = structlog.get_logger(component="aptos")

LEDGER_CURSOR = "aptos.ledger"
ACCOUNT_CURSOR = "aptos.account."
MAX_PAGE = 100


class TxParser(Protocol):
    """What the watcher needs from the Aptos transaction parser (quantbot.chains.aptos.parser.AptosParser)."""

    rejected: Counter[str]

    def parse_transaction(self, raw: bytes | str | Mapping[str, Any]) -> list[Event]: ...

    def touches(self, tx: Mapping[str, Any], watched: AbstractSet[str]) -> bool: ...


class Publisher(Protocol):
    async def publish(self, event: Event) -> Event: ...


class CursorStore(Protocol):
    async def get_cursor(self, name: str) -> str | None: ...

    async def set_cursor(self, name: str, value: str, *, now: datetime) -> None: ...


class AptosWatcher:
    """Publishes the parser's events for transactions of watched addresses, resuming from cursors."""

    name = "aptos"
    is_source = True
    """Publishes outside input: the daemon stops it before draining the bus."""

    def __init__(
        self,
        *,
        bus: Publisher,
        store: CursorStore,
        parser: TxParser,
        rest: AptosRest,
        clock: Clock,
        decimals: DecimalsCache | None = None,
        source: Literal["ledger", "accounts"] = "ledger",
        wallets: Iterable[str] = (),
        poll_interval: float = 1.0,
        page_size: int = MAX_PAGE,
        start_version: int | None = None,
        error_backoff: Backoff | None = None,
        stop_grace: float = 5.0,
    ) -> None:
        self.bus = bus
        self.store = store
        self.parser = parser
        self.rest = rest
        self.clock = clock
        self.decimals = decimals
        self.source = source
        self.watched: set[str] = set()
        self.wallets: list[str] = []
        self.watch(wallets)
        self.poll_interval = poll_interval
        self.page_size = max(1, min(page_size, MAX_PAGE))
        self.start_version = start_version
        self.error_backoff = error_backoff or Backoff(base=1.0, cap=60.0)
        self.next_version: int | None = None
        self._stored_version: int | None = None
        self.next_sequence: dict[str, int] = {}
        self.rejected: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._lag_s: float | None = None
        self.stop_grace = stop_grace
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- what to watch --------------------------------------------------------------------------

    def watch(self, addresses: Iterable[str]) -> None:
        """Add addresses (any spelling) to the watched set; in accounts mode they are also polled."""
        for addr in addresses:
            key = normalize_address(addr)
            if key not in self.watched:
                self.watched.add(key)
                self.wallets.append(key)

    def unwatch(self, addresses: Iterable[str]) -> None:
        for addr in addresses:
            key = normalize_address(addr)
            self.watched.discard(key)
            if key in self.wallets:
                self.wallets.remove(key)

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Fix the starting point (stored cursor, `start_version`, else the head), then follow in the background.

        Transactions committed after `start()` returns are seen. If no node answers now, the loop
        keeps trying; the daemon does not fail to start because a node is down.
        """
        try:
            if self.source == "ledger":
                self.next_version = await self._initial_version()
            else:
                for wallet in self.wallets:
                    self.next_sequence[wallet] = await self._initial_sequence(wallet)
        except (AptosUnavailable, ApiError) as exc:
            self._counts["errors"] += 1
            log.error("aptos.start_position_unknown", error=str(exc)[:300], retrying_in_background=True)
        self._stopping.clear()
        loop = self._ledger_loop if self.source == "ledger" else self._accounts_loop
        self._task = asyncio.create_task(loop(), name=f"quantbot[aptos].{self.source}")
        log.info("aptos.watcher_started", source=self.source, nodes=self.rest.nodes, watched=len(self.watched))

    async def stop(self) -> None:
        """Let the loop finish the page in hand (publish, then store the cursor); cancel it after `stop_grace`."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=self.stop_grace)
            if not done:
                log.warning("aptos.stop_forced", grace_s=self.stop_grace)
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise
            elif not task.cancelled() and task.exception() is not None:
                log.error("aptos.loop_crashed", exc_info=task.exception())
        await self.rest.close()
        log.info("aptos.watcher_stopped", stats=self.stats())

    def stats(self) -> dict[str, Any]:
        """Counters and gauges for /metrics."""
        head = self.rest.head
        behind = None
        if self.source == "ledger" and self.next_version is not None and head.version >= 0:
            behind = max(0, head.version - (self.next_version - 1))
        return {
            "source": self.source,
            "node": self.rest.node,
            "lag_s": self._lag_s,
            "versions_behind": behind,
            "cursor": self.next_version if self.source == "ledger" else dict(self.next_sequence),
            "polls": self._counts["polls"],
            "transactions": self._counts["transactions"],
            "matched": self._counts["matched"],
            "parsed": self._counts["parsed"],
            "published": self._counts["published"],
            "gaps": self._counts["gaps"],
            "errors": self._counts["errors"] + self.rest.stats.errors,
            "rpc_errors": self.rest.stats.errors,
            "reconnects": self.rest.stats.failovers,
            "rate_limited": self.rest.stats.rate_limited,
            "failovers": self.rest.stats.failovers,
            "rejected": sum(self.rejected.values()) + sum(self.parser.rejected.values()),
            "rejected_by_reason": dict(self.rejected + self.parser.rejected),
        }

    # --- ledger stream --------------------------------------------------------------------------

    async def _pause(self, seconds: float) -> None:
        """Sleep on the injected clock, waking early when `stop()` is called."""
        if self._stopping.is_set():
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()

    async def _ledger_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                if self.next_version is None:
                    self.next_version = await self._initial_version()
                caught_up = await self._ledger_page()
                failures = 0
            except Exception as exc:  # a node, the store or a bug: counted, retried, never fatal
                failures += 1
                self._counts["errors"] += 1
                unexpected = not isinstance(exc, AptosUnavailable | ApiError)
                log.error(
                    "aptos.poll_failed",
                    source="ledger",
                    error=str(exc)[:300],
                    failures=failures,
                    exc_info=exc if unexpected else None,
                )
                await self._pause(max(self.poll_interval, self.error_backoff.delay(failures - 1)))
                continue
            if caught_up:
                await self._pause(self.poll_interval)

    async def _initial_version(self) -> int:
        stored = await self.store.get_cursor(LEDGER_CURSOR)
        if stored is not None:
            log.info("aptos.resumed", source="ledger", version=int(stored))
            self._stored_version = int(stored)
            return int(stored)
        if self.start_version is not None:
            return self.start_version
        info = await self.rest.call("info", lambda c: c.info())
        version = int(info["ledger_version"]) + 1
        log.info("aptos.starting_at_head", version=version)
        # Stored at once: a restart before the first match must resume here, not at a later head.
        await self.store.set_cursor(LEDGER_CURSOR, str(version), now=self.clock.now())
        self._stored_version = version
        return version

    async def _ledger_page(self) -> bool:
        """Fetch, filter and publish one page; True when the watcher has reached the head."""
        start = self.next_version
        assert start is not None  # noqa: S101  (set by the loop before the first page)
        self._counts["polls"] += 1
        limit = self.page_size

        async def page(client: RestClient) -> list[dict[str, Any]]:
            return list(await client.transactions(limit=limit, start=start))

        try:
            txs = await self.rest.call("transactions", page)
        except ApiError as exc:
            if exc.status_code == 404:  # some nodes answer "not found" past the head instead of []
                return True
            if error_code(exc) != "version_pruned":
                raise
            oldest = self.rest.head.oldest_version
            self._counts["gaps"] += 1
            log.error("aptos.cursor_pruned", cursor=start, resume_at=oldest, lost=max(0, oldest - start))
            self.next_version = max(oldest, start + 1)
            return False
        expected = start
        broken = False
        for tx in txs:
            version = _version(tx)
            if version is None:
                self._reject("malformed_version", tx)  # positionally it is `expected`: skip it
            elif version != expected:
                self._counts["gaps"] += 1
                log.error("aptos.page_out_of_order", expected=expected, got=version)
                broken = True
                break
            else:
                await self._consider(tx, filtered=True)
            expected += 1
        if expected != start:
            # In memory first: if storing fails, this process still never re-publishes the page.
            self.next_version = expected
            self._lag_s = _lag(self.clock, txs[expected - start - 1])
        if self.next_version != self._stored_version:  # also retries a write that failed earlier
            await self.store.set_cursor(LEDGER_CURSOR, str(self.next_version), now=self.clock.now())
            self._stored_version = self.next_version
        if expected == start and self.rest.head.version >= 0 and self.rest.head.version < start:
            self._lag_s = max(0.0, self.clock.now().timestamp() - self.rest.head.timestamp_us / 1e6)
        return broken or len(txs) < limit

    # --- per-account polling --------------------------------------------------------------------

    async def _accounts_loop(self) -> None:
        failures: Counter[str] = Counter()
        while not self._stopping.is_set():
            for wallet in list(self.wallets):
                try:
                    while not self._stopping.is_set() and not await self._account_page(wallet):
                        pass
                    failures[wallet] = 0
                except Exception as exc:  # a node, the store or a bug: counted, retried, never fatal
                    failures[wallet] += 1
                    self._counts["errors"] += 1
                    unexpected = not isinstance(exc, AptosUnavailable | ApiError)
                    log.error(
                        "aptos.poll_failed",
                        source="accounts",
                        wallet=wallet,
                        error=str(exc)[:300],
                        exc_info=exc if unexpected else None,
                    )
            worst = max(failures.values(), default=0)
            delay = self.poll_interval if worst == 0 else max(self.poll_interval, self.error_backoff.delay(worst - 1))
            await self._pause(delay)

    async def _account_page(self, wallet: str) -> bool:
        if wallet not in self.next_sequence:
            self.next_sequence[wallet] = await self._initial_sequence(wallet)
        start = self.next_sequence[wallet]
        self._counts["polls"] += 1
        limit = self.page_size
        address = AccountAddress.from_str_relaxed(wallet)

        async def page(client: RestClient) -> list[dict[str, Any]]:
            return list(await client.transactions_by_account(address, limit=limit, start=start))

        try:
            txs = await self.rest.call("account_transactions", page)
        except ApiError as exc:
            if exc.status_code != 404:  # an account that does not exist yet has sent nothing
                raise
            txs = []
        expected = start
        broken = False
        for tx in txs:
            if _sequence(tx) != expected:
                self._counts["gaps"] += 1
                log.error("aptos.page_out_of_order", wallet=wallet, expected=expected, got=_sequence(tx))
                broken = True
                break
            await self._consider(tx, filtered=False)
            expected += 1
        if expected != start:
            self.next_sequence[wallet] = expected
            self._lag_s = _lag(self.clock, txs[expected - start - 1])
            await self.store.set_cursor(ACCOUNT_CURSOR + wallet, str(expected), now=self.clock.now())
        return broken or len(txs) < limit

    async def _initial_sequence(self, wallet: str) -> int:
        stored = await self.store.get_cursor(ACCOUNT_CURSOR + wallet)
        if stored is not None:
            return int(stored)
        address = AccountAddress.from_str_relaxed(wallet)
        # account_sequence_number answers 0 for an account that does not exist yet.
        sequence = int(await self.rest.call("account", lambda c: c.account_sequence_number(address)))
        await self.store.set_cursor(ACCOUNT_CURSOR + wallet, str(sequence), now=self.clock.now())
        return sequence

    # --- one transaction ------------------------------------------------------------------------

    async def _consider(self, tx: Any, *, filtered: bool) -> None:
        self._counts["transactions"] += 1
        if not isinstance(tx, Mapping):
            self._reject("not_an_object", tx)
            return
        try:
            if filtered and not self.parser.touches(tx, self.watched):
                return
        except Exception as exc:  # noqa: BLE001  (malformed chain data must not end the loop)
            self._reject("touches_failed", tx, exc)
            return
        self._counts["matched"] += 1
        if self.decimals is not None:
            await self.decimals.prefetch(tx)
        try:
            events = self.parser.parse_transaction(tx)
        except Exception as exc:  # noqa: BLE001  (malformed chain data must not end the loop)
            self._reject("parser_error", tx, exc)
            return
        self._counts["parsed"] += 1
        for event in events:
            await self.bus.publish(event)
            self._counts["published"] += 1

    def _reject(self, reason: str, tx: Any, exc: Exception | None = None) -> None:
        self.rejected[reason] += 1
        version = tx.get("version") if isinstance(tx, Mapping) else None
        log.warning("aptos.tx_rejected", reason=reason, version=version, error=repr(exc) if exc else None)


def _version(tx: Any) -> int | None:
    try:
        return int(tx["version"])
    except (KeyError, TypeError, ValueError):
        return None


def _sequence(tx: Any) -> int | None:
    try:
        return int(tx["sequence_number"])
    except (KeyError, TypeError, ValueError):
        return None


def _lag(clock: Clock, tx: Any) -> float | None:
    try:
        return max(0.0, clock.now().timestamp() - int(tx["timestamp"]) / 1e6)
    except (KeyError, TypeError, ValueError):
        return None
