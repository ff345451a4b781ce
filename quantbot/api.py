"""The one module plugins import: interfaces, the event and value types they see, their context.

A plugin is a class registered under an entry-point group (`quantbot.filters`, `quantbot.strategies`,
`quantbot.executors`, `quantbot.notifiers`). Its `Config` (a `PluginConfig` struct) is the schema
its TOML parameters are validated against; it is built as `cls(id=..., config=...)`.
Strategies get a `StrategyContext` with `submit(intent)`: never an executor, never an engine.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import msgspec
import structlog

from quantbot.bus import compile_pattern, topic_matches
from quantbot.candidates import (
    CreatorInfo,
    Holder,
    HoldersInfo,
    LiquidityInfo,
    LpInfo,
    MetadataInfo,
    MintInfo,
    MomentumInfo,
    TokenCandidate,
)
from quantbot.clock import Clock
from quantbot.events import (
    EVENT_TYPES,
    AccountUpdate,
    Chain,
    ChainDay,
    ConfigReloaded,
    DailyReport,
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
    WatcherLag,
    WhaleSignal,
)
from quantbot.execution import ApprovedOrder, ExecutionReport, Fill, Outcome
from quantbot.retry import RETRYABLE_STATUS, Backoff, retry_after
from quantbot.secrets import Secret, SigningKey

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from aptos_sdk.async_client import RestClient

__all__ = [
    "EVENT_TYPES",
    "NATIVE_TOKEN",
    "RETRYABLE_STATUS",
    "AccountUpdate",
    "ApprovedOrder",
    "AptosNodes",
    "Backoff",
    "Chain",
    "ChainDay",
    "Clock",
    "ConfigReloaded",
    "CreatorInfo",
    "DailyReport",
    "EquityUpdate",
    "Event",
    "ExecutionReport",
    "Executor",
    "Fill",
    "Filter",
    "FilterVerdict",
    "Holder",
    "HoldersInfo",
    "LiquidityInfo",
    "LpInfo",
    "MetadataInfo",
    "MintInfo",
    "MomentumInfo",
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
    "TokenCandidate",
    "TokenLaunch",
    "TokenRejected",
    "TokenRugWarning",
    "TradingStateChanged",
    "Transfer",
    "WatcherLag",
    "WhaleSignal",
    "aptos_asset_name",
    "aptos_gas_charge",
    "aptos_paired_metadata",
    "aptos_primary_store",
    "aptos_rest",
    "aptos_wallet_deltas",
    "check_topic_pattern",
    "normalise_asset",
    "retry_after",
    "solana_wallet_deltas",
    "topic_matches",
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


def solana_wallet_deltas(tx: bytes | str | Mapping[str, Any], wallet: str) -> dict[str, int]:
    """Mint -> signed base-unit change for `wallet` in a Solana getTransaction response (json or jsonParsed).

    SOL (wrapped included) is under NATIVE_TOKEN["solana"], net of the fee the wallet paid (read `meta.fee`);
    rent for token accounts it opens or closes cancels out. The executors' way to read a real fill.
    Raises ValueError on a response that is not a transaction.
    """
    from quantbot.chains.solana.fills import wallet_deltas  # on demand: the order path never loads chains/

    return wallet_deltas(tx, wallet)


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
    """Judges a launched token from the scanner's `TokenCandidate` (the launch and every measured feature).

    A filter that raises counts as a failure and rejects the token. A feature that is None could not be
    measured (`candidate.why_missing(name)` says why): decide explicitly whether that passes.
    """

    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        raise NotImplementedError

    def verdict(self, passed: bool, reason: str = "", value: object = "") -> FilterVerdict:
        """`value` is what was measured (any value; kept as its string form)."""
        return FilterVerdict(filter=self.id, passed=passed, reason=reason, value="" if value is None else str(value))


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

    def sent(self, order: ApprovedOrder) -> str | None:
        """The last transaction this executor recorded as sent for `order` (its own log; no network), or None.

        The router asks after an `execute` that raised or timed out, and writes it into the order's journal row,
        so that settling the order later does not depend on this executor's local log surviving."""
        return None

    async def balances(self, tokens: Collection[str] = ()) -> Mapping[str, int] | None:
        """The operator's balances at the venue: token -> base units, native under NATIVE_TOKEN[chain].

        `tokens` are the tokens the portfolio holds on this executor's chain. An executor that cannot list every
        holding (Aptos reads one store per asset) must read at least these: the portfolio takes a held token left
        out of the answer as sold or moved outside quantbot (0). None when this executor cannot tell (the portfolio
        then asks the next one for that chain).
        """
        return None


