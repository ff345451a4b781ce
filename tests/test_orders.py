"""OrderRouter: journal before send, sealed orders only, no duplicates, fallbacks, reconcile after a crash."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from structlog.testing import capture_logs

from quantbot.api import (
    NATIVE_TOKEN,
    ApprovedOrder,
    ExecutionReport,
    Executor,
    Fill,
    Outcome,
    PluginConfig,
    PluginEnv,
)
from quantbot.clock import SimClock
from quantbot.config import OrdersConfig
from quantbot.events import (
    Event,
    OrderApproved,
    OrderFailed,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    RejectReason,
)
from quantbot.hosting import StrategyContextImpl
from quantbot.risk import NOTIONAL_KEY, utc_day
from quantbot.store import OrderRow, StoreError
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.paper import PaperExecutor
from tests.conftest import REPO
from tests.orderpath import first_call, order_path, order_row

PRICE = Decimal(1000)  # lamports per token base unit
SOL_IN = 100_000_000
T_APPROVED = datetime(2026, 1, 1, tzinfo=UTC)


def intent(n: int = 1, **fields: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = {
        "intent_id": f"i{n}",
        "notional_usd": Decimal(5),
        "price_native": PRICE,
        "amount": 100_000_000,  # 0.1 SOL
    }
    return order_intent(**(base | fields))


class ScriptedExecutor(Executor):
    """An executor that answers from a script and records what it saw (state included)."""

    live = True

    def __init__(self, *, id: str, answers: list[ExecutionReport | Exception], store: object = None) -> None:
        super().__init__(id=id, config=PluginConfig())
        self.answers = answers
        self.seen: list[ApprovedOrder] = []
        self.status_at_send: list[str] = []
        self.store = store

    async def execute(self, order: ApprovedOrder) -> ExecutionReport:
        self.seen.append(order)
        if self.store is not None:
            row = await self.store.get_order(order.order_id)  # type: ignore[attr-defined]
            self.status_at_send.append(row.status if row else "absent")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
        return self.answers.pop(0)  # type: ignore[return-value]

    async def balances(self, tokens: Collection[str] = ()) -> dict[str, int]:
        return {NATIVE_TOKEN["solana"]: 10 * 10**9}


def filled(tx: str = "sig") -> ExecutionReport:
    fill = Fill(tx=tx, amount_in=1, amount_out=2, fee=0, filled_at=datetime(2026, 1, 1, tzinfo=UTC))
    return ExecutionReport(outcome=Outcome.FILLED, tx=tx, fill=fill)


async def through_a_then_b(tmp_path: Path, first_answer: object) -> tuple[OrderRow, ScriptedExecutor, list[Event]]:
    """One buy through the chain a -> b: `a` answers `first_answer`, `b` would fill it. (row, b, events)."""
    first = ScriptedExecutor(id="a", answers=[first_answer])  # type: ignore[list-item]
    second = ScriptedExecutor(id="b", answers=[filled("sig-b")])
    routes = OrdersConfig(solana=("a", "b"))
    async with order_path(tmp_path, executors={"a": first, "b": second}, routes=routes, mode="live") as path:
        await path.bus.publish(intent())
        await path.settle()
        (row,) = await path.store.orders()
    return row, second, path.events


async def test_an_approved_intent_is_journaled_before_the_executor_sees_it(tmp_path: Path) -> None:
    ex = ScriptedExecutor(id="x", answers=[filled()])
    routes = OrdersConfig(solana=("x",))
    async with order_path(tmp_path, executors={"x": ex}, routes=routes, mode="live") as path:
        ex.store = path.store
        await path.bus.publish(intent())
        await path.settle()
        (row,) = await path.store.orders()
    assert ex.status_at_send == ["pending"]
    assert row.status == "filled"


async def test_paper_fill_end_to_end(tmp_path: Path) -> None:
    async with order_path(tmp_path) as path:
        await path.bus.publish(intent())
        await path.settle()
        (row,) = await path.store.orders()
        (fill,) = await path.store.fills()
    assert row.status == "filled" and row.executor == "paper" and row.idempotency_key == "test:i1"
    # 1e8 lamports at 1000 per base unit = 100000, less 50 bps slippage = 99500, less the 25 bps venue fee
    # (248) taken from the output; the network fee (5000 lamports) is paid on top.
    assert (fill.amount_in, fill.amount_out, fill.fee) == (100_000_000, 99_252, 5_000)
    (event,) = [e for e in path.events if isinstance(e, OrderFilled)]
    assert (event.order_id, event.amount_out, event.tx) == (row.order_id, 99_252, f"paper-{row.order_id}")
    assert path.portfolio.position("solana", intent().token).cost_native == 100_005_000


async def test_paper_ledger_lines_from_before_network_fees_keep_their_balances(tmp_path: Path) -> None:
    """Older ledger lines hold the venue fee in `fee` (already out of the output): not charged to SOL again."""
    old = Fill(tx="paper-o", amount_in=SOL_IN, amount_out=99_252, fee=248, filled_at=datetime(2026, 1, 1, tzinfo=UTC))
    line = {"order_id": "o", "fill": msgspec.to_builtins(old), "chain": "solana", "token": "Tok", "side": "buy"}
    folder = tmp_path / "paper"
    folder.mkdir()
    (folder / "paper-ledger.jsonl").write_bytes(msgspec.json.encode(line) + b"\n")
    executor = make_plugin(PaperExecutor, id="paper")
    executor.attach(PluginEnv(clock=SimClock(), data_dir=folder))
    await executor.start()
    balances = await executor.balances()
    assert (balances[NATIVE_TOKEN["solana"]], balances["Tok"]) == (10 * 10**9 - SOL_IN, 99_252)
    order = ApprovedOrder(
        order_id="o", idempotency_key="k", intent=intent(), executors=("paper",), approved_at=old.filled_at
    )
    report = await executor.reconcile(order, None)
    assert report.fill is not None and report.fill.fee == 0, "no venue fee charged as a network fee on reconcile"


async def test_paper_cannot_sell_tokens_it_does_not_hold(tmp_path: Path) -> None:
    """An exit and another strategy's sell of the same tokens: as on chain, only the first can pay; the second
    must not credit proceeds for tokens never held. (The risk engine refuses the second; the venue must too.)"""
    async with order_path(tmp_path) as path:
        await path.bus.publish(intent(1))
        await path.settle()
        held = path.portfolio.position("solana", intent().token).quantity
        for n in (2, 3):
            sell = intent(n, side="sell", amount=held, notional_usd=Decimal(1), reduce_only=True, reason="stop_loss")
            assert await path.router.submit(path.approve(f"sell-{n}", sell, at=path.router.clock.now()))
        await path.settle()
        rows = {r.idempotency_key: r for r in await path.store.orders()}
        position = path.portfolio.position("solana", intent().token)
    statuses = sorted((r.status, r.reason) for k, r in rows.items() if k != "test:i1")
    assert statuses == [("failed", "insufficient_balance"), ("filled", "")]
    assert position.quantity == 0


async def test_an_entry_written_after_a_torn_ledger_line_is_still_read_after_a_restart(tmp_path: Path) -> None:
    """A crash mid-append leaves a line without its newline. The next run's entries must not merge into it: an
    entry acknowledged (and acted on) after it would be unreadable at the next start, its order 'never sent'."""
    folder = tmp_path / "paper"
    folder.mkdir()
    (folder / "paper-ledger.jsonl").write_bytes(b'{"order_id": "torn", "fill": {"tx": "paper-to')

    def order(oid: str) -> ApprovedOrder:
        return ApprovedOrder(
            order_id=oid, idempotency_key=oid, intent=intent(), executors=("paper",), approved_at=T_APPROVED
        )

    executor = make_plugin(PaperExecutor, id="paper")
    executor.attach(PluginEnv(clock=SimClock(), data_dir=folder))
    await executor.start()
    assert (await executor.execute(order("after"))).outcome is Outcome.FILLED
    await executor.stop()

    restarted = make_plugin(PaperExecutor, id="paper")
    restarted.attach(PluginEnv(clock=SimClock(), data_dir=folder))
    await restarted.start()
    assert (await restarted.reconcile(order("after"), None)).outcome is Outcome.FILLED
    assert (await restarted.reconcile(order("torn"), None)).outcome is Outcome.NOT_SENT, "never acknowledged"
    assert (folder / "paper-ledger.jsonl").read_bytes().count(b"\n") == 1


async def test_a_paper_fill_cancelled_mid_write_is_still_known_to_reconcile(tmp_path: Path) -> None:
    """The router's timeout can cancel `execute` while the ledger line is being fsynced: the line lands, and
    the reconcile job must find it (not call the order never sent)."""
    executor = make_plugin(PaperExecutor, id="paper")
    executor.attach(PluginEnv(clock=SimClock(), data_dir=tmp_path / "paper"))
    await executor.start()
    assert executor._file is not None
    append, entered, release = executor._file.append, asyncio.Event(), asyncio.Event()

    async def slow_append(entry: object) -> None:
        entered.set()
        await release.wait()  # the fsync takes a while
        await append(entry)  # type: ignore[arg-type]

    executor._file.append = slow_append  # type: ignore[method-assign]
    order = ApprovedOrder(
        order_id="o", idempotency_key="k", intent=intent(), executors=("paper",), approved_at=T_APPROVED
    )
    task = asyncio.create_task(executor.execute(order))
    await entered.wait()
    task.cancel()  # the router gave up waiting
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with executor._lock:  # the write under way holds it until the ledger knows the fill
        pass
    report = await executor.reconcile(order, None)
    assert report.outcome is Outcome.FILLED


async def test_an_order_without_a_valid_seal_never_reaches_an_executor(tmp_path: Path) -> None:
    ex = ScriptedExecutor(id="x", answers=[filled()])
    async with order_path(tmp_path, executors={"x": ex}, mode="live") as path:
        forged = ApprovedOrder(
            order_id="o",
            idempotency_key="k",
            intent=intent(),
            executors=("x",),
            approved_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        assert not await path.router.submit(forged)
        assert not await path.router.submit(msgspec.structs.replace(forged, seal="00" * 32))
        sealed = path.sealer.seal(forged)
        tampered = msgspec.structs.replace(sealed, intent=intent(amount=10**18))
        assert not await path.router.submit(tampered), "changing a sealed order breaks its seal"
        assert await path.store.orders() == []
    assert ex.seen == []


async def test_a_duplicate_intent_is_refused_and_sent_once(tmp_path: Path) -> None:
    from quantbot.config import RiskConfig

    limits = RiskConfig(token_cooldown_s=0, duplicate_window_s=0)
    async with order_path(tmp_path, limits=limits) as path:
        await path.bus.publish(intent(1))
        await path.bus.publish(intent(1))
        await path.bus.drain(5)
        await path.settle()
        assert len(await path.store.orders()) == 1
    (dup,) = [e for e in path.events if isinstance(e, OrderRejected)]
    assert dup.reason is RejectReason.DUPLICATE_INTENT


async def test_paper_mode_skips_a_live_executor_and_falls_back(tmp_path: Path) -> None:
    live = ScriptedExecutor(id="live", answers=[filled()])
    paper = make_plugin(PaperExecutor, id="paper")
    routes = OrdersConfig(solana=("live", "paper"))
    async with order_path(tmp_path, executors={"live": live, "paper": paper}, routes=routes) as path:
        await path.bus.publish(intent())
        await path.settle()
        (row,) = await path.store.orders()
    assert live.seen == []
    assert (row.status, row.executor) == ("filled", "paper")


async def test_the_next_executor_is_tried_only_after_a_proven_refusal(tmp_path: Path) -> None:
    row, _, _ = await through_a_then_b(tmp_path, ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.NO_PRICE))
    assert (row.status, row.executor, row.tx) == ("filled", "b", "sig-b")


@pytest.mark.parametrize(
    "reason",
    [RejectReason.PRICE_IMPACT, RejectReason.SLIPPAGE, RejectReason.MIN_LIQUIDITY, RejectReason.INSUFFICIENT_BALANCE],
)
async def test_a_market_verdict_is_final_and_no_fallback_trades_past_it(tmp_path: Path, reason: RejectReason) -> None:
    """Jupiter refusing a buy for its price impact must not hand it to a fallback that cannot see the impact."""
    refused = ExecutionReport(outcome=Outcome.FAILED, reason=reason, detail="too big")
    row, second, _ = await through_a_then_b(tmp_path, refused)
    assert second.seen == []
    assert (row.status, row.executor, row.reason) == ("failed", "a", str(reason))


async def test_the_fee_of_a_transaction_that_landed_and_failed_is_booked_once(tmp_path: Path) -> None:
    """It executed nothing but cost its fee: the native balance loses it now, not at the next balance read, also
    when the next executor then fills the order."""
    landed_failed = ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.EXECUTOR_ERROR, tx="t1", fee=7_000)
    first = ScriptedExecutor(id="a", answers=[landed_failed, landed_failed])
    second = ScriptedExecutor(id="b", answers=[filled("sig-b")])
    routes = OrdersConfig(solana=("a", "b"))
    async with order_path(tmp_path, executors={"a": first, "b": second}, routes=routes, mode="live") as path:
        start = path.portfolio.native["solana"]
        await path.bus.publish(intent(1))
        await path.settle()
        after_fallback = path.portfolio.native["solana"]
        path.router.executors.pop("b")
        await path.bus.publish(intent(2, token="So1anaOtherMint111111111111111111111111111"))
        await path.settle()
        rows = {r.idempotency_key: r for r in await path.store.orders()}
        end = path.portfolio.native["solana"]
    assert rows["test:i1"].status == "filled" and rows["test:i2"].status == "failed"
    assert after_fallback == start - 7_000 - 1, "the failed attempt's fee, then the fill's 1 lamport"
    assert end == after_fallback - 7_000, "charged once when it is the order's last word"


async def test_the_journal_names_the_executor_that_holds_the_order_while_it_executes(tmp_path: Path) -> None:
    """Reconciliation after a crash asks the executor the journal names: it must be the one executing."""

    class Naming(ScriptedExecutor):
        named: list[str]

        async def execute(self, order: ApprovedOrder) -> ExecutionReport:
            row = await self.store.get_order(order.order_id)  # type: ignore[attr-defined]
            self.named = [*getattr(self, "named", []), row.executor]
            return await super().execute(order)

    refused = ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.NO_PRICE)
    first, second = Naming(id="a", answers=[refused]), Naming(id="b", answers=[filled("sig-b")])
    routes = OrdersConfig(solana=("gone", "a", "b"))  # "gone" is not running: skipped
    async with order_path(tmp_path, executors={"a": first, "b": second}, routes=routes, mode="live") as path:
        first.store = second.store = path.store
        await path.bus.publish(intent())
        await path.settle()
        (row,) = await path.store.orders()
    assert (first.named, second.named) == (["a"], ["b"])
    assert (row.status, row.executor) == ("filled", "b")


async def test_an_executor_that_raises_leaves_the_order_submitted_not_resent(tmp_path: Path) -> None:
    row, second, events = await through_a_then_b(tmp_path, ConnectionResetError("peer went away mid-send"))
    assert (row.status, row.executor) == ("submitted", "a")
    assert second.seen == [], "maybe-sent is never sent again elsewhere"
    assert [type(e) for e in events if isinstance(e, OrderSubmitted)] == [OrderSubmitted]


@pytest.mark.parametrize(
    "answer",
    [ExecutionReport(outcome=Outcome.FILLED, tx="sig"), None],
    ids=["filled-without-fill", "not-a-report"],
)
async def test_a_report_the_router_cannot_read_leaves_the_order_submitted_not_failed(
    tmp_path: Path, answer: ExecutionReport | None
) -> None:
    """An executor that says FILLED without what moved (or returns nothing) may have traded: the order waits
    for reconciliation, its budget held, never marked failed and never tried elsewhere."""
    row, second, events = await through_a_then_b(tmp_path, answer)
    assert row.status == "submitted" and second.seen == []
    assert not [e for e in events if isinstance(e, OrderFailed)]


async def test_the_journal_row_is_dated_when_its_budget_was_reserved(tmp_path: Path) -> None:
    """The budget is reserved on the approval's UTC day and released on the row's: they must be one day,
    even when the journal write lands after midnight."""

    class Ticking(SimClock):
        def now(self) -> datetime:
            self.advance(0.001)  # time passes between approval and journal, as it does
            return super().now()

    async with order_path(tmp_path, clock=Ticking(datetime(2026, 6, 1, 23, 59, 59, tzinfo=UTC))) as path:
        await path.bus.publish(intent())
        await path.settle()
        (row,) = await path.store.orders()
        (approved,) = [e for e in path.events if isinstance(e, OrderApproved)]
    order = msgspec.json.decode(row.intent)
    assert row.created_at == datetime.fromisoformat(order["approved_at"]) and approved.order_id == row.order_id


async def test_all_executors_refusing_fails_the_order_with_the_last_reason(tmp_path: Path) -> None:
    async with order_path(tmp_path) as path:
        await path.bus.publish(intent(price_native=None))
        await path.settle()
        (row,) = await path.store.orders()
    assert (row.status, row.reason) == ("failed", "no_price")
    (failed,) = [e for e in path.events if isinstance(e, OrderFailed)]
    assert failed.reason == "no_price"


async def test_restart_reconciles_from_the_executor_and_never_resends(tmp_path: Path) -> None:
    # First run: an order is sent and filled by the paper executor, then the daemon "dies" before the
    # store hears of the fill; a second order was journaled but never sent.
    async with order_path(tmp_path) as path:
        paper = path.executors["paper"]
        assert isinstance(paper, PaperExecutor)
        sent = path.approve("sent", intent(1), at=T_APPROVED)
        unsent = path.approve("unsent", intent(2), at=T_APPROVED)
        for o in (sent, unsent):
            await path.store.journal_order(order_row(o))
        report = await paper.execute(sent)  # reached the venue; the store never recorded it
        assert report.outcome is Outcome.FILLED

    # Second run over the same store and ledger: start-up reconciliation settles both.
    restarted = make_plugin(PaperExecutor, id="paper")
    async with order_path(tmp_path, executors={"paper": restarted}) as path:
        rows = {r.order_id: r for r in await path.store.orders()}
        fills = await path.store.fills()
        sol = NATIVE_TOKEN["solana"]
        # The balances read at start already held the swap the reconcile then booked: read again, not counted twice.
        assert path.portfolio.native["solana"] == (await restarted.balances())[sol] < 10 * 10**9
    assert rows["sent"].status == "filled" and [f.order_id for f in fills] == ["sent"]
    assert (rows["unsent"].status, rows["unsent"].reason) == ("failed", "not_sent")


async def test_an_order_left_submitted_is_booked_by_the_reconcile_job_without_a_restart(tmp_path: Path) -> None:
    """The executor gave up waiting (its swap landed later): the `reconcile_orders` job books the fill, the
    position and the result while the daemon keeps running, and the swap is never sent again."""
    executor = ScriptedExecutor(id="a", answers=[TimeoutError(), ExecutionReport(outcome=Outcome.SUBMITTED)])
    async with order_path(tmp_path, executors={"a": executor}, routes=OrdersConfig(solana=("a",)), mode="live") as path:
        await path.bus.publish(intent())
        await path.settle()
        (row,) = await path.store.orders()
        assert row.status == "submitted" and await path.store.positions() == []
        assert await path.router.reconcile_open() == 1, "not landed yet: asked, left open"
        assert (await path.store.get_order(row.order_id)).status == "submitted"  # type: ignore[union-attr]
        executor.answers.append(filled("late"))
        assert await path.router.reconcile_open() == 1
        await path.settle()
        (row,) = await path.store.orders()
        (position,) = await path.store.positions()
        fills = await path.store.fills()
        assert await path.router.reconcile_open() == 0, "a finished order is not asked about again"
    assert row.status == "filled" and [f.tx for f in fills] == ["late"]
    assert (position.token, position.quantity, position.cost_native) == (intent().token, 2, 1)
    assert len(executor.seen) == 1, "reconciling never re-sends"
    assert [e.tx for e in path.events if isinstance(e, OrderFilled)] == ["late"]
    assert path.risk.pending == {}


async def test_a_fill_whose_transaction_did_not_commit_is_booked_once_when_settled_later(tmp_path: Path) -> None:
    """The store fails while booking the fill (rolled back, the order stays submitted): the book in memory must not
    keep the fill, or settling the order again books it twice."""
    executor = ScriptedExecutor(id="a", answers=[filled("sig"), filled("sig")])
    async with order_path(tmp_path, executors={"a": executor}, routes=OrdersConfig(solana=("a",)), mode="live") as path:
        native = path.portfolio.native["solana"]
        failing = first_call(path.store.put_position, StoreError("disk I/O error"))
        path.store.put_position = failing  # type: ignore[method-assign]
        await path.bus.publish(intent())
        await path.settle()
        assert path.portfolio.position("solana", intent().token).quantity == 0, "not committed, not booked"
        assert path.portfolio.native["solana"] == native
        assert await path.router.reconcile_open() == 1
        await path.settle()
        (position,) = await path.store.positions()
        assert path.portfolio.position("solana", intent().token).quantity == position.quantity == 2
        assert path.portfolio.native["solana"] == native - 1
    assert len(executor.seen) == 1, "reconciling never re-sends"


async def test_an_execute_that_times_out_leaves_the_transaction_it_sent_in_the_journal(tmp_path: Path) -> None:
    """The executor recorded and sent a transaction, then the router stopped waiting: the journal row gets that
    transaction from the executor at once, so settling it later does not hang on the executor's local log."""

    class Sent(ScriptedExecutor):
        def sent(self, order: ApprovedOrder) -> str | None:
            return "sig-1"

    executor = Sent(id="a", answers=[TimeoutError(), filled("sig-1")])
    async with order_path(tmp_path, executors={"a": executor}, routes=OrdersConfig(solana=("a",)), mode="live") as path:
        await path.bus.publish(intent())
        await path.settle()
        (row,) = await path.store.orders()
        assert (row.status, row.tx) == ("submitted", "sig-1")
        assert "TimeoutError" in row.detail, "what happened is kept"
        assert [e.tx for e in path.events if isinstance(e, OrderSubmitted)] == [""], "one announcement"
        assert await path.router.reconcile_open() == 1
        await path.settle()
        (row,) = await path.store.orders()
    assert (row.status, row.tx) == ("filled", "sig-1")
    assert len(executor.seen) == 1


