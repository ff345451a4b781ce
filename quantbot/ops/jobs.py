"""Scheduled jobs on APScheduler's AsyncIOScheduler (3.x): backups, retention, snapshots, component hooks.

Built-in jobs: `backup` (SQLite online backup, N newest kept), `store_retention`, `equity_snapshot`
(when the portfolio has `snapshot()`), and hooks found on components: `whale_profiles` calls every
`recompute_profiles()`, `rpc_health` every `probe_health()`, `reconcile_orders` the order router's
`reconcile_open()`. Anything else registers with
`jobs.add(name, fn, schedule)`. A job that raises is logged with its name, counted, and simply runs
again at its next time; one still running when its time comes again is skipped, never stacked.
APScheduler decides *when* (wall clock); the jobs take their timestamps from the daemon's clock.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from quantbot.clock import Clock
from quantbot.config import JobsConfig
from quantbot.ops.backup import backup_sqlite
from quantbot.store import Store
from quantbot.store.sqlite import SqliteStore

log = structlog.get_logger(component="jobs")

JobFn = Callable[[], Awaitable[object]]

DEFAULT_SCHEDULES = {
    "backup": "0 */6 * * *",
    "store_retention": "1h",
    "equity_snapshot": "5m",
    "whale_profiles": "1h",
    "rpc_health": "1m",
    "reconcile_orders": "30s",
    "watcher_lag": "5s",
    "daily_report": "5 0 * * *",
}
HOOKS = {
    "whale_profiles": "recompute_profiles",
    "rpc_health": "probe_health",
    "reconcile_orders": "reconcile_open",
}
"""Job name -> the method a component exposes to take part in it."""
DEFAULT_SCHEDULE = "1h"
JOB_TIMEOUT_S = 900.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")


def parse_schedule(text: str) -> BaseTrigger | None:
    """`30s` / `15m` / `6h` / `1d` -> every interval; 5 cron fields -> cron in UTC; `off` -> None."""
    text = text.strip()
    if text == "off":
        return None
    m = _INTERVAL.match(text)
    if m:
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
        if seconds <= 0:
            raise ValueError(f"schedule {text!r}: an interval must be longer than 0")
        return IntervalTrigger(seconds=seconds, timezone=UTC)
    if len(text.split()) == 5:
        try:
            return CronTrigger.from_crontab(text, timezone=UTC)
        except ValueError as exc:
            raise ValueError(f"schedule {text!r}: bad cron line: {exc}") from None
    raise ValueError(f"schedule {text!r}: expected an interval like 30s, 15m, 6h, 1d, a 5-field cron line, or off")


@dataclass
class JobStats:
    schedule: str
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str = ""
    last_started: datetime | None = None
    last_success: datetime | None = None
    last_duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "runs": self.runs,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "last_started": self.last_started.isoformat() if self.last_started else None,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_duration_s": round(self.last_duration_s, 3),
        }


async def call_hook(fn: Callable[..., Any], clock: Clock) -> object:
    """Call a component's hook: with `now=` from the daemon's clock if it takes one; await if async."""
    try:
        takes_now = "now" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_now = False
    result = fn(now=clock.now()) if takes_now else fn()
    return await result if inspect.isawaitable(result) else result


class Jobs:
    """A daemon component. Register jobs with `add` before or after `start`."""

    name = "jobs"

    def __init__(
        self,
        *,
        config: JobsConfig,
        clock: Clock,
        store: Store,
        portfolio: object,
        components: Callable[[], Sequence[Any]],
        data_dir: Path,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.portfolio = portfolio
        self.components = components
        backup_dir = Path(config.backup_dir)
        self.backup_dir = backup_dir if backup_dir.is_absolute() else data_dir / backup_dir
        self.fns: dict[str, JobFn] = {}
        self.stats: dict[str, JobStats] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()

    # --- registry --------------------------------------------------------------------------------

    def add(self, name: str, fn: JobFn, schedule: str | None = None) -> None:
        """Run `fn` on `schedule` (else `[jobs.schedules]` for `name`, else hourly). `off` disables it."""
        if name in self.fns:
            raise ValueError(f"job {name!r} is already registered")
        if name in self.config.schedules:  # the operator's word wins
            text = self.config.schedules[name]
        elif schedule is not None:
            text = schedule
        else:
            text = DEFAULT_SCHEDULES.get(name, DEFAULT_SCHEDULE)
        trigger = parse_schedule(text)
        if trigger is None:
            log.info("job.off", job=name)
            return
        self.fns[name] = fn
        self.stats[name] = JobStats(schedule=text)
        if self.scheduler is not None:
            self._schedule(name, trigger)

    def _schedule(self, name: str, trigger: BaseTrigger) -> None:
        assert self.scheduler is not None  # noqa: S101
        self.scheduler.add_job(
            self.run_now,
            trigger,
            args=[name],
            id=name,
            name=name,
            coalesce=True,  # after a stall, one catch-up run, not a burst
            max_instances=1,
            misfire_grace_time=None,
        )

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._builtins()
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one INFO line per run is noise
        self.scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        for name in self.fns:
            trigger = parse_schedule(self.stats[name].schedule)
            assert trigger is not None  # noqa: S101  (`off` jobs are never registered)
            self._schedule(name, trigger)
        unknown = sorted(set(self.config.schedules) - set(self.fns) - set(DEFAULT_SCHEDULES))
        if unknown:
            log.warning("jobs.unknown_schedule", jobs=unknown, known=sorted(self.fns))
        self.scheduler.start()
        log.info("jobs.started", jobs={n: s.schedule for n, s in self.stats.items()})

    async def stop(self) -> None:
        """No new runs; a job still running is cancelled (it must not outlive the store it uses)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None
        running = [t for t in self._running if t is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _builtins(self) -> None:
        if isinstance(self.store, SqliteStore):
            self._add_once("backup", self.backup)
        else:
            log.info(
                "jobs.backup_skipped",
                backend=self.store.backend,
                reason="PostgreSQL is backed up with pg_dump (see systemd/README.md)",
            )
        self._add_once("store_retention", self.retention)
        snapshot = getattr(self.portfolio, "snapshot", None)
        if callable(snapshot):
            self._add_once("equity_snapshot", lambda: call_hook(snapshot, self.clock))
        else:
            log.debug("jobs.equity_snapshot_skipped", reason="the portfolio has no snapshot()")
        for job, method in HOOKS.items():
            hooks = [(str(c.name), getattr(c, method)) for c in self.components() if callable(getattr(c, method, None))]
            if hooks:
                self._add_once(job, self._fan_out(job, hooks))

    def _add_once(self, name: str, fn: JobFn) -> None:
        if name not in self.fns:
            self.add(name, fn)

    def _fan_out(self, job: str, hooks: list[tuple[str, Callable[..., Any]]]) -> JobFn:
        async def run() -> None:
            failed = []
            for component, fn in hooks:
                try:
                    await call_hook(fn, self.clock)
                except Exception as exc:
                    failed.append(component)
                    log.error("job.hook_failed", job=job, target=component, exc_info=exc)
            if failed:
                raise RuntimeError(f"hook failed on {', '.join(failed)}")

        return run

    # --- running ---------------------------------------------------------------------------------

    async def run_now(self, name: str) -> bool:
        """Run one job now (the scheduler calls this too). True if it succeeded; never raises."""
        st = self.stats[name]
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        st.runs += 1
        st.last_started = self.clock.now()
        began = self.clock.monotonic()
        try:
            async with asyncio.timeout(JOB_TIMEOUT_S):
                await self.fns[name]()
        except Exception as exc:
            st.failures += 1
            st.consecutive_failures += 1
            st.last_error = f"{type(exc).__name__}: {exc}"
            log.error("job.failed", job=name, consecutive=st.consecutive_failures, exc_info=exc)
            return False
        finally:
            st.last_duration_s = self.clock.monotonic() - began
            if task is not None:
                self._running.discard(task)
        st.consecutive_failures = 0
        st.last_error = ""
        st.last_success = self.clock.now()
        log.info("job.done", job=name, duration_s=round(st.last_duration_s, 3))
        return True

    # --- built-in jobs ---------------------------------------------------------------------------

    async def backup(self) -> None:
        assert isinstance(self.store, SqliteStore)  # noqa: S101  (registered only for SQLite)
        path = await asyncio.to_thread(
            backup_sqlite, self.store.path, self.backup_dir, now=self.clock.now(), keep=self.config.backup_keep
        )
        log.info("job.backup_written", path=str(path), bytes=path.stat().st_size, keep=self.config.backup_keep)

    async def retention(self) -> None:
        """The store's per-table retention ([store.retention]), then the records kinds of [jobs]."""
        await call_hook(self.store.apply_retention, self.clock)
        now = self.clock.now()
        for kind, days in self.config.record_retention_days.items():
            deleted = await self.store.expire_records(kind, older_than=now - timedelta(days=days))
            log.info("job.records_expired", kind=kind, deleted=deleted, days=days)

    # --- observability ---------------------------------------------------------------------------

    def job_stats(self) -> dict[str, dict[str, Any]]:
        return {name: st.as_dict() for name, st in self.stats.items()}

    def collect(self) -> Iterator[Metric]:
        """Prometheus families for the daemon's registry."""
        runs = CounterMetricFamily("quantbot_job_runs", "Scheduled job runs.", labels=["job"])
        failures = CounterMetricFamily("quantbot_job_failures", "Scheduled job runs that failed.", labels=["job"])
        last = GaugeMetricFamily(
            "quantbot_job_last_success_timestamp_seconds", "When the job last succeeded (Unix time).", labels=["job"]
        )
        for name, st in sorted(self.stats.items()):
            runs.add_metric([name], st.runs)
            failures.add_metric([name], st.failures)
            if st.last_success is not None:
                last.add_metric([name], st.last_success.timestamp())
        yield runs
        yield failures
        yield last
