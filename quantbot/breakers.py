"""Circuit breakers the RiskEngine consults: the trading state (kill switch), the daily drawdown
breaker and the stop-loss guard.

The trading state lives in the store, so `quantbot halt` from another process (no HTTP needed)
takes effect on the next intent and survives restarts. The drawdown breaker compares each chain's
equity with the first figure of its UTC day; past `risk.max_daily_drawdown_pct` it sets the state to
`risk.drawdown_action`, persisted, with a `risk.state` event, once per day (an operator's resume
that day is not overridden). The stop-loss guard pauses new entries for `stop_loss_guard_pause_s`
after `stop_loss_guard_count` stop-loss exits filled within `stop_loss_guard_window_s`; it is
rebuilt from the journal at start.
"""

from __future__ import annotations

import enum
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import structlog

from quantbot.bus import EventBus
from quantbot.clock import Clock
from quantbot.config import RiskConfig
from quantbot.events import TradingStateChanged
from quantbot.store import Store

log = structlog.get_logger(component="risk")

STATE_KEY = "trading.state"
REASON_KEY = "trading.reason"
DRAWDOWN_DAY_KEY = "risk.drawdown_tripped_day"


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


def drawdown_pct(day_start: int, equity: int) -> Decimal:
    """How far equity is below the day's start, in percent (negative when above)."""
    return (Decimal(day_start - equity) * 100 / day_start) if day_start > 0 else Decimal(0)


class Breakers:
    """The drawdown breaker and the stop-loss guard (state in memory, rebuilt or persisted)."""

    def __init__(self, *, bus: EventBus, store: Store, clock: Clock, limits: RiskConfig) -> None:
        self.bus = bus
        self.store = store
        self.clock = clock
        self.limits = limits
        self.stop_losses: deque[datetime] = deque()
        self.paused_until: datetime | None = None
        self._tripped_day: str | None = None

    async def load(self) -> None:
        self._tripped_day = await self.store.get_state(DRAWDOWN_DAY_KEY)
        self.stop_losses.clear()
        self.paused_until = None

    # --- drawdown ----------------------------------------------------------------------------------

    def drawdown_exceeded(self, day_start: int, equity: int) -> Decimal | None:
        """The drawdown (%) if it is past the limit and the breaker has not yet tripped today."""
        limit = self.limits.max_daily_drawdown_pct
        if limit <= 0 or self._tripped_day == utc_day(self.clock.now()):
            return None
        dd = drawdown_pct(day_start, equity)
        return dd if dd > limit else None

    async def trip_drawdown(self, chain: str, dd: Decimal) -> TradingState:
        """Move to the configured state (never from halted to reduce-only), persist, announce."""
        now = self.clock.now()
        target = TradingState(self.limits.drawdown_action)
        current = await read_trading_state(self.store)
        if current is TradingState.HALTED:
            target = current
        reason = (
            f"{chain} equity {dd:.2f}% below the UTC day's start > risk.max_daily_drawdown_pct "
            f"{self.limits.max_daily_drawdown_pct}"
        )
        self._tripped_day = utc_day(now)
        async with self.store.transaction():
            await set_trading_state(self.store, target, reason=reason, now=now)
            await self.store.set_state(DRAWDOWN_DAY_KEY, self._tripped_day, now=now)
        log.critical("risk.drawdown_breaker", chain=chain, drawdown_pct=str(dd), state=target.value)
        await self.bus.publish(TradingStateChanged(state=target.value, reason=reason, source="drawdown"))
        return target

    # --- stop-loss guard ---------------------------------------------------------------------------

    def note_stop_loss(self, at: datetime) -> None:
        lim = self.limits
        if lim.stop_loss_guard_count <= 0:
            return
        self.stop_losses.append(at)
        window = timedelta(seconds=lim.stop_loss_guard_window_s)
        while self.stop_losses and at - self.stop_losses[0] > window:
            self.stop_losses.popleft()
        if len(self.stop_losses) >= lim.stop_loss_guard_count:
            until = at + timedelta(seconds=lim.stop_loss_guard_pause_s)
            if self.paused_until is None or until > self.paused_until:
                self.paused_until = until
                log.warning("risk.stop_loss_guard", stop_losses=len(self.stop_losses), paused_until=until.isoformat())

    def entries_paused(self, now: datetime) -> datetime | None:
        """Until when new entries are paused, if they are."""
        return self.paused_until if self.paused_until is not None and now < self.paused_until else None