async def test_a_submitted_order_that_was_never_sent_gives_its_budget_back_on_the_next_reconcile(
    tmp_path: Path,
) -> None:
    executor = ScriptedExecutor(
        id="a", answers=[RuntimeError("signer crashed"), ExecutionReport(outcome=Outcome.NOT_SENT)]
    )
    async with order_path(tmp_path, executors={"a": executor}, routes=OrdersConfig(solana=("a",)), mode="live") as path:
        await path.bus.publish(intent(notional_usd=Decimal(7)))
        await path.settle()
        (row,) = await path.store.orders()
        day = utc_day(row.created_at)
        assert await path.store.get_counter(day, NOTIONAL_KEY) == Decimal(7), "maybe sent: the budget is held"
        await path.router.reconcile_open()
        await path.settle()
        (row,) = await path.store.orders()
        assert await path.store.get_counter(day, NOTIONAL_KEY) == 0
    assert (row.status, row.reason) == ("failed", "not_sent")


async def test_the_reconcile_job_leaves_an_order_still_in_its_executor_alone(tmp_path: Path) -> None:
    class Slow(ScriptedExecutor):
        def __init__(self) -> None:
            super().__init__(id="a", answers=[filled()])
            self.entered, self.release = asyncio.Event(), asyncio.Event()
            self.asked: list[str] = []

        async def execute(self, order: ApprovedOrder) -> ExecutionReport:
            self.entered.set()
            await self.release.wait()
            return await super().execute(order)

        async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
            self.asked.append(order.order_id)
            return ExecutionReport(outcome=Outcome.NOT_SENT)  # what a sent-log without the line would say

    executor = Slow()
    async with order_path(tmp_path, executors={"a": executor}, routes=OrdersConfig(solana=("a",)), mode="live") as path:
        await path.bus.publish(intent())
        await asyncio.wait_for(executor.entered.wait(), 5)
        assert await path.router.reconcile_open() == 0
        executor.release.set()
        await path.settle()
        (row,) = await path.store.orders()
    assert executor.asked == [] and row.status == "filled"


