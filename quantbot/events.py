"""Event types and the one topic registry.

Every event is an immutable msgspec Struct with a dotted topic, a monotonic id and a publish
timestamp (both stamped by the bus), and encodes to and from JSON losslessly: that JSON is the
MQTT and record/replay format. Amounts are integers in base units; prices and USD are Decimal.
Later issues add their events here, to `EVENT_TYPES`.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar, Literal, Union

import msgspec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Chain = Literal["solana", "aptos"]
Side = Literal["buy", "sell"]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Base of every event. `id`, `ts` and `origin` are stamped by the bus at publish."""

    TOPIC: ClassVar[str] = ""
    TEXT: ClassVar[tuple[str, ...]] = ()
    """Fields of free text that may quote an exception or a remote reply (and so a URL with an API key in it):
    the bus passes them through the secret redactor when it stamps the event."""

    id: int = 0
    ts: datetime = EPOCH
    origin: str = ""

    @property
    def topic(self) -> str:
        return self.TOPIC


class _ChainEvent(Event, frozen=True, kw_only=True):
    chain: Chain

    @property
    def topic(self) -> str:
        # One string per (topic, chain), reused: the bus routes and counts by topic per event, and a
        # fresh string would be built and hashed each time.
        try:
            return _CHAIN_TOPICS[self.TOPIC][self.chain]
        except KeyError:
            topic = self.TOPIC.replace("{chain}", self.chain)
            _CHAIN_TOPICS.setdefault(self.TOPIC, {})[self.chain] = topic
            return topic


_CHAIN_TOPICS: dict[str, dict[str, str]] = {}


# --- chain ---------------------------------------------------------------------------------------


class Swap(_ChainEvent, frozen=True, kw_only=True):
    """A wallet's net trade in one transaction: what left it and what arrived."""

    TOPIC: ClassVar[str] = "chain.{chain}.swap"

    wallet: str
    mint_in: str
    amount_in: int
    decimals_in: int | None = None
    mint_out: str
    amount_out: int
    decimals_out: int | None = None
    venue: str = "unknown"
    tx: str
    slot: int
    block_time: datetime | None = None
    fee: int = 0


class Transfer(_ChainEvent, frozen=True, kw_only=True):
    """A native or token transfer between two owners."""

    TOPIC: ClassVar[str] = "chain.{chain}.transfer"

    source: str
    destination: str
    mint: str
    amount: int
    decimals: int | None = None
    tx: str
    slot: int
    block_time: datetime | None = None


class PumpTrade(_ChainEvent, frozen=True, kw_only=True):
    """One pump.fun bonding-curve trade (its TradeEvent), straight from the program's logs.

    For SOL-quoted coins `quote_mint` is the native mint and `quote_amount == sol_amount`; for
    USDC-quoted coins (2026+) `sol_amount` is 0 and the amount is in `quote_amount`.
    """

    TOPIC: ClassVar[str] = "chain.{chain}.pump_trade"

    mint: str
    user: str
    is_buy: bool
    sol_amount: int
    token_amount: int
    token_decimals: int = 6
    quote_mint: str
    quote_amount: int
    quote_decimals: int | None = None
    virtual_sol_reserves: int
    virtual_token_reserves: int
    real_sol_reserves: int
    real_token_reserves: int
    virtual_quote_reserves: int | None = None
    real_quote_reserves: int | None = None
    fee: int | None = None
    creator: str | None = None
    creator_fee: int | None = None
    ix_name: str | None = None
    timestamp: datetime
    tx: str
    slot: int
    block_time: datetime | None = None


# --- tokens --------------------------------------------------------------------------------------


class TokenLaunch(_ChainEvent, frozen=True, kw_only=True):
    """A newly created token or pool, from a launchpad or DEX pool initialisation."""

    TOPIC: ClassVar[str] = "token.launch"

    mint: str
    name: str = ""
    symbol: str = ""
    uri: str = ""
    creator: str = ""
    source: str = "unknown"
    pool: str | None = None
    tx: str = ""
    block_time: datetime | None = None
    slot: int | None = None
    bonding_curve: str | None = None
    base_mint: str | None = None
    quote_mint: str | None = None
    base_amount: int | None = None
    """Initial base-side liquidity (base units), when the launch seeds a pool."""
    quote_amount: int | None = None
    token_program: str | None = None
    decimals: int | None = None
    """Decimals of `mint`, when known."""
    base_vault: str | None = None
    """The pool's token account holding `mint` (AMM pool launches), watched to price it from reserves."""
    quote_vault: str | None = None
    """The pool's token account holding `quote_mint`."""

    @property
    def topic(self) -> str:
        return self.TOPIC


class FilterVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """One filter's answer about one token."""

    filter: str
    passed: bool
    reason: str = ""
    value: str = ""
    """What the filter measured (e.g. "0.42" for a top-holder share), empty when nothing was measured."""


class TokenAccepted(Event, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "token.accepted"

    launch: TokenLaunch
    verdicts: tuple[FilterVerdict, ...] = ()
    score: float | None = None
    """The scanner's score in [0, 1] from its configured feature weights (None before the scanner)."""


class TokenRejected(Event, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "token.rejected"

    launch: TokenLaunch
    verdicts: tuple[FilterVerdict, ...] = ()
    score: float | None = None


class TokenRugWarning(_ChainEvent, frozen=True, kw_only=True):
    """A held or watched token shows rug signs (creator dumping, liquidity pulled); exits act on it."""

    TOPIC: ClassVar[str] = "token.rug_warning"

    token: str
    kind: Literal["creator_sell", "liquidity_drop"]
    detail: str = ""
    measured: Decimal | None = None
    """What was measured: the share sold or the liquidity drop, in percent."""

    @property
    def topic(self) -> str:
        return self.TOPIC


class AccountUpdate(_ChainEvent, frozen=True, kw_only=True):
    """A watched account changed (accountSubscribe on Solana): raw data for whoever asked for it."""

    TOPIC: ClassVar[str] = "chain.{chain}.account"

    account: str
    owner: str
    lamports: int
    data: bytes
    slot: int


# --- intelligence --------------------------------------------------------------------------------


class WhaleSignal(_ChainEvent, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "whale.signal"

    kind: Literal["large_buy", "large_sell", "accumulation", "cluster", "dump"]
    wallets: tuple[str, ...]
    token: str
    size: int
    size_usd: Decimal | None = None
    confidence: float
    tx: str = ""
    """The transaction whose trade fired the signal: the same trade fires the same signal (idempotent orders)."""

    @property
    def topic(self) -> str:
        return self.TOPIC


class PriceUpdate(_ChainEvent, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "price.update"

    token: str
    price_native: Decimal
    price_usd: Decimal | None = None
    source: str
    observed_at: datetime

    @property
    def topic(self) -> str:
        return self.TOPIC


# --- orders --------------------------------------------------------------------------------------


class RejectReason(enum.StrEnum):
    """Why an order was refused. One enum, shared by the risk engine and the executors."""

    HALTED = "halted"
    REDUCE_ONLY = "reduce_only"
    MAX_ORDER_USD = "max_order_usd"
    MAX_ORDER_NATIVE = "max_order_native"
    NO_USD_PRICE = "no_usd_price"
    BLOCKED_TOKEN = "blocked_token"  # noqa: S105  (a token mint, not a password)
    NOT_ALLOWED_TOKEN = "not_allowed_token"  # noqa: S105
    DAILY_NOTIONAL = "daily_notional"
    MAX_OPEN_POSITIONS = "max_open_positions"
    MAX_EXPOSURE = "max_exposure"
    RATE_LIMIT = "rate_limit"
    COOLDOWN = "cooldown"
    DUPLICATE_INTENT = "duplicate_intent"
    NO_EXECUTOR = "no_executor"
    PAPER_MODE = "paper_mode"
    NO_PRICE = "no_price"
    EXECUTOR_ERROR = "executor_error"
    NOT_SENT = "not_sent"
    MIN_LIQUIDITY = "min_liquidity"
    PRICE_IMPACT = "price_impact"
    SLIPPAGE = "slippage"
    RECENT_DUPLICATE = "recent_duplicate"
    """Same strategy, token and side within risk.duplicate_window_s (distinct from the idempotency key)."""
    MAX_EXPOSURE_PCT = "max_exposure_pct"
    DRAWDOWN = "drawdown"
    STOP_LOSS_GUARD = "stop_loss_guard"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    INSUFFICIENT_POSITION = "insufficient_position"
    """A sell of more than the position holds less what sells approved and not yet settled are selling."""
    INVALID_INTENT = "invalid_intent"
    """A figure of the intent cannot be right (a negative amount or USD value, a price that is not positive)."""
    SIZING = "sizing"
    """A sizing hint could not be turned into an amount (no equity known, no edge, no leader amount)."""
    RISK_ERROR = "risk_error"
    """The risk engine could not decide (a store error, say): refused, nothing sent; the next trigger may retry."""


class OrderIntent(_ChainEvent, frozen=True, kw_only=True):
    """What a strategy wants. Only the risk engine turns it into an order."""

    TOPIC: ClassVar[str] = "order.intent"

    intent_id: str
    strategy: str
    side: Side
    token: str
    amount: int
    """Base units of what is spent: native (lamports, octas) for a buy, the token for a sell."""
    notional_usd: Decimal | None = None
    price_native: Decimal | None = None
    """Reference price: native base units per token base unit (what the strategy saw)."""
    reduce_only: bool = False
    reason: str = ""
    pool_liquidity_native: int | None = None
    """Native base units on the native side of the pool the order trades against, when known."""
    pool_reserve_token: int | None = None
    """Token base units on the token side of that pool, when known (sell-side impact estimate)."""
    price_impact_bps: int | None = None
    """The strategy's own impact estimate (e.g. from a quote); the engine also estimates from reserves."""
    max_slippage_bps: int | None = None
    """Slippage the strategy accepts; refused above risk.max_slippage_bps."""
    sizing: Literal["fixed", "equity_pct", "kelly", "copy"] | None = None
    """A sizing hint instead of an amount: the risk engine sizes the buy (a buy of amount 0 without a hint
    is sized by the strategy's [sizing] rule)."""
    leader: str | None = None
    """The wallet whose trade this follows: its large sell or dump exits the position."""
    leader_amount: int | None = None
    """Native base units the leader spent (copy sizing)."""
    equity_pct: Decimal | None = None
    """For `equity_pct` sizing: this share of equity (percent) instead of the [sizing] rule's."""

    @property
    def topic(self) -> str:
        return self.TOPIC


class OrderApproved(Event, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "order.approved"

    order_id: str
    intent: OrderIntent


class OrderRejected(Event, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "order.rejected"
    TEXT: ClassVar[tuple[str, ...]] = ("detail",)

    intent: OrderIntent
    reason: RejectReason
    detail: str = ""


class OrderSubmitted(Event, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "order.submitted"

    order_id: str
    executor: str
    tx: str


class OrderFilled(Event, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "order.filled"

    order_id: str
    executor: str
    tx: str
    amount_in: int
    amount_out: int
    fee: int = 0
    price_native: Decimal | None = None


class OrderFailed(Event, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "order.failed"
    TEXT: ClassVar[tuple[str, ...]] = ("detail",)

    order_id: str
    executor: str
    reason: str
    detail: str = ""


class OrderExpired(Event, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "order.expired"

    order_id: str
    executor: str
    tx: str = ""


class PositionUpdate(_ChainEvent, frozen=True, kw_only=True):
    TOPIC: ClassVar[str] = "position.update"

    token: str
    quantity: int
    avg_cost_native: Decimal
    """Native base units paid per token base unit bought (units received for nothing left out): the entry price."""
    realised_pnl_native: Decimal = Decimal(0)
    mark_native: Decimal | None = None
    """The last `price.update` price (native base units per token base unit), if any."""
    unrealised_pnl_native: Decimal | None = None
    realised_pnl_usd: Decimal | None = None
    unrealised_pnl_usd: Decimal | None = None
    """USD figures only where a fresh USD price for the chain's native coin is known."""

    @property
    def topic(self) -> str:
        return self.TOPIC


class TradingStateChanged(Event, frozen=True, kw_only=True):
    """The trading state moved (kill switch, circuit breaker); it is persisted before this is published."""

    TOPIC: ClassVar[str] = "risk.state"

    state: Literal["active", "reduce_only", "halted"]
    reason: str
    source: str = ""


class EquityUpdate(_ChainEvent, frozen=True, kw_only=True):
    """One chain's equity (native balance + positions at their marks), published on portfolio intervals."""

    TOPIC: ClassVar[str] = "portfolio.equity"

    equity_native: int
    day_start_native: int
    unrealised_pnl_native: int
    realised_pnl_native: int
    equity_usd: Decimal | None = None

    @property
    def topic(self) -> str:
        return self.TOPIC


class PositionCorrected(_ChainEvent, frozen=True, kw_only=True):
    """A position disagreed with the balance read from the chain and was set to the chain's figure."""

    TOPIC: ClassVar[str] = "position.corrected"

    token: str
    recorded: int
    on_chain: int
    reason: str

    @property
    def topic(self) -> str:
        return self.TOPIC


# --- system --------------------------------------------------------------------------------------


class PluginDisabled(Event, frozen=True, kw_only=True):
    """A plugin failed too often in a row and is switched off until restart."""

    TOPIC: ClassVar[str] = "plugin.disabled"
    TEXT: ClassVar[tuple[str, ...]] = ("last_error",)

    group: str
    plugin: str
    failures: int
    last_error: str


class Tick(Event, frozen=True, kw_only=True):
    """The daemon's heartbeat, every `daemon.tick_interval` seconds of its clock (time-driven rules)."""

    TOPIC: ClassVar[str] = "clock.tick"

    seq: int


class ConfigReloaded(Event, frozen=True, kw_only=True):
    """SIGHUP (or a reload command) applied a new config."""

    TOPIC: ClassVar[str] = "config.reloaded"

    applied: tuple[str, ...]
    restart_required: tuple[str, ...] = ()


class WatcherLag(Event, frozen=True, kw_only=True):
    """A component's reported `lag_s` went over its `[http] max_lag_s` bound (or, `recovered`, back under)."""

    TOPIC: ClassVar[str] = "watcher.lag"

    component: str
    lag_s: float | None
    """None when the component has no data yet (lag unknown)."""
    bound_s: float
    recovered: bool = False


class ChainDay(msgspec.Struct, frozen=True, kw_only=True):
    """One chain's figures in a daily report; PnL and equity in native base units."""

    chain: Chain
    realised_pnl_native: int
    """Realised that day."""
    unrealised_pnl_native: int
    """Open positions at their marks when the report was made."""
    equity_native: int | None
    """Native balance plus positions at their marks when the report was made; None if no balance is known."""
    trades: int
    rejections: int


class DailyReport(Event, frozen=True, kw_only=True):
    """The summary of one UTC day, per chain (the `daily_report` job)."""

    TOPIC: ClassVar[str] = "report.daily"

    day: str
    """The UTC day reported, YYYY-MM-DD."""
    chains: tuple[ChainDay, ...]


EVENT_TYPES: tuple[type[Event], ...] = (
    Swap,
    Transfer,
    TokenLaunch,
    TokenAccepted,
    TokenRejected,
    TokenRugWarning,
    AccountUpdate,
    WhaleSignal,
    PriceUpdate,
    OrderIntent,
    OrderApproved,
    OrderRejected,
    OrderSubmitted,
    OrderFilled,
    OrderFailed,
    OrderExpired,
    PositionUpdate,
    PluginDisabled,
    Tick,
    ConfigReloaded,
    TradingStateChanged,
    EquityUpdate,
    PositionCorrected,
    PumpTrade,
    WatcherLag,
    DailyReport,
)

TOPICS: dict[str, type[Event]] = {cls.TOPIC: cls for cls in EVENT_TYPES}
"""Every topic (with `{chain}` standing for the chain segment) and the event type it carries."""

AnyEvent = Union[EVENT_TYPES]  # type: ignore[valid-type]  # noqa: UP007  (built from the registry)

_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(AnyEvent)


def encode(event: Event) -> bytes:
    """Event -> JSON bytes (tagged with its type name)."""
    return _encoder.encode(event)


def decode(data: bytes | str) -> Event:
    """JSON bytes -> the event they encode. Raises msgspec.DecodeError on bad input."""
    return _decoder.decode(data)
