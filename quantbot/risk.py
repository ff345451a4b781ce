"""RiskEngine: every `order.intent` passes here; only this makes an ApprovedOrder.

An intent is first completed (its token spelled canonically, a sizing hint becomes an amount, a missing USD value
computed from the PriceView), then checked in order: trading state, mode, a sell's tokens (held and not
already being sold by an approved sell, exits included), lists, size caps, pool liquidity, price
impact and slippage, rate, cooldown, duplicate suppression, stop-loss guard, drawdown, open
positions, exposure (absolute and % of equity), balance sufficiency. The daily USD budget is then
reserved in the same store transaction that journals the order, so a crash can leave neither a
reservation without its order nor an order without its reservation. A failed or expired order
(including an executor's PRICE_IMPACT / SLIPPAGE refusal against its real quote) gives its
reservation back. Everything the checks count is rebuilt from the store at start, and daily
counters are keyed by the UTC date. Intents are evaluated one at a time (a lock), so concurrent
intents can never jointly pass a limit.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
import structlog

from quantbot.api import PriceView
from quantbot.assets import normalise
from quantbot.breakers import (
    REASON_KEY,
    STATE_KEY,
    Breakers,
    TradingState,
    read_trading_state,
    set_trading_state,
    utc_day,
)
from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock
from quantbot.config import OrdersConfig, RiskConfig
from quantbot.events import (
    EquityUpdate,
    Event,
    OrderExpired,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    RejectReason,
    TradingStateChanged,
)
from quantbot.execution import ApprovedOrder
from quantbot.orders import OrderRouter, Sealer, UnsealedOrder
from quantbot.portfolio import Portfolio
from quantbot.sizing import Incomplete, Sizer, complete_intent
from quantbot.store import DuplicateOrder, OrderRow, Store

__all__ = [
    "NOTIONAL_KEY",
    "REASON_KEY",
    "STATE_KEY",
    "Pending",
    "RiskEngine",
    "Selling",
    "TradingState",
    "read_trading_state",
    "set_trading_state",
    "utc_day",
]

log = structlog.get_logger(component="risk")

NATIVE_DECIMALS = {"solana": 9, "aptos": 8}
NOTIONAL_KEY = "notional_usd"
BPS = 10_000


def native_cap(cap_whole: Decimal, chain: str) -> int:
    return int(cap_whole.scaleb(NATIVE_DECIMALS[chain]))


def is_exit(intent: OrderIntent) -> bool:
    return intent.reduce_only and intent.side == "sell"


def impact_bps(intent: OrderIntent) -> int | None:
    """Price impact in bps: the intent's own figure, or a constant-product estimate from pool reserves."""
    estimates = [intent.price_impact_bps] if intent.price_impact_bps is not None else []
    reserve = intent.pool_liquidity_native if intent.side == "buy" else intent.pool_reserve_token
    if reserve is not None and reserve >= 0 and intent.amount > 0:
        estimates.append(-(-intent.amount * BPS // (reserve + intent.amount)))  # rounded up
    return max(estimates) if estimates else None


def invalid_figure(intent: OrderIntent) -> str | None:
    """Why a figure of the intent cannot be right, if one cannot: a negative amount, USD value, reserve or bps
    limit, a price that is not positive, a USD value that is not finite. Every cap is an upper bound, so a
    negative figure would pass them all (and a negative USD value would give daily budget back)."""
    for name in ("amount", "pool_liquidity_native", "pool_reserve_token", "price_impact_bps", "max_slippage_bps"):
        value = getattr(intent, name)
        if value is not None and value < 0:
            return f"{name} {value} is negative"
    usd = intent.notional_usd
    if usd is not None and not (usd.is_finite() and usd >= 0):
        return f"notional_usd {usd} is not a finite non-negative value"
    price = intent.price_native
    if price is not None and not (price.is_finite() and price > 0):
        return f"price_native {price} is not a finite positive price"
    return None


@dataclass(frozen=True)
class Pending:
    """An approved buy not yet filled or failed: it counts against exposure, positions and balance."""

    chain: str
    token: str
    native: int


@dataclass(frozen=True)
class Selling:
    """An approved sell not yet filled, failed or expired: its tokens are spoken for, so no other sell can take
    them. A fill ends it whatever it sold: the position then holds what the sell left unsold, free to sell again."""

    chain: str
    token: str
    amount: int
    reason: str
    """Why it sells (a filled stop-loss feeds the stop-loss guard)."""


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
        mode: str = "paper",
        prices: PriceView | None = None,
        sizer: Sizer | None = None,
    ) -> None:
        self.bus = bus
        self.limits = limits
        self.routes = routes
        self.router = router
        self.sealer = sealer
        self.clock = clock
        self.store = store
        self.portfolio = portfolio
        self.mode = mode
        self.prices = prices
        self.sizer = sizer
        self.breakers = Breakers(bus=bus, store=store, clock=clock, limits=limits)
        self._lock = asyncio.Lock()
        self.pending: dict[str, Pending] = {}
        self._recent: deque[datetime] = deque()
        self._last_by_token: dict[tuple[str, str], datetime] = {}
        self._last_intent: dict[tuple[str, str, str, str], datetime] = {}
        self._state: TradingState | None = None
        self.sells: dict[str, Selling] = {}
        """Approved sells not yet filled, failed or expired, by order id: what they sell no other sell may take."""

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.rebuild()
        self.bus.subscribe(
            ["order.filled", "order.failed", "order.expired"],
            self._on_result,
            name="risk.results",
            overflow=Overflow.BLOCK,
        )
        self.bus.subscribe("portfolio.equity", self._on_equity, name="risk.equity", overflow=Overflow.BLOCK)
        self.bus.subscribe("order.intent", self._on_intent, name="risk", overflow=Overflow.BLOCK)

    async def stop(self) -> None:
        pass

    async def rebuild(self) -> None:
        """Recover pending buys and sells, rate window, cooldowns, recent intents and stop-losses from the journal."""
        now = self.clock.now()
        lim = self.limits
        window = now - timedelta(seconds=max(60.0, lim.token_cooldown_s, lim.duplicate_window_s))
        # A pause set by stop-losses up to a window before it began lasts `pause_s` after the last of them.
        guard_window = now - timedelta(seconds=lim.stop_loss_guard_window_s + lim.stop_loss_guard_pause_s)
        stop_losses: list[datetime] = []
        self.pending.clear()
        self._recent.clear()
        self._last_by_token.clear()
        self._last_intent.clear()
        self.sells.clear()
        await self.breakers.load()
        rows = await self.store.orders()
        await self._rebuild_budget(rows, utc_day(now))
        for row in rows:
            token = normalise(row.chain, row.token)  # an older version journaled the strategy's spelling
            if row.status in ("pending", "submitted") and row.side == "buy":
                self.pending[row.order_id] = Pending(chain=row.chain, token=token, native=row.amount)
            if row.status in ("pending", "submitted") and row.side == "sell":
                self.sells[row.order_id] = _selling(_intent_of(row))
            if row.created_at >= window and row.strategy != "exits":
                self._note_sent(row.strategy, row.chain, token, row.side, row.created_at)
            if row.status == "filled" and row.side == "sell" and row.updated_at >= guard_window:
                if _intent_of(row).reason == "stop_loss":
                    stop_losses.append(row.updated_at)
        for at in sorted(stop_losses):  # in the order they happened, as they were first noted
            self.breakers.note_stop_loss(at)

    async def _rebuild_budget(self, rows: list[OrderRow], day: str) -> None:
        """Today's spent budget is what today's orders that did not fail reserved. A stop between an order's
        failure and its release (a crash, a kill) left it counted; the journal says what it should be."""
        owed = Decimal(0)
        for row in rows:
            if utc_day(row.created_at) != day or row.status in ("failed", "expired"):
                continue
            intent = _intent_of(row)
            if not is_exit(intent) and intent.notional_usd is not None:
                owed += intent.notional_usd
        counted = await self.store.get_counter(day, NOTIONAL_KEY)
        if counted != owed:
            await self.store.add_counter(day, NOTIONAL_KEY, owed - counted)
            log.warning("risk.budget_rebuilt", day=day, counted=str(counted), owed=str(owed))

    def set_limits(self, limits: RiskConfig) -> None:
        log.info("risk.limits_changed", old=_plain(self.limits), new=_plain(limits))
        self.limits = limits
        self.breakers.limits = limits

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
        if self.mode == "paper" and not self._paper_route(intent.chain):
            return RejectReason.PAPER_MODE, f"mode is paper and every {intent.chain} executor is live"
        if intent.side == "sell":  # exits too: an exit and another sell of the same tokens cannot both pass
            short = self._sell_check(intent)
            if short is not None:
                return short
        if exit_order:
            return None  # exits reduce risk: no list, size, rate, exposure or budget check holds them back
        token = normalise(intent.chain, intent.token)
        if token in self._lists(intent.chain, lim.block_tokens):
            return RejectReason.BLOCKED_TOKEN, f"{intent.token} is on risk.block_tokens"
        if lim.allow_tokens and token not in self._lists(intent.chain, lim.allow_tokens):
            return RejectReason.NOT_ALLOWED_TOKEN, f"{intent.token} is not on risk.allow_tokens"
        solana = intent.chain == "solana"
        if intent.side == "buy":
            cap = native_cap(lim.max_order_sol if solana else lim.max_order_apt, intent.chain)
            if intent.amount > cap:
                return RejectReason.MAX_ORDER_NATIVE, f"{intent.amount} base units > cap {cap}"
        if intent.notional_usd is None:
            return RejectReason.NO_USD_PRICE, "no USD value for the order; USD limits fail closed"
        if intent.notional_usd > lim.max_order_usd:
            return RejectReason.MAX_ORDER_USD, f"{intent.notional_usd} USD > {lim.max_order_usd} USD"
        if intent.pool_liquidity_native is not None:
            floor = native_cap(lim.min_pool_liquidity_sol if solana else lim.min_pool_liquidity_apt, intent.chain)
            if intent.pool_liquidity_native < floor:
                return RejectReason.MIN_LIQUIDITY, f"pool holds {intent.pool_liquidity_native} < {floor} base units"
        if intent.max_slippage_bps is not None and intent.max_slippage_bps > lim.max_slippage_bps:
            return RejectReason.SLIPPAGE, f"{intent.max_slippage_bps} bps > risk.max_slippage_bps"
        impact = impact_bps(intent)
        if impact is not None and impact > lim.max_price_impact_bps:
            return RejectReason.PRICE_IMPACT, f"price impact {impact} bps > {lim.max_price_impact_bps} bps"
        now = self.clock.now()
        self._expire(now)
        if len(self._recent) >= lim.max_orders_per_minute:
            return RejectReason.RATE_LIMIT, f"{len(self._recent)} orders in the last minute"
        last = self._last_by_token.get((intent.chain, intent.token))
        if last is not None and (now - last).total_seconds() < lim.token_cooldown_s:
            return RejectReason.COOLDOWN, f"last order in {intent.token} {(now - last).total_seconds():.0f}s ago"
        same = self._last_intent.get((intent.strategy, intent.chain, intent.token, intent.side))
        if same is not None and (now - same).total_seconds() < lim.duplicate_window_s:
            ago = (now - same).total_seconds()
            return RejectReason.RECENT_DUPLICATE, f"{intent.strategy} {intent.side} {intent.token} {ago:.0f}s ago"
        if intent.side == "buy":
            return self._entry_checks(intent, now)
        return None

    def _sell_check(self, intent: OrderIntent) -> tuple[RejectReason, str] | None:
        """A sell takes at most what the position holds less what approved sells not yet settled are selling."""
        if intent.amount <= 0:
            return RejectReason.INSUFFICIENT_POSITION, f"sell of {intent.amount} {intent.token}: nothing to sell"
        held = self.portfolio.position(intent.chain, intent.token).quantity
        selling = self.selling(intent.chain, intent.token)
        if intent.amount > held - selling:
            detail = f"sell of {intent.amount} {intent.token} > held {held} less {selling} being sold"
            return RejectReason.INSUFFICIENT_POSITION, detail
        return None

    def _entry_checks(self, intent: OrderIntent, now: datetime) -> tuple[RejectReason, str] | None:
        lim = self.limits
        chain = intent.chain
        paused = self.breakers.entries_paused(now)
        if paused is not None:
            return RejectReason.STOP_LOSS_GUARD, f"new entries paused until {paused.isoformat()} after stop-losses"
        day_start = self.portfolio.day_start.get(chain)
        equity = self.portfolio.equity_native(chain)
        if day_start is not None and equity is not None and day_start[0] == utc_day(now):
            dd = self.breakers.drawdown_exceeded(day_start[1], equity)
            if dd is not None:
                return RejectReason.DRAWDOWN, f"{chain} equity {dd:.2f}% below the day's start"
        held = self.portfolio.position(chain, intent.token).open or any(
            p.chain == chain and p.token == intent.token for p in self.pending.values()
        )
        if not held and self.open_positions() >= lim.max_open_positions:
            return RejectReason.MAX_OPEN_POSITIONS, f"{self.open_positions()} positions open or opening"
        exposure = self.exposure(chain, intent.token) + intent.amount
        cap = native_cap(lim.max_exposure_sol if chain == "solana" else lim.max_exposure_apt, chain)
        if exposure > cap:
            return RejectReason.MAX_EXPOSURE, f"{exposure} base units in {intent.token} > cap {cap}"
        if lim.max_exposure_pct > 0:
            if equity is None or equity <= 0:
                return RejectReason.MAX_EXPOSURE_PCT, f"{chain} equity unknown (no balance read yet)"
            if exposure * 100 > lim.max_exposure_pct * equity:
                pct = Decimal(exposure * 100) / equity
                detail = f"{pct:.2f}% of equity in {intent.token} > {lim.max_exposure_pct}%"
                return RejectReason.MAX_EXPOSURE_PCT, detail
        balance = self.portfolio.native.get(chain)
        if balance is None:
            return RejectReason.INSUFFICIENT_BALANCE, f"{chain} balance unknown (no executor reported one)"
        solana = chain == "solana"
        reserve = native_cap(lim.fee_reserve_sol if solana else lim.fee_reserve_apt, chain)
        if not held:
            reserve += native_cap(lim.rent_reserve_sol if solana else lim.rent_reserve_apt, chain)
        available = balance - sum(p.native for p in self.pending.values() if p.chain == chain)
        if intent.amount + reserve > available:
            return RejectReason.INSUFFICIENT_BALANCE, f"{intent.amount} + reserve {reserve} > available {available}"
        return None

    def _paper_route(self, chain: str) -> bool:
        executors = self.router.executors
        return any(name in executors and not executors[name].live for name in getattr(self.routes, chain))

    def open_positions(self) -> int:
        held = self.portfolio.open_keys()
        return len(held) + len({(p.chain, p.token) for p in self.pending.values()} - held)

    def exposure(self, chain: str, token: str) -> int:
        pending = sum(p.native for p in self.pending.values() if p.chain == chain and p.token == token)
        return self.portfolio.exposure(chain, token) + pending

    def selling(self, chain: str, token: str) -> int:
        """Token base units that approved sells not yet filled, failed or expired are selling."""
        return sum(s.amount for s in self.sells.values() if s.chain == chain and s.token == token)

    def _expire(self, now: datetime) -> None:
        while self._recent and (now - self._recent[0]).total_seconds() >= 60:
            self._recent.popleft()

    def _note_sent(self, strategy: str, chain: str, token: str, side: str, at: datetime) -> None:
        if len(self._last_intent) > 4096:  # forget what no window still needs (amortised)
            keep = timedelta(seconds=max(self.limits.token_cooldown_s, self.limits.duplicate_window_s))
            self._last_intent = {k: t for k, t in self._last_intent.items() if at - t < keep}
            self._last_by_token = {k: t for k, t in self._last_by_token.items() if at - t < keep}
        self._recent.append(at)
        prev = self._last_by_token.get((chain, token))
        if prev is None or at > prev:
            self._last_by_token[(chain, token)] = at
        self._last_intent[(strategy, chain, token, side)] = at

    # --- completing an intent --------------------------------------------------------------------

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _lists(chain: str, tokens: tuple[str, ...]) -> frozenset[str]:
        """An allow/block list in the canonical spelling of `chain`'s asset ids (Aptos addresses long, lower-case)."""
        return frozenset(normalise(chain, t) for t in tokens)

    async def complete(self, intent: OrderIntent) -> OrderIntent:
        """Name the token canonically, size a hinted buy and value an intent without USD; raises _Refused when it
        cannot (or must not)."""
        invalid = invalid_figure(intent)
        if invalid is not None:
            raise _Refused(RejectReason.INVALID_INTENT, invalid)
        intent = canonical(intent)
        if is_exit(intent):
            return intent
        try:
            return await complete_intent(intent, sizer=self.sizer, prices=self.prices)
        except Incomplete as exc:
            raise _Refused(exc.reason, exc.detail) from exc

    # --- the flow --------------------------------------------------------------------------------

    async def _on_intent(self, event: Event) -> None:
        assert isinstance(event, OrderIntent)  # noqa: S101  (the subscription guarantees it)
        try:
            async with self._lock:
                order = await self._approve(event)
        except Exception as exc:
            # Every intent gets an answer: the exit manager holds a position's exit "in flight" until one comes.
            log.error("risk.failed", strategy=event.strategy, token=event.token, exc_info=exc)
            await self._reject(event, RejectReason.RISK_ERROR, f"{type(exc).__name__}: {exc}"[:300])
            return
        if order is not None:
            await self.router.dispatch(order)

    async def _approve(self, intent: OrderIntent) -> ApprovedOrder | None:
        try:
            intent = await self.complete(intent)
        except _Refused as refused:
            await self._reject(intent, refused.reason, refused.detail)
            return None
        # Read per intent, so `quantbot halt` from another process takes effect on the very next one.
        state = await read_trading_state(self.store)
        if state is not self._state:
            await self._announce(state)
        verdict = self.evaluate(intent, state)
        if verdict is not None:
            if verdict[0] is RejectReason.DRAWDOWN:
                self._state = await self.breakers.trip_drawdown(intent.chain, self._drawdown(intent.chain))
            await self._reject(intent, *verdict)
            return None
        now = self.clock.now()
        lim = self.limits
        exit_order = is_exit(intent)
        slippage = intent.max_slippage_bps
        if not exit_order:
            slippage = lim.max_slippage_bps if slippage is None else min(slippage, lim.max_slippage_bps)
        order = self.sealer.seal(
            ApprovedOrder(
                order_id=uuid.uuid4().hex,
                idempotency_key=f"{intent.strategy}:{intent.intent_id}",
                intent=intent,
                executors=getattr(self.routes, intent.chain),
                approved_at=now,
                max_price_impact_bps=None if exit_order else lim.max_price_impact_bps,
                max_slippage_bps=slippage,
            )
        )
        try:
            async with self.store.transaction():
                if not exit_order and intent.notional_usd is not None:
                    total = await self.store.add_counter(utc_day(now), NOTIONAL_KEY, intent.notional_usd)
                    if total > lim.daily_notional_usd:
                        raise _Refused(
                            RejectReason.DAILY_NOTIONAL,
                            f"{total} USD today > {lim.daily_notional_usd} USD (UTC day {utc_day(now)})",
                        )
                await self.router.journal(order)
        except _Refused as refused:
            await self._reject(intent, refused.reason, refused.detail)
            return None
        except (DuplicateOrder, UnsealedOrder) as exc:
            await self.router.refuse(order, exc)
            return None
        if intent.side == "buy" and not exit_order:
            self.pending[order.order_id] = Pending(chain=intent.chain, token=intent.token, native=intent.amount)
        if intent.side == "sell":
            self.sells[order.order_id] = _selling(intent)
        if not exit_order:
            self._note_sent(intent.strategy, intent.chain, intent.token, intent.side, now)
        log.info("order.approved", order_id=order.order_id, strategy=intent.strategy, token=intent.token)
        return order

    async def _announce(self, state: TradingState) -> None:
        """Publish a state change made elsewhere (`quantbot halt`/`resume`), once, when first seen."""
        first, self._state = self._state is None, state
        if first and state is TradingState.ACTIVE:
            return
        reason = await self.store.get_state(REASON_KEY) or ""
        log.warning("risk.trading_state", state=state.value, reason=reason)
        await self.bus.publish(TradingStateChanged(state=state.value, reason=reason, source="store"))

    def _drawdown(self, chain: str) -> Decimal:
        start = self.portfolio.day_start.get(chain)
        equity = self.portfolio.equity_native(chain)
        if start is None or equity is None or start[1] <= 0:
            return Decimal(0)
        return Decimal(start[1] - equity) * 100 / start[1]

    async def _on_equity(self, event: Event) -> None:
        """The drawdown breaker trips on equity alone, without waiting for the next intent."""
        assert isinstance(event, EquityUpdate)  # noqa: S101
        async with self._lock:
            dd = self.breakers.drawdown_exceeded(event.day_start_native, event.equity_native)
            if dd is not None:
                self._state = await self.breakers.trip_drawdown(event.chain, dd)

    async def _reject(self, intent: OrderIntent, reason: RejectReason, detail: str) -> None:
        log.info("order.rejected", strategy=intent.strategy, token=intent.token, reason=reason.value, detail=detail)
        await self.bus.publish(OrderRejected(intent=intent, reason=reason, detail=detail))

    async def _on_result(self, event: Event) -> None:
        """Settle a reservation: a fill keeps its budget (the position now counts); a failure returns it. Any result
        frees a sell's tokens (a fill booked what it sold on the position before it was published)."""
        assert isinstance(event, OrderFilled | OrderFailed | OrderExpired)  # noqa: S101
        async with self._lock:
            self.pending.pop(event.order_id, None)
            sold = self.sells.pop(event.order_id, None)
            if isinstance(event, OrderFilled):
                if sold is not None and sold.reason == "stop_loss":
                    self.breakers.note_stop_loss(self.clock.now())
                return
            row = await self.store.get_order(event.order_id)
            if row is not None:
                await self.release(row)

    async def release(self, row: OrderRow) -> None:
        """Give back the daily budget an order reserved (on the UTC day it reserved it)."""
        intent = _intent_of(row)
        if is_exit(intent) or intent.notional_usd is None:
            return
        await self.store.add_counter(utc_day(row.created_at), NOTIONAL_KEY, -intent.notional_usd)
        log.info("risk.budget_released", order_id=row.order_id, usd=str(intent.notional_usd), reason=row.reason)

    def describe(self) -> dict[str, object]:
        return _plain(self.limits)


def canonical(intent: OrderIntent) -> OrderIntent:
    """`intent` with its token in the canonical spelling (`quantbot.assets.normalise`). Every key of the order path
    (positions, sells in flight, pending buys, exposure, cooldowns, duplicates, the journal row, the executor's swap)
    is the token an approved order names, so two spellings of one asset (`0x1::…` and `0x00…01::…`) are one token."""
    token = normalise(intent.chain, intent.token)
    return intent if token == intent.token else msgspec.structs.replace(intent, token=token)


def _intent_of(row: OrderRow) -> OrderIntent:
    """The journaled intent, its token canonical (a row an older version wrote names it as the strategy did)."""
    return canonical(msgspec.json.decode(row.intent, type=ApprovedOrder).intent)


def _selling(intent: OrderIntent) -> Selling:
    return Selling(chain=intent.chain, token=intent.token, amount=intent.amount, reason=intent.reason)


def _plain(limits: RiskConfig) -> dict[str, object]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in msgspec.structs.asdict(limits).items()}
