"""`renounced` filter: the mint authority must be revoked; optionally the freeze authority too."""

from __future__ import annotations

from typing import Annotated

import msgspec

from quantbot.api import Filter, FilterVerdict, PluginConfig, TokenCandidate

from ._common import OnMissing, missing_verdict


class RenouncedConfig(PluginConfig, frozen=True, kw_only=True):
    require_freeze_revoked: Annotated[
        bool, msgspec.Meta(description="also refuse mints whose freeze authority is set")
    ] = True
    on_missing: OnMissing = "fail"


class RenouncedFilter(Filter):
    Config = RenouncedConfig
    config: RenouncedConfig

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        mint = candidate.mint
        if mint is None:
            return missing_verdict(self.id, candidate, "mint", self.config.on_missing, "mint account")
        if mint.mint_authority is not None:
            return self.verdict(False, f"mint authority not revoked ({mint.mint_authority})", mint.mint_authority)
        if self.config.require_freeze_revoked and mint.freeze_authority is not None:
            return self.verdict(False, f"freeze authority not revoked ({mint.freeze_authority})", mint.freeze_authority)
        return self.verdict(True, "mint authority revoked" if mint.freeze_authority else "mint and freeze revoked")
