"""The Store contract, run against both backends: SQLite and a throw-away PostgreSQL database."""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from quantbot.clock import SimClock
from quantbot.store import (
    DuplicateOrder,
    EquityRow,
    FillRow,
    OrderRow,
    PositionRow,
    RoundTrip,
    SignalRow,
    Store,
    StoreError,
    TripStats,
)
from quantbot.store.postgres import PostgresStore
from quantbot.store.schema import LATEST
from quantbot.store.sqlite import SqliteStore
from quantbot.store.writer import WriteBehind

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PG_ADMIN_DSN = os.environ.get("QUANTBOT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg_reachable() -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


@asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards. Skips (fails under CI) if absent."""
    import asyncpg

    problem = await _pg_reachable()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_ADMIN_DSN} is required under CI: {problem}")
        pytest.skip(f"PostgreSQL at {PG_ADMIN_DSN} is not reachable ({problem}); run scripts/services")
    name = f"quantbot_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        async with SqliteStore(tmp_path / "quantbot.db") as s:
            yield s
    else:
        async with pg_database() as dsn, PostgresStore(dsn) as s:
            yield s


def order(n: int = 1, **fields: object) -> OrderRow:
    base: dict[str, object] = {
        "order_id": f"o{n}",
        "idempotency_key": f"k{n}",
        "strategy": "s",
        "chain": "solana",
        "side": "buy",
        "token": "Mint",
        "amount": 2**70 + n,  # wider than 64 bits: amounts are stored losslessly
        "notional_usd": Decimal("12.345678"),
        "executor": "paper",
        "status": "pending",
        "intent": '{"type":"OrderIntent"}',
        "created_at": T0 + timedelta(seconds=n),
        "updated_at": T0 + timedelta(seconds=n),
    }
    return OrderRow(**(base | fields))  # type: ignore[arg-type]


async def test_migrations_apply_once_and_record_the_version(store: Store) -> None:
    assert await store.migrate() == LATEST
    assert await store.migrate() == LATEST
    rows = await store.fetch("SELECT version FROM schema_version")
    assert [r[0] for r in rows] == list(range(1, LATEST + 1))


async def test_a_database_newer_than_the_code_is_refused(store: Store) -> None:
    await store.execute("INSERT INTO schema_version (version, note) VALUES (?, ?)", LATEST + 1, "future")
    with pytest.raises(StoreError, match=f"schema version {LATEST + 1} is newer"):
        await store.migrate()


async def test_journaled_order_round_trips(store: Store) -> None:
    o = order()
    await store.journal_order(o)
    assert await store.get_order("o1") == o
    assert await store.find_order("k1") == o
    assert await store.get_order("nope") is None


async def test_the_idempotency_key_is_unique(store: Store) -> None:
    await store.journal_order(order(1))
    with pytest.raises(DuplicateOrder, match="'k1'"):
        await store.journal_order(order(2, idempotency_key="k1"))
    assert [o.order_id for o in await store.orders()] == ["o1"]


async def test_status_moves_forward_and_never_leaves_a_final_state(store: Store) -> None:
    await store.journal_order(order())
    assert await store.set_order_status("o1", "submitted", now=T0, tx="sig1")
    assert await store.set_order_status("o1", "failed", now=T0, reason="expired_blockhash", detail="d")
    assert not await store.set_order_status("o1", "submitted", now=T0, tx="sig2")
    row = await store.get_order("o1")
    assert row is not None and (row.status, row.tx, row.reason) == ("failed", "sig1", "expired_blockhash")
    assert not await store.set_order_status("unknown", "failed", now=T0)
    with pytest.raises(ValueError, match="unknown order status"):
        await store.set_order_status("o1", "lost", now=T0)


async def test_unfinished_orders_are_what_reconciliation_needs(store: Store) -> None:
    for n in (1, 2, 3):
        await store.journal_order(order(n))
    await store.set_order_status("o2", "submitted", now=T0, tx="sig")
    await store.set_order_status("o3", "expired", now=T0)
    assert [(o.order_id, o.status) for o in await store.unfinished_orders()] == [
        ("o1", "pending"),
        ("o2", "submitted"),
    ]


async def test_a_fill_is_recorded_once_and_marks_the_order_filled(store: Store) -> None:
    await store.journal_order(order())
    fill = FillRow(
        order_id="o1",
        tx="sig",
        amount_in=10**9,
        amount_out=2**65,
        fee=5000,
        price_native=Decimal("1E-9"),
        filled_at=T0,
    )
    assert await store.record_fill(fill)
    assert not await store.record_fill(fill), "a second report of the same fill changes nothing"
    assert await store.fills() == [fill]
    row = await store.get_order("o1")
    assert row is not None and row.status == "filled" and row.tx == "sig"


async def test_positions_are_replaced_whole(store: Store) -> None:
    p = PositionRow(
        chain="solana", token="M", quantity=2**66, cost_native=10, realised_pnl_native=-3, opened_at=T0, updated_at=T0
    )
    await store.put_position(p)
    q = PositionRow(
        chain="solana", token="M", quantity=0, cost_native=0, realised_pnl_native=7, opened_at=None, updated_at=T0
    )
    await store.put_position(q)
    assert await store.positions() == [q]


async def test_state_and_cursors_upsert(store: Store) -> None:
    assert await store.get_state("trading") is None
    await store.set_state("trading", "halted", now=T0)
    await store.set_state("trading", "active", now=T0)
    assert await store.get_state("trading") == "active"
    await store.set_cursor("aptos.ledger", "123", now=T0)
    await store.set_cursor("aptos.ledger", "456", now=T0)
    assert await store.get_cursor("aptos.ledger") == "456"


async def test_daily_counters_are_per_day_and_exact(store: Store) -> None:
    await store.add_counter("2026-03-01", "notional_usd", Decimal("0.1"))
    assert await store.add_counter("2026-03-01", "notional_usd", Decimal("0.2")) == Decimal("0.3")
    assert await store.get_counter("2026-03-02", "notional_usd") == 0


async def test_concurrent_counter_additions_are_not_lost(store: Store) -> None:
    await asyncio.gather(*(store.add_counter("d", "n", Decimal(1)) for _ in range(50)))
    assert await store.get_counter("d", "n") == 50


async def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.set_state("a", "1", now=T0)
            raise RuntimeError("boom")
    assert await store.get_state("a") is None


async def test_a_counter_added_in_a_failed_transaction_is_rolled_back_with_it(store: Store) -> None:
    assert await store.add_counter("d", "n", Decimal("1.5")) == Decimal("1.5")
    with pytest.raises(RuntimeError):
        async with store.transaction():
            assert await store.add_counter("d", "n", Decimal(2)) == Decimal("3.5")
            await store.journal_order(order())
            raise RuntimeError("boom")
    assert (await store.get_counter("d", "n"), await store.orders()) == (Decimal("1.5"), [])
    async with store.transaction():
        pass  # an empty transaction commits nothing and holds nothing
    async with store.transaction():
        assert await store.add_counter("d", "n", Decimal(2)) == Decimal("3.5")
        await store.journal_order(order())
    assert (await store.get_counter("d", "n"), len(await store.orders())) == (Decimal("3.5"), 1)


async def test_records_with_retention(store: Store) -> None:
    await store.put_record("signal", "a", '{"x":1}', now=T0)
    await store.put_record("signal", "b", '{"x":2}', now=T0 + timedelta(hours=30))
    await store.put_record("profile", "w", '{"v":1}', now=T0)
    assert await store.expire_records("signal", older_than=T0 + timedelta(hours=24)) == 1
    assert [k async for k, _ in store.records("signal")] == ["b"]
    assert await store.get_record("profile", "w") == '{"v":1}'


async def test_sqlite_store_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with SqliteStore(path) as s:
        await s.journal_order(order())
    async with SqliteStore(path) as s:
        assert (await s.get_order("o1")) == order()
        await s.backup(tmp_path / "copy.db")
    async with SqliteStore(tmp_path / "copy.db") as copy:
        assert (await copy.get_order("o1")) == order()


async def test_a_cancelled_sqlite_transaction_rolls_back_and_the_store_stays_usable(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "q.db") as s:
        entered = asyncio.Event()

        async def stuck() -> None:
            async with s.transaction():
                await s.set_state("a", "1", now=T0)
                entered.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(stuck())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await s.get_state("a") is None
        async with s.transaction():
            await s.set_state("b", "2", now=T0)
        assert await s.get_state("b") == "2"


async def test_a_sqlite_transaction_that_cannot_begin_is_an_error_and_leaves_nothing_open(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "q.db", busy_timeout_ms=50) as s:
        other = sqlite3.connect(tmp_path / "q.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                async with s.transaction():
                    await s.set_state("a", "1", now=T0)
        finally:
            other.execute("ROLLBACK")
            other.close()
        async with s.transaction():
            await s.set_state("a", "2", now=T0)
        assert await s.get_state("a") == "2"


async def test_sqlite_cursors_commit_without_their_own_fsync_and_journal_commits_still_fsync(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "q.db") as s:
        await s.set_cursor("c", "1", now=T0)
        assert await s.fetch("PRAGMA synchronous") == [(2,)], "FULL again for everything after"
        with pytest.raises(RuntimeError):
            async with s.transaction():  # inside a transaction a cursor is part of it
                await s.set_cursor("c", "2", now=T0)
                raise RuntimeError("boom")
        assert await s.get_cursor("c") == "1"
        await s.journal_order(order())
    async with SqliteStore(tmp_path / "q.db") as s:
        assert (await s.get_cursor("c"), await s.get_order("o1")) == ("1", order())


async def test_closing_the_sqlite_store_waits_for_a_transaction_in_progress(tmp_path: Path) -> None:
    """Shutdown closes the store last; a transaction still running in another task finishes first,
    whole, instead of being cut between its statements."""
    s = SqliteStore(tmp_path / "q.db")
    await s.start()
    inside = asyncio.Event()

    async def fill() -> None:  # two writes that belong together, with an await between them
        async with s.transaction():
            await s.set_state("fill", "1", now=T0)
            inside.set()
            await asyncio.sleep(0.05)
            await s.set_state("position", "1", now=T0)

    task = asyncio.create_task(fill())
    await inside.wait()
    await s.close()
    await task
    async with SqliteStore(tmp_path / "q.db") as again:
        assert (await again.get_state("fill"), await again.get_state("position")) == ("1", "1")


async def test_a_transaction_cut_by_close_keeps_its_own_exception_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import quantbot.store.sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CLOSE_WAIT_S", 0.05)
    s = SqliteStore(tmp_path / "q.db")
    await s.start()
    inside = asyncio.Event()

    async def stuck() -> None:
        async with s.transaction():
            await s.set_state("fill", "1", now=T0)
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(stuck())
    await inside.wait()
    await s.close()  # gives up waiting, closes under it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):  # not a StoreError from the rollback it no longer needs
        await task
    async with SqliteStore(tmp_path / "q.db") as again:
        assert await again.get_state("fill") is None


async def test_a_write_after_a_failed_rollback_is_committed_not_swallowed_by_the_open_transaction(
    tmp_path: Path,
) -> None:
    """Were a transaction left open (its ROLLBACK failed), the next journal row would join it and never be
    committed while its caller believed it written. The store rolls the stale transaction back first."""
    async with SqliteStore(tmp_path / "q.db") as s:
        assert s._worker is not None
        await s._worker.run(lambda db: db.execute("BEGIN IMMEDIATE"))  # what a failed ROLLBACK leaves
        await s.journal_order(order())
        other = sqlite3.connect(tmp_path / "q.db")  # another connection sees only what was committed
        try:
            assert other.execute("SELECT order_id FROM orders").fetchall() == [("o1",)]
        finally:
            other.close()


async def test_a_nested_transaction_that_fails_is_never_committed_in_part(tmp_path: Path) -> None:
    """The enclosing block may catch a nested block's error, but the transaction promised to be one atomic
    unit: it rolls back whole and says so."""
    async with SqliteStore(tmp_path / "q.db") as s:
        with pytest.raises(StoreError, match="nested"):
            async with s.transaction():
                await s.set_state("outer", "1", now=T0)
                try:
                    async with s.transaction():
                        await s.set_state("inner", "1", now=T0)
                        raise RuntimeError("half done")
                except RuntimeError:
                    pass
        assert (await s.get_state("outer"), await s.get_state("inner")) == (None, None)
        async with s.transaction():  # and the store goes on
            await s.set_state("after", "1", now=T0)
        assert await s.get_state("after") == "1"


async def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        async with PostgresStore("postgresql://postgres@127.0.0.1:1/none", timeout=2):
            pass


# --- tables beyond the journal (migration 2), retention, write-behind -------------------------------


async def test_positions_keep_the_opening_strategy_and_leader(store: Store) -> None:
    row = PositionRow(
        chain="solana",
        token="A",
        quantity=5,
        cost_native=7,
        realised_pnl_native=0,
        opened_at=T0,
        updated_at=T0,
        strategy="copy",
        leader="Wha1e",
    )
    await store.put_position(row)
    assert await store.positions() == [row]


async def test_positions_keep_the_units_received_for_nothing(store: Store) -> None:
    """A position's units that came in from outside are held at no cost; a restart must not lose which they are."""
    row = PositionRow(
        chain="solana",
        token="A",
        quantity=2 * 10**18,
        cost_native=7,
        realised_pnl_native=0,
        opened_at=T0,
        updated_at=T0,
        trip_cost=7,
        free_quantity=10**18,
    )
    await store.put_position(row)
    assert await store.positions() == [row]


async def test_round_trip_stats_are_per_strategy_and_recent_first(store: Store) -> None:
    for n, pnl in enumerate([5, -2, 3, -1, 10**30]):
        await store.record_round_trip(
            RoundTrip(
                id=f"t{n}",
                strategy="s" if n < 4 else "big",
                chain="solana",
                token="A",
                opened_at=None,
                closed_at=T0 + timedelta(seconds=n),
                cost_native=10,
                proceeds_native=10 + pnl,
            )
        )
    assert await store.trip_stats("s") == TripStats(trips=4, wins=2, won_native=8, lost_native=3)
    assert await store.trip_stats("s", last=2) == TripStats(trips=2, wins=1, won_native=3, lost_native=1)
    assert (await store.trip_stats("big")).won_native == 10**30, "amounts stay exact past 64 bits"
    assert [t.id for t in await store.round_trips("s")] == ["t0", "t1", "t2", "t3"]


async def test_signals_verdicts_profiles_and_equity_round_trip(store: Store) -> None:
    sig = SignalRow(id="s1", chain="solana", kind="large_buy", token="A", payload='{"x":1}', at=T0)
    await store.put_signal(sig)
    await store.put_signal(sig)  # at-least-once delivery: stored once
    assert await store.signals(since=T0 - timedelta(hours=1), token="A") == [sig]
    await store.put_verdict(chain="solana", token="A", passed=False, payload="[]", at=T0)
    await store.put_verdict(chain="solana", token="A", passed=True, payload='["ok"]', at=T0)
    assert await store.get_verdict("solana", "A") == (True, '["ok"]', T0)
    await store.put_wallet_profile(chain="aptos", wallet="0x1", payload='{"pnl":1}', at=T0)
    assert await store.get_wallet_profile("aptos", "0x1") == '{"pnl":1}'
    day = datetime(2026, 3, 1, tzinfo=UTC)
    await store.put_equity(
        EquityRow(chain="solana", kind="daily", at=T0, equity_native=10**20, equity_usd=Decimal("1.5"))
    )
    await store.put_equity(EquityRow(chain="solana", kind="interval", at=T0, equity_native=1))
    assert await store.day_start_equity("solana", day) == 10**20
    assert await store.day_start_equity("solana", day + timedelta(days=1)) is None
    assert [r.equity_native for r in await store.equity_history("solana")] == [1]


async def test_retention_deletes_only_what_is_older_than_each_tables_limit(store: Store) -> None:
    old, new = T0 - timedelta(hours=30), T0 - timedelta(hours=1)
    for n, at in enumerate([old, new]):
        await store.put_signal(SignalRow(id=f"s{n}", chain="solana", kind="k", token="A", payload="{}", at=at))
        await store.put_equity(EquityRow(chain="solana", kind="interval", at=at, equity_native=n))
        await store.put_equity(EquityRow(chain="solana", kind="daily", at=at, equity_native=n))
        await store.put_wallet_profile(chain="solana", wallet=f"w{n}", payload="{}", at=at)
    await store.journal_order(order(1, created_at=old - timedelta(days=400), updated_at=old))
    store.retention = {"signals_h": 24, "equity_interval_h": 24, "equity_daily_h": 0, "wallet_profiles_h": 0}
    deleted = await store.apply_retention(T0)
    assert deleted == {"signals_h": 1, "equity_interval_h": 1}
    assert [s.id for s in await store.signals()] == ["s1"]
    assert len(await store.equity_history("solana", kind="daily")) == 2, "0 h keeps forever"
    assert await store.get_wallet_profile("solana", "w0") == "{}"
    assert len(await store.orders()) == 1, "trades are kept forever"
    with pytest.raises(ValueError, match="orders"):
        await store.apply_retention(T0, {"orders": 1})


async def test_write_behind_batches_off_the_hot_path_and_a_clean_stop_loses_nothing(store: Store) -> None:
    clock = SimClock(T0)
    writer = WriteBehind(store=store, clock=clock, interval=5)
    await writer.start()
    for n in range(250):
        row = SignalRow(id=f"s{n}", chain="solana", kind="k", token="A", payload="{}", at=T0)
        writer.enqueue(functools.partial(Store.put_signal, row=row))
    assert await store.signals() == [], "enqueue does not write"
    clock.advance(5)  # the flush loop wakes on the injected clock
    async with asyncio.timeout(10):
        await writer.committed.wait()
    assert writer.flushed == 250 and len(await store.signals()) == 250
    for n in range(250, 260):
        row = SignalRow(id=f"s{n}", chain="solana", kind="k", token="A", payload="{}", at=T0)
        writer.enqueue(functools.partial(Store.put_signal, row=row))
    await writer.stop()
    assert len(await store.signals()) == 260 and writer.pending == 0


async def test_a_failed_flush_keeps_its_batch_for_the_next(store: Store) -> None:
    writer = WriteBehind(store=store, clock=SimClock(T0), interval=5)
    good = SignalRow(id="ok", chain="solana", kind="k", token="A", payload="{}", at=T0)
    calls = 0

    async def flaky(s: Store) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionResetError("database went away")
        await s.put_signal(good)

    writer.enqueue(flaky)
    assert await writer.flush() == 0 and writer.failures == 1 and writer.pending == 1
    assert await writer.flush() == 1 and [s.id for s in await store.signals()] == ["ok"]
