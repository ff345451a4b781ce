"""The harness plugin authors test with: build a plugin from params as the daemon would, a context
that records submitted intents, and event builders with sensible defaults.

    from quantbot.testing import make_plugin, RecordingContext, token_candidate, feed, check_filter
    f = make_plugin(MyFilter, max_share=0.3)
    assert (await check_filter(f, token_candidate(name="PEPE", holders=holders_info(supply=100, top=[10])))).passed
    intents = await feed(make_plugin(MyStrategy, amount=5), [price_update(price_native=Decimal(2))])
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from quantbot.api import (
    CreatorInfo,
    Event,
    Filter,
    FilterVerdict,
    Holder,
    HoldersInfo,
    LiquidityInfo,
    LpInfo,
    MetadataInfo,
    MintInfo,
    MomentumInfo,
    OrderIntent,
    Plugin,
    PriceUpdate,
    Strategy,
    Swap,
    TokenAccepted,
    TokenCandidate,
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


_swap_numbers = itertools.count(1)


def swap(**fields: Any) -> Swap:
    """A Swap; each call without a `tx` gets a transaction of its own (one swap per wallet and transaction)."""
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
        "tx": f"testsig{next(_swap_numbers)}",
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


async def check_filter(
    f: Filter,
    candidate: TokenCandidate | TokenLaunch,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109
) -> FilterVerdict:
    """Run one filter as the daemon's filter stage does: bounded in time, an exception fails the token.

    A bare TokenLaunch is judged as a candidate whose features were not measured.
    """
    if isinstance(candidate, TokenLaunch):
        candidate = TokenCandidate(launch=candidate)
    try:
        async with asyncio.timeout(timeout):
            verdict = await f.check(candidate)
    except Exception as exc:  # noqa: BLE001  (the stage fails closed; so does the harness)
        return FilterVerdict(filter=f.id, passed=False, reason=f"filter error: {type(exc).__name__}")
    if not isinstance(verdict, FilterVerdict):
        raise TypeError(f"{type(f).__name__}.check() returned {type(verdict).__name__}, not FilterVerdict")
    return verdict


_UNMEASURED = "not measured (test candidate)"
_FEATURE_TYPES: dict[str, type[Any]] = {
    "mint": MintInfo,
    "metadata": MetadataInfo,
    "liquidity": LiquidityInfo,
    "lp": LpInfo,
    "holders": HoldersInfo,
    "creator": CreatorInfo,
    "momentum": MomentumInfo,
}


def token_candidate(launch: TokenLaunch | None = None, **fields: Any) -> TokenCandidate:
    """A candidate for filter tests: `mint=mint_info(...)`, `holders=holders_info(...)`... and launch fields

    (a str `mint=`/`creator=` is the launch's mint/creator address; a MintInfo/CreatorInfo is the feature).

    Features not given are None with `missing[name]` = "not measured (test candidate)"; pass
    `missing={"lp": "timeout"}` to state why. Other keyword arguments are TokenLaunch fields.
    """
    # `mint` and `creator` are both launch fields (str) and features (MintInfo, CreatorInfo): the type decides.
    features = {k: fields.pop(k) for k in list(fields) if isinstance(fields[k], _FEATURE_TYPES.get(k, ()))}
    missing: dict[str, str] = fields.pop("missing", {})
    launch = launch or token_launch(**fields)
    absent = {k: missing.get(k, _UNMEASURED) for k in _FEATURE_TYPES if features.get(k) is None}
    return TokenCandidate(launch=launch, **features, missing=absent)


def mint_info(**fields: Any) -> MintInfo:
    """A renounced, unfreezable SPL mint of 1e9 tokens with 6 decimals unless told otherwise."""
    defaults: dict[str, Any] = {
        "program": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        "supply": 10**15,
        "decimals": 6,
        "mint_authority": None,
        "freeze_authority": None,
    }
    return MintInfo(**(defaults | fields))


def holders_info(*, supply: int, top: Iterable[int], excluded: Iterable[str] = ()) -> HoldersInfo:
    """Holders with the given amounts (biggest first after sorting), accounts named H0, H1..."""
    amounts = sorted(top, reverse=True)
    return HoldersInfo(
        supply=supply, top=tuple(Holder(f"H{i}", a) for i, a in enumerate(amounts)), excluded=tuple(excluded)
    )


def liquidity_info(**fields: Any) -> LiquidityInfo:
    """A SOL-quoted pump.fun bonding curve with 10 SOL unless told otherwise."""
    defaults: dict[str, Any] = {
        "venue": "pump.fun",
        "pool": "Curve111111111111111111111111111111111111111",
        "quote_mint": "So11111111111111111111111111111111111111112",
        "quote_reserve": 10 * 10**9,
        "quote_decimals": 9,
        "native": Decimal(10),
        "bonding_curve": True,
    }
    return LiquidityInfo(**(defaults | fields))
