"""Plugins a third party might ship, installed by the tests as a real distribution (dist-info)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from quantbot.api import (
    Event,
    Filter,
    FilterVerdict,
    Notifier,
    OrderIntent,
    PluginConfig,
    Secret,
    Strategy,
    StrategyContext,
    Swap,
    TokenAccepted,
    TokenCandidate,
)


class BuyConfig(PluginConfig, frozen=True, kw_only=True):
    amount: int = 100_000_000
    notional_usd: Decimal = Decimal(10)
    price_native: Decimal | None = None


class BuyAcceptedStrategy(Strategy):
    """Submits one buy for every accepted token."""

    Config = BuyConfig
    config: BuyConfig

    def topics(self) -> tuple[str, ...]:
        return ("token.accepted",)

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        assert isinstance(event, TokenAccepted)
        await ctx.submit(
            OrderIntent(
                chain=event.launch.chain,
                intent_id=f"buy-{event.launch.mint}",
                strategy="pretending-to-be-someone-else",
                side="buy",
                token=event.launch.mint,
                amount=self.config.amount,
                notional_usd=self.config.notional_usd,
                price_native=self.config.price_native,
                reason="accepted launch",
            )
        )


class ExplodingConfig(PluginConfig, frozen=True, kw_only=True):
    api_token: Secret | None = None


class ExplodingFilter(Filter):
    """Always raises, with its secret in the message, as a careless HTTP library might."""

    Config = ExplodingConfig
    config: ExplodingConfig

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        token = self.config.api_token.reveal() if self.config.api_token else "none"
        raise RuntimeError(f"GET https://api.example/v1?key={token} failed")


class HangingFilter(Filter):
    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


class HangOnStopNotifier(Notifier):
    """Never finishes stopping: the daemon must still exit within its shutdown bound."""

    def topics(self) -> tuple[str, ...]:
        return ("config.reloaded",)

    async def notify(self, event: Event) -> None:
        pass

    async def stop(self) -> None:
        await asyncio.sleep(3600)


class TickerConfig(PluginConfig, frozen=True, kw_only=True):
    per_tick: int = 3
    tokens: tuple[str, ...] = ("TokA", "TokB", "TokC")
    amount: int = 1_000_000
    price_native: Decimal = Decimal(1000)


class TickerStrategy(Strategy):
    """Buys on every tick, with intent ids unique across restarts (bus ids are time-seeded)."""

    Config = TickerConfig
    config: TickerConfig

    def topics(self) -> tuple[str, ...]:
        return ("clock.tick",)

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        for k in range(self.config.per_tick):
            token = self.config.tokens[(event.id + k) % len(self.config.tokens)]
            await ctx.submit(
                OrderIntent(
                    chain="solana",
                    intent_id=f"{event.id}-{k}",
                    strategy="ticker",
                    side="buy",
                    token=token,
                    amount=self.config.amount,
                    notional_usd=Decimal(1),
                    price_native=self.config.price_native,
                )
            )


class GateConfig(PluginConfig, frozen=True, kw_only=True):
    gate: str


class GatedStartNotifier(Notifier):
    """Finishes starting only once the file `gate` exists: holds the daemon mid start-up."""

    Config = GateConfig
    config: GateConfig

    async def start(self) -> None:
        from pathlib import Path

        gate = Path(self.config.gate)
        while not gate.exists():  # noqa: ASYNC110, ASYNC240  (the gate is opened by another process)
            await asyncio.sleep(0.02)

    def topics(self) -> tuple[str, ...]:
        return ("config.reloaded",)

    async def notify(self, event: Event) -> None:
        pass


class FollowConfig(PluginConfig, frozen=True, kw_only=True):
    token: str
    """What to buy when a watched wallet swaps (tests point it at a local pool's mint)."""
    amount: int = 100_000_000
    notional_usd: Decimal = Decimal(10)


class FollowSwapStrategy(Strategy):
    """Buys `token` once for every swap a watched wallet makes (a stand-in for the real copy strategies)."""

    Config = FollowConfig
    config: FollowConfig

    def topics(self) -> tuple[str, ...]:
        return ("chain.*.swap",)

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        assert isinstance(event, Swap)
        await ctx.submit(
            OrderIntent(
                chain=event.chain,
                intent_id=f"follow-{event.tx}",
                strategy="follow_swap",
                side="buy",
                token=self.config.token,
                amount=self.config.amount,
                notional_usd=self.config.notional_usd,
                reason=f"{event.wallet} swapped",
                leader=event.wallet,
            )
        )