async def test_a_journaled_order_executes_even_if_its_announcement_is_cut_off(tmp_path: Path) -> None:
    """The risk engine's handler can be cancelled (its watchdog) while OrderApproved waits on a full queue:
    the row is committed and its budget reserved, so the order must still run, not sit pending until restart."""
    gate = asyncio.Event()

    async def stuck(e: object) -> None:
        await gate.wait()

    executor = ScriptedExecutor(id="a", answers=[filled("t1"), filled("t2"), filled("t3")])
    async with order_path(tmp_path, executors={"a": executor}, routes=OrdersConfig(solana=("a",)), mode="live") as path:
        path.bus.subscribe("order.approved", stuck, name="stuck", maxsize=1, timeout=60)
        orders = []
        for n in (1, 2, 3):
            order = path.approve(f"o{n}", intent(n, token=f"Tok{n}"), at=T_APPROVED, executor="a")
            async with path.store.transaction():
                await path.router.journal(order)
            orders.append(order)
        for order in orders[:2]:  # one in the stuck handler, one in its queue
            await path.router.dispatch(order)
        cut = asyncio.create_task(path.router.dispatch(orders[2]))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not cut.done(), "the third announcement waits for room"
        cut.cancel()  # the caller's watchdog
        with pytest.raises(asyncio.CancelledError):
            await cut
        while path.router.busy:
            await path.router.stop()
        statuses = {r.order_id: r.status for r in await path.store.orders()}
        gate.set()
    assert statuses == {"o1": "filled", "o2": "filled", "o3": "filled"}


