"""The harness plugin authors test with: build a plugin from params as the daemon would, a context
that records submitted intents, and event builders with sensible defaults.

    from quantbot.testing import make_plugin, RecordingContext, token_launch
    f = make_plugin(MyFilter, max_holders=10)
    assert (await f.check(token_launch(name="PEPE"))).passed
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from quantbot.api import OrderIntent, Plugin, Swap, TokenLaunch
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
