"""The Aptos watcher against the local fullnode endpoint: filtering, cursors, faults, failover, account polling.

The parser here is a deliberately small test parser (one Transfer per `aptos_account::transfer`
whose sender is watched), so what is tested is the watcher's own behaviour; the real AptosParser
is wired by the daemon.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from collections.abc import Set as AbstractSet
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aptos_sdk.account import Account
from aptos_sdk.async_client import RestClient
from aptos_sdk.bcs import Serializer
from aptos_sdk.transactions import EntryFunction, TransactionArgument, TransactionPayload
from aptos_sdk.type_tag import StructTag, TypeTag

from quantbot.chains.aptos.addresses import normalize_address
from quantbot.chains.aptos.client import AptosRest
from quantbot.chains.aptos.decimals import DecimalsCache
from quantbot.chains.aptos.watcher import ACCOUNT_CURSOR, LEDGER_CURSOR, AptosWatcher
from quantbot.clock import WallClock
from quantbot.events import Event, Transfer
from quantbot.localnet.aptos import AptosLocalNode
from quantbot.localnet.aptos_ledger import RouterSwap
from quantbot.localnet.aptos_state import APT
from quantbot.retry import Backoff
from quantbot.store.base import StoreError
from quantbot.store.sqlite import SqliteStore

GUARD_S = 20.0  # a hang guard, not a speed assertion


class QuickClock(WallClock):
    """Wall-clock time, but sleeps are recorded and shortened so tests do not wait out backoffs."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(min(seconds, 0.005))


class SenderTransferParser:
    """Test parser: a Transfer for each `0x1::aptos_account::transfer` whose sender is watched."""

    def __init__(self, *, decimals: Callable[[str], int | None] | None = None) -> None:
        self.rejected: Counter[str] = Counter()
        self.decimals = decimals

    def touches(self, tx: Mapping[str, Any], watched: AbstractSet[str]) -> bool:
        return tx.get("type") == "user_transaction" and normalize_address(tx["sender"]) in watched

    def parse_transaction(self, raw: bytes | str | Mapping[str, Any]) -> list[Event]:
        tx = json.loads(raw) if isinstance(raw, bytes | str) else raw
        payload = tx["payload"]
        if payload["function"] != "0x1::aptos_account::transfer" or not tx["success"]:
            self.rejected["not_a_transfer"] += 1
            return []
        to, amount = payload["arguments"]
        return [
            Transfer(
                chain="aptos",
                source=tx["sender"],
                destination=to,
                mint=APT,
                amount=int(amount),
                decimals=self.decimals(APT) if self.decimals else None,
                tx=tx["hash"],
                slot=int(tx["version"]),
            )
        ]


