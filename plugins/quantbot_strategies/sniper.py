"""sniper: buy the tokens the scanner accepted, sized by their score.

Each `token.accepted` with a score at or above `min_score` buys once per token, with the amount of the
highest band whose `min_score` the score reaches: a fixed `amount` of native base units, or an
`equity_pct` of the chain's equity (sized by the risk engine). Exits (take-profit, stop-loss, trailing
stop, max hold) are the ExitManager's: give this strategy its own with an [exits.strategies.<id>]
table. The intent id is derived from the token, so a launch seen again (a restart) is refused by the
risk engine as a duplicate.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from quantbot.api import Event, OrderIntent, PluginConfig, Strategy, StrategyContext, TokenAccepted
from quantbot_strategies._common import Bounded, ChainName, check_bps

__all__ = ["Band", "Sniper", "SniperConfig"]


class Band(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    min_score: float
    """Scores at or above this (and below the next band's) buy with this band's size."""
    amount: int | None = None
    """Native base units (lamports / octas) to spend."""
    equity_pct: Decimal | None = None
    """Or: this percent of the chain's equity."""

    def __post_init__(self) -> None:
        if (self.amount is None) == (self.equity_pct is None):
            raise ValueError(f"band min_score={self.min_score}: give exactly one of amount or equity_pct")
        if self.amount is not None and self.amount <= 0:
            raise ValueError(f"band min_score={self.min_score}: amount must be > 0 base units, got {self.amount}")
        if self.equity_pct is not None and not 0 < self.equity_pct <= 100:
            raise ValueError(f"band min_score={self.min_score}: equity_pct must be in (0, 100], got {self.equity_pct}")


class SniperConfig(PluginConfig, frozen=True, kw_only=True):
    bands: Annotated[
        tuple[Band, ...],
        msgspec.Meta(
            description="score bands, e.g. [{min_score = 0.6, amount = 50000000}, {min_score = 0.8, equity_pct = 2}]"
        ),
    ] = ()
    min_score: Annotated[
        float, msgspec.Meta(description="tokens scoring below this (or without a score) are not bought")
    ] = 0.0
    chains: Annotated[tuple[ChainName, ...], msgspec.Meta(description="chains to act on")] = ("solana", "aptos")
    max_slippage_bps: Annotated[
        int | None, msgspec.Meta(description="slippage tolerance sent with the order, in bps (default: the executor's)")
    ] = None
    max_tokens: Annotated[
        int,
        msgspec.Meta(ge=1, description="how many bought tokens are remembered so none is bought twice (bounded state)"),
    ] = 10_000

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError("bands must list at least one score band (min_score with amount or equity_pct)")
        scores = [b.min_score for b in self.bands]
        if len(set(scores)) != len(scores):
            raise ValueError(f"bands: each band needs its own min_score, got {scores}")
        if max(scores) < self.min_score:
            raise ValueError(f"bands: no band reaches min_score {self.min_score}; nothing would ever be bought")
        if not self.chains:
            raise ValueError("chains must name at least one chain (solana, aptos)")
        check_bps("max_slippage_bps", self.max_slippage_bps)

    def band(self, score: float) -> Band | None:
        """The highest band `score` reaches, or None."""
        reached = [b for b in self.bands if score >= b.min_score]
        return max(reached, key=lambda b: b.min_score) if reached else None


class Sniper(Strategy):
    """`token.accepted` in, one buy per token out."""

    Config = SniperConfig
    config: SniperConfig

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self._bought: Bounded[tuple[str, str], None] = Bounded(self.config.max_tokens)
        self.skipped = 0

    def reconfigure(self, config: PluginConfig) -> None:
        super().reconfigure(config)
        self._bought.limit = self.config.max_tokens

    def topics(self) -> tuple[str, ...]:
        return ("token.accepted",)

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        if not isinstance(event, TokenAccepted):
            return
        launch = event.launch
        c = self.config
        score = event.score
        band = c.band(score) if score is not None and score >= c.min_score else None
        key = (launch.chain, launch.mint)
        why = "chain" if launch.chain not in c.chains else "score" if band is None else ""
        if not why and key in self._bought:
            why = "bought already"
        if why or band is None:
            self.skipped += 1
            self.log.debug("sniper.skipped", chain=launch.chain, token=launch.mint, score=score, why=why)
            return
        self._bought[key] = None
        await ctx.submit(
            OrderIntent(
                chain=launch.chain,
                intent_id=f"{ctx.strategy_id}-{launch.chain}-{launch.mint}",
                strategy=ctx.strategy_id,
                side="buy",
                token=launch.mint,
                amount=band.amount or 0,
                sizing="equity_pct" if band.equity_pct is not None else None,
                equity_pct=band.equity_pct,
                max_slippage_bps=c.max_slippage_bps,
                reason=f"accepted {launch.symbol or launch.mint} score {score:.3f} (band {band.min_score})",
            )
        )
        self.log.info("sniper.buy", chain=launch.chain, token=launch.mint, score=score, band=band.min_score)
