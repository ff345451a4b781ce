"""RiskEngine: every `order.intent` passes here; only this makes an ApprovedOrder.

Checks run in order (trading state, lists, size caps, rate, cooldown, open positions, exposure),
then the daily USD budget is reserved in the same store transaction that journals the order, so a
crash can leave neither a reservation without its order nor an order without its reservation.
A failed or expired order gives its reservation back. Everything the checks count is rebuilt from
the store at start, and daily counters are keyed by the UTC date, so a new day starts clean even
for a daemon that was down at midnight. Intents are evaluated one at a time (a lock), so
concurrent intents can never jointly pass a limit.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import structlog

from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock
from quantbot.config import OrdersConfig, RiskConfig
from quantbot.events import Event, OrderExpired, OrderFailed, OrderFilled, OrderIntent, OrderRejected, RejectReason
from quantbot.execution import ApprovedOrder
from quantbot.orders import OrderRouter, Sealer, UnsealedOrder
from quantbot.portfolio import Portfolio
from quantbot.store import DuplicateOrder, OrderRow, Store

log = structlog.get_logger(component="risk")

NATIVE_DECIMALS = {"solana": 9, "aptos": 8}
STATE_KEY = "trading.state"
REASON_KEY = "trading.reason"
NOTIONAL_KEY = "notional_usd"


class TradingState(enum.StrEnum):
    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"
    """Only exits (reduce-only sells) pass: set by circuit breakers."""
    HALTED = "halted"
    """The kill switch: only exits pass. Persisted; survives restarts."""


async def read_trading_state(store: Store) -> TradingState:
    raw = await store.get_state(STATE_KEY)
    try:
        return TradingState(raw) if raw else TradingState.ACTIVE
    except ValueError:
        log.error("risk.bad_trading_state", value=raw)  # fail closed on a value we do not know
        return TradingState.HALTED


async def set_trading_state(store: Store, state: TradingState, *, reason: str, now: datetime) -> None:
    async with store.transaction():
        await store.set_state(STATE_KEY, state.value, now=now)
        await store.set_state(REASON_KEY, reason, now=now)


def utc_day(when: datetime) -> str:
    """The UTC calendar day daily limits are counted on."""
    return when.astimezone(UTC).date().isoformat()


def native_cap(cap_whole: Decimal, chain: str) -> int:
    return int(cap_whole.scaleb(NATIVE_DECIMALS[chain]))


def is_exit(intent: OrderIntent) -> bool:
    return intent.reduce_only and intent.side == "sell"


@dataclass(frozen=True)
class Pending:
    """An approved buy not yet filled or failed: it counts against exposure and positions."""

    chain: str
    token: str
    native: int


class _Refused(Exception):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class RiskEngine:
    name = "risk"

    def __init__(
        self,
        *,
        bus: EventBus,
        limits: RiskConfig,
        routes: OrdersConfig,
        router: OrderRouter,
        sealer: Sealer,
        clock: Clock,
        store: Store,
        portfolio: Portfolio,
    ) -> None:
        self.bus = bus
        self.limits = limits
        self.routes = routes
        self.router = router
        self.sealer = sealer
        self.clock = clock
        self.store = store
        self.portfolio = portfolio
        self._lock = asyncio.Lock()
        self.pending: dict[str, Pending] = {}
        self._recent: deque[datetime] = deque()
        self._last_by_token: dict[tuple[str, str], datetime] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.rebuild()
        self.bus.subscribe(
            ["order.filled", "order.failed", "order.expired"],
            self._on_result,
            name="risk.results",
            overflow=Overflow.BLOCK,
        )
        self.bus.subscribe("order.intent", self._on_intent, name="risk", overflow=Overflow.BLOCK)

    async def stop(self) -> None:
        pass

    async def rebuild(self) -> None:
        """Recover pending buys, the order rate window and cooldowns from the journal."""
        now = self.clock.now()
        window = now - timedelta(seconds=max(60.0, self.limits.token_cooldown_s))
        self.pending.clear()
        self._recent.clear()
        self._last_by_token.clear()
        for row in await self.store.orders():
            if row.status in ("pending", "submitted") and row.side == "buy":
                self.pending[row.order_id] = Pending(chain=row.chain, token=row.token, native=row.amount)
            if row.created_at >= window:
                self._note_sent(row.chain, row.token, row.created_at)

    def set_limits(self, limits: RiskConfig) -> None:
        log.info("risk.limits_changed", old=_plain(self.limits), new=_plain(limits))
        self.limits = limits

    # --- checks ----------------------------------------------------------------------------------

    def evaluate(
        self, intent: OrderIntent, state: TradingState = TradingState.ACTIVE
    ) -> tuple[RejectReason, str] | None:
        """Every check that needs no store write. None if the intent passes them all."""
        lim = self.limits
        exit_order = is_exit(intent)
        if state is TradingState.HALTED and not exit_order:
            return RejectReason.HALTED, "trading is halted (quantbot resume to lift); only exits pass"
        if state is TradingState.REDUCE_ONLY and not exit_order:
            return RejectReason.REDUCE_ONLY, "trading is reduce-only; only exits pass"
        if intent.token in lim.block_tokens:
            return RejectReason.BLOCKED_TOKEN, f"{intent.token} is on risk.block_tokens"
        if lim.allow_tokens and intent.token not in lim.allow_tokens and not exit_order:
            return RejectReason.NOT_ALLOWED_TOKEN, f"{intent.token} is not on risk.allow_tokens"
        if exit_order:
            return None  # exits reduce risk: no size, rate, exposure or budget check holds them back
        if intent.side == "buy":
            cap = native_cap(lim.max_order_sol if intent.chain == "solana" else lim.max_order_apt, intent.chain)
            if intent.amount > cap:
                return RejectReason.MAX_ORDER_NATIVE, f"{intent.amount} base units > cap {cap}"
        if intent.notional_usd is None:
            return RejectReason.NO_USD_PRICE, "no USD value for the order; USD limits fail closed"
        if intent.notional_usd > lim.max_order_usd:
            return RejectReason.MAX_ORDER_USD, f"{intent.notional_usd} USD > {lim.max_order_usd} USD"
        now = self.clock.now()
        self._expire(now)
        if len(self._recent) >= lim.max_orders_per_minute:
            return RejectReason.RATE_LIMIT, f"{len(self._recent)} orders in the last minute"
        last = self._last_by_token.get((intent.chain, intent.token))
        if last is not None and (now - last).total_seconds() < lim.token_cooldown_s:
            return RejectReason.COOLDOWN, f"last order in {intent.token} {(now - last).total_seconds():.0f}s ago"
        if intent.side == "buy":
            held = self.portfolio.position(intent.chain, intent.token).open or any(
                p.chain == intent.chain and p.token == intent.token for p in self.pending.values()
            )
            if not held and self.open_positions() >= lim.max_open_positions:
                return RejectReason.MAX_OPEN_POSITIONS, f"{self.open_positions()} positions open or opening"
            exposure = self.exposure(intent.chain, intent.token) + intent.amount
            cap = native_cap(lim.max_exposure_sol if intent.chain == "solana" else lim.max_exposure_apt, intent.chain)
            if exposure > cap:
                return RejectReason.MAX_EXPOSURE, f"{exposure} base units in {intent.token} > cap {cap}"
        return None

    def open_positions(self) -> int:
        opening = {(p.chain, p.token) for p in self.pending.values()}
        held = {k for k, p in self.portfolio.positions.items() if p.open}
        return len(opening | held)

    def exposure(self, chain: str, token: str) -> int:
        pending = sum(p.native for p in self.pending.values() if p.chain == chain and p.token == token)
        return self.portfolio.exposure(chain, token) + pending

    def _expire(self, now: datetime) -> None:
        while self._recent and (now - self._recent[0]).total_seconds() >= 60:
            self._recent.popleft()

    def _note_sent(self, chain: str, token: str, at: datetime) -> None:
        self._recent.append(at)
        prev = self._last_by_token.get((chain, token))
        if prev is None or at > prev:
            self._last_by_token[(chain, token)] = at

    # --- the flow --------------------------------------------------------------------------------

    async def _on_intent(self, event: Event) -> None:
        assert isinstance(event, OrderIntent)  # noqa: S101  (the subscription guarantees it)
        async with self._lock:
            order = await self._approve(event)
        if order is not None:
            await self.router.dispatch(order)

    async def _approve(self, intent: OrderIntent) -> ApprovedOrder | None:
        # Read per intent, so `quantbot halt` from another process takes effect on the very next one.
        verdict = self.evaluate(intent, await read_trading_state(self.store))
        if verdict is not None:
            await self._reject(intent, *verdict)
            return None
        now = self.clock.now()
        order = self.sealer.seal(
            ApprovedOrder(
                order_id=uuid.uuid4().hex,
                idempotency_key=f"{intent.strategy}:{intent.intent_id}",
                intent=intent,
                executors=getattr(self.routes, intent.chain),
                approved_at=now,
            )
        )
        try:
            async with self.store.transaction():
                if not is_exit(intent) and intent.notional_usd is not None:
                    total = await self.store.add_counter(utc_day(now), NOTIONAL_KEY, intent.notional_usd)
                    if total > self.limits.daily_notional_usd:
                        raise _Refused(
                            RejectReason.DAILY_NOTIONAL,
                            f"{total} USD today > {self.limits.daily_notional_usd} USD (UTC day {utc_day(now)})",
                        )
                await self.router.journal(order)
        except _Refused as refused:
            await self._reject(intent, refused.reason, refused.detail)
            return None
        except (DuplicateOrder, UnsealedOrder) as exc:
            await self.router.refuse(order, exc)
            return None
        if intent.side == "buy" and not is_exit(intent):
            self.pending[order.order_id] = Pending(chain=intent.chain, token=intent.token, native=intent.amount)
        if not is_exit(intent):
            self._note_sent(intent.chain, intent.token, now)
        log.info("order.approved", order_id=order.order_id, strategy=intent.strategy, token=intent.token)
        return order

    async def _reject(self, intent: OrderIntent, reason: RejectReason, detail: str) -> None:
        log.info("order.rejected", strategy=intent.strategy, token=intent.token, reason=reason.value, detail=detail)
        await self.bus.publish(OrderRejected(intent=intent, reason=reason, detail=detail))

    async def _on_result(self, event: Event) -> None:
        """Settle a reservation: a fill keeps its budget (the position now counts); a failure returns it."""
        assert isinstance(event, OrderFilled | OrderFailed | OrderExpired)  # noqa: S101
        async with self._lock:
            self.pending.pop(event.order_id, None)
            if isinstance(event, OrderFilled):
                return
            row = await self.store.get_order(event.order_id)
            if row is not None:
                await self.release(row)

    async def release(self, row: OrderRow) -> None:
        """Give back the daily budget an order reserved (on the UTC day it reserved it)."""
        intent = msgspec.json.decode(row.intent, type=ApprovedOrder).intent
        if is_exit(intent) or intent.notional_usd is None:
            return
        await self.store.add_counter(utc_day(row.created_at), NOTIONAL_KEY, -intent.notional_usd)
        log.info("risk.budget_released", order_id=row.order_id, usd=str(intent.notional_usd))

    def describe(self) -> dict[str, object]:
        return _plain(self.limits)


def _plain(limits: RiskConfig) -> dict[str, object]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in msgspec.structs.asdict(limits).items()}
