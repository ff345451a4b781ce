"""SolanaWatcher against the local endpoint: live notifications, gap-free backfill, dedup, cursors,
account updates across reconnects, and bad input that is counted rather than fatal.

The watcher's own behaviour is under test, so it is given a small test parser (each fetched
transaction becomes a Transfer from its first account key; pump.fun create logs become a
TokenLaunch). The real SolanaParser is wired in by the daemon.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from structlog.testing import capture_logs

from quantbot.bus import EventBus
from quantbot.chains.solana.rpc import SolanaRpcPool
from quantbot.chains.solana.wallets import Cursor
from quantbot.chains.solana.watcher import SolanaWatcher, TxParser
from quantbot.clock import WallClock
from quantbot.config import SolanaConfig, SolanaEndpointConfig, SolanaLaunchProgram, SolanaWalletConfig
from quantbot.events import AccountUpdate, Event, TokenLaunch, Transfer
from quantbot.localnet.solana import LocalSolana
from quantbot.retry import Backoff
from quantbot.store.sqlite import SqliteStore
from tests.solana_chain import RecordingClock, fund, sol_transfer

GUARD_S = 20.0  # a hang guard, not a speed assertion
LAUNCH_TIME = datetime(2026, 1, 1, tzinfo=UTC)


class FirstKeyParser:
    """Test parser: a fetched transaction -> Transfer(source = first account key); create logs -> TokenLaunch."""

    def __init__(self, *, explode_first: bool = False) -> None:
        self.rejected: Counter[str] = Counter()
        self.explode_first = explode_first
        self.fetched: list[str] = []

    def parse_transaction(self, raw: bytes | str | Mapping[str, Any]) -> list[Event]:
        assert isinstance(raw, Mapping)
        message = raw["transaction"]["message"]
        keys = [k["pubkey"] if isinstance(k, Mapping) else k for k in message["accountKeys"]]
        sig = raw["transaction"]["signatures"][0]
        self.fetched.append(sig)
        if self.explode_first and len(self.fetched) == 1:
            raise RuntimeError("parser bug")
        meta = raw["meta"]
        moved = meta["preBalances"][1] - meta["postBalances"][1]
        return [
            Transfer(
                chain="solana", source=keys[0], destination=keys[1], mint="SOL", amount=-moved, tx=sig, slot=raw["slot"]
            )
        ]

    def parse_logs(
        self, *, signature: str, slot: int, logs: Sequence[str], err: object = None, block_time: datetime | None = None
    ) -> list[Event]:
        if err is not None:
            self.rejected["failed_tx"] += 1
            return []
        if not any(line.startswith("Program log: Instruction: Create") for line in logs):
            self.rejected["not_a_launch"] += 1
            return []
        launch = TokenLaunch(
            chain="solana", mint=f"mint-of-{signature[:8]}", source="pumpfun", tx=signature, block_time=LAUNCH_TIME
        )
        return [launch]


@dataclass
class Harness:
    node: LocalSolana
    watcher: SolanaWatcher
    bus: EventBus
    store: SqliteStore
    events: list[Event] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def until(self, predicate: Callable[[list[Event]], bool]) -> None:
        async with asyncio.timeout(GUARD_S), self.changed:
            await self.changed.wait_for(lambda: predicate(self.events))

    async def settled(self) -> None:
        """Everything queued is committed and delivered."""
        async with asyncio.timeout(GUARD_S):
            await self.watcher.wallets.drained()
            await self.bus.drain(GUARD_S)

    def transfers(self) -> list[str]:
        return [e.tx for e in self.events if isinstance(e, Transfer)]


@asynccontextmanager
async def watching(
    node: LocalSolana,
    store: SqliteStore,
    *,
    wallets: Sequence[str] = (),
    launch_programs: tuple[SolanaLaunchProgram, ...] = (),
    parser: TxParser | None = None,
    page_size: int = 100,
    max_pages: int = 10,
    clock: WallClock | None = None,
) -> AsyncIterator[Harness]:
    clock = clock or WallClock()
    endpoint = SolanaEndpointConfig(http=node.http_url, ws=node.ws_url, timeout=5.0, rps=0)
    config = SolanaConfig(
        enabled=True,
        endpoints=(endpoint,),
        wallets=tuple(SolanaWalletConfig(address=w) for w in wallets),
        launch_programs=launch_programs,
        backfill_page_size=page_size,
        backfill_max_pages=max_pages,
    )
    fast = Backoff(base=0.01, cap=0.05)
    async with EventBus(clock=clock) as bus, SolanaRpcPool(endpoints=[endpoint], clock=clock, backoff=fast) as pool:
        watcher = SolanaWatcher(
            bus=bus,
            rpc=pool,
            parser=parser or FirstKeyParser(),
            store=store,
            clock=clock,
            config=config,
            reconnect=fast,
            retry=fast,
        )
        harness = Harness(node=node, watcher=watcher, bus=bus, store=store)

        async def record(event: Event) -> None:
            async with harness.changed:
                harness.events.append(event)
                harness.changed.notify_all()

        bus.subscribe("#", record, name="test-recorder")
        await watcher.start()
        try:
            async with asyncio.timeout(GUARD_S):
                await watcher.wait_synced()
            yield harness
        finally:
            await watcher.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "q.db") as s:
        yield s


class Whale:
    """A funded wallet whose SOL transfers are real transactions landing on the local node."""

    def __init__(self, node: LocalSolana) -> None:
        self.node = node
        self.key = Keypair()
        self.address = str(self.key.pubkey())
        self.blockhash = Hash.from_string(str(node.ledger.svm.latest_blockhash()))
        self.n = 0
        fund(node, self.key.pubkey())

    async def transfer(self) -> str:
        self.n += 1
        tx = sol_transfer(self.key, Keypair().pubkey(), 10**7 + self.n, self.blockhash)
        # Sent over real JSON-RPC, so the node executes, records and announces it like mainnet.
        async with AsyncClient(self.node.http_url) as client:
            return str((await client.send_raw_transaction(bytes(tx))).value)


async def test_wallet_transactions_are_fetched_parsed_and_published_in_order(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    whale = Whale(local_solana)
    async with watching(local_solana, store, wallets=[whale.address]) as h:
        sent = [await whale.transfer() for _ in range(3)]
        await h.until(lambda ev: len(ev) >= 3)
        await h.settled()
        assert h.transfers() == sent
        assert all(isinstance(e, Transfer) and e.source == whale.address for e in h.events)
        cursor = await store.get_cursor(f"solana.wallet.{whale.address}")
        assert cursor is not None and Cursor.decode(cursor).signature == sent[-1]
        stats = h.watcher.stats()
        assert stats["parsed"] == 3 and stats["published"] == 3 and stats["reconnects"] == 0
        assert stats["lag_s"] is not None


async def test_killed_websocket_gap_is_backfilled_with_no_missed_and_no_duplicate_signatures(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    whale = Whale(local_solana)
    async with watching(local_solana, store, wallets=[whale.address], page_size=2) as h:
        before = [await whale.transfer() for _ in range(2)]
        await h.until(lambda ev: len(ev) >= 2)
        local_solana.faults.refuse_ws = True
        await local_solana.drop_connections(abrupt=True)
        during = [await whale.transfer() for _ in range(5)]  # nobody is subscribed: nothing announced
        local_solana.faults.refuse_ws = False
        async with asyncio.timeout(GUARD_S):
            await h.watcher.wait_synced(2)
        after = [await whale.transfer()]
        await h.until(lambda ev: len(ev) >= 8)
        await h.settled()
        assert h.transfers() == before + during + after
        stats = h.watcher.stats()
        assert stats["reconnects"] == 1 and stats["backfilled"] == 5
        assert local_solana.calls["getSignaturesForAddress"] >= 3  # pages of 2


async def test_the_same_signature_announced_twice_is_published_once(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    whale = Whale(local_solana)
    async with watching(local_solana, store, wallets=[whale.address]) as h:
        sig = await whale.transfer()
        await local_solana.announce(sig)
        await h.until(lambda ev: len(ev) >= 1)
        marker = await whale.transfer()
        await h.until(lambda ev: len(ev) >= 2)
        await h.settled()
        assert h.transfers() == [sig, marker]
        assert h.watcher.stats()["deduped"] == 1


async def test_cursor_survives_a_restart_and_only_the_missed_transactions_are_published(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    whale = Whale(local_solana)
    async with watching(local_solana, store, wallets=[whale.address]) as h:
        seen = [await whale.transfer() for _ in range(2)]
        await h.until(lambda ev: len(ev) >= 2)
        await h.settled()
        assert h.transfers() == seen
    missed = [await whale.transfer() for _ in range(3)]
    async with watching(local_solana, store, wallets=[whale.address]) as h2:
        await h2.until(lambda ev: len(ev) >= 3)
        await h2.settled()
        assert h2.transfers() == missed


async def test_first_start_does_not_replay_history_but_remembers_where_it_stands(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    whale = Whale(local_solana)
    old = [await whale.transfer() for _ in range(2)]
    async with watching(local_solana, store, wallets=[whale.address]) as h:
        new = await whale.transfer()
        await h.until(lambda ev: len(ev) >= 1)
        await h.settled()
        assert h.transfers() == [new]
    assert old[-1] not in h.transfers()


async def test_backfill_longer_than_the_page_budget_keeps_the_newest_and_counts_the_truncation(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    whale = Whale(local_solana)
    async with watching(local_solana, store, wallets=[whale.address]) as h:
        await whale.transfer()
        await h.until(lambda ev: len(ev) >= 1)
        await h.settled()
    missed = [await whale.transfer() for _ in range(5)]
    async with watching(local_solana, store, wallets=[whale.address], page_size=2, max_pages=2) as h2:
        await h2.until(lambda ev: len(ev) >= 4)
        await h2.settled()
        assert h2.transfers() == missed[-4:]
        assert h2.watcher.stats()["backfill_truncated"] == 1


async def test_pumpfun_launch_is_decoded_from_notification_logs_without_fetching_the_transaction(
    local_solana: LocalSolana, store: SqliteStore, solana_fixtures: Path
) -> None:
    async with watching(local_solana, store, launch_programs=("pumpfun", "raydium_v4")) as h:
        sig = local_solana.load_transaction(solana_fixtures / "pumpfun_create_v2_gettransaction_jsonparsed.json")
        assert await local_solana.announce(sig) == 1  # only the pump.fun subscription matches
        await h.until(lambda ev: len(ev) >= 1)
        [launch] = h.events
        assert isinstance(launch, TokenLaunch) and launch.tx == sig
        assert local_solana.calls["getTransaction"] == 0
        assert len(local_solana.subscriptions("logs")) == 2
        lag = h.watcher.stats()["launch_lag_s"]
        assert lag is not None and lag > 0  # measured against the block time the parser reported


async def test_raydium_pool_initialisation_is_fetched_and_parsed_as_a_transaction(
    local_solana: LocalSolana, store: SqliteStore, solana_fixtures: Path
) -> None:
    async with watching(local_solana, store, launch_programs=("raydium_v4",)) as h:
        sig = local_solana.load_transaction(solana_fixtures / "raydium_v4_initialize2_gettransaction_jsonparsed.json")
        await local_solana.announce(sig)
        await h.until(lambda ev: len(ev) >= 1)
        assert h.transfers() == [sig]  # the test parser turned the fetched transaction into a Transfer
        assert local_solana.calls["getTransaction"] == 1


async def test_a_pool_initialisation_whose_fetch_fails_for_a_moment_is_fetched_again(
    local_solana: LocalSolana, store: SqliteStore, solana_fixtures: Path
) -> None:
    async with watching(local_solana, store, launch_programs=("raydium_v4",)) as h:
        sig = local_solana.load_transaction(solana_fixtures / "raydium_v4_initialize2_gettransaction_jsonparsed.json")
        local_solana.faults.only_methods = frozenset({"getTransaction"})
        local_solana.faults.server_errors = 3  # a short outage of the node's getTransaction
        await local_solana.announce(sig)
        await h.until(lambda ev: len(ev) >= 1)
        assert h.transfers() == [sig]


async def test_account_updates_arrive_and_survive_a_reconnect(local_solana: LocalSolana, store: SqliteStore) -> None:
    watched, early = str(Keypair().pubkey()), str(Keypair().pubkey())
    async with watching(local_solana, store) as h:
        await h.watcher.watch_account(watched)
        await local_solana.set_account(watched, data=b"first", owner=str(Pubkey.default()))
        await h.until(lambda ev: len(ev) >= 1)
        await local_solana.drop_connections()
        async with asyncio.timeout(GUARD_S):
            await h.watcher.wait_synced(2)
        await local_solana.set_account(watched, data=b"second", owner=str(Pubkey.default()))
        await h.until(lambda ev: len(ev) >= 2)
        updates = [e for e in h.events if isinstance(e, AccountUpdate)]
        assert [u.data for u in updates] == [b"first", b"second"]
        assert all(u.account == watched and u.owner == str(Pubkey.default()) for u in updates)
        assert updates[1].slot > updates[0].slot
        await h.watcher.unwatch_account(watched)
        assert local_solana.subscriptions("account") == []
        assert h.watcher.stats()["reconnects"] == 1
    # An account asked for before the connection exists is subscribed when it opens.
    clock = WallClock()
    endpoint = SolanaEndpointConfig(http=local_solana.http_url, ws=local_solana.ws_url, rps=0)
    async with EventBus(clock=clock) as bus, SolanaRpcPool(endpoints=[endpoint], clock=clock) as pool:
        watcher = SolanaWatcher(
            bus=bus,
            rpc=pool,
            parser=FirstKeyParser(),
            store=store,
            clock=clock,
            config=SolanaConfig(enabled=True, endpoints=(endpoint,), launch_programs=()),
        )
        await watcher.watch_account(early)
        await watcher.start()
        try:
            async with asyncio.timeout(GUARD_S):
                await watcher.wait_synced()
            assert local_solana.subscriptions("account") == [("account", (early, "base64"))]
        finally:
            await watcher.stop()


async def test_malformed_notifications_are_counted_and_the_watcher_recovers_without_losing_transactions(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    whale = Whale(local_solana)
    async with watching(local_solana, store, wallets=[whale.address]) as h:
        first = await whale.transfer()
        await h.until(lambda ev: len(ev) >= 1)
        await local_solana.push_raw('{"jsonrpc":"2.0","method":"logsNotification","params":{"result":42')
        async with asyncio.timeout(GUARD_S):
            await h.watcher.wait_synced(2)
        await local_solana.push_raw(
            '{"jsonrpc":"2.0","method":"logsNotification","params":{"result":{"value":7},"subscription":1}}'
        )
        async with asyncio.timeout(GUARD_S):
            await h.watcher.wait_synced(3)
        second = await whale.transfer()
        await h.until(lambda ev: len(ev) >= 2)
        await h.settled()
        assert h.transfers() == [first, second]
        stats = h.watcher.stats()
        assert stats["malformed"] == 2 and stats["reconnects"] == 2


async def test_a_parser_error_is_counted_and_later_transactions_still_flow(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    whale = Whale(local_solana)
    async with watching(local_solana, store, wallets=[whale.address], parser=FirstKeyParser(explode_first=True)) as h:
        await whale.transfer()
        good = await whale.transfer()
        await h.until(lambda ev: len(ev) >= 1)
        await h.settled()
        assert h.transfers() == [good]
        stats = h.watcher.stats()
        assert stats["parse_errors"] == 1 and stats["published"] == 1


async def test_rpc_outage_during_fetch_holds_the_cursor_and_a_later_backfill_recovers_the_transaction(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    whale = Whale(local_solana)
    async with watching(local_solana, store, wallets=[whale.address]) as h:
        local_solana.faults.only_methods = frozenset({"getTransaction"})
        local_solana.faults.server_errors = 12  # 4 fetch attempts x 3 pool rounds: the first fetch fails
        sig = await whale.transfer()
        await h.until(lambda ev: len(ev) >= 1)
        await h.settled()
        assert h.transfers() == [sig]
        assert h.watcher.stats()["rpc_errors"] >= 1
        cursor = await store.get_cursor(f"solana.wallet.{whale.address}")
        assert cursor is not None and Cursor.decode(cursor).signature == sig


async def test_websocket_fails_over_to_the_next_endpoint_and_keeps_its_url_secret(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    clock = WallClock()
    broken = SolanaEndpointConfig(http=local_solana.http_url, ws=f"{local_solana.ws_url}SECRET?api-key=SECRET", rps=0)
    good = SolanaEndpointConfig(http=local_solana.http_url, ws=local_solana.ws_url, rps=0)
    config = SolanaConfig(enabled=True, endpoints=(broken, good), launch_programs=("pumpfun",))
    with capture_logs() as logs:
        async with EventBus(clock=clock) as bus, SolanaRpcPool(endpoints=config.endpoints, clock=clock) as pool:
            watcher = SolanaWatcher(
                bus=bus,
                rpc=pool,
                parser=FirstKeyParser(),
                store=store,
                clock=clock,
                config=config,
                reconnect=Backoff(base=0.01, cap=0.05),
            )
            await watcher.start()
            try:
                async with asyncio.timeout(GUARD_S):
                    await watcher.wait_synced()
                assert len(local_solana.subscriptions("logs")) == 1
            finally:
                await watcher.stop()
    disconnects = [entry for entry in logs if entry["event"] == "watcher.disconnected"]
    assert disconnects and all("SECRET" not in str(entry) for entry in logs)


async def test_websocket_upgrade_refused_with_429_waits_for_retry_after_then_connects(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    local_solana.faults.ws_rate_limited = 1
    local_solana.faults.retry_after = "0.3"
    clock = RecordingClock()
    async with watching(local_solana, store, launch_programs=("pumpfun",), clock=clock) as h:
        assert h.watcher.stats()["connections"] == 1
    assert local_solana.calls["ws_429"] == 1
    assert clock.sleeps and clock.sleeps[0] >= 0.29


async def test_after_a_reconnect_no_wallet_loses_its_gap_while_another_backfills(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    """A live notification for the second wallet, arriving while the first still backfills, must not move the second
    wallet's cursor past the transaction it missed while disconnected."""
    w1, w2 = Whale(local_solana), Whale(local_solana)
    async with watching(local_solana, store, wallets=[w1.address, w2.address]) as h:
        first = await w2.transfer()
        await h.until(lambda ev: len(ev) >= 1)
        await h.settled()
        local_solana.faults.refuse_ws = True
        await local_solana.drop_connections(abrupt=True)
        missed = await w2.transfer()  # while disconnected
        local_solana.faults.only_methods = frozenset({"getSignaturesForAddress"})
        local_solana.faults.delay = 1.0  # a slow provider: wallet 1's backfill takes a while
        local_solana.faults.refuse_ws = False
        async with asyncio.timeout(GUARD_S):
            while len(local_solana.subscriptions("logs")) < 2:  # noqa: ASYNC110  (the node has no event for it)
                await asyncio.sleep(0.02)
        live = await w2.transfer()  # announced live while wallet 1 is still backfilling
        async with asyncio.timeout(GUARD_S):
            await h.watcher.wait_synced(2)
        await h.settled()
        local_solana.faults.delay = 0
    assert h.transfers() == [first, missed, live]


async def test_a_backfill_never_republishes_history_older_than_the_cursor(
    local_solana: LocalSolana, store: SqliteStore
) -> None:
    """An endpoint that does not know the cursor's signature (a lagging one) answers `until` with its whole history."""
    whale = Whale(local_solana)
    old = [await whale.transfer() for _ in range(3)]
    unknown = str(Keypair().sign_message(b"not on this node"))
    cursor = Cursor(unknown, local_solana.slot + 5)
    await store.set_cursor(f"solana.wallet.{whale.address}", cursor.encode(), now=WallClock().now())
    async with watching(local_solana, store, wallets=[whale.address]) as h:
        async with asyncio.timeout(GUARD_S):
            await h.watcher.wait_synced(1)
        await h.settled()
        new = await whale.transfer()
        await h.until(lambda ev: len(ev) >= 1)
        await h.settled()
    assert not set(old) & set(h.transfers())
    assert h.transfers() == [new]
