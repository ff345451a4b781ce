"""Features: what enrichment measured for one launch, before it becomes a TokenCandidate (no chain imports)."""

from __future__ import annotations

from dataclasses import dataclass, field

from quantbot.candidates import HoldersInfo, LiquidityInfo, LpInfo, MetadataInfo, MintInfo


@dataclass
class Features:
    """What the enricher measured; `missing` explains every feature left None."""

    mint: MintInfo | None = None
    metadata: MetadataInfo | None = None
    liquidity: LiquidityInfo | None = None
    lp: LpInfo | None = None
    holders: HoldersInfo | None = None
    creator: str = ""
    creator_holding: int | None = None
    missing: dict[str, str] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    """Features whose look-up failed (not those that do not apply, like LP on a bonding curve)."""

    def fail(self, feature: str, reason: object) -> None:
        self.missing[feature] = str(reason)
        self.failed.add(feature)
