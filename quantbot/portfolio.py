"""Portfolio: positions per token from fills, with average cost and realised PnL in native base units.

A fill changes the position in the same store transaction that records the fill, so a crash can
never leave one without the other. Cost and PnL are integers in native base units (lamports,
octas); the average cost per token base unit is derived, never stored rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog

from quantbot.clock import Clock
from quantbot.events import PositionUpdate
from quantbot.store import PositionRow, Store

log = structlog.get_logger(component="portfolio")


@dataclass
class Position:
    chain: str
    token: str
    quantity: int = 0
    cost_native: int = 0
    realised_pnl_native: int = 0
    opened_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.quantity > 0

    def avg_cost(self) -> Decimal:
        """Native base units per token base unit."""
        return Decimal(self.cost_native) / self.quantity if self.quantity else Decimal(0)

    def buy(self, *, spent: int, received: int, at: datetime) -> None:
        if not self.open:
            self.opened_at = at
        self.quantity += received
        self.cost_native += spent

    def sell(self, *, sold: int, received: int) -> int:
        """Apply a sale; return the realised PnL of it (native base units)."""
        sold = min(sold, self.quantity)  # never below zero: a chain correction reconciles the rest
        if sold <= 0:
            self.realised_pnl_native += received
            return received
        cost_out = self.cost_native * sold // self.quantity
        pnl = received - cost_out
        self.quantity -= sold
        self.cost_native -= cost_out
        self.realised_pnl_native += pnl
        if self.quantity == 0:
            self.cost_native = 0
            self.opened_at = None
        return pnl


class Portfolio:
    name = "portfolio"

    def __init__(self, *, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.positions: dict[tuple[str, str], Position] = {}

    async def start(self) -> None:
        for row in await self.store.positions():
            self.positions[(row.chain, row.token)] = Position(
                chain=row.chain,
                token=row.token,
                quantity=row.quantity,
                cost_native=row.cost_native,
                realised_pnl_native=row.realised_pnl_native,
                opened_at=row.opened_at,
            )

    async def stop(self) -> None:
        pass

    def position(self, chain: str, token: str) -> Position:
        return self.positions.get((chain, token)) or Position(chain=chain, token=token)

    def open_positions(self) -> int:
        return sum(1 for p in self.positions.values() if p.open)

    def exposure(self, chain: str, token: str) -> int:
        """Native base units at cost in this token."""
        return self.position(chain, token).cost_native

    async def apply_fill(self, *, chain: str, token: str, side: str, amount_in: int, amount_out: int) -> PositionUpdate:
        """Update and persist the position (call inside the transaction that records the fill)."""
        pos = self.positions.setdefault((chain, token), Position(chain=chain, token=token))
        now = self.clock.now()
        if side == "buy":
            pos.buy(spent=amount_in, received=amount_out, at=now)
        else:
            pnl = pos.sell(sold=amount_in, received=amount_out)
            log.info("position.realised", chain=chain, token=token, pnl_native=pnl)
        await self.store.put_position(
            PositionRow(
                chain=chain,
                token=token,
                quantity=pos.quantity,
                cost_native=pos.cost_native,
                realised_pnl_native=pos.realised_pnl_native,
                opened_at=pos.opened_at,
                updated_at=now,
            )
        )
        return PositionUpdate(
            chain=chain,  # type: ignore[arg-type]
            token=token,
            quantity=pos.quantity,
            avg_cost_native=pos.avg_cost(),
            realised_pnl_native=Decimal(pos.realised_pnl_native),
        )
