"""`holders` filter: the top-N holders (pool and bonding-curve accounts excluded) hold at most a share of supply."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from quantbot.api import Filter, FilterVerdict, PluginConfig, TokenCandidate

from ._common import OnMissing, check_share, missing_verdict, pct

LARGEST_ACCOUNTS = 20
"""getTokenLargestAccounts answers with at most 20 accounts."""


class HoldersConfig(PluginConfig, frozen=True, kw_only=True):
    top_n: Annotated[int, msgspec.Meta(ge=1, le=LARGEST_ACCOUNTS, description="how many top holders to add up")] = 10
    max_share: Annotated[Decimal, msgspec.Meta(description="most share of supply they may hold, 0..1")] = Decimal("0.3")
    on_missing: OnMissing = "fail"

    def __post_init__(self) -> None:
        check_share("max_share", self.max_share)


class HoldersFilter(Filter):
    Config = HoldersConfig
    config: HoldersConfig

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        holders, c = candidate.holders, self.config
        if holders is None:
            return missing_verdict(self.id, candidate, "holders", c.on_missing, "holders")
        if holders.supply <= 0:
            return self.verdict(False, "supply is zero", 0)
        share = holders.share(c.top_n)
        if share > c.max_share:
            return self.verdict(False, f"top {c.top_n} holders hold {pct(share)} (> {pct(c.max_share)})", share)
        return self.verdict(True, f"top {c.top_n} holders hold {pct(share)}", share)
