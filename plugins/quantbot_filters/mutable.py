"""`mutable` filter: token metadata must be immutable (optionally: or held by a known update authority)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from quantbot.api import Filter, FilterVerdict, PluginConfig, TokenCandidate

from ._common import OnMissing, missing_verdict


class MutableConfig(PluginConfig, frozen=True, kw_only=True):
    allowed_update_authorities: Annotated[
        tuple[str, ...], msgspec.Meta(description="update authorities trusted to keep mutable metadata")
    ] = ()
    on_missing: OnMissing = "fail"


class MutableFilter(Filter):
    Config = MutableConfig
    config: MutableConfig

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        meta = candidate.metadata
        if meta is None:
            return missing_verdict(self.id, candidate, "metadata", self.config.on_missing, "metadata")
        if not meta.is_mutable:
            return self.verdict(True, f"{meta.source} metadata is immutable", "immutable")
        authority = meta.update_authority or ""
        if authority in self.config.allowed_update_authorities:
            return self.verdict(True, f"mutable, but update authority {authority} is allowed", authority)
        return self.verdict(False, f"{meta.source} metadata is mutable (update authority {authority})", authority)