async def test_a_hanging_executor_is_bounded_and_the_other_executors_orders_are_still_asked(tmp_path: Path) -> None:
    class Hanging(ScriptedExecutor):
        async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
            self.seen.append(order)
            await asyncio.Event().wait()  # a node that never answers
            raise AssertionError("unreachable")

    class Answering(ScriptedExecutor):
        async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
            return filled(f"tx-{order.order_id}")

    hanging, answering = Hanging(id="a", answers=[]), Answering(id="b", answers=[])
    async with order_path(tmp_path, executors={"a": hanging, "b": answering}, mode="live") as path:
        for oid, executor in (("a1", "a"), ("a2", "a"), ("b1", "b")):  # left open by an earlier run
            order = path.approve(oid, intent(token=f"Tok-{oid}"), at=T_APPROVED, executor=executor)
            await path.store.journal_order(order_row(order, status="submitted"))
        path.router.execute_timeout = 0.05
        with capture_logs() as logs:
            assert await path.router.reconcile_open() == 3
        await path.settle()
        rows = {r.order_id: r.status for r in await path.store.orders()}
    assert rows == {"a1": "submitted", "a2": "submitted", "b1": "filled"}
    assert [o.order_id for o in hanging.seen] == ["a1"], "one timeout per executor and pass"
    (failed,) = [e for e in logs if e["event"] == "order.reconcile_failed"]
    assert (failed["order_id"], failed["detail"]) == ("a1", "TimeoutError: ")


