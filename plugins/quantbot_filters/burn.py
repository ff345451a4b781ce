"""`burn` filter: the share of a pool's LP tokens that has been burned must reach a minimum."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from quantbot.api import Filter, FilterVerdict, PluginConfig, TokenCandidate

from ._common import OnMissing, check_share, missing_verdict, pct


class BurnConfig(PluginConfig, frozen=True, kw_only=True):
    min_burned: Annotated[Decimal, msgspec.Meta(description="least share of LP tokens burned, 0..1")] = Decimal("0.9")
    bonding_curve: Annotated[
        Literal["pass", "fail"],
        msgspec.Meta(description="bonding-curve tokens have no LP to burn: pass (default) or fail them"),
    ] = "pass"
    on_missing: OnMissing = "fail"

    def __post_init__(self) -> None:
        check_share("min_burned", self.min_burned)


class BurnFilter(Filter):
    Config = BurnConfig
    config: BurnConfig

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        liq, lp = candidate.liquidity, candidate.lp
        if lp is None and liq is not None and liq.bonding_curve:
            passed = self.config.bonding_curve == "pass"
            return self.verdict(passed, "bonding curve: no LP tokens" + ("" if passed else " (refused by config)"))
        if lp is None:
            return missing_verdict(self.id, candidate, "lp", self.config.on_missing, "LP burn")
        share = lp.burned_share
        if share >= self.config.min_burned:
            return self.verdict(True, f"{pct(share)} of LP burned", share)
        return self.verdict(False, f"only {pct(share)} of LP burned (< {pct(self.config.min_burned)})", share)
