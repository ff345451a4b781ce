"""OrderRouter: journal first, then the executor; reconcile what was left unfinished.

An order reaches an executor only after its journal row (with its idempotency key) is committed.
Executors in an order's chain are tried in turn, the next only when the previous provably did not
send and did not refuse the trade itself (price impact, slippage: a market verdict). An executor
that raises may have sent: the order stays `submitted` and is reconciled, never re-sent. Unfinished
orders found at start, and unfinished orders no flow of this run owns (the `reconcile_orders` job),
are asked about through the executor's `reconcile`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime

import msgspec
import structlog

from quantbot.api import Executor
from quantbot.bus import EventBus
from quantbot.clock import Clock
from quantbot.events import (
    OrderApproved,
    OrderExpired,
    OrderFailed,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    RejectReason,
)
from quantbot.execution import ApprovedOrder, ExecutionReport, Outcome
from quantbot.portfolio import Portfolio
from quantbot.secrets import Redactor
from quantbot.store import DuplicateOrder, FillRow, OrderRow, Store

log = structlog.get_logger(component="orders")

MARKET_VERDICTS = frozenset(
    {
        RejectReason.PRICE_IMPACT,
        RejectReason.SLIPPAGE,
        RejectReason.MIN_LIQUIDITY,
        RejectReason.INSUFFICIENT_BALANCE,
    }
)
"""Refusals about the market or the wallet, not the venue: the next executor would trade into the same pool with
the same wallet, without the check that refused (a fallback that cannot quote its price impact, say)."""

_order_codec = msgspec.json.Encoder()
_order_decoder = msgspec.json.Decoder(ApprovedOrder)


class UnsealedOrder(Exception):
    """An ApprovedOrder the RiskEngine did not make (or that was changed after)."""


class Sealer:
    """Seals approved orders with a per-run secret key; only its holders can make a valid one."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _mac(self, order: ApprovedOrder) -> str:
        body = _order_codec.encode(msgspec.structs.replace(order, seal=""))
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def seal(self, order: ApprovedOrder) -> ApprovedOrder:
        return msgspec.structs.replace(order, seal=self._mac(order))

    def verify(self, order: ApprovedOrder) -> bool:
        return bool(order.seal) and hmac.compare_digest(order.seal, self._mac(order))


