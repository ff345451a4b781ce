"""RiskEngine: every `order.intent` passes here; only this turns one into `order.approved`.

This is the engine core's first cut (size limits, allow/block lists, fail closed without a USD
value); the risk issue adds trading state, daily budgets, reservations and sizing.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

import msgspec
import structlog

from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock
from quantbot.config import OrdersConfig, RiskConfig
from quantbot.events import Event, OrderIntent, OrderRejected, RejectReason
from quantbot.execution import ApprovedOrder
from quantbot.orders import OrderRouter, Sealer
from quantbot.store import Store

log = structlog.get_logger(component="risk")

NATIVE_DECIMALS = {"solana": 9, "aptos": 8}
STATE_KEY = "trading.state"
REASON_KEY = "trading.reason"


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
    ) -> None:
        self.store = store
        self.bus = bus
        self.limits = limits
        self.routes = routes
        self.router = router
        self.sealer = sealer
        self.clock = clock

    async def start(self) -> None:
        self.bus.subscribe("order.intent", self._on_intent, name="risk", overflow=Overflow.BLOCK)

    async def stop(self) -> None:
        pass

    def set_limits(self, limits: RiskConfig) -> None:
        log.info("risk.limits_changed", old=_plain(self.limits), new=_plain(limits))
        self.limits = limits

    def evaluate(
        self, intent: OrderIntent, state: TradingState = TradingState.ACTIVE
    ) -> tuple[RejectReason, str] | None:
        """None if the intent passes every check, else the first failing reason and a detail."""
        exit_order = intent.reduce_only and intent.side == "sell"
        if state is TradingState.HALTED and not exit_order:
            return RejectReason.HALTED, "trading is halted (quantbot resume to lift); only exits pass"
        if state is TradingState.REDUCE_ONLY and not exit_order:
            return RejectReason.REDUCE_ONLY, "trading is reduce-only; only exits pass"
        lim = self.limits
        if intent.token in lim.block_tokens:
            return RejectReason.BLOCKED_TOKEN, f"{intent.token} is on risk.block_tokens"
        if lim.allow_tokens and intent.token not in lim.allow_tokens and not intent.reduce_only:
            return RejectReason.NOT_ALLOWED_TOKEN, f"{intent.token} is not on risk.allow_tokens"
        exit_only = intent.reduce_only and intent.side == "sell"
        if intent.side == "buy":
            cap = lim.max_order_sol if intent.chain == "solana" else lim.max_order_apt
            cap_base = int(cap.scaleb(NATIVE_DECIMALS[intent.chain]))
            if intent.amount > cap_base:
                return RejectReason.MAX_ORDER_NATIVE, f"{intent.amount} base units > cap {cap_base}"
        if not exit_only:
            if intent.notional_usd is None:
                return RejectReason.NO_USD_PRICE, "no USD value for the order; USD limits fail closed"
            if intent.notional_usd > lim.max_order_usd:
                return RejectReason.MAX_ORDER_USD, f"{intent.notional_usd} USD > {lim.max_order_usd} USD"
        return None

    async def _on_intent(self, event: Event) -> None:
        assert isinstance(event, OrderIntent)  # noqa: S101  (the subscription guarantees it)
        # Read per intent, so `quantbot halt` from another process takes effect on the very next one.
        verdict = self.evaluate(event, await read_trading_state(self.store))
        if verdict is None:
            order = self.sealer.seal(
                ApprovedOrder(
                    order_id=uuid.uuid4().hex,
                    idempotency_key=f"{event.strategy}:{event.intent_id}",
                    intent=event,
                    executors=getattr(self.routes, event.chain),
                    approved_at=self.clock.now(),
                )
            )
            log.info("order.approved", order_id=order.order_id, strategy=event.strategy, token=event.token)
            await self.router.submit(order)
        else:
            reason, detail = verdict
            log.info("order.rejected", strategy=event.strategy, token=event.token, reason=reason.value, detail=detail)
            await self.bus.publish(OrderRejected(intent=event, reason=reason, detail=detail))

    def describe(self) -> dict[str, object]:
        return _plain(self.limits)


def _plain(limits: RiskConfig) -> dict[str, object]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in msgspec.structs.asdict(limits).items()}
