"""DipBuyer: buy a watched token once its price falls `dip_pct` below its high of the last `window_s`.

A template for third-party strategies: it imports only `quantbot.api`, declares its parameters as a
`PluginConfig` (the daemon validates the TOML against it), keeps small bounded state, and hands every
order to the risk engine through `ctx.submit`.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

import msgspec

from quantbot.api import Event, OrderIntent, PluginConfig, PriceUpdate, Strategy, StrategyContext

__all__ = ["DipBuyer", "DipBuyerConfig"]


class DipBuyerConfig(PluginConfig, frozen=True, kw_only=True):
    tokens: tuple[str, ...] = ()
    """Token mints (Solana) or asset types (Aptos) to watch; empty watches nothing."""
    chain: str = "solana"
    """The chain the tokens live on: "solana" or "aptos"."""
    dip_pct: Decimal = Decimal(20)
    """Buy when the price is this many percent below the window's high."""
    window_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    """How far back the high is remembered, in seconds."""
    amount: Annotated[int, msgspec.Meta(gt=0)] = 100_000_000
    """What one buy spends, in native base units (lamports / octas)."""
    rearm_pct: Decimal = Decimal(10)
    """After a buy, wait for the price to recover this many percent above the buy before buying again."""

    def __post_init__(self) -> None:
        if self.chain not in ("solana", "aptos"):
            raise ValueError(f"chain must be 'solana' or 'aptos', got {self.chain!r}")
        if not 0 < self.dip_pct < 100:
            raise ValueError(f"dip_pct must be between 0 and 100 (exclusive), got {self.dip_pct}")
        if self.rearm_pct < 0:
            raise ValueError(f"rearm_pct must be >= 0, got {self.rearm_pct}")


class DipBuyer(Strategy):
    """Watches `price.update` for its tokens; one buy per dip, re-armed after a recovery."""

    Config = DipBuyerConfig
    config: DipBuyerConfig

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self._highs: dict[str, deque[tuple[datetime, Decimal]]] = {}
        self._bought_at: dict[str, Decimal] = {}

    def topics(self) -> tuple[str, ...]:
        return ("price.update",)

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        if not isinstance(event, PriceUpdate) or event.chain != self.config.chain:
            return
        if event.token not in self.config.tokens:
            return
        price = event.price_native
        if price <= 0:
            return
        high = self._remember(event.token, event.observed_at, price)
        bought = self._bought_at.get(event.token)
        if bought is not None:
            if price >= bought * (1 + self.config.rearm_pct / 100):
                del self._bought_at[event.token]  # recovered: the next dip may buy again
            return
        if price > high * (1 - self.config.dip_pct / 100):
            return
        self._bought_at[event.token] = price
        drop = (1 - price / high) * 100
        await ctx.submit(
            OrderIntent(
                chain=event.chain,
                intent_id=f"dip-{event.token}-{event.observed_at.isoformat()}",
                strategy=ctx.strategy_id,
                side="buy",
                token=event.token,
                amount=self.config.amount,
                price_native=price,
                reason=f"price {drop:.1f}% below its {self.config.window_s:.0f}s high",
            )
        )
        self.log.info("dip_buyer.buy", token=event.token, price=str(price), high=str(high))

    def _remember(self, token: str, at: datetime, price: Decimal) -> Decimal:
        """Record the price and return the highest one within the window (a monotonic deque)."""
        window = self._highs.setdefault(token, deque())
        horizon = at - timedelta(seconds=self.config.window_s)
        while window and window[0][0] < horizon:
            window.popleft()
        while window and window[-1][1] <= price:
            window.pop()
        window.append((at, price))
        return window[0][1]
