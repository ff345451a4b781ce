"""Replay: feed a recording through the live pipeline (the real Daemon, watchers not built) on simulated time.

Simulated time is a discrete-event clock: before each recorded event the clock moves to the event's time,
stopping first at every earlier deadline a component sleeps towards (ticks, portfolio intervals, an
executor's latency) and at every equity sample boundary. After each step the pipeline settles: every
event published meanwhile is handled and every order execution has finished or waits on simulated time.
So an intent triggered by event N is filled before event N+1 is published, at the PriceBook's price from
events up to N (no look-ahead); with the paper executor's `latency_ms` the fill happens that much later
in simulated time, at the price the recording shows by then.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
import structlog

from quantbot.bus import Subscription
from quantbot.clock import Clock, SimClock, WallClock
from quantbot.events import (
    EPOCH,
    Event,
    OrderApproved,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    PriceUpdate,
)
from quantbot.price_sources import NATIVE_ID, SourceQuote
from quantbot.recording import ReadStats, read_recording

if TYPE_CHECKING:
    from quantbot.daemon import Daemon

log = structlog.get_logger(component="replay")

NATIVE_DECIMALS = {"solana": 9, "aptos": 8}
FAST_SPINS = 4
"""Loop turns replay yields before it waits on queues instead (most events settle within them)."""
REPLAYED_SOURCE = "recorded"
"""PriceBook source name for the native coin's USD price taken from recorded price updates."""