async def test_a_pending_order_start_up_could_not_settle_is_settled_by_the_job(tmp_path: Path) -> None:
    """The node was still down at start-up: the order stays pending, and the job books it once the node answers."""

    class Flaky(ScriptedExecutor):
        async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    async with order_path(tmp_path) as path:  # an earlier run journaled it and died before sending or not
        await path.store.journal_order(order_row(path.approve("o", intent(), at=T_APPROVED, executor="a")))
    flaky = Flaky(id="a", answers=[ConnectionRefusedError("node still booting"), filled("landed")])
    async with order_path(tmp_path, executors={"a": flaky}, mode="live") as path:
        (row,) = await path.store.orders()
        assert row.status == "pending", "start-up could not ask"
        assert await path.router.reconcile_open() == 1
        await path.settle()
        (row,) = await path.store.orders()
        fills = await path.store.fills()
    assert row.status == "filled" and [f.tx for f in fills] == ["landed"]


async def test_the_job_leaves_a_pending_order_journaled_since_start_by_someone_else_alone(tmp_path: Path) -> None:
    """Not ours and newer than our start: another process's flow may be sending it right now."""
    executor = ScriptedExecutor(id="a", answers=[ExecutionReport(outcome=Outcome.NOT_SENT)])
    clock = SimClock()
    async with order_path(tmp_path, executors={"a": executor}, mode="live", clock=clock) as path:
        clock.advance(60)
        await path.store.journal_order(order_row(path.approve("theirs", intent(), at=clock.now(), executor="a")))
        assert await path.router.reconcile_open() == 0
        (row,) = await path.store.orders()
    assert row.status == "pending" and executor.answers, "not asked"


