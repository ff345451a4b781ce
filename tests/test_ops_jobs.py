"""Scheduled jobs: schedules, failure and retry, SQLite online backup with retention, hooks, daemon wiring."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from quantbot.clock import SimClock, WallClock
from quantbot.config import JobsConfig, load_config
from quantbot.ops.backup import backup_name, prune
from quantbot.ops.jobs import Jobs, parse_schedule
from quantbot.portfolio import Portfolio
from quantbot.store.postgres import PostgresStore
from quantbot.store.sqlite import SqliteStore
from tests.conftest import write

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def jobs_for(
    store: Any, tmp: Path, *, clock: Any = None, components: list[Any] | None = None, portfolio: Any = None, **cfg: Any
) -> Jobs:
    clock = clock or SimClock(T0)
    return Jobs(
        config=JobsConfig(**cfg),
        clock=clock,
        store=store,
        portfolio=portfolio if portfolio is not None else Portfolio(store=store, clock=clock),
        components=lambda: components or [],
        data_dir=tmp,
    )


# --- schedules -----------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from([("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]))
def test_an_interval_schedule_fires_every_that_many_seconds(n: int, unit: tuple[str, int]) -> None:
    trigger = parse_schedule(f"{n}{unit[0]}")
    assert trigger.interval == timedelta(seconds=n * unit[1])


def test_a_cron_schedule_runs_in_utc_and_off_disables() -> None:
    trigger = parse_schedule("30 3 * * *")
    assert trigger.get_next_fire_time(None, T0) == datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
    assert parse_schedule("off") is None


@pytest.mark.parametrize("bad", ["", "0s", "5 minutes", "61 * * * *", "* * *"])
def test_a_bad_schedule_is_refused_with_the_forms_it_takes(bad: str) -> None:
    with pytest.raises(ValueError, match="schedule"):
        parse_schedule(bad)


def test_config_refuses_a_schedule_that_is_neither_interval_nor_cron(tmp_path: Path) -> None:
    from quantbot.config import ConfigError

    cfg = write(tmp_path / "q.toml", '[jobs.schedules]\nbackup = "every day"\n')
    with pytest.raises(ConfigError) as exc:
        load_config([cfg], environ={})
    assert "jobs.schedules.backup: expected a string matching" in exc.value.problems[0]


# --- running -------------------------------------------------------------------------------------


async def test_jobs_run_on_their_interval(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "q.db") as store:
        jobs = jobs_for(store, tmp_path, clock=WallClock(), schedules={"backup": "off", "store_retention": "off"})
        ran = asyncio.Event()
        count = 0

        async def tick() -> None:
            nonlocal count
            count += 1
            if count == 3:
                ran.set()

        jobs.add("tick", tick, "0.05s")
        await jobs.start()
        try:
            async with asyncio.timeout(10):
                await ran.wait()
        finally:
            await jobs.stop()
    assert jobs.stats["tick"].runs >= 3 and jobs.stats["tick"].failures == 0
    assert sorted(jobs.fns) == ["tick"], "jobs switched off are not scheduled"


async def test_a_failing_job_is_logged_counted_and_retried_at_its_next_run(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "q.db") as store:
        jobs = jobs_for(store, tmp_path, clock=WallClock(), schedules={"backup": "off", "store_retention": "off"})
        recovered = asyncio.Event()
        calls = 0

        async def flaky() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectionError("probe refused")
            recovered.set()

        jobs.add("flaky", flaky, "0.05s")
        with capture_logs() as logs:
            await jobs.start()
            try:
                async with asyncio.timeout(10):
                    await recovered.wait()
            finally:
                await jobs.stop()
    (failed,) = [e for e in logs if e["event"] == "job.failed"]
    assert failed["job"] == "flaky" and failed["log_level"] == "error"
    st_ = jobs.stats["flaky"]
    assert (st_.failures, st_.consecutive_failures, st_.last_error) == (1, 0, "")
    assert st_.last_success is not None and st_.runs >= 2


async def test_the_operators_schedule_wins_over_a_components_own(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "q.db") as store:
        jobs = jobs_for(store, tmp_path, schedules={"custom": "2h"})

        async def noop() -> None:
            pass

        jobs.add("custom", noop, "5m")
        jobs.add("other", noop, "5m")
    assert (jobs.stats["custom"].schedule, jobs.stats["other"].schedule) == ("2h", "5m")


# --- backup --------------------------------------------------------------------------------------


async def _write_orders(store: SqliteStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        await store.set_state(f"k{i}", str(i), now=T0)


async def test_backup_is_a_valid_database_with_the_data_while_the_daemon_writes(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with SqliteStore(tmp_path / "quantbot.db") as store:
        await _write_orders(store, 200)
        jobs = jobs_for(store, tmp_path, clock=clock)
        await jobs.start()
        stop = asyncio.Event()

        async def writer() -> None:
            i = 200
            while not stop.is_set():
                await store.set_state(f"k{i}", str(i), now=T0)
                i += 1

        task = asyncio.create_task(writer())
        try:
            assert await jobs.run_now("backup")
        finally:
            stop.set()
            await task
            await jobs.stop()
    (backup,) = (tmp_path / "backups").iterdir()
    assert backup.name == backup_name("quantbot", T0)
    assert backup.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(backup) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = {k for (k,) in db.execute("SELECT key FROM state")}
        assert {f"k{i}" for i in range(200)} <= keys
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] >= 1
    assert not list(tmp_path.glob("backups/*.partial"))  # noqa: ASYNC240  (the store is closed by now)


async def test_old_backups_are_pruned_to_the_newest_n(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with SqliteStore(tmp_path / "quantbot.db") as store:
        jobs = jobs_for(store, tmp_path, clock=clock, backup_keep=2, backup_dir=str(tmp_path / "bk"))
        await jobs.start()
        write(tmp_path / "bk" / "notes.txt", "not a backup")
        names = []
        for hour in range(4):
            await _write_orders(store, 1, start=hour)
            assert await jobs.run_now("backup")
            names.append(backup_name("quantbot", clock.now()))
            clock.advance(3600)
        await jobs.stop()
    kept = sorted(p.name for p in (tmp_path / "bk").iterdir())
    assert kept == sorted([*names[-2:], "notes.txt"])
    with sqlite3.connect(tmp_path / "bk" / names[-1]) as db:
        assert db.execute("SELECT value FROM state WHERE key = 'k3'").fetchone() == ("3",)


def test_prune_keeps_everything_when_there_are_fewer_than_n(tmp_path: Path) -> None:
    (tmp_path / backup_name("q", T0)).write_bytes(b"")
    assert prune(tmp_path, "q", keep=3) == []


async def test_a_failed_backup_leaves_no_partial_file_and_counts(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "quantbot.db") as store:
        (tmp_path / "blocked").write_text("a file where the backup directory should be")
        jobs = jobs_for(store, tmp_path, backup_dir="blocked")
        await jobs.start()
        assert not await jobs.run_now("backup")
        await jobs.stop()
    assert "FileExistsError" in jobs.stats["backup"].last_error


async def test_postgres_is_not_backed_up_by_a_job_and_says_pg_dump(tmp_path: Path) -> None:
    store = PostgresStore("postgresql://quantbot@127.0.0.1:5432/quantbot")  # never opened: nothing to connect
    jobs = jobs_for(store, tmp_path, portfolio=object())
    with capture_logs() as logs:
        await jobs.start()
        await jobs.stop()
    assert "backup" not in jobs.fns
    (skipped,) = [e for e in logs if e["event"] == "jobs.backup_skipped"]
    assert "pg_dump" in skipped["reason"]


# --- retention, snapshots, hooks -----------------------------------------------------------------


async def test_retention_expires_old_records_by_kind(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with SqliteStore(tmp_path / "q.db") as store:
        await store.put_record("verdict", "old", "{}", now=T0 - timedelta(days=40))
        await store.put_record("verdict", "new", "{}", now=T0 - timedelta(days=2))
        await store.put_record("profile", "old", "{}", now=T0 - timedelta(days=40))
        jobs = jobs_for(store, tmp_path, clock=clock, record_retention_days={"verdict": 30})
        await jobs.start()
        assert await jobs.run_now("store_retention")
        await jobs.stop()
        assert [k async for k, _ in store.records("verdict")] == ["new"]
        assert [k async for k, _ in store.records("profile")] == ["old"], "kinds without a bound are kept"


class RetainingStore(SqliteStore):
    """A store with the retention policy the store issue adds (`apply_retention(now)`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.applied: list[datetime] = []

    async def apply_retention(self, now: datetime, hours: Mapping[str, float] | None = None) -> dict[str, int]:
        self.applied.append(now)
        return {}


async def test_retention_applies_the_stores_table_policy_and_then_the_record_kinds(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with RetainingStore(tmp_path / "q.db") as store:
        jobs = jobs_for(store, tmp_path, clock=clock, record_retention_days={"verdict": 1})
        await store.put_record("verdict", "old", "{}", now=T0 - timedelta(days=40))
        await jobs.start()
        assert await jobs.run_now("store_retention")
        await jobs.stop()
        assert store.applied == [T0], "called with the daemon's clock"
        assert [k async for k, _ in store.records("verdict")] == [], "records kinds expire as well"


class SnapshottingPortfolio(Portfolio):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.snapshots: list[datetime] = []

    async def snapshot(self, now: datetime) -> Decimal:
        self.snapshots.append(now)
        return Decimal(0)


class Tracker:
    name = "whales"

    def __init__(self) -> None:
        self.recomputed = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def recompute_profiles(self) -> None:
        self.recomputed += 1


class Pool:
    def __init__(self, name: str, *, fail: bool) -> None:
        self.name = name
        self.fail = fail
        self.probed: list[datetime] = []

    def probe_health(self, now: datetime) -> None:
        self.probed.append(now)
        if self.fail:
            raise TimeoutError("endpoint did not answer")


class Router:
    name = "orders"

    def __init__(self) -> None:
        self.asked = 0

    async def reconcile_open(self) -> int:
        self.asked += 1
        return 0


async def test_components_hooks_and_the_portfolio_snapshot_become_jobs(tmp_path: Path) -> None:
    clock = SimClock(T0)
    tracker, good, bad = Tracker(), Pool("solana.rpc", fail=False), Pool("aptos.rest", fail=True)
    router = Router()
    async with SqliteStore(tmp_path / "q.db") as store:
        portfolio = SnapshottingPortfolio(store=store, clock=clock)
        jobs = jobs_for(store, tmp_path, clock=clock, components=[tracker, bad, good, router], portfolio=portfolio)
        await jobs.start()
        assert {"whale_profiles", "rpc_health", "equity_snapshot", "reconcile_orders"} <= set(jobs.fns)
        assert (jobs.stats["rpc_health"].schedule, jobs.stats["reconcile_orders"].schedule) == ("1m", "30s")
        assert await jobs.run_now("reconcile_orders") and router.asked == 1
        assert await jobs.run_now("whale_profiles") and tracker.recomputed == 1
        assert await jobs.run_now("equity_snapshot") and portfolio.snapshots == [T0]
        with capture_logs() as logs:
            assert not await jobs.run_now("rpc_health")
        await jobs.stop()
    assert good.probed == [T0] and bad.probed == [T0], "one pool failing does not skip the other"
    assert [(e["event"], e.get("target")) for e in logs if e["log_level"] == "error"] == [
        ("job.hook_failed", "aptos.rest"),
        ("job.failed", None),
    ]


async def test_no_snapshot_job_without_a_portfolio_snapshot(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "q.db") as store:
        jobs = jobs_for(store, tmp_path)
        await jobs.start()
        await jobs.stop()
    assert "equity_snapshot" not in jobs.fns and "whale_profiles" not in jobs.fns


def test_the_shipped_config_documents_the_real_http_and_jobs_defaults() -> None:
    from quantbot.config import HttpConfig
    from quantbot.ops.jobs import DEFAULT_SCHEDULES
    from tests.conftest import REPO

    shipped = load_config([REPO / "config" / "quantbot.toml"], environ={}).config
    assert shipped.http == HttpConfig()
    assert shipped.jobs.schedules == DEFAULT_SCHEDULES
    assert msgspec.structs.replace(shipped.jobs, schedules={}) == JobsConfig()


async def test_stop_cancels_a_job_still_running(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "q.db") as store:
        jobs = jobs_for(store, tmp_path, clock=WallClock(), schedules={"backup": "off", "store_retention": "off"})
        started, cancelled = asyncio.Event(), asyncio.Event()

        async def slow() -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        jobs.add("slow", slow, "0.05s")
        await jobs.start()
        async with asyncio.timeout(10):
            await started.wait()
        await jobs.stop()
    assert cancelled.is_set() and jobs.stats["slow"].failures == 0, "a cancelled run is not a failure"