class ReplayClock(SimClock):
    """SimClock that knows which tasks sleep on it and when the next one wakes."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.sleeping: Counter[asyncio.Task[Any]] = Counter()
        self._now_at, self._now = 0.0, super().now()
        self.slept = asyncio.Event()
        """Set whenever a task starts sleeping (replay's settle re-checks who is still working)."""

    async def sleep(self, seconds: float) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.sleeping[task] += 1
        self.slept.set()
        try:
            await super().sleep(seconds)
        finally:
            if task is not None:
                self.sleeping[task] -= 1
                if self.sleeping[task] <= 0:
                    del self.sleeping[task]

    def now(self) -> datetime:
        # Asked for on nearly every event by many components; the datetime only changes when time moves.
        if self._now_at != self._elapsed:
            self._now_at, self._now = self._elapsed, super().now()
        return self._now

    def next_deadline(self) -> float | None:
        """Simulated seconds (as `monotonic()`) at which the earliest sleeper wakes; None with none."""
        heap = self._sleepers
        while heap and heap[0][2].done():
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def advance_to(self, mono: float) -> None:
        if mono > self.monotonic():
            self.advance(mono - self.monotonic())


@dataclass(frozen=True, slots=True)
class Trade:
    at: datetime
    order_id: str
    strategy: str
    chain: str
    token: str
    side: str
    amount_in: int
    amount_out: int
    fee: int
    price_native: Decimal | None

    @property
    def notional_native(self) -> int:
        """Native base units that changed hands (spent on a buy, received on a sell)."""
        return self.amount_in if self.side == "buy" else self.amount_out


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    chain: str
    equity_native: int
    exposure_native: int
    equity_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class ClosedTrip:
    chain: str
    strategy: str
    token: str
    cost_native: int
    pnl_native: int


@dataclass
class ReplayResult:
    """Everything a report needs from one replay run."""

    recording: str
    overrides: dict[str, str] = field(default_factory=dict)
    window: tuple[datetime | None, datetime | None] = (None, None)
    events: int = 0
    first: datetime | None = None
    last: datetime | None = None
    sample_s: float = 60.0
    trades: list[Trade] = field(default_factory=list)
    rejections: Counter[str] = field(default_factory=Counter)
    samples: list[Sample] = field(default_factory=list)
    trips: list[ClosedTrip] = field(default_factory=list)
    realised_native: dict[str, int] = field(default_factory=dict)
    unrealised_native: dict[str, int] = field(default_factory=dict)
    truncated_tail: bool = False
    exit_status: int = 0


class Progress:
    """A bar on a TTY (rewritten in place), else a plain line every 10%: on `stream` (stderr)."""

    def __init__(self, *, total_bytes: int, stream: TextIO | None = None, label: str = "replay") -> None:
        self.stream = stream or sys.stderr
        self.total = max(total_bytes, 1)
        self.label = label
        self.tty = self.stream.isatty()
        self._last_step = -1

    def update(self, *, offset: int, events: int, now: datetime) -> None:
        frac = min(offset / self.total, 1.0)
        if self.tty:
            filled = int(frac * 30)
            bar = "#" * filled + "-" * (30 - filled)
            self.stream.write(f"\r{self.label} [{bar}] {frac:6.1%} {events} events  {now:%Y-%m-%d %H:%M:%S}")
            self.stream.flush()
            return
        step = int(frac * 10)
        if step > self._last_step:
            self._last_step = step
            self.stream.write(f"{self.label}: {frac:.0%} {events} events, at {now.isoformat()}\n")
            self.stream.flush()

    def done(self, *, events: int) -> None:
        if self.tty:
            self.stream.write(f"\r{self.label}: done, {events} events{' ' * 40}\n")
            self.stream.flush()


class ReplaySource:
    """Component "replay": the event source that stands in for the watchers; stops the daemon when done."""

    name = "replay"
    is_source = True

    def __init__(
        self,
        *,
        daemon: Daemon,
        path: Path,
        clock: ReplayClock,
        result: ReplayResult,
        speed: float | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        progress: Progress | None = None,
        pace: Clock | None = None,
    ) -> None:
        self.daemon = daemon
        self.path = path
        self.clock = clock
        self.result = result
        self.speed = speed
        self.start_at = start
        self.end_at = end
        self.progress = progress
        self.pace = pace or WallClock()
        self.error: BaseException | None = None
        self._orders: dict[str, OrderIntent] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        bus = self.daemon.bus
        assert bus is not None  # noqa: S101  (built before the sources)
        bus.subscribe(
            ["order.approved", "order.filled", "order.rejected", "order.failed"], self._on_order, name="replay.collect"
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="quantbot[replay].feed")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            await self._feed()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  (a bad recording or a bug: stop the run, the caller reports it)
            self.error = exc
        finally:
            self.daemon.request_stop()

    async def _feed(self) -> None:
        stats = ReadStats()
        sample_s = self.result.sample_s
        next_sample = self.clock.monotonic()
        for n, (_, at, event) in enumerate(read_recording(self.path, stats), 1):
            if self.start_at is not None and at < self.start_at:
                continue
            if self.end_at is not None and at >= self.end_at:
                break
            target = max((at - self.clock.now()).total_seconds(), 0.0) + self.clock.monotonic()
            next_sample = await self._advance(target, next_sample, sample_s)
            await self._publish(event)
            self.result.events += 1
            self.result.first = self.result.first or at
            self.result.last = at
            if self.progress is not None and n % 1000 == 0:
                self.progress.update(offset=stats.offset, events=self.result.events, now=at)
        await self._settle()
        self._sample()
        self.result.truncated_tail = stats.truncated_tail
        if self.progress is not None:
            self.progress.done(events=self.result.events)
        await self._final_state()

    async def _advance(self, target: float, next_sample: float, sample_s: float) -> float:
        """Move simulated time to `target`, stopping at every earlier sleeper deadline and sample boundary."""
        while True:
            deadline = self.clock.next_deadline()
            now = self.clock.monotonic()
            if (deadline is None or deadline > target) and next_sample > target:
                # Nothing wakes and no sample falls due on the way (the usual case between two events):
                # the pipeline is already settled, so time just moves.
                if target > now:
                    if self.speed is not None:
                        await self.pace.sleep((target - now) / self.speed)
                    self.clock.advance_to(target)
                return next_sample
            step = min(x for x in (target, deadline, next_sample) if x is not None)
            if step > now:
                if self.speed is not None:
                    await self.pace.sleep((step - now) / self.speed)
                self.clock.advance_to(step)
                await self._settle()
            if step >= next_sample:
                self._sample()
                next_sample += sample_s * max(1, math.ceil((step - next_sample) / sample_s + 1e-12))

    async def _publish(self, event: Event) -> None:
        bus = self.daemon.bus
        assert bus is not None  # noqa: S101
        if isinstance(event, PriceUpdate):
            # The PriceBook re-derives token prices from the recorded swaps; a recorded price only
            # contributes the native coin's USD price (what a live HTTP source would have given).
            await self._native_usd(event)
            return
        # Re-stamped by the bus: ids and times from the simulated clock, as live.
        await bus.publish(msgspec.structs.replace(event, id=0, ts=EPOCH, origin=""))
        await self._settle()

    async def _native_usd(self, event: PriceUpdate) -> None:
        prices = self.daemon.prices
        if prices is None or event.price_usd is None or event.price_native <= 0:
            return
        per_native = event.price_usd / event.price_native * (Decimal(10) ** NATIVE_DECIMALS[event.chain])
        await prices.observe_quotes(REPLAYED_SOURCE, [SourceQuote(chain=event.chain, token=NATIVE_ID, usd=per_native)])

    async def _settle(self) -> None:
        """Until every queued event is handled and every order execution is done or waits on simulated time.

        Usually a few loop turns suffice; when a handler waits on a thread (the store, the ledger's fsync),
        wait for its queue to drain (or for it to start sleeping on the clock) instead of spinning.
        """
        for _ in range(FAST_SPINS):
            await asyncio.sleep(0)
            if self._quiet():
                return
        subs, tasks = self._blockers()
        while subs or tasks:
            self.clock.slept.clear()
            ours: list[asyncio.Future[Any]] = [asyncio.ensure_future(s.queue.join()) for s in subs]
            ours.append(asyncio.ensure_future(self.clock.slept.wait()))
            try:
                await asyncio.wait([*ours, *tasks], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for fut in ours:
                    fut.cancel()
            await asyncio.sleep(0)
            subs, tasks = self._blockers()

    def _quiet(self) -> bool:
        """No blockers (see `_blockers`): checked after every loop turn, so without building lists."""
        bus, router = self.daemon.bus, self.daemon.router
        assert bus is not None  # noqa: S101
        sleeping = self.clock.sleeping
        for s in bus.subscriptions():
            if (s.busy or s.queue.qsize()) and s.task not in sleeping:
                return False
        return router is None or not any(t not in sleeping for t in router.inflight_tasks())

    def _blockers(self) -> tuple[list[Subscription], list[asyncio.Task[None]]]:
        """Subscriptions with work and order executions, except those asleep on the simulated clock."""
        bus, router = self.daemon.bus, self.daemon.router
        assert bus is not None  # noqa: S101  (built before the sources)
        sleeping = self.clock.sleeping
        subs = [s for s in bus.subscriptions() if (s.busy or s.queue.qsize()) and s.task not in sleeping]
        tasks = [t for t in router.inflight_tasks() if t not in sleeping] if router is not None else []
        return subs, tasks

    def _sample(self) -> None:
        portfolio = self.daemon.portfolio
        if portfolio is None:
            return
        now = self.clock.now()
        for chain in sorted(portfolio.native):
            equity = portfolio.equity_native(chain)
            if equity is None:
                continue
            exposure = sum(
                p.value(portfolio.mark(chain, p.token))
                for p in portfolio.positions.values()
                if p.chain == chain and p.open
            )
            usd = portfolio.to_usd(chain, equity)
            self.result.samples.append(Sample(now, chain, equity, exposure, usd))

    async def _final_state(self) -> None:
        portfolio, store = self.daemon.portfolio, self.daemon.store
        if portfolio is not None:
            for p in portfolio.positions.values():
                self.result.realised_native[p.chain] = (
                    self.result.realised_native.get(p.chain, 0) + p.realised_pnl_native
                )
                unreal = portfolio.unrealised_pnl(p.chain, p.token)
                self.result.unrealised_native[p.chain] = self.result.unrealised_native.get(p.chain, 0) + unreal
        if store is not None:
            for trip in await store.round_trips():
                self.result.trips.append(
                    ClosedTrip(trip.chain, trip.strategy, trip.token, trip.cost_native, trip.pnl_native)
                )

    async def _on_order(self, event: Event) -> None:
        if isinstance(event, OrderApproved):
            self._orders[event.order_id] = event.intent
        elif isinstance(event, OrderFilled):
            intent = self._orders.get(event.order_id)
            if intent is None:
                return
            self.result.trades.append(
                Trade(
                    at=self.clock.now(),
                    order_id=event.order_id,
                    strategy=intent.strategy,
                    chain=intent.chain,
                    token=intent.token,
                    side=intent.side,
                    amount_in=event.amount_in,
                    amount_out=event.amount_out,
                    fee=event.fee,
                    price_native=event.price_native,
                )
            )
        elif isinstance(event, OrderRejected):
            self.result.rejections[event.reason.value] += 1
        elif isinstance(event, OrderFailed):
            self.result.rejections[f"failed:{event.reason}"] += 1


def window_bounds(first: datetime, last: datetime, splits: int) -> list[tuple[datetime, datetime]]:
    """`splits` equal, consecutive time windows covering [first, last] (the last one closed at the end)."""
    span = (last - first) / splits
    edges = [first + span * i for i in range(splits)] + [last + timedelta(microseconds=1)]
    return [(edges[i], edges[i + 1]) for i in range(splits)]
