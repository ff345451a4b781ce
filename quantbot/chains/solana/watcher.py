"""SolanaWatcher (component "solana"): launch programs and watched wallets over logsSubscribe, accounts
over accountSubscribe, all through solana-py's WebSocket client, with reconnects and backfill.

pump.fun (and any program whose parser understands its logs) is decoded straight from the
notification's logs. Watched-wallet activity is fetched with getTransaction and parsed in order
(see wallets.py). After every (re)connect everything is resubscribed and every watched wallet is
backfilled from its cursor, so a dropped connection loses nothing and repeats nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec
import structlog
from solana.rpc.commitment import Commitment
from solana.rpc.websocket_api import SolanaWsClient, Subscription
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import AccountNotification, LogsNotification
from websockets.exceptions import InvalidStatus

from quantbot.bus import EventBus
from quantbot.chains.solana.rpc import SolanaRpcPool
from quantbot.chains.solana.wallets import CursorStore, RecentSet, WalletActivity, fetch_transaction
from quantbot.clock import Clock
from quantbot.config import SolanaConfig
from quantbot.events import EPOCH, AccountUpdate, Event
from quantbot.retry import Backoff, retry_after

log = structlog.get_logger(component="solana.watcher")

LAUNCH_PROGRAMS: Mapping[str, str] = {
    "pumpfun": "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P",
    "pumpswap": "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA",
    "raydium_v4": "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8",
    "raydium_cpmm": "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C",
}
# Log lines that mark a new pool: when the parser finds nothing in the logs alone, the whole
# transaction is fetched (Raydium's initialize2 accounts are only in the transaction).
POOL_INIT_MARKERS: Mapping[str, tuple[str, ...]] = {
    "pumpswap": ("Program log: Instruction: CreatePool",),
    "raydium_v4": ("initialize2",),
    "raydium_cpmm": ("Program log: Instruction: Initialize",),
}
MAX_FRAME = 32 * 1024 * 1024  # busy program streams exceed websockets' 1 MiB default (close 1009)
MAX_ORPHANS = 1000


class TxParser(Protocol):
    """What the watcher needs from the transaction parser (quantbot.chains.solana.parser.SolanaParser)."""

    rejected: Counter[str]

    def parse_transaction(self, raw: bytes | str | Mapping[str, Any]) -> list[Event]: ...

    def parse_logs(
        self,
        *,
        signature: str,
        slot: int,
        logs: Sequence[str],
        err: object = None,
        block_time: datetime | None = None,
    ) -> list[Event]: ...


class SolanaWatcher:
    """Publishes parsed chain events and AccountUpdates on the bus. `start()` returns at once."""

    name = "solana"
    is_source = True
    """Publishes outside input: the daemon stops it before draining the bus."""

    def __init__(
        self,
        *,
        bus: EventBus,
        rpc: SolanaRpcPool,
        parser: TxParser,
        store: CursorStore,
        clock: Clock,
        config: SolanaConfig,
        reconnect: Backoff | None = None,
        retry: Backoff | None = None,
    ) -> None:
        self.bus = bus
        self.rpc = rpc
        self.parser = parser
        self.clock = clock
        self.config = config
        self.commitment = Commitment(config.commitment)
        self.reconnect = reconnect or Backoff(base=0.5, cap=config.reconnect_max_s)
        self.timeout = max((e.timeout for e in config.endpoints), default=10.0)
        self.counters: Counter[str] = Counter()
        self.wallets = WalletActivity(
            wallets=[w.address for w in config.wallets],
            labels={w.address: w.label for w in config.wallets if w.label},
            rpc=rpc,
            parser=parser,
            publish=self._publish,
            store=store,
            clock=clock,
            counters=self.counters,
            page_size=config.backfill_page_size,
            max_pages=config.backfill_max_pages,
            dedup_window=config.dedup_window,
            fetch_concurrency=config.fetch_concurrency,
            retry=retry,
        )
        self.launch_programs = {p: LAUNCH_PROGRAMS[p] for p in config.launch_programs}
        self.connections = 0
        self.launch_lag_s: float | None = None
        self.launch_lag_max_s = 0.0
        self.syncs = 0
        self._synced = asyncio.Condition()
        self._launch_seen = RecentSet(config.dedup_window)
        self._events_seen = RecentSet(config.dedup_window)
        self._accounts: set[str] = set()
        self._ws: SolanaWsClient | None = None
        self._subs: dict[int, tuple[str, str]] = {}
        self._account_handles: dict[str, Subscription] = {}
        self._orphans: dict[int, list[AccountNotification | LogsNotification]] = {}
        self._fetch_slots = asyncio.Semaphore(config.fetch_concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.wallets.start()
        self._loop_task = asyncio.get_running_loop().create_task(self._ws_loop(), name="quantbot[solana].ws_loop")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop_task = None
        await self.wallets.stop()

    async def wait_synced(self, count: int = 1) -> None:
        """Until `count` connections have been subscribed and backfilled (for tests and the demo)."""
        async with self._synced:
            await self._synced.wait_for(lambda: self.syncs >= count)

    def stats(self) -> dict[str, Any]:
        """Counters for /metrics: lag, reconnects, rpc errors, parsed, rejected, deduped and more."""
        return {
            "connected": self._ws is not None,
            "connections": self.connections,
            "reconnects": self.counters["reconnects"],
            "notifications": self.counters["notifications"],
            "malformed": self.counters["malformed"],
            "rpc_errors": self.counters["rpc_errors"],
            "parsed": self.counters["parsed"],
            "published": self.counters["published"],
            "rejected": sum(self.parser.rejected.values()),
            "parse_errors": self.counters["parse_errors"],
            "handler_errors": self.counters["handler_errors"],
            "deduped": self.counters["deduped"],
            "backfilled": self.counters["backfilled"],
            "backfill_truncated": self.counters["backfill_truncated"],
            "failed_tx_skipped": self.counters["failed_tx_skipped"],
            "lag_s": self.wallets.lag_s,
            "lag_max_s": self.wallets.lag_max_s,
            "launch_lag_s": self.launch_lag_s,
            "launch_lag_max_s": self.launch_lag_max_s,
            "pending": self.wallets.pending(),
            "subscriptions": len(self._subs),
            "rpc": self.rpc.health(),
        }

    # --- accounts ----------------------------------------------------------------------------

    async def watch_account(self, pubkey: str) -> None:
        """Publish an AccountUpdate whenever `pubkey` changes (kept across reconnects)."""
        pubkey = str(Pubkey.from_string(pubkey))
        if pubkey in self._accounts:
            return
        self._accounts.add(pubkey)
        ws = self._ws
        if ws is not None:
            try:
                await self._subscribe_account(ws, pubkey)
            except Exception as exc:  # noqa: BLE001  (the next connection subscribes it)
                log.warning("watcher.account_subscribe_failed", account=pubkey, error=self.rpc.scrub(repr(exc)))

    async def unwatch_account(self, pubkey: str) -> None:
        pubkey = str(Pubkey.from_string(pubkey))
        self._accounts.discard(pubkey)
        handle = self._account_handles.pop(pubkey, None)
        ws = self._ws
        if handle is None or ws is None:
            return
        self._subs.pop(handle.subscription_id, None)
        try:
            await ws.unsubscribe(handle)
        except Exception as exc:  # noqa: BLE001  (a dead connection already dropped it)
            log.warning("watcher.account_unsubscribe_failed", account=pubkey, error=self.rpc.scrub(repr(exc)))

    async def _subscribe_account(self, ws: SolanaWsClient, pubkey: str) -> None:
        handle = await ws.account_subscribe(
            pubkey=Pubkey.from_string(pubkey), commitment=self.commitment, encoding="base64"
        )
        if self._ws is not ws or pubkey not in self._accounts:
            return
        self._subs[handle.subscription_id] = ("account", pubkey)
        self._account_handles[pubkey] = handle
        for note in self._orphans.pop(handle.subscription_id, []):
            await self._dispatch(note)

    # --- the connection ----------------------------------------------------------------------

    async def _ws_loop(self) -> None:
        attempt = 0
        while True:
            endpoints = self.rpc.ws_endpoints()
            endpoint, url = endpoints[attempt % len(endpoints)]
            backfill: asyncio.Task[None] | None = None
            try:
                async with SolanaWsClient(
                    url, request_timeout=self.timeout, open_timeout=self.timeout, max_size=MAX_FRAME
                ) as ws:
                    self.wallets.buffer_all()  # until each wallet's gap is backfilled
                    await self._subscribe_all(ws)
                    self.connections += 1
                    if self.connections > 1:
                        self.counters["reconnects"] += 1
                        log.info("watcher.reconnected", endpoint=endpoint, subscriptions=len(self._subs))
                    else:
                        log.info("watcher.connected", endpoint=endpoint, subscriptions=len(self._subs))
                    attempt = 0
                    backfill = asyncio.get_running_loop().create_task(
                        self._backfill(), name="quantbot[solana].backfill"
                    )
                    await self._receive(ws)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  (whatever ended the connection, the answer is to reconnect)
                self._connection_lost(endpoint, exc)
                wait_at_least = self._retry_after(exc)
            else:
                wait_at_least = None
            finally:
                self._ws = None
                self._subs.clear()
                self._account_handles.clear()
                self._orphans.clear()
                if backfill is not None:
                    backfill.cancel()
            delay = self.reconnect.delay(attempt)
            if wait_at_least is not None:
                delay = max(delay, wait_at_least)
            attempt += 1
            await self.clock.sleep(delay)

    def _retry_after(self, exc: BaseException) -> float | None:
        """Retry-After of a WebSocket upgrade refused with 429/503, if the server sent one."""
        if isinstance(exc, InvalidStatus) and exc.response.status_code in (429, 503):
            headers = {k: v for k, v in exc.response.headers.raw_items()}
            return retry_after(headers, now=self.clock.now())
        return None

    def _connection_lost(self, endpoint: str, exc: BaseException) -> None:
        if isinstance(exc, ValueError | msgspec.DecodeError) or "JSON" in type(exc).__name__:
            self.counters["malformed"] += 1
        self.counters["disconnects"] += 1
        error = self.rpc.scrub(f"{type(exc).__name__}: {exc}")[:300]
        log.warning("watcher.disconnected", endpoint=endpoint, error=error)

    async def _subscribe_all(self, ws: SolanaWsClient) -> None:
        self._ws = ws
        for program, program_id in self.launch_programs.items():
            mention = RpcTransactionLogsFilterMentions(Pubkey.from_string(program_id))
            handle = await ws.logs_subscribe(filter_=mention, commitment=self.commitment)
            self._subs[handle.subscription_id] = ("launch", program)
        for wallet in self.wallets.wallets:
            mention = RpcTransactionLogsFilterMentions(Pubkey.from_string(wallet))
            handle = await ws.logs_subscribe(filter_=mention, commitment=self.commitment)
            self._subs[handle.subscription_id] = ("wallet", wallet)
        for pubkey in sorted(self._accounts):
            await self._subscribe_account(ws, pubkey)

    async def _backfill(self) -> None:
        try:
            await self.wallets.backfill_all()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store or a bug; wallets stay held and the next connection retries
            self.counters["handler_errors"] += 1
            log.error("watcher.backfill_crashed", exc_info=exc)
            return
        async with self._synced:
            self.syncs += 1
            self._synced.notify_all()

    async def _receive(self, ws: SolanaWsClient) -> None:
        while True:
            note = await ws.recv()
            self.counters["notifications"] += 1
            try:
                await self._dispatch(note)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counters["handler_errors"] += 1
                log.error("watcher.notification_failed", exc_info=exc)

    async def _dispatch(self, note: object) -> None:
        if not isinstance(note, LogsNotification | AccountNotification):
            self.counters["unexpected"] += 1
            return
        target = self._subs.get(note.subscription)
        if target is None:
            # Confirmed but not yet recorded (the reader runs ahead of the subscriber): keep it briefly.
            if sum(len(v) for v in self._orphans.values()) < MAX_ORPHANS:
                self._orphans.setdefault(note.subscription, []).append(note)
            else:
                self.counters["orphans_dropped"] += 1
            return
        kind, key = target
        slot = note.result.context.slot
        if isinstance(note, AccountNotification):
            value = note.result.value
            update = AccountUpdate(
                chain="solana",
                account=key,
                owner=str(value.owner),
                lamports=value.lamports,
                data=bytes(value.data),
                slot=slot,
            )
            await self.bus.publish(update)
            self.counters["account_updates"] += 1
            return
        logs = note.result.value
        err = None if logs.err is None else _err_json(logs.err)
        if kind == "wallet":
            self.wallets.notify(key, str(logs.signature), slot, err)
        else:
            await self._on_launch_logs(key, str(logs.signature), slot, list(logs.logs), err)

    async def _on_launch_logs(self, program: str, signature: str, slot: int, logs: list[str], err: object) -> None:
        if not self._launch_seen.add(signature):
            self.counters["deduped"] += 1
            return
        try:
            events = self.parser.parse_logs(signature=signature, slot=slot, logs=logs, err=err)
        except Exception as exc:
            self.counters["parse_errors"] += 1
            log.error("watcher.parse_failed", signature=signature, program=program, exc_info=exc)
            return
        self.counters["parsed"] += 1
        self._measure_launch_lag(events)
        await self._publish(events)
        markers = POOL_INIT_MARKERS.get(program, ())
        if not events and err is None and any(m in line for line in logs for m in markers):
            task = asyncio.get_running_loop().create_task(self._fetch_launch(signature), name="quantbot[solana].pool")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch_launch(self, signature: str) -> None:
        raw = await fetch_transaction(
            self.rpc,
            signature,
            slots=self._fetch_slots,
            retry=self.wallets.retry,
            clock=self.clock,
            counters=self.counters,
        )
        if raw is None:
            self._launch_seen.discard(signature)  # a later announcement of it may try again
            return
        try:
            events = self.parser.parse_transaction(raw)
        except Exception as exc:
            self.counters["parse_errors"] += 1
            log.error("watcher.parse_failed", signature=signature, exc_info=exc)
            return
        self.counters["parsed"] += 1
        await self._publish(events)

    def _measure_launch_lag(self, events: Sequence[Event]) -> None:
        """now - block time, where the parser could tell the block time from the logs (event timestamps)."""
        for event in events:
            block_time = getattr(event, "block_time", None)
            if isinstance(block_time, datetime):
                self.launch_lag_s = (self.clock.now() - block_time).total_seconds()
                self.launch_lag_max_s = max(self.launch_lag_max_s, self.launch_lag_s)

    async def _publish(self, events: Sequence[Event]) -> None:
        """Publish, dropping an event identical to one already published (logs and transaction paths)."""
        for event in events:
            blank = msgspec.structs.replace(event, id=0, ts=EPOCH, origin="")
            digest = hashlib.blake2b(msgspec.json.encode(blank), digest_size=16).digest()
            if not self._events_seen.add(digest):
                self.counters["deduped_events"] += 1
                continue
            await self.bus.publish(event)
            self.counters["published"] += 1


def _err_json(err: object) -> object:
    to_json = getattr(err, "to_json", None)
    if callable(to_json):
        try:
            return json.loads(to_json())
        except ValueError:
            pass
    return str(err)
