"""The trading lease: one trading daemon per store, on SQLite (one machine) and PostgreSQL (any host).

Two daemons trading from one store would each place orders from the same journal and settle each
other's orders in flight as orphans; the data-directory lock cannot see a daemon on another host.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from quantbot.datadir import AlreadyRunning
from quantbot.lease import TradingLease
from quantbot.store.base import LeaseHeld
from quantbot.store.postgres import PostgresStore
from quantbot.store.sqlite import SqliteStore
from tests.conftest import DaemonProcess, write
from tests.test_daemon import config_text
from tests.test_store import pg_database

TRADING = ("portfolio", "risk", "orders", "executors", "strategies")


async def _sessions(store: PostgresStore, holder: str) -> int:
    rows = await store.fetch("SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", holder)
    return int(rows[0][0])


async def test_postgres_lease_refuses_a_second_holder_and_names_the_first() -> None:
    async with pg_database() as dsn, PostgresStore(dsn) as a, PostgresStore(dsn) as b:
        first = await a.lease("trading", holder="quantbot alpha pid 1 on vps-a")
        with pytest.raises(LeaseHeld, match="quantbot alpha pid 1 on vps-a, backend pid") as refused:
            await b.lease("trading", holder="quantbot beta")
        assert isinstance(refused.value, AlreadyRunning), "the daemon exits 75 for it, as for the data-dir lock"
        assert "postgres_dsn" in str(refused.value)
        assert await _sessions(a, "quantbot beta") == 0, "the refused attempt closed its connection"
        assert await first.held()
        other = await b.lease("something else", holder="quantbot beta")  # another name is another lease
        await other.release()

        await first.release()
        assert not await first.held()
        second = await b.lease("trading", holder="quantbot beta")
        assert await second.held()
        await second.release()


async def test_postgres_leases_of_two_databases_are_independent() -> None:
    async with pg_database() as one, pg_database() as two, PostgresStore(one) as a, PostgresStore(two) as b:
        first = await a.lease("trading", holder="quantbot one")
        second = await b.lease("trading", holder="quantbot two")
        assert await first.held() and await second.held()
        await first.release()
        await second.release()


async def test_a_lease_whose_session_ends_is_reported_lost_and_is_free_for_the_next() -> None:
    async with pg_database() as dsn, PostgresStore(dsn) as a, PostgresStore(dsn) as b:
        lost: list[int] = []
        reported = asyncio.Event()

        def on_lost() -> None:
            lost.append(1)
            reported.set()

        lease = TradingLease(store=a, holder="quantbot alpha", on_lost=on_lost, check_interval_s=0.05)
        await lease.start()
        await asyncio.sleep(0.3)
        assert lease.checks >= 1 and not lost
        assert lease.stats() == {"held": True, "lost": False, "checks": lease.checks}
        with pytest.raises(LeaseHeld):
            await b.lease("trading", holder="quantbot beta")

        # A network cut, a PostgreSQL restart or an administrator ends the session: the lock goes with it.
        await a.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?", "quantbot alpha"
        )
        await asyncio.wait_for(reported.wait(), 10)
        await asyncio.sleep(0.2)
        assert lost == [1], "reported once"
        assert lease.stats()["lost"] and not lease.stats()["held"]
        taken = await b.lease("trading", holder="quantbot beta")
        await taken.release()
        await lease.stop()  # stopping after the loss releases nothing and raises nothing


async def test_a_holder_cut_off_from_postgres_loses_the_lease_after_expire_s() -> None:
    """The server ends a lease session that stays silent (no check) for `expire_s`: a holder whose network
    is gone frees the lease for the next instead of holding it until TCP gives up (hours)."""
    async with pg_database() as dsn, PostgresStore(dsn) as a, PostgresStore(dsn) as b:
        silent = await a.lease("trading", holder="quantbot alpha", expire_s=0.5)
        with pytest.raises(LeaseHeld):
            await b.lease("trading", holder="quantbot beta")
        await asyncio.sleep(1.5)  # no check from alpha meanwhile, as if it were cut off
        assert not await silent.held()
        taken = await b.lease("trading", holder="quantbot beta", expire_s=0.5)
        for _ in range(4):  # a holder that keeps checking keeps it
            await asyncio.sleep(0.25)
            assert await taken.held()
        await taken.release()
        await silent.release()


async def test_a_check_that_fails_unexpectedly_counts_as_lost_and_stop_still_releases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SqliteStore(tmp_path / "q.db") as a, SqliteStore(tmp_path / "q.db") as b:
        reported = asyncio.Event()
        lease = TradingLease(store=a, holder="quantbot a", on_lost=reported.set, check_interval_s=0.02)
        await lease.start()
        assert lease._lease is not None

        async def broken() -> bool:
            raise RuntimeError("a bug in the check")

        monkeypatch.setattr(lease._lease, "held", broken)
        await asyncio.wait_for(reported.wait(), 10)
        assert lease.stats()["lost"]
        await lease.stop()
        again = await b.lease("trading", holder="quantbot b")  # stop released it all the same
        await again.release()


async def test_sqlite_lease_is_one_per_database_file(tmp_path: Path) -> None:
    async with (
        SqliteStore(tmp_path / "q.db") as a,
        SqliteStore(tmp_path / "q.db") as b,
        SqliteStore(tmp_path / "other.db") as c,
    ):
        first = await a.lease("trading", holder="quantbot a")
        with pytest.raises(LeaseHeld, match=f"pid {os.getpid()}") as refused:
            await b.lease("trading", holder="quantbot b")
        assert str(tmp_path / "q.db") in str(refused.value) and "sqlite_path" in str(refused.value)
        elsewhere = await c.lease("trading", holder="quantbot c")
        assert await first.held() and await elsewhere.held()
        await first.release()
        assert not await first.held()
        again = await b.lease("trading", holder="quantbot b")
        assert await again.held()
        await again.release()
        await elsewhere.release()


@pytest.mark.subprocess
def test_a_second_trading_daemon_on_the_same_store_exits_75_before_trading(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """Two data directories (so the data-dir lock does not see it), one store file."""
    store = f'[store]\nsqlite_path = "{tmp_path / "shared.db"}"\n'
    one = write(tmp_path / "one.toml", config_text(tmp_path / "one", extra=store))
    two = write(tmp_path / "two.toml", config_text(tmp_path / "two", extra=store))
    first = DaemonProcess("-c", str(one))
    daemons.append(first)
    first.wait_for("daemon.ready")
    second = DaemonProcess("-c", str(two))
    daemons.append(second)
    assert second.wait() == 75
    (refused,) = [r for r in second.lines if r["event"] == "daemon.already_running"]
    assert f"pid {first.proc.pid}" in refused["detail"] and str(tmp_path / "shared.db") in refused["detail"]
    started = [r["name"] for r in second.lines if r["event"] == "component.started"]
    assert started == ["store"], "nothing that trades started"
    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    third = DaemonProcess("-c", str(two))  # the first released the lease as it stopped
    daemons.append(third)
    third.wait_for("daemon.ready")
    third.signal(signal.SIGTERM)
    assert third.wait() == 0


@pytest.mark.subprocess
async def test_a_daemon_that_loses_its_postgres_lease_stops_with_75(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    async with pg_database() as dsn, PostgresStore(dsn) as admin:
        extra = f'[store]\nbackend = "postgres"\npostgres_dsn = "{dsn}"\nlease_check_s = 0.1\n'
        cfg = write(tmp_path / "q.toml", 'instance = "leaser"\n' + config_text(tmp_path, extra=extra))
        d = DaemonProcess("-c", str(cfg))
        daemons.append(d)
        await asyncio.to_thread(d.wait_for, "daemon.ready")
        held = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'quantbot leaser pid %'")
        assert len(held) == 1, "the lease has a session of its own"
        await admin.execute("SELECT pg_terminate_backend(?)", held[0][0])
        assert await asyncio.to_thread(d.wait, 30) == 75
        events = [r["event"] for r in d.lines]
        assert "lease.lost" in events and events.index("lease.lost") < events.index("daemon.stopping")
        stopped = {r["name"] for r in d.lines if r["event"] == "component.stopped"}
        assert set(TRADING) <= stopped, "it stopped trading cleanly"
