"""Budgets: daily notional, open positions, exposure, rate and cooldown; reserved atomically, released on
failure, rebuilt after a restart, and never exceeded under any interleaving (hypothesis stateful)."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from structlog.testing import capture_logs

from quantbot.api import NATIVE_TOKEN, ApprovedOrder, ExecutionReport, Executor, Fill, Outcome, PluginConfig
from quantbot.clock import SimClock
from quantbot.config import OrdersConfig, RiskConfig
from quantbot.events import OrderRejected, RejectReason
from quantbot.portfolio import Position
from quantbot.risk import NOTIONAL_KEY, utc_day
from quantbot.testing import order_intent
from tests.orderpath import OrderPath, order_path

T0 = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
SOL = 1_000_000_000


class HeldExecutor(Executor):
    """Holds every order until the test says how it ends; remembers what 'landed' across restarts."""

    live = False

    def __init__(self, *, landed: dict[str, Fill], native: int = 1000 * 10**9) -> None:
        super().__init__(id="held", config=PluginConfig())
        self.native = native
        self.waiting: dict[str, asyncio.Future[ExecutionReport]] = {}
        self.landed = landed

    async def execute(self, order: ApprovedOrder) -> ExecutionReport:
        fut: asyncio.Future[ExecutionReport] = asyncio.get_running_loop().create_future()
        self.waiting[order.order_id] = fut
        try:
            return await fut
        finally:
            self.waiting.pop(order.order_id, None)

    async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
        fill = self.landed.get(order.order_id)
        if fill is None:
            return ExecutionReport(outcome=Outcome.NOT_SENT)
        return ExecutionReport(outcome=Outcome.FILLED, tx=fill.tx, fill=fill)

    async def balances(self, tokens: Collection[str] = ()) -> Mapping[str, int]:
        return {NATIVE_TOKEN["solana"]: self.native}


LIMITS = RiskConfig(
    max_order_usd=Decimal(50),
    max_order_sol=Decimal("0.5"),
    daily_notional_usd=Decimal(100),
    max_open_positions=2,
    max_exposure_sol=Decimal("0.3"),
    max_orders_per_minute=1000,
    token_cooldown_s=0,
    duplicate_window_s=0,
)
ROUTES = OrdersConfig(solana=("held",))
MACHINE_LIMITS = msgspec.structs.replace(LIMITS, duplicate_window_s=60, max_exposure_pct=Decimal(50))
"""The stateful test also runs duplicate suppression, exposure as % of equity and balance sufficiency."""
MACHINE_BALANCE = SOL // 2


async def settle(path: OrderPath) -> None:
    """Until the bus is idle and every execution is finished or parked on a future the test holds."""
    held = next(e for e in path.executors.values() if isinstance(e, HeldExecutor))
    async with asyncio.timeout(30):
        while True:
            await path.bus.drain(5)
            parked = sum(1 for f in held.waiting.values() if not f.done())
            if path.router.inflight == parked and path.bus.idle:
                return
            await asyncio.sleep(0.001)


def buy(n: int, token: str = "A", usd: str = "10", sol: float = 0.1, **kw: object):  # type: ignore[no-untyped-def]
    return order_intent(
        intent_id=str(n), token=token, notional_usd=Decimal(usd), amount=int(sol * SOL), price_native=Decimal(1), **kw
    )


async def test_daily_notional_is_reserved_and_a_new_utc_day_starts_clean(tmp_path: Path) -> None:
    clock = SimClock(T0)
    ex = HeldExecutor(landed={})
    limits = msgspec.structs.replace(LIMITS, max_open_positions=50, max_exposure_sol=Decimal(100))
    async with order_path(tmp_path, executors={"held": ex}, routes=ROUTES, limits=limits, clock=clock) as path:
        for n, token in enumerate("ABCDEFGHIJK"):
            await path.bus.publish(buy(n, token=token, usd="10"))
        await settle(path)
        assert await path.store.get_counter(utc_day(T0), NOTIONAL_KEY) == Decimal(100)
        refused = [e for e in path.events if isinstance(e, OrderRejected)]
        assert [e.reason for e in refused] == [RejectReason.DAILY_NOTIONAL]
        clock.advance(3600)  # 00:00 UTC: a new day
        await path.bus.publish(buy(99, token="Z"))
        await settle(path)
        assert await path.store.get_counter(utc_day(clock.now()), NOTIONAL_KEY) == Decimal(10)
        for fut in list(ex.waiting.values()):
            fut.set_result(ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.NO_PRICE))
        await settle(path)
        await settle(path)
        assert await path.store.get_counter(utc_day(T0), NOTIONAL_KEY) == 0, "failures give the budget back"


async def test_a_failure_whose_release_was_cut_off_gives_the_budget_back_at_the_next_start(tmp_path: Path) -> None:
    """Killed after the order was marked failed but before the risk engine heard of it: the next start
    rebuilds today's budget from the journal instead of keeping the dead order's reservation all day."""
    clock = SimClock(T0)
    ex = HeldExecutor(landed={})
    async with order_path(tmp_path, executors={"held": ex}, routes=ROUTES, limits=LIMITS, clock=clock) as path:
        await path.bus.publish(buy(1, token="A", usd="10"))
        await path.bus.publish(buy(2, token="B", usd="7"))
        await settle(path)
        assert await path.store.get_counter(utc_day(T0), NOTIONAL_KEY) == Decimal(17)
        dead, _ = sorted(await path.store.orders(), key=lambda r: r.token)
        await path.store.set_order_status(dead.order_id, "failed", now=T0, reason="not_sent")  # then the kill
        path.router.crash()

    class StillOut(HeldExecutor):  # B may still land: its budget stays held
        async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
            return ExecutionReport(outcome=Outcome.SUBMITTED)

    with capture_logs() as logs:
        restarted = StillOut(landed={})
        async with order_path(tmp_path, executors={"held": restarted}, routes=ROUTES, clock=clock) as path:
            await settle(path)
            counted = await path.store.get_counter(utc_day(T0), NOTIONAL_KEY)
            path.router.crash()
    assert counted == Decimal(7), "B still holds its 7; A's 10 is back"
    assert [e["owed"] for e in logs if e["event"] == "risk.budget_rebuilt"] == ["7"]


async def test_pending_buys_count_as_open_positions_and_exposure(tmp_path: Path) -> None:
    ex = HeldExecutor(landed={})
    async with order_path(tmp_path, executors={"held": ex}, routes=ROUTES, limits=LIMITS) as path:
        await path.bus.publish(buy(1, token="A", sol=0.2))
        await path.bus.publish(buy(2, token="A", sol=0.2))  # 0.4 SOL in A > 0.3 cap
        await path.bus.publish(buy(3, token="B", sol=0.1))
        await path.bus.publish(buy(4, token="C", sol=0.1))  # a third position > 2
        await settle(path)
        refused = {e.intent.intent_id: e.reason for e in path.events if isinstance(e, OrderRejected)}
        assert refused == {"2": RejectReason.MAX_EXPOSURE, "4": RejectReason.MAX_OPEN_POSITIONS}
        for fut in list(ex.waiting.values()):
            fut.set_result(ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.NO_PRICE))


async def test_rate_limit_and_cooldown(tmp_path: Path) -> None:
    clock = SimClock(T0)
    limits = msgspec.structs.replace(
        LIMITS, max_orders_per_minute=2, token_cooldown_s=30, max_open_positions=10, daily_notional_usd=Decimal(1000)
    )
    async with order_path(tmp_path, limits=limits, clock=clock) as path:
        await path.bus.publish(buy(1, token="A"))
        await path.bus.publish(buy(2, token="A"))  # cooldown
        await path.bus.publish(buy(3, token="B"))
        await path.bus.publish(buy(4, token="C"))  # third in a minute
        await path.settle()
        clock.advance(61)
        await path.bus.publish(buy(5, token="A"))
        await path.settle()
    refused = {e.intent.intent_id: e.reason for e in path.events if isinstance(e, OrderRejected)}
    assert refused == {"2": RejectReason.COOLDOWN, "4": RejectReason.RATE_LIMIT}


def test_position_average_cost_and_realised_pnl() -> None:
    p = Position(chain="solana", token="A")
    p.buy(spent=100, received=10, at=T0)
    p.buy(spent=300, received=10, at=T0)
    assert p.avg_cost() == Decimal(20)
    assert p.sell(sold=5, received=150) == 50  # cost of 5 at 20 = 100
    assert (p.quantity, p.cost_native) == (15, 300)
    assert p.sell(sold=15, received=240) == -60
    assert (p.quantity, p.cost_native, p.realised_pnl_native, p.open) == (0, 0, -10, False)


# --- any interleaving ------------------------------------------------------------------------------


class BudgetMachine(RuleBasedStateMachine):
    """Intents, fills, failures, 'landed then crashed', restarts and day rollovers in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="qb-budget-"))
        self.clock = SimClock(T0)
        self.landed: dict[str, Fill] = {}
        self.ids = itertools.count()
        self._cm = None
        self.path: OrderPath | None = None
        self.executor: HeldExecutor | None = None
        self._open()

    def _run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def _open(self) -> None:
        self.executor = HeldExecutor(landed=self.landed, native=MACHINE_BALANCE)
        self._cm = order_path(
            self.tmp, executors={"held": self.executor}, routes=ROUTES, limits=MACHINE_LIMITS, clock=self.clock
        )
        self.path = self._run(self._cm.__aenter__())  # type: ignore[union-attr]
        self._run(settle(self.path))

    def _crash(self) -> None:
        """Stop without letting anything finish: in-flight executions are cut off mid-way."""
        assert self.path is not None
        self.path.router.crash()
        self._run(asyncio.sleep(0))
        self._run(self.path.bus.aclose())
        self._run(self.path.store.close())
        self.path = None

    def teardown(self) -> None:
        if self.path is not None:
            self._crash()
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(
        token=st.sampled_from("ABC"),
        usd=st.sampled_from(["5", "20", "45", "60"]),
        sol=st.sampled_from([0.05, 0.1, 0.2]),
        reuse=st.booleans(),
        strategy=st.sampled_from(["s1", "s2"]),
    )
    def intent(self, token: str, usd: str, sol: float, reuse: bool, strategy: str) -> None:
        assert self.path is not None
        n = 0 if reuse else next(self.ids) + 1
        self._run(self.path.bus.publish(buy(n, token=token, usd=usd, sol=sol, strategy=strategy)))
        self._run(settle(self.path))

    @precondition(lambda self: self.executor is not None and self.executor.waiting)
    @rule(data=st.data(), outcome=st.sampled_from(["filled", "failed", "expired"]))
    def resolve(self, data: st.DataObject, outcome: str) -> None:
        assert self.executor is not None and self.path is not None
        oid = data.draw(st.sampled_from(list(self.executor.waiting)))  # approval order: ids are random
        fut = self.executor.waiting[oid]
        if outcome == "filled":
            fill = Fill(tx=f"tx-{oid}", amount_in=1, amount_out=1, filled_at=self.clock.now())
            self.landed[oid] = fill
            fut.set_result(ExecutionReport(outcome=Outcome.FILLED, tx=fill.tx, fill=fill))
        elif outcome == "failed":
            fut.set_result(ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.NO_PRICE))
        else:
            fut.set_result(ExecutionReport(outcome=Outcome.EXPIRED, tx=f"tx-{oid}"))
        self._run(settle(self.path))

    @precondition(lambda self: self.executor is not None and self.executor.waiting)
    @rule(data=st.data())
    def land_then_crash(self, data: st.DataObject) -> None:
        """The venue executed the order, and the daemon died before hearing of it."""
        assert self.executor is not None
        oid = data.draw(st.sampled_from(list(self.executor.waiting)))  # approval order: ids are random
        self.landed[oid] = Fill(tx=f"tx-{oid}", amount_in=1, amount_out=1, filled_at=self.clock.now())
        self._crash()
        self._open()

    @rule()
    def restart(self) -> None:
        self._crash()
        self._open()

    @rule(hours=st.sampled_from([0.01, 0.5, 6, 25]))
    def time_passes(self, hours: float) -> None:
        self.clock.advance(hours * 3600)

    @invariant()
    def budgets_hold(self) -> None:
        if self.path is None:
            return
        rows = self._run(self.path.store.orders())
        by_day: dict[str, Decimal] = {}
        for row in rows:
            if row.status in ("failed", "expired"):
                continue
            by_day[utc_day(row.created_at)] = by_day.get(utc_day(row.created_at), Decimal(0)) + (row.notional_usd or 0)
        for day in {utc_day(r.created_at) for r in rows}:
            counted = self._run(self.path.store.get_counter(day, NOTIONAL_KEY))
            assert counted == by_day.get(day, 0), f"{day}: counter {counted} != live orders {by_day.get(day)}"
            assert counted <= LIMITS.daily_notional_usd
        assert len({r.idempotency_key for r in rows}) == len(rows)
        risk = self.path.risk
        assert risk.open_positions() <= LIMITS.max_open_positions
        equity = self.path.portfolio.equity_native("solana")
        assert equity is not None
        for token in "ABC":
            exposure = risk.exposure("solana", token)
            assert exposure <= LIMITS.max_exposure_sol * SOL
            assert exposure * 100 <= MACHINE_LIMITS.max_exposure_pct * equity
        pending = sum(p.native for p in risk.pending.values())
        assert pending <= self.path.portfolio.native["solana"], "approved spend never exceeds the balance"
        # Duplicate suppression holds across restarts: one order per strategy, token and side per window.
        last: dict[tuple[str, str, str], datetime] = {}
        for row in rows:  # in creation order
            key = (row.strategy, row.token, row.side)
            if key in last:
                assert (row.created_at - last[key]).total_seconds() >= MACHINE_LIMITS.duplicate_window_s
            last[key] = row.created_at
        # Nothing recorded as filled that did not land, and every landed order ends filled.
        for row in rows:
            if row.status == "filled":
                assert row.order_id in self.landed


BudgetMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_budgets_hold_under_any_interleaving = BudgetMachine.TestCase
