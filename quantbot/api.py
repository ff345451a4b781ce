"""The one module plugins import: interfaces, the event and value types they see, their context.

A plugin is a class registered under an entry-point group (`quantbot.filters`, `quantbot.strategies`,
`quantbot.executors`, `quantbot.notifiers`). Its `Config` (a `PluginConfig` struct) is the schema
its TOML parameters are validated against; it is built as `cls(id=..., config=...)`.
Strategies get a `StrategyContext` with `submit(intent)`: never an executor, never an engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, Protocol

import msgspec
import structlog

from quantbot.bus import compile_pattern
from quantbot.clock import Clock
from quantbot.events import (
    AccountUpdate,
    Chain,
    ConfigReloaded,
    EquityUpdate,
    Event,
    FilterVerdict,
    OrderApproved,
    OrderExpired,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSubmitted,
    PluginDisabled,
    PositionCorrected,
    PositionUpdate,
    PriceUpdate,
    PumpTrade,
    RejectReason,
    Side,
    Swap,
    Tick,
    TokenAccepted,
    TokenLaunch,
    TokenRejected,
    TokenRugWarning,
    TradingStateChanged,
    Transfer,
    WhaleSignal,
)
from quantbot.execution import ApprovedOrder, ExecutionReport, Fill, Outcome
from quantbot.secrets import Secret, SigningKey

__all__ = [
    "NATIVE_TOKEN",
    "AccountUpdate",
    "ApprovedOrder",
    "Chain",
    "Clock",
    "ConfigReloaded",
    "EquityUpdate",
    "Event",
    "ExecutionReport",
    "Executor",
    "Fill",
    "Filter",
    "FilterVerdict",
    "Notifier",
    "OrderApproved",
    "OrderExpired",
    "OrderFailed",
    "OrderFilled",
    "OrderIntent",
    "OrderRejected",
    "OrderSubmitted",
    "Outcome",
    "Plugin",
    "PluginConfig",
    "PluginDisabled",
    "PluginEnv",
    "PositionCorrected",
    "PositionUpdate",
    "PriceUpdate",
    "PriceView",
    "PumpTrade",
    "RejectReason",
    "Secret",
    "Side",
    "SigningKey",
    "Strategy",
    "StrategyContext",
    "Swap",
    "Tick",
    "TokenAccepted",
    "TokenLaunch",
    "TokenRejected",
    "TokenRugWarning",
    "TradingStateChanged",
    "Transfer",
    "WhaleSignal",
    "check_topic_pattern",
]

NATIVE_TOKEN: dict[str, str] = {
    "solana": "So11111111111111111111111111111111111111112",
    "aptos": "0x1::aptos_coin::AptosCoin",
}
"""The key under which `Executor.balances()` reports each chain's native coin (SOL lamports, APT octas)."""


class PriceView(Protocol):
    """Fresh prices only (None when stale or unknown); implemented by the PriceBook."""

    def price_native(self, chain: str, token: str) -> Decimal | None:
        """Native base units per token base unit."""
        ...

    def usd_per_native(self, chain: str) -> Decimal | None:
        """USD per whole SOL / APT."""
        ...


def check_topic_pattern(pattern: str) -> None:
    """Raise ValueError unless `pattern` is a valid topic pattern (`*` one segment, `#` the rest)."""
    compile_pattern(pattern)


class PluginConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every plugin's parameter schema. Use `quantbot.api.Secret` for secret fields."""


@dataclass(frozen=True)
class PluginEnv:
    """What the daemon lends a plugin: its clock and a directory of its own for state."""

    clock: Clock
    data_dir: Path
    prices: PriceView | None = None
    """Current prices when the daemon has a PriceBook (paper fills use it over the intent's price)."""


class Plugin:
    """Common shape: built from its id and typed config; may be reconfigured live (SIGHUP)."""

    Config: ClassVar[type[PluginConfig]] = PluginConfig

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        self.id = id
        self.config = config
        self.log = structlog.get_logger(component=f"plugin.{id}")
        self._env: PluginEnv | None = None

    def attach(self, env: PluginEnv) -> None:
        """Called by the daemon before `start`."""
        self._env = env

    @property
    def env(self) -> PluginEnv:
        if self._env is None:
            raise RuntimeError(f"plugin {self.id!r} used before the daemon attached it")
        return self._env

    def reconfigure(self, config: PluginConfig) -> None:
        """Take new parameters without losing state. Override to re-derive cached values."""
        self.config = config

    async def start(self) -> None:
        """Open what the plugin needs (sessions, files). Called once before any event."""

    async def stop(self) -> None:
        """Release it. Called once at shutdown, after the last event."""


class Filter(Plugin):
    """Judges a launched token. A filter that raises counts as a failure and rejects the token."""

    async def check(self, launch: TokenLaunch) -> FilterVerdict:
        raise NotImplementedError

    def verdict(self, passed: bool, reason: str = "") -> FilterVerdict:
        return FilterVerdict(filter=self.id, passed=passed, reason=reason)


class StrategyContext(Protocol):
    """What a strategy may do and see."""

    @property
    def strategy_id(self) -> str: ...

    @property
    def clock(self) -> Clock: ...

    async def submit(self, intent: OrderIntent) -> None:
        """Hand an intent to the risk engine (published as `order.intent`)."""
        ...


class Strategy(Plugin):
    """Turns events into order intents. `topics()` names what it wants to receive."""

    def topics(self) -> tuple[str, ...]:
        return ()

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        raise NotImplementedError


class Notifier(Plugin):
    """Turns events into messages for people."""

    def topics(self) -> tuple[str, ...]:
        return ()

    async def notify(self, event: Event) -> None:
        raise NotImplementedError


class Executor(Plugin):
    """Sends approved orders to a venue. It only ever receives orders the RiskEngine sealed.

    Contract: `execute` returns FILLED with the real fill, SUBMITTED when sent but not yet known,
    EXPIRED when sent and provably unable to land, or FAILED only when provably nothing was sent.
    An exception counts as "maybe sent": the order is reconciled, never re-sent.
    `reconcile(order, tx)` answers for an order found unfinished at start-up; NOT_SENT when the venue
    provably never saw it.
    """

    live: ClassVar[bool] = True
    """False only for executors that never touch a chain (paper)."""

    wallet_key: SigningKey | None = None
    """The operator's signing key for the chain this executor serves ([wallet] in the config), handed over by
    the daemon before `start` and only to executors. Reveal it only to build the signer; never log it."""

    def use_wallet_key(self, key: SigningKey | None) -> None:
        """Called by the daemon with the [wallet] key of the chain whose `[orders]` route names this executor."""
        self.wallet_key = key

    async def execute(self, order: ApprovedOrder) -> ExecutionReport:
        raise NotImplementedError

    async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
        raise NotImplementedError

    async def balances(self) -> Mapping[str, int] | None:
        """The operator's balances at the venue: token -> base units, native under NATIVE_TOKEN[chain].

        None when this executor cannot tell (the portfolio then asks the next one for that chain).
        """
        return None
