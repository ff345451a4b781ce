"""RugWatch: watches held tokens for rug signs and publishes `token.rug_warning` (the exit rules act on it).

Held tokens are learned from `position.update` (quantity > 0). From trades of a held token:
- the creator selling >= `creator_sell_pct` % of what they held (their holding at launch, as the
  scanner measured it, plus what they bought since), seen in pump.fun trades on the curve or in the
  creator's swaps on any venue (a watched creator's `chain.solana.swap`: graduated coins trade on AMMs);
  a transaction that yields both is counted once;
- the bonding curve's SOL reserves falling >= `liquidity_drop_pct` % below their peak within `window_s`.
Each kind warns once per holding (again after the position is closed and reopened).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock
from quantbot.events import Event, PositionUpdate, PumpTrade, Swap, TokenRugWarning

log = structlog.get_logger(component="scanner.rugwatch")


@dataclass
class _Held:
    creator: str | None = None
    creator_base: int | None = None
    creator_bought: int = 0
    creator_sold: int = 0
    reserves: deque[tuple[float, int]] = field(default_factory=deque)
    warned: set[str] = field(default_factory=set)
    creator_txs: set[str] = field(default_factory=set)
    """Transactions of the creator already counted (a pump.fun trade and the creator's swap are one trade)."""


class RugWatch:
    name = "scanner.rugwatch"

    def __init__(
        self,
        *,
        bus: EventBus,
        clock: Clock,
        creator_of: Callable[[str], tuple[str, int | None] | None],
        creator_sell_pct: float = 50.0,
        liquidity_drop_pct: float = 50.0,
        window_s: float = 300.0,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.creator_of = creator_of
        """mint -> (creator, creator's holding at launch) as the scanner measured it, or None."""
        self.creator_sell = Decimal(str(creator_sell_pct))
        self.liquidity_drop = Decimal(str(liquidity_drop_pct))
        self.window_s = window_s
        self.held: dict[str, _Held] = {}
        self.warnings = 0

    async def start(self) -> None:
        self.bus.subscribe("position.update", self._on_position, name="scanner.rugwatch.positions")
        self.bus.subscribe(
            "chain.solana.pump_trade", self._on_trade, name="scanner.rugwatch.trades", overflow=Overflow.DROP_OLDEST
        )
        self.bus.subscribe(
            "chain.solana.swap", self._on_swap, name="scanner.rugwatch.swaps", overflow=Overflow.DROP_OLDEST
        )

    async def stop(self) -> None:
        """Nothing to release: the bus owns the subscriptions."""

    async def _on_position(self, event: Event) -> None:
        if not isinstance(event, PositionUpdate) or event.chain != "solana":
            return
        if event.quantity > 0 and event.token not in self.held:
            known = self.creator_of(event.token)
            self.held[event.token] = _Held(
                creator=known[0] if known else None, creator_base=known[1] if known else None
            )
            log.info("rugwatch.watching", token=event.token, creator=known[0] if known else None)
        elif event.quantity <= 0:
            self.held.pop(event.token, None)

    async def _on_trade(self, event: Event) -> None:
        if not isinstance(event, PumpTrade):
            return
        held = self.held.get(event.mint)
        if held is None:
            return
        held.creator = held.creator or event.creator
        if held.creator is not None and event.user == held.creator:
            await self._creator_trade(event.mint, event.tx, held, bought=event.is_buy, amount=event.token_amount)
        await self._reserves(event, held)

    async def _on_swap(self, event: Event) -> None:
        if not isinstance(event, Swap):
            return
        for token, bought, amount in (
            (event.mint_out, True, event.amount_out),
            (event.mint_in, False, event.amount_in),
        ):
            held = self.held.get(token)
            if held is not None and held.creator is not None and event.wallet == held.creator:
                await self._creator_trade(token, event.tx, held, bought=bought, amount=amount)

    async def _creator_trade(self, token: str, tx: str, held: _Held, *, bought: bool, amount: int) -> None:
        if tx in held.creator_txs:
            return
        held.creator_txs.add(tx)
        if bought:
            held.creator_bought += amount
            return
        held.creator_sold += amount
        owned = (held.creator_base or 0) + held.creator_bought
        if owned <= 0:
            return  # nothing known to have been held: a share cannot be measured
        share = min(Decimal(100), Decimal(held.creator_sold) * 100 / Decimal(owned))
        if share >= self.creator_sell:
            detail = f"creator {held.creator} sold {share:.1f}% of their holding"
            await self._warn(token, held, "creator_sell", share, detail)

    async def _reserves(self, trade: PumpTrade, held: _Held) -> None:
        now = self.clock.monotonic()
        reserve = trade.real_quote_reserves if trade.real_quote_reserves is not None else trade.real_sol_reserves
        samples = held.reserves
        samples.append((now, reserve))
        while samples and samples[0][0] < now - self.window_s:
            samples.popleft()
        peak = max(r for _, r in samples)
        if peak <= 0:
            return
        drop = Decimal(peak - reserve) * 100 / Decimal(peak)
        if drop >= self.liquidity_drop:
            detail = f"curve reserves fell {drop:.1f}% from {peak} to {reserve} within {self.window_s:g}s"
            await self._warn(trade.mint, held, "liquidity_drop", drop, detail)

    async def _warn(self, token: str, held: _Held, kind: str, measured: Decimal, detail: str) -> None:
        if kind in held.warned:
            return
        held.warned.add(kind)
        self.warnings += 1
        log.warning("rugwatch.warning", token=token, kind=kind, detail=detail)
        await self.bus.publish(
            TokenRugWarning(
                chain="solana",
                token=token,
                kind="creator_sell" if kind == "creator_sell" else "liquidity_drop",
                detail=detail,
                measured=measured.quantize(Decimal("0.01")),
            )
        )