def test_a_strategy_context_offers_submit_but_no_way_to_an_executor() -> None:
    public = {name for name in dir(StrategyContextImpl) if not name.startswith("_")}
    assert public == {"strategy_id", "clock", "submit"}


@pytest.mark.parametrize("package", ["quantbot_filters", "quantbot_executors", "quantbot_notifiers"])
def test_first_party_plugins_import_only_the_api(package: str) -> None:
    for path in (REPO / "plugins" / package).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "quantbot":
                # (its own package's modules, e.g. quantbot_executors.aptos_call, are the plugin's own)
                assert node.module == "quantbot.api", f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("quantbot."), f"{path.name} imports {alias.name}"


async def test_a_fenced_router_sends_nothing_more_and_asks_about_no_orphan(tmp_path: Path) -> None:
    """The daemon lost the store's trading lease: another may hold it now. An order approved meanwhile ends failed,
    never sent, its budget given back; an unfinished order is left to the lease's new holder."""
    executor = ScriptedExecutor(id="a", answers=[TimeoutError(), filled("late")])
    async with order_path(tmp_path, executors={"a": executor}, routes=OrdersConfig(solana=("a",)), mode="live") as path:
        await path.bus.publish(intent(1))
        await path.settle()
        (left,) = await path.store.orders()
        assert left.status == "submitted"
        path.router.fence("this daemon lost the store's trading lease")
        assert await path.router.reconcile_open() == 1, "seen, but not asked about"
        await path.bus.publish(intent(2, notional_usd=Decimal(7), token="So1anaOtherMint111111111111111111111111111"))
        await path.settle()
        rows = {r.idempotency_key: r for r in await path.store.orders()}
        day = utc_day(rows["test:i2"].created_at)
        spent = await path.store.get_counter(day, NOTIONAL_KEY)
    assert len(executor.seen) == 1 and executor.answers == [filled("late")], "neither sent nor reconciled"
    assert rows["test:i1"].status == "submitted"
    second = rows["test:i2"]
    assert (second.status, second.reason) == ("failed", "halted") and "not sent" in second.detail
    assert spent == rows["test:i1"].notional_usd, "the failed order's budget is back; the open one's is held"


async def test_an_order_detail_never_carries_a_known_secret(tmp_path: Path) -> None:
    """Executor and exception texts go on to the store, the bus, MQTT and the notifiers: scrubbed on the way."""
    from quantbot.secrets import Redactor

    leaky = ScriptedExecutor(id="a", answers=[RuntimeError("POST https://rpc.example/?api-key=KEY123456 failed")])
    async with order_path(tmp_path, executors={"a": leaky}, routes=OrdersConfig(solana=("a",)), mode="live") as path:
        path.router.redactor = Redactor(["KEY123456"])
        await path.bus.publish(intent())
        await path.settle()
        (row,) = await path.store.orders()
    assert "api-key=***" in row.detail and "KEY123456" not in row.detail
