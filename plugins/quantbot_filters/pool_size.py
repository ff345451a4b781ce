"""`pool_size` filter: quote liquidity (in SOL, optionally USD) must lie within [min, max]."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from quantbot.api import Filter, FilterVerdict, PluginConfig, TokenCandidate

from ._common import OnMissing, missing_verdict


class PoolSizeConfig(PluginConfig, frozen=True, kw_only=True):
    min_native: Annotated[Decimal, msgspec.Meta(description="least quote liquidity in SOL")] = Decimal(0)
    max_native: Annotated[Decimal | None, msgspec.Meta(description="most quote liquidity in SOL (none: no cap)")] = None
    min_usd: Annotated[Decimal | None, msgspec.Meta(description="least liquidity in USD (needs prices)")] = None
    max_usd: Annotated[Decimal | None, msgspec.Meta(description="most liquidity in USD (needs prices)")] = None
    on_missing: OnMissing = "fail"

    def __post_init__(self) -> None:
        for key in ("min_native", "max_native", "min_usd", "max_usd"):
            value = getattr(self, key)
            if value is not None and (not value.is_finite() or value < 0):
                raise ValueError(f"{key} must be a non-negative number, got {value}")
        for lo, hi in (("min_native", "max_native"), ("min_usd", "max_usd")):
            low, high = getattr(self, lo), getattr(self, hi)
            if low is not None and high is not None and low > high:
                raise ValueError(f"{lo} ({low}) is above {hi} ({high})")


class PoolSizeFilter(Filter):
    Config = PoolSizeConfig
    config: PoolSizeConfig

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        liq, c = candidate.liquidity, self.config
        if liq is None:
            return missing_verdict(self.id, candidate, "liquidity", c.on_missing, "liquidity")
        if liq.native is None:
            return self.verdict(c.on_missing == "pass", f"liquidity in SOL unknown ({liq.quote_mint} quote, no price)")
        sol = liq.native
        if sol < c.min_native:
            return self.verdict(False, f"liquidity {sol} SOL below {c.min_native} SOL", sol)
        if c.max_native is not None and sol > c.max_native:
            return self.verdict(False, f"liquidity {sol} SOL above {c.max_native} SOL", sol)
        if c.min_usd is not None or c.max_usd is not None:
            if liq.usd is None:
                return self.verdict(c.on_missing == "pass", "liquidity in USD unknown (no SOL/USD price)", sol)
            if c.min_usd is not None and liq.usd < c.min_usd:
                return self.verdict(False, f"liquidity ${liq.usd} below ${c.min_usd}", liq.usd)
            if c.max_usd is not None and liq.usd > c.max_usd:
                return self.verdict(False, f"liquidity ${liq.usd} above ${c.max_usd}", liq.usd)
        return self.verdict(True, f"liquidity {sol} SOL", sol)