# --- Aptos executors: the chain access they share with the watcher (chains/ loaded on demand) -----

_T = TypeVar("_T")


class AptosNodes(Protocol):
    """A pool of Aptos fullnodes (REST /v1) with timeouts, backoff, 429/Retry-After and failover."""

    @property
    def node(self) -> str:
        """The base URL currently in use."""
        ...

    @property
    def ledger_timestamp_us(self) -> int:
        """The chain's time (µs) as the last answering node reported it in its headers; 0 before any answer."""
        ...

    async def call(self, op: str, fn: Callable[[RestClient], Awaitable[_T]]) -> _T:
        """Run `fn` with an aptos-sdk RestClient; retryable failures are retried on the next node.

        API errors that are answers (400, 404, 410) raise `aptos_sdk.async_client.ApiError` at once; when no
        node answered, another Exception names the operation and the last error. `fn` may run more than once.
        """
        ...

    async def close(self) -> None: ...


def aptos_rest(
    *,
    nodes: Sequence[str],
    clock: Clock,
    timeout: float,
    attempts: int,
    retry_base: float,
    retry_cap: float,
    api_key: str | None = None,
) -> AptosNodes:
    """The project's Aptos REST pool (quantbot.chains.aptos.client.AptosRest) for a plugin's own node list."""
    from quantbot.chains.aptos.client import AptosRest  # on demand: the order path never loads chains/
    from quantbot.retry import Backoff

    rest = AptosRest(
        nodes=nodes,
        clock=clock,
        timeout=timeout,
        attempts=attempts,
        backoff=Backoff(base=retry_base, cap=retry_cap),
        api_key=api_key,
    )
    return _AptosPool(rest)


class _AptosPool:
    def __init__(self, rest: Any) -> None:
        self._rest = rest

    @property
    def node(self) -> str:
        return str(self._rest.node)

    @property
    def ledger_timestamp_us(self) -> int:
        return int(self._rest.head.timestamp_us)

    async def call(self, op: str, fn: Callable[[RestClient], Awaitable[_T]]) -> _T:
        result: _T = await self._rest.call(op, fn)
        return result

    async def close(self) -> None:
        await self._rest.close()


def aptos_wallet_deltas(tx: Mapping[str, Any], wallet: str) -> dict[str, int]:
    """Asset -> signed base-unit change for `wallet` in an Aptos REST transaction (committed or simulated).

    Netted as the AptosParser nets a swap: APT under NATIVE_TOKEN["aptos"] (coin and 0xa FA together), other
    coins by coin type, fungible assets by metadata address; gas is not included (`aptos_gas_charge`).
    Raises ValueError on a response that is not a readable user transaction.
    """
    from quantbot.chains.aptos.fills import wallet_deltas  # on demand: the order path never loads chains/

    return wallet_deltas(tx, wallet)


def aptos_gas_charge(tx: Mapping[str, Any]) -> int:
    """Octas an Aptos transaction cost its fee payer: gas_used * gas_unit_price less the storage fee refund its
    FeeStatement reports (negative when the refund was the larger). Raises ValueError when unreadable."""
    from quantbot.chains.aptos.fills import gas_fee

    return gas_fee(tx)


def aptos_primary_store(owner: str, metadata: str) -> str:
    """The address of `owner`'s primary fungible store of the FA `metadata` (where its balance lives)."""
    from quantbot.chains.aptos.addresses import primary_store_address

    return primary_store_address(owner, metadata)


def aptos_paired_metadata(coin_type: str) -> str:
    """The FA metadata address paired with a (migrated) coin type; `0xa` for APT."""
    from quantbot.chains.aptos.addresses import paired_fa_metadata

    return paired_fa_metadata(coin_type)


def aptos_asset_name(value: str) -> str:
    """The name `aptos_wallet_deltas` (and the parser) give an asset: canonical coin type or FA address."""
    from quantbot.chains.aptos.addresses import asset_name

    return asset_name(value)


def normalise_asset(chain: str, asset: str) -> str:
    """The canonical name of an asset on `chain`, the one parsers, prices, positions and approved orders use (Aptos:
    AIP-40 addresses, also inside coin types, `0X` and upper-case hex undone, APT under its coin type). Solana ids
    are case-sensitive base58 and come back as given; so does anything that is not an Aptos asset id."""
    from quantbot.assets import normalise

    return normalise(chain, asset)
