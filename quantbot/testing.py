"""The harness plugin authors test with: build a plugin from params as the daemon would, a context
that records submitted intents, and event builders with sensible defaults.

    from quantbot.testing import make_plugin, RecordingContext, token_launch, feed, check_filter
    f = make_plugin(MyFilter, max_holders=10)
    assert (await check_filter(f, token_launch(name="PEPE"))).passed
    intents = await feed(make_plugin(MyStrategy, amount=5), [price_update(price_native=Decimal(2))])
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from quantbot.api import (
    Event,
    Filter,
    FilterVerdict,
    OrderIntent,
    Plugin,
    PriceUpdate,
    Strategy,
    Swap,
    TokenAccepted,
    TokenLaunch,
    WhaleSignal,
)
from quantbot.bus import compile_pattern, topic_matches
from quantbot.clock import Clock, SimClock

P = TypeVar("P", bound=Plugin)


def make_plugin(cls: type[P], *, id: str | None = None, **params: Any) -> P:
    """Validate `params` against `cls.Config` (as the config loader does) and build the plugin."""
    config = msgspec.convert(params, cls.Config)
    return cls(id=id or cls.__name__.lower(), config=config)


class RecordingContext:
    """A StrategyContext that records what the strategy submits instead of sending it anywhere."""

    def __init__(self, strategy_id: str = "test", clock: Clock | None = None) -> None:
        self._id = strategy_id
        self._clock = clock or SimClock()
        self.intents: list[OrderIntent] = []

    @property
    def strategy_id(self) -> str:
        return self._id

    @property
    def clock(self) -> Clock:
        return self._clock

    async def submit(self, intent: OrderIntent) -> None:
        if not isinstance(intent, OrderIntent):
            raise TypeError(f"submit() takes an OrderIntent, not {type(intent).__name__}")
        self.intents.append(msgspec.structs.replace(intent, strategy=self._id))


_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def token_launch(**fields: Any) -> TokenLaunch:
    defaults: dict[str, Any] = {
        "chain": "solana",
        "mint": "So1anaTestMint1111111111111111111111111111",
        "name": "Test Token",
        "symbol": "TEST",
        "creator": "Creator111111111111111111111111111111111111",
        "source": "pumpfun",
        "tx": "testsig",
        "block_time": _T0,
    }
    return TokenLaunch(**(defaults | fields))


def swap(**fields: Any) -> Swap:
    defaults: dict[str, Any] = {
        "chain": "solana",
        "wallet": "Wa11et1111111111111111111111111111111111111",
        "mint_in": "So11111111111111111111111111111111111111112",
        "amount_in": 1_000_000_000,
        "decimals_in": 9,
        "mint_out": "So1anaTestMint1111111111111111111111111111",
        "amount_out": 5_000_000,
        "decimals_out": 6,
        "venue": "pumpfun",
        "tx": "testsig",
        "slot": 1,
        "block_time": _T0,
    }
    return Swap(**(defaults | fields))


def order_intent(**fields: Any) -> OrderIntent:
    defaults: dict[str, Any] = {
        "chain": "solana",
        "intent_id": "intent-1",
        "strategy": "test",
        "side": "buy",
        "token": "So1anaTestMint1111111111111111111111111111",
        "amount": 100_000_000,
    }
    return OrderIntent(**(defaults | fields))


def price_update(**fields: Any) -> PriceUpdate:
    defaults: dict[str, Any] = {
        "chain": "solana",
        "token": "So1anaTestMint1111111111111111111111111111",
        "price_native": Decimal(30),
        "price_usd": None,
        "source": "swap",
        "observed_at": _T0,
    }
    return PriceUpdate(**(defaults | fields))


def whale_signal(**fields: Any) -> WhaleSignal:
    defaults: dict[str, Any] = {
        "chain": "solana",
        "kind": "large_buy",
        "wallets": ("Wa11et1111111111111111111111111111111111111",),
        "token": "So1anaTestMint1111111111111111111111111111",
        "size": 50_000_000_000,
        "confidence": 0.9,
    }
    return WhaleSignal(**(defaults | fields))


def token_accepted(launch: TokenLaunch | None = None, **launch_fields: Any) -> TokenAccepted:
    return TokenAccepted(launch=launch or token_launch(**launch_fields))


async def feed(strategy: Strategy, events: Iterable[Event], ctx: RecordingContext | None = None) -> list[OrderIntent]:
    """Deliver `events` to the strategy in order, as the daemon would (only topics it asked for).

    Returns the intents it submitted; pass a `ctx` to keep state (and intents) across calls.
    """
    ctx = ctx or RecordingContext(strategy_id=strategy.id)
    patterns = strategy.topics()
    for pattern in patterns:
        compile_pattern(pattern)  # a bad pattern fails here, as it would at daemon start
    before = len(ctx.intents)
    for event in events:
        if any(topic_matches(pattern, event.topic) for pattern in patterns):
            await strategy.on_event(event, ctx)
    return ctx.intents[before:]


async def check_filter(f: Filter, launch: TokenLaunch, *, timeout: float = 5.0) -> FilterVerdict:  # noqa: ASYNC109
    """Run one filter as the daemon's filter stage does: bounded in time, an exception fails the token."""
    try:
        async with asyncio.timeout(timeout):
            verdict = await f.check(launch)
    except Exception as exc:  # noqa: BLE001  (the stage fails closed; so does the harness)
        return FilterVerdict(filter=f.id, passed=False, reason=f"filter error: {type(exc).__name__}")
    if not isinstance(verdict, FilterVerdict):
        raise TypeError(f"{type(f).__name__}.check() returned {type(verdict).__name__}, not FilterVerdict")
    return verdict
