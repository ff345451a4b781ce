"""`creator_history` filter: refuse creators with more than N launches (this one included) in a window."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import msgspec

from quantbot.api import Filter, FilterVerdict, PluginConfig, TokenCandidate

from ._common import OnMissing, missing_verdict

PUMP_RAYDIUM_MIGRATOR = "39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg"
"""Signs every pump.fun -> Raydium v4 migration (`initialize2`): the pool's "creator", not the coin's."""


class CreatorHistoryConfig(PluginConfig, frozen=True, kw_only=True):
    max_launches: Annotated[
        int, msgspec.Meta(ge=1, description="most launches by one creator within the window, this one included")
    ] = 3
    window_s: Annotated[float, msgspec.Meta(gt=0, description="the window, in seconds (default one day)")] = 86_400.0
    ignore_creators: Annotated[
        tuple[str, ...],
        msgspec.Meta(description="addresses that launch for others (migrators); their history is not judged"),
    ] = (PUMP_RAYDIUM_MIGRATOR,)
    on_missing: OnMissing = "fail"


class CreatorHistoryFilter(Filter):
    Config = CreatorHistoryConfig
    config: CreatorHistoryConfig

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        creator, c = candidate.creator, self.config
        if creator is None:
            return missing_verdict(self.id, candidate, "creator", c.on_missing, "creator history")
        if creator.address in c.ignore_creators:
            return self.verdict(True, f"creator {creator.address} launches for others (ignored)", creator.address)
        now = candidate.observed_at or candidate.launch.block_time
        previous = (
            creator.launches_since(now - timedelta(seconds=c.window_s))
            if now is not None
            else len(creator.previous_launches)
        )
        total = previous + 1
        if total > c.max_launches:
            return self.verdict(
                False, f"creator {creator.address} launched {total} tokens within {c.window_s:g}s", total
            )
        return self.verdict(True, f"creator launched {total} token(s) within {c.window_s:g}s", total)