class Collector:
    """Stands in for the bus: records what the watcher publishes and lets a test await a count."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()

    async def publish(self, event: Event) -> Event:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        return event

    async def wait_for(self, count: int) -> list[Event]:
        async with asyncio.timeout(GUARD_S), self._changed:
            await self._changed.wait_for(lambda: len(self.events) >= count)
        return self.events


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "quantbot.db")
    await s.start()
    yield s
    await s.stop()


def make_watcher(
    nodes: list[str], store: SqliteStore, bus: Collector, clock: QuickClock, **options: Any
) -> AptosWatcher:
    rest = AptosRest(
        nodes=nodes, clock=clock, timeout=options.pop("timeout", 5.0), backoff=Backoff(base=0.5, cap=4.0), attempts=3
    )
    decimals = DecimalsCache(rest=rest)
    return AptosWatcher(
        bus=bus,
        store=store,
        parser=SenderTransferParser(decimals=decimals.get),
        rest=rest,
        clock=clock,
        decimals=decimals,
        poll_interval=0.5,
        **options,
    )


async def transfer(rest: RestClient, sender: Account, amount: int) -> str:
    tx_hash = await rest.bcs_transfer(sender, Account.generate().address(), amount)
    await rest.wait_for_transaction(tx_hash)
    return tx_hash


@pytest.fixture
async def sdk(aptos_node: AptosLocalNode) -> AsyncIterator[RestClient]:
    client = RestClient(aptos_node.url)
    yield client
    await client.close()


def funded(node: AptosLocalNode, n: int) -> list[Account]:
    accounts = [Account.generate() for _ in range(n)]
    for account in accounts:
        node.fund(str(account.address()), 10**10)
    return accounts


async def test_ledger_stream_publishes_only_transactions_of_watched_addresses(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    alice, carol = funded(aptos_node, 2)
    bus, clock = Collector(), QuickClock()
    watcher = make_watcher([aptos_node.url], store, bus, clock, wallets=[str(alice.address())])
    await watcher.start()
    try:
        await transfer(sdk, carol, 1)
        mine = [await transfer(sdk, alice, 100), await transfer(sdk, carol, 2), await transfer(sdk, alice, 200)]
        events = await bus.wait_for(2)
    finally:
        await watcher.stop()

    assert [e.tx for e in events] == [mine[0], mine[2]]
    first = events[0]
    assert isinstance(first, Transfer)
    assert (first.amount, first.decimals, first.chain) == (100, 8, "aptos")
    assert first.slot == int((await sdk.transaction_by_hash(mine[0]))["version"])
    stats = watcher.stats()
    assert stats["versions_behind"] == 0 and stats["lag_s"] is not None and stats["lag_s"] >= 0
    assert stats["published"] == 2 and stats["errors"] == 0
    assert await store.get_cursor(LEDGER_CURSOR) == str(aptos_node.ledger.version + 1)


async def test_restart_resumes_from_the_cursor_with_no_gap_and_no_duplicate(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    (alice,) = funded(aptos_node, 1)
    before = [await transfer(sdk, alice, n) for n in range(1, 4)]
    bus = Collector()
    first = make_watcher(
        [aptos_node.url], store, bus, QuickClock(), wallets=[str(alice.address())], start_version=0, page_size=2
    )
    await first.start()
    await bus.wait_for(3)
    await first.stop()

    during_downtime = [await transfer(sdk, alice, n) for n in range(4, 7)]
    second = make_watcher([aptos_node.url], store, bus, QuickClock(), wallets=[str(alice.address())], page_size=2)
    await second.start()
    try:
        after = [await transfer(sdk, alice, 7)]
        events = await bus.wait_for(7)
    finally:
        await second.stop()

    assert [e.tx for e in events] == before + during_downtime + after  # type: ignore[attr-defined]


async def test_first_start_without_a_cursor_begins_at_the_head_not_at_genesis(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    (alice,) = funded(aptos_node, 1)
    await transfer(sdk, alice, 1)
    bus = Collector()
    watcher = make_watcher([aptos_node.url], store, bus, QuickClock(), wallets=[str(alice.address())])
    await watcher.start()
    try:
        new = await transfer(sdk, alice, 2)
        events = await bus.wait_for(1)
    finally:
        await watcher.stop()
    assert [e.tx for e in events] == [new]  # type: ignore[attr-defined]


async def test_rate_limits_server_errors_and_malformed_pages_are_retried_with_retry_after(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    (alice,) = funded(aptos_node, 1)
    sent = [await transfer(sdk, alice, n) for n in (1, 2)]
    aptos_node.fail("status", status=429, retry_after="3", path="/transactions")
    aptos_node.fail("status", status=502, path="/transactions")
    aptos_node.fail("malformed", path="/transactions")
    bus, clock = Collector(), QuickClock()
    watcher = make_watcher([aptos_node.url], store, bus, clock, wallets=[str(alice.address())], start_version=0)
    await watcher.start()
    try:
        events = await bus.wait_for(2)
    finally:
        await watcher.stop()

    assert [e.tx for e in events] == sent  # type: ignore[attr-defined]
    assert 3.0 in clock.sleeps  # Retry-After honoured (the jittered backoff alone stays under 4s here)
    stats = watcher.stats()
    assert stats["rate_limited"] == 1
    assert stats["errors"] >= 3


async def test_fails_over_to_the_next_node_on_timeouts_and_outage(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    (alice,) = funded(aptos_node, 1)
    sent = [await transfer(sdk, alice, n) for n in (1, 2)]
    aptos_node.fail("status", status=503, times=None)  # the first node is down for good
    async with AptosLocalNode(ledger=aptos_node.ledger) as backup:
        backup.fail("delay", delay=30.0, path="/transactions")  # and the backup stalls once
        bus = Collector()
        watcher = make_watcher(
            [aptos_node.url, backup.url],
            store,
            bus,
            QuickClock(),
            wallets=[str(alice.address())],
            start_version=0,
            timeout=1.0,
        )
        await watcher.start()
        try:
            events = await bus.wait_for(2)
        finally:
            await watcher.stop()

        assert [e.tx for e in events] == sent  # type: ignore[attr-defined]
        stats = watcher.stats()
        assert stats["node"] == backup.url
        assert stats["failovers"] >= 3  # down -> backup (stalls) -> down -> backup
        assert backup.hits["GET /transactions"] >= 2
        assert aptos_node.hits["GET /transactions"] >= 2


async def test_bad_transactions_are_counted_and_skipped_without_stopping_the_stream(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore, aptos_fixtures: Path
) -> None:
    (alice,) = funded(aptos_node, 1)
    recorded = json.loads((aptos_fixtures / "pancakeswap_swap_exact_input_v223495386.json").read_text())
    recorded = recorded[0] if isinstance(recorded, list) else recorded
    broken = {**recorded, "hash": "0x" + "ee" * 32, "payload": None}
    aptos_node.add_transactions([recorded, broken])
    good = await transfer(sdk, alice, 5)
    bus = Collector()
    watcher = make_watcher(
        [aptos_node.url],
        store,
        bus,
        QuickClock(),
        wallets=[str(alice.address()), recorded["sender"]],
        start_version=0,
    )
    await watcher.start()
    try:
        events = await bus.wait_for(1)
    finally:
        await watcher.stop()

    assert [e.tx for e in events] == [good]  # type: ignore[attr-defined]
    stats = watcher.stats()
    assert stats["rejected_by_reason"] == {"not_a_transfer": 1, "parser_error": 1}
    assert stats["rejected"] == 2


async def test_a_pruned_cursor_skips_to_the_oldest_version_and_counts_the_gap(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    (alice,) = funded(aptos_node, 1)
    await transfer(sdk, alice, 1)
    aptos_node.ledger.oldest_version = aptos_node.ledger.version + 1
    await store.set_cursor(LEDGER_CURSOR, "1", now=WallClock().now())
    bus = Collector()
    watcher = make_watcher([aptos_node.url], store, bus, QuickClock(), wallets=[str(alice.address())])
    await watcher.start()
    try:
        later = await transfer(sdk, alice, 2)
        events = await bus.wait_for(1)
    finally:
        await watcher.stop()
    assert [e.tx for e in events] == [later]  # type: ignore[attr-defined]
    assert watcher.stats()["gaps"] == 1


async def test_a_node_that_pruned_what_the_archive_still_has_is_not_a_gap(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    """A blip on the archive node sends the watcher to a pruning fullnode, which answers "pruned" for the versions
    it wants: the archive is asked again rather than the history skipped."""
    (alice,) = funded(aptos_node, 1)
    sent = [await transfer(sdk, alice, n) for n in (1, 2)]
    aptos_node.fail("status", status=503, times=1, path="/v1/transactions")
    async with AptosLocalNode(ledger=aptos_node.ledger, prunes_below=aptos_node.ledger.version + 1) as pruning:
        bus = Collector()
        watcher = make_watcher(
            [aptos_node.url, pruning.url], store, bus, QuickClock(), wallets=[str(alice.address())], start_version=0
        )
        await watcher.start()
        try:
            later = await transfer(sdk, alice, 3)
            events = await bus.wait_for(3)
        finally:
            await watcher.stop()
    assert [e.tx for e in events] == [*sent, later]  # type: ignore[attr-defined]
    assert watcher.stats()["gaps"] == 0


async def test_account_polling_follows_each_wallet_from_its_own_sequence_cursor(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    alice, bob, carol = funded(aptos_node, 3)
    early = await transfer(sdk, alice, 1)  # before the first start: not replayed (starts at the account's head)
    wallets = [str(alice.address()), str(bob.address())]
    bus = Collector()
    watcher = make_watcher([aptos_node.url], store, bus, QuickClock(), source="accounts", wallets=wallets)
    await watcher.start()
    try:
        sent = [await transfer(sdk, alice, 2), await transfer(sdk, bob, 3), await transfer(sdk, carol, 4)]
        await bus.wait_for(2)
    finally:
        await watcher.stop()
    assert early not in [e.tx for e in bus.events]  # type: ignore[attr-defined]

    offline = await transfer(sdk, bob, 5)
    restarted = make_watcher([aptos_node.url], store, bus, QuickClock(), source="accounts", wallets=wallets)
    await restarted.start()
    try:
        events = await bus.wait_for(3)
    finally:
        await restarted.stop()

    assert sorted(e.tx for e in events) == sorted([sent[0], sent[1], offline])  # type: ignore[attr-defined]
    assert await store.get_cursor(ACCOUNT_CURSOR + normalize_address(str(alice.address()))) == "2"
    assert await store.get_cursor(ACCOUNT_CURSOR + normalize_address(str(bob.address()))) == "2"
    assert restarted.stats()["cursor"][normalize_address(str(bob.address()))] == 2


async def test_decimals_are_read_from_coin_info_and_fa_metadata_once_and_cached(store: SqliteStore) -> None:
    usdc = "0xcafe::usdc::USDC"
    router = RouterSwap(address="0xbeef", pool="0x5001", rates={(APT, usdc): Decimal("0.05")})
    async with AptosLocalNode(router=router) as node:
        node.add_coin(usdc, name="USD Coin", symbol="USDC", decimals=6)
        node.add_fungible_asset("0x357b", name="Tether", symbol="USDt", decimals=6)
        rest = AptosRest(nodes=[node.url], clock=QuickClock())
        cache = DecimalsCache(rest=rest)
        try:
            assert cache.get(usdc) is None
            assert await cache.resolve("0x0000cafe::usdc::USDC") == 6
            assert await cache.resolve("0x357b") == 6
            assert await cache.resolve("0x" + "0" * 60 + "357b") == 6
            assert await cache.resolve("0xdead::nope::NOPE") is None
            assert await cache.resolve("0xdead::nope::NOPE") is None
            assert cache.get(usdc) == 6 and cache.get("0xa") == 8 and cache.get(APT) == 8
            assert cache.lookups == 3
        finally:
            await rest.close()


async def test_not_found_past_the_head_counts_as_caught_up_not_as_an_error(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    (alice,) = funded(aptos_node, 1)
    aptos_node.fail("status", status=404, method="GET", path="/transactions", times=3)
    bus = Collector()
    watcher = make_watcher([aptos_node.url], store, bus, QuickClock(), wallets=[str(alice.address())])
    await watcher.start()
    try:
        sent = await transfer(sdk, alice, 9)
        events = await bus.wait_for(1)
    finally:
        await watcher.stop()
    assert [e.tx for e in events] == [sent]  # type: ignore[attr-defined]
    assert watcher.stats()["errors"] == 0


class FlakyCursorStore:
    """The real store, except that the first cursor write fails (a locked or unreachable database)."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.failures = 1

    async def get_cursor(self, name: str) -> str | None:
        return await self.inner.get_cursor(name)

    async def set_cursor(self, name: str, value: str, *, now: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked")
        await self.inner.set_cursor(name, value, now=now)


async def test_a_failed_cursor_write_is_counted_and_nothing_is_published_twice(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore
) -> None:
    (alice,) = funded(aptos_node, 1)
    first = await transfer(sdk, alice, 1)
    bus = Collector()
    rest = AptosRest(nodes=[aptos_node.url], clock=QuickClock())
    watcher = AptosWatcher(
        bus=bus,
        store=FlakyCursorStore(store),
        parser=SenderTransferParser(),
        rest=rest,
        clock=QuickClock(),
        wallets=[str(alice.address())],
        start_version=0,
        poll_interval=0.5,
    )
    await watcher.start()
    try:
        await bus.wait_for(1)
        second = await transfer(sdk, alice, 2)
        events = await bus.wait_for(2)
    finally:
        await watcher.stop()
    assert [e.tx for e in events] == [first, second]  # type: ignore[attr-defined]
    assert watcher.stats()["errors"] == 1
    assert await store.get_cursor(LEDGER_CURSOR) == str(aptos_node.ledger.version + 1)


@pytest.mark.parametrize("source", ["ledger", "accounts"])
async def test_what_happens_while_stopped_right_after_a_first_start_is_not_lost(
    aptos_node: AptosLocalNode, sdk: RestClient, store: SqliteStore, source: str
) -> None:
    (alice,) = funded(aptos_node, 1)
    bus = Collector()
    first = make_watcher([aptos_node.url], store, bus, QuickClock(), source=source, wallets=[str(alice.address())])
    await first.start()
    await first.stop()  # nothing matched yet: only the starting point was stored

    while_down = await transfer(sdk, alice, 3)
    second = make_watcher([aptos_node.url], store, bus, QuickClock(), source=source, wallets=[str(alice.address())])
    await second.start()
    try:
        events = await bus.wait_for(1)
    finally:
        await second.stop()
    assert [e.tx for e in events] == [while_down]  # type: ignore[attr-defined]


async def test_decimals_of_assets_in_a_matched_transaction_are_known_before_it_is_parsed(store: SqliteStore) -> None:
    usdc = "0xcafe::usdc::USDC"
    router = RouterSwap(address="0xbeef", pool="0x5001", rates={(APT, usdc): Decimal("0.05")})
    async with AptosLocalNode(router=router) as node:
        node.add_coin(usdc, name="USD Coin", symbol="USDC", decimals=6)
        node.set_balance("0x5001", usdc, 10**12)
        (trader,) = funded(node, 1)
        seen: list[int | None] = []

        class SwapParser(SenderTransferParser):
            def parse_transaction(self, raw: bytes | str | Mapping[str, Any]) -> list[Event]:
                assert self.decimals is not None
                seen.append(self.decimals(usdc))  # the parser asks synchronously: it must already be cached
                return []

        rest = AptosRest(nodes=[node.url], clock=QuickClock())
        decimals = DecimalsCache(rest=rest)
        watcher = AptosWatcher(
            bus=Collector(),
            store=store,
            parser=SwapParser(decimals=decimals.get),
            rest=rest,
            clock=QuickClock(),
            decimals=decimals,
            wallets=[str(trader.address())],
            start_version=0,
            poll_interval=0.5,
        )
        sdk = RestClient(node.url)
        try:
            payload = EntryFunction.natural(
                "0x" + "0" * 60 + "beef::router",
                "swap_exact_input",
                [TypeTag(StructTag.from_str(APT)), TypeTag(StructTag.from_str(usdc))],
                [TransactionArgument(10**8, Serializer.u64), TransactionArgument(1, Serializer.u64)],
            )
            signed = await sdk.create_bcs_signed_transaction(trader, TransactionPayload(payload))
            await sdk.submit_bcs_transaction(signed)
            await watcher.start()
            async with asyncio.timeout(GUARD_S):
                while watcher.stats()["parsed"] < 1:  # noqa: ASYNC110  (the watcher task counts it)
                    await asyncio.sleep(0.005)
        finally:
            await watcher.stop()
            await sdk.close()
        assert seen == [6]
