"""whale_follow: buy what a whale buys, on the signal kinds and confidence the operator chose.

Each qualifying `whale.signal` becomes one buy intent carrying a sizing hint (the risk engine sizes it
with [sizing] / [sizing.strategies.<id>]); `copy` sizing passes the whale's spend as `leader_amount`.
With `follow_leader` the intent names the whale as `leader`, so the ExitManager sells the position
when that whale sells large or dumps; otherwise the [exits] rules close it. A token is bought at most
once per `rebuy_after_s`, across restarts: the times of the buys still inside that window are saved in
the plugin's data directory (`whale_follow.json`) after each buy and loaded at start.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from quantbot.api import Event, OrderIntent, PluginConfig, Strategy, StrategyContext, WhaleSignal
from quantbot_strategies._common import (
    Bounded,
    ChainName,
    SizingHint,
    StateError,
    check_bps,
    load_state,
    save_state,
)

__all__ = ["WhaleFollow", "WhaleFollowConfig"]

SELL_KINDS = ("large_sell", "dump")
STATE_FILE = "whale_follow.json"


class WhaleFollowConfig(PluginConfig, frozen=True, kw_only=True):
    kinds: Annotated[
        tuple[str, ...], msgspec.Meta(description="signal kinds that buy: any of large_buy, accumulation, cluster")
    ] = ("large_buy", "accumulation", "cluster")
    min_confidence: Annotated[
        float, msgspec.Meta(ge=0, le=1, description="signals below this confidence (0..1) are ignored")
    ] = 0.8
    min_size_usd: Annotated[
        Decimal,
        msgspec.Meta(
            description="ignore signals under this many USD (0: no floor; without a USD value a signal "
            "passes only at 0)"
        ),
    ] = Decimal(0)
    chains: Annotated[tuple[ChainName, ...], msgspec.Meta(description="chains to act on")] = ("solana", "aptos")
    sizing: Annotated[
        SizingHint,
        msgspec.Meta(
            description="how the risk engine sizes the buy: fixed, equity_pct, kelly, copy (share of the whale's spend)"
        ),
    ] = "fixed"
    follow_leader: Annotated[
        bool,
        msgspec.Meta(
            description="name the whale as the position's leader: its large sell or dump then exits the position"
        ),
    ] = True
    rebuy_after_s: Annotated[
        float, msgspec.Meta(ge=0, description="seconds before the same token may be bought again on a new signal")
    ] = 3600.0
    max_slippage_bps: Annotated[
        int | None, msgspec.Meta(description="slippage tolerance sent with the order, in bps (default: the executor's)")
    ] = None
    max_tokens: Annotated[
        int, msgspec.Meta(ge=1, description="how many recently bought tokens are remembered (bounded state)")
    ] = 10_000

    def __post_init__(self) -> None:
        if not self.kinds:
            raise ValueError("kinds must name at least one signal kind (large_buy, accumulation, cluster)")
        for kind in self.kinds:
            if kind in SELL_KINDS:
                raise ValueError(f"kinds: {kind!r} is a selling signal; the ExitManager acts on it, not a buy")
            if kind not in ("large_buy", "accumulation", "cluster"):
                raise ValueError(f"kinds: unknown signal kind {kind!r} (use large_buy, accumulation, cluster)")
        if self.min_size_usd < 0:
            raise ValueError(f"min_size_usd must be >= 0, got {self.min_size_usd}")
        if not self.chains:
            raise ValueError("chains must name at least one chain (solana, aptos)")
        check_bps("max_slippage_bps", self.max_slippage_bps)


class _Saved(msgspec.Struct, frozen=True):
    bought: list[tuple[str, str, datetime]] = []
    """(chain, token, when it was bought), oldest first"""


class WhaleFollow(Strategy):
    """`whale.signal` in, sized-by-hint buys out."""

    Config = WhaleFollowConfig
    config: WhaleFollowConfig

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self._bought: Bounded[tuple[str, str], datetime] = Bounded(self.config.max_tokens)
        self.skipped = 0
        """Signals seen and not acted on (kind, confidence, size, chain or re-buy window)."""

    def reconfigure(self, config: PluginConfig) -> None:
        super().reconfigure(config)
        self._bought.limit = self.config.max_tokens

    async def start(self) -> None:
        """Load the buys the previous run made inside the re-buy window, so a restart does not buy again."""
        if self._env is None:
            return
        try:
            saved = await load_state(self._env.data_dir / STATE_FILE, _Saved)
        except StateError as exc:
            self.log.error("whale_follow.state_unreadable", error=str(exc))
            return
        for chain, token, when in saved.bought if saved is not None else ():
            self._bought[(chain, token)] = when
        self.log.info("whale_follow.state_loaded", tokens=len(self._bought))

    async def _save(self, now: datetime) -> None:
        """Save the buys still inside the re-buy window (older ones no longer hold anything back)."""
        if self._env is None:
            return
        window = self.config.rebuy_after_s
        recent = [(c, t, when) for (c, t), when in self._bought.items() if (now - when).total_seconds() < window]
        try:
            await save_state(self._env.data_dir / STATE_FILE, _Saved(bought=recent))
        except OSError as exc:
            self.log.error("whale_follow.state_not_saved", error=str(exc))

    def topics(self) -> tuple[str, ...]:
        return ("whale.signal",)

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        if not isinstance(event, WhaleSignal):
            return
        c = self.config
        why = self._skip_reason(event)
        now = ctx.clock.now()
        key = (event.chain, event.token)
        last = self._bought.get(key)
        if not why and last is not None and (now - last).total_seconds() < c.rebuy_after_s:
            why = "bought recently"
        if why:
            self.skipped += 1
            self.log.debug("whale_follow.skipped", kind=event.kind, token=event.token, why=why)
            return
        self._bought[key] = now
        await self._save(now)  # before the order: a crash in between loses a buy rather than doubling one
        leader = event.wallets[0] if c.follow_leader and event.wallets else None
        await ctx.submit(
            OrderIntent(
                chain=event.chain,
                intent_id=_intent_id(ctx.strategy_id, event, now),
                strategy=ctx.strategy_id,
                side="buy",
                token=event.token,
                amount=0,
                sizing=c.sizing,
                leader=leader,
                leader_amount=event.size if event.size > 0 else None,
                max_slippage_bps=c.max_slippage_bps,
                reason=f"whale {event.kind} (confidence {event.confidence:.2f})",
            )
        )
        self.log.info(
            "whale_follow.buy", chain=event.chain, token=event.token, kind=event.kind, confidence=event.confidence
        )

    def _skip_reason(self, event: WhaleSignal) -> str:
        c = self.config
        if event.chain not in c.chains:
            return "chain"
        if event.kind not in c.kinds:
            return "kind"
        if event.confidence < c.min_confidence:
            return "confidence"
        if c.min_size_usd > 0 and (event.size_usd is None or event.size_usd < c.min_size_usd):
            return "size"
        return ""


def _intent_id(strategy: str, signal: WhaleSignal, now: datetime) -> str:
    """One id per signal: the trade that fired it, so a signal derived again (after a restart's backfill)
    is refused by the journal as a duplicate instead of buying twice. A signal that names no
    transaction (older recordings, third-party publishers) falls back to the time it was acted on."""
    ref = signal.tx or now.isoformat()
    return f"{strategy}-{signal.chain}-{signal.token}-{signal.kind}-{ref}"