class OrderRouter:
    name = "orders"

    def __init__(
        self,
        *,
        bus: EventBus,
        store: Store,
        portfolio: Portfolio,
        executors: dict[str, Executor],
        sealer: Sealer,
        clock: Clock,
        mode: str,
        execute_timeout: float = 120.0,
        redactor: Redactor | None = None,
    ) -> None:
        self.bus = bus
        self.redactor = redactor
        self.store = store
        self.portfolio = portfolio
        self.executors = executors
        self.sealer = sealer
        self.clock = clock
        self.mode = mode
        self.execute_timeout = execute_timeout
        self._inflight: set[asyncio.Task[None]] = set()
        self._mine: set[str] = set()
        """Orders this run journaled whose flow is still under way (journal -> executor -> result recorded):
        the reconcile job leaves them alone. Any other unfinished row is an orphan it may settle."""
        self._reconciling = asyncio.Lock()
        self._started_at: datetime | None = None
        self._fenced: str | None = None

    async def start(self) -> None:
        self._started_at = self.clock.now()
        if await self.reconcile_all():
            # The portfolio read the balances before these orders were settled: a swap (or a fee) that landed before
            # the restart is in that read and was just booked again. Read them again now.
            try:
                await self.portfolio.sync_balances()
            except Exception as exc:  # noqa: BLE001  (the scheduled read comes all the same)
                log.warning("orders.resync_failed", error=f"{type(exc).__name__}: {exc}")

    @property
    def busy(self) -> bool:
        """Whether an order is in an executor right now."""
        return bool(self._inflight)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def inflight_tasks(self) -> frozenset[asyncio.Task[None]]:
        """The executions running now (replay waits for them before moving simulated time)."""
        return frozenset(self._inflight)

    def fence(self, why: str) -> None:
        """Send nothing from now on (this daemon lost the store's trading lease and is stopping): an order not yet
        in an executor ends failed, never sent, and no orphan is asked about (the lease's new holder settles them).
        Orders already in an executor run to their result."""
        if self._fenced is None:
            log.critical("orders.fenced", detail=why, inflight=len(self._inflight))
            self._fenced = why

    def crash(self) -> None:
        """Tests only: abandon executions mid-way, as a killed process would."""
        for task in list(self._inflight):
            task.cancel()

    async def stop(self) -> None:
        """Let orders already in an executor finish (the daemon bounds how long)."""
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    # --- submitting --------------------------------------------------------------------------------

    async def submit(self, order: ApprovedOrder) -> bool:
        """Journal and dispatch in one step. False if refused before any executor (unsealed, duplicate)."""
        try:
            async with self.store.transaction():
                await self.journal(order)
        except (UnsealedOrder, DuplicateOrder) as exc:
            await self.refuse(order, exc)
            return False
        await self.dispatch(order)
        return True

    async def journal(self, order: ApprovedOrder) -> None:
        """Record the order durably as `pending` (call inside the transaction that reserved its budget).

        Raises UnsealedOrder or DuplicateOrder, so that transaction rolls back.
        """
        if not self.sealer.verify(order):
            raise UnsealedOrder(f"order {order.order_id} carries no valid seal")
        self._mine.add(order.order_id)  # before the row can be seen (the caller's transaction commits it)
        now = self.clock.now()
        await self.store.journal_order(
            OrderRow(
                order_id=order.order_id,
                idempotency_key=order.idempotency_key,
                strategy=order.intent.strategy,
                chain=order.intent.chain,
                side=order.intent.side,
                token=order.intent.token,
                amount=order.intent.amount,
                notional_usd=order.intent.notional_usd,
                executor=order.executors[0] if order.executors else "",
                status="pending",
                intent=_order_codec.encode(order).decode(),
                created_at=order.approved_at,  # the day its budget was reserved on, which a release must match
                updated_at=now,
            )
        )

    async def refuse(self, order: ApprovedOrder, exc: Exception) -> None:
        self._mine.discard(order.order_id)  # its journal row was rolled back: no flow
        if isinstance(exc, UnsealedOrder):
            log.critical("order.unsealed_refused", order_id=order.order_id, strategy=order.intent.strategy)
            return
        log.warning("order.duplicate_refused", idempotency_key=order.idempotency_key)
        await self.bus.publish(
            OrderRejected(
                intent=order.intent,
                reason=RejectReason.DUPLICATE_INTENT,
                detail=f"idempotency key {order.idempotency_key} already journaled",
            )
        )

    async def dispatch(self, order: ApprovedOrder) -> None:
        """Announce a journaled order and start executing it in the background.

        The execution starts even if the announcement is cut off (the caller's handler timed out while a full
        queue held the publish): the row is committed and its budget reserved, so it must run to a result.
        """
        log.info("order.journaled", order_id=order.order_id, key=order.idempotency_key, executors=order.executors)
        try:
            await self.bus.publish(OrderApproved(order_id=order.order_id, intent=order.intent))
        finally:
            task = asyncio.get_running_loop().create_task(
                self._execute(order), name=f"quantbot[orders].execute[{order.order_id}]"
            )
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _execute(self, order: ApprovedOrder) -> None:
        try:
            await self._try_executors(order)
        except Exception as exc:  # a store error, a broken report: never a silent end with the row pending
            log.critical("order.execute_crashed", order_id=order.order_id, exc_info=exc)
            report = ExecutionReport(outcome=Outcome.SUBMITTED, detail=f"router error: {type(exc).__name__}: {exc}")
            try:
                await self._apply(order, "", report)
            except Exception as again:
                log.critical("order.unrecorded", order_id=order.order_id, exc_info=again)
        finally:
            self._mine.discard(order.order_id)

    async def _try_executors(self, order: ApprovedOrder) -> None:
        last = ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.NO_EXECUTOR, detail="no executor")
        recorded = order.executors[0] if order.executors else ""  # what `journal` wrote
        for name in order.executors:
            if self._fenced is not None:
                report = ExecutionReport(
                    outcome=Outcome.FAILED, reason=RejectReason.HALTED, detail=f"not sent: {self._fenced}"
                )
                await self._apply(order, recorded, report)
                return
            executor = self.executors.get(name)
            if executor is None:
                last = ExecutionReport(
                    outcome=Outcome.FAILED, reason=RejectReason.NO_EXECUTOR, detail=f"executor {name!r} not running"
                )
                continue
            if self.mode == "paper" and executor.live:
                last = ExecutionReport(
                    outcome=Outcome.FAILED, reason=RejectReason.PAPER_MODE, detail=f"{name} is live; mode is paper"
                )
                continue
            if name != recorded:  # the journal row already names the first: no second commit before sending
                await self.store.set_order_executor(order.order_id, name, now=self.clock.now())
                recorded = name
            try:
                async with asyncio.timeout(self.execute_timeout):
                    report = await executor.execute(order)
            except Exception as exc:
                log.error("order.executor_error", order_id=order.order_id, executor=name, exc_info=exc)
                detail = f"{type(exc).__name__}: {exc}"  # (a TimeoutError's str is empty)
                await self._apply(order, name, ExecutionReport(outcome=Outcome.SUBMITTED, detail=detail))
                await self._what_was_sent(executor, order)
                return
            if not isinstance(report, ExecutionReport):
                log.error("order.bad_report", order_id=order.order_id, executor=name, report=repr(report)[:200])
                report = ExecutionReport(outcome=Outcome.SUBMITTED, detail=f"{name} returned {type(report).__name__}")
            if report.outcome is Outcome.FAILED and report.reason in MARKET_VERDICTS:
                await self._apply(order, name, self._charge(order, report))
                return
            if report.outcome in (Outcome.FAILED, Outcome.NOT_SENT, Outcome.EXPIRED):
                # provably did not and cannot execute (EXPIRED: sent, but can never land): try the next one
                log.info("order.executor_refused", order_id=order.order_id, executor=name, reason=report.reason)
                last = self._charge(order, report)
                continue
            await self._apply(order, name, report)
            return
        await self._apply(order, order.executors[-1] if order.executors else "", last)

    def _charge(self, order: ApprovedOrder, report: ExecutionReport) -> ExecutionReport:
        """Book the fee of a transaction that landed and failed; the report without it (it is charged once)."""
        if report.outcome is not Outcome.FAILED or report.fee == 0:
            return report
        log.info("order.failed_fee", order_id=order.order_id, tx=report.tx, fee=report.fee)
        self.portfolio.charge_fee(order.intent.chain, report.fee)
        return msgspec.structs.replace(report, fee=0)

    async def _what_was_sent(self, executor: Executor, order: ApprovedOrder) -> None:
        """After an execute that raised or ran out of time (recorded SUBMITTED): put the transaction the executor
        recorded as sent into the journal row. Settling the row later then does not depend on the executor's local
        log surviving (a data_dir moved, the store's lease taken over by a daemon on another host)."""
        try:
            tx = executor.sent(order)
        except Exception as exc:  # noqa: BLE001  (the reconcile job asks the executor later all the same)
            log.warning("order.sent_unknown", order_id=order.order_id, error=f"{type(exc).__name__}: {exc}")
            return
        if tx:
            await self._note_tx(order.order_id, tx)

    async def _note_tx(self, order_id: str, tx: str) -> None:
        """Record the transaction of an unfinished order that names none (no event: its status did not change)."""
        if await self.store.set_order_tx(order_id, tx, now=self.clock.now()):
            log.info("order.tx_recorded", order_id=order_id, tx=tx)

    # --- results ---------------------------------------------------------------------------------

    async def _apply(self, order: ApprovedOrder, executor: str, report: ExecutionReport) -> None:
        now = self.clock.now()
        oid = order.order_id
        if self.redactor is not None and report.detail:
            # an executor's or exception's text (a URL with an API key, say) goes on to the store, the bus, MQTT
            # and the notifiers: only ever scrubbed
            report = msgspec.structs.replace(report, detail=self.redactor.scrub(report.detail))
        outcome = report.outcome
        if outcome is Outcome.FILLED and report.fill is None:
            # the trade landed, by the executor's word, but it did not say what moved: reconcile, never "failed"
            log.error("order.fill_missing", order_id=oid, executor=executor)
            report = ExecutionReport(outcome=Outcome.SUBMITTED, tx=report.tx, detail="filled without fill details")
            outcome = report.outcome
        if outcome is Outcome.FILLED and report.fill is not None:
            f = report.fill
            fill = FillRow(
                order_id=oid,
                tx=f.tx,
                amount_in=f.amount_in,
                amount_out=f.amount_out,
                fee=f.fee,
                price_native=f.price_native,
                filled_at=f.filled_at,
            )
            update = None
            async with self.portfolio.booking():
                recorded = await self.store.record_fill(fill)
                if recorded:
                    i = order.intent
                    update = await self.portfolio.apply_fill(
                        chain=i.chain,
                        token=i.token,
                        side=i.side,
                        amount_in=f.amount_in,
                        amount_out=f.amount_out,
                        fee=f.fee,
                        strategy=i.strategy,
                        leader=i.leader,
                    )
            if recorded:
                log.info("order.filled", order_id=oid, executor=executor, tx=f.tx, amount_out=f.amount_out)
                await self.bus.publish(
                    OrderFilled(
                        order_id=oid,
                        executor=executor,
                        tx=f.tx,
                        amount_in=f.amount_in,
                        amount_out=f.amount_out,
                        fee=f.fee,
                        price_native=f.price_native,
                    )
                )
                if update is not None:
                    await self.bus.publish(update)
        elif outcome is Outcome.SUBMITTED:
            await self.store.set_order_status(oid, "submitted", now=now, tx=report.tx, detail=report.detail)
            log.info("order.submitted", order_id=oid, executor=executor, tx=report.tx)
            await self.bus.publish(OrderSubmitted(order_id=oid, executor=executor, tx=report.tx or ""))
        elif outcome is Outcome.EXPIRED:
            if await self.store.set_order_status(oid, "expired", now=now, tx=report.tx, detail=report.detail):
                log.info("order.expired", order_id=oid, executor=executor, tx=report.tx)
                await self.bus.publish(OrderExpired(order_id=oid, executor=executor, tx=report.tx or ""))
        else:
            reason = str(report.reason or (RejectReason.NOT_SENT if outcome is Outcome.NOT_SENT else "failed"))
            if await self.store.set_order_status(oid, "failed", now=now, reason=reason, detail=report.detail):
                log.info("order.failed", order_id=oid, executor=executor, reason=reason, detail=report.detail)
                await self.bus.publish(
                    OrderFailed(order_id=oid, executor=executor, reason=reason, detail=report.detail)
                )

    # --- reconciliation ----------------------------------------------------------------------------

    async def reconcile_all(self) -> int:
        """At start-up: ask the executor about every unfinished order (`pending` ones were cut off by a
        stop or a crash before their result was recorded) and apply what it proves. Returns how many."""
        return await self._reconcile(lambda row: True)

    async def reconcile_open(self) -> int:
        """The `reconcile_orders` job: ask again about unfinished orders no flow of this run is handling: left
        `submitted` (an executor timeout, an unreadable report, a crash in the router) or still `pending` after
        a start-up reconciliation that could not settle them. A swap that landed after we stopped waiting is
        booked, and one that provably never will gives its budget back, now rather than at the next restart."""
        started = self._started_at
        return await self._reconcile(
            lambda row: (
                row.order_id not in self._mine
                # a pending row journaled since we started that is not ours is another process's flow under way
                and (row.status != "pending" or (started is not None and row.created_at <= started))
            )
        )

    async def _reconcile(self, wanted: Callable[[OrderRow], bool]) -> int:
        async with self._reconciling:  # the start-up pass and the job never ask about one order twice at once
            rows = [row for row in await self.store.unfinished_orders() if wanted(row)]
            hanging: set[str] = set()
            for row in rows:
                if self._fenced is not None:
                    break
                if row.executor in hanging:
                    continue  # one timeout per executor and pass: the other executors' orders still get asked
                if not await self._reconcile_one(row):
                    hanging.add(row.executor)
        return len(rows)

    async def _reconcile_one(self, row: OrderRow) -> bool:
        """One order: a failing or hanging executor (bounded by `execute_timeout`) leaves it open for next time.
        False when the executor timed out."""
        executor = self.executors.get(row.executor)
        if executor is None:
            log.error("order.reconcile_impossible", order_id=row.order_id, executor=row.executor)
            return True
        try:
            order = _order_decoder.decode(row.intent)
            async with asyncio.timeout(self.execute_timeout):
                report = await executor.reconcile(order, row.tx)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"  # (a TimeoutError's str is empty)
            log.error(
                "order.reconcile_failed", order_id=row.order_id, executor=row.executor, detail=detail, exc_info=exc
            )
            return not isinstance(exc, TimeoutError)
        log.info("order.reconciled", order_id=row.order_id, status=row.status, outcome=report.outcome.value)
        if report.outcome is Outcome.SUBMITTED:
            if report.tx and not row.tx:  # the row should name what was sent, not only the executor's log
                await self._note_tx(row.order_id, report.tx)
            return True  # still unknown: leave it open, never re-send
        if report.outcome is Outcome.NOT_SENT:
            report = ExecutionReport(
                outcome=Outcome.FAILED,
                reason=RejectReason.NOT_SENT,
                detail=f"journaled ({row.status}) but never sent; not re-sent",
            )
        # Shielded: a job cancelled mid-way must not leave the position changed in memory but not in the store.
        await asyncio.shield(self._apply(order, row.executor, self._charge(order, report)))
        return True
