"""TOML -> typed, frozen config, with errors that name the file, the key and the fix.

Layers, later wins: each `-c` path (a file, or a directory whose `*.toml` merge in name order),
then environment overrides `QUANTBOT__SECTION__KEY=value` (value read as TOML, else as a string).
Tables merge key by key; arrays (including `[[filters]]`) are replaced whole.
Secrets are `{ env = "NAME" }`, `{ file = "PATH" }` or `{ credential = "NAME" }`, never inline;
signing keys accept only `file` (mode 0600 or stricter) and `credential`.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
import sys
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from quantbot.secrets import Redactor, Secret, SigningKey, url_secrets

EX_CONFIG = 78
ENV_PREFIX = "QUANTBOT__"
PLUGIN_SECTIONS = ("filters", "strategies", "executors", "notifiers")
PLUGIN_RESERVED = ("use", "id", "enabled")

KeyPath = tuple[str | int, ...]


class ConfigError(Exception):
    """A user's config mistake: one line per problem, each naming file, key, expectation, value."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Range:
    """Bounds for a Decimal field (msgspec.Meta bounds only apply to int and float)."""

    gt: Decimal | None = None
    ge: Decimal | None = None


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveDecimal = Annotated[Decimal, Range(gt=Decimal(0))]


class DaemonConfig(_Section, frozen=True, kw_only=True):
    data_dir: str = "./data"
    shutdown_timeout: Positive = 10.0
    tick_interval: Positive = 1.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"


class BusConfig(_Section, frozen=True, kw_only=True):
    queue_size: PositiveInt = 1024
    handler_timeout: Positive = 5.0
    max_consecutive_failures: PositiveInt = 5


class RiskConfig(_Section, frozen=True, kw_only=True):
    max_order_usd: PositiveDecimal = Decimal(50)
    max_order_sol: PositiveDecimal = Decimal("0.5")
    max_order_apt: PositiveDecimal = Decimal(5)
    daily_notional_usd: PositiveDecimal = Decimal(500)
    max_open_positions: PositiveInt = 5
    max_exposure_sol: PositiveDecimal = Decimal(1)
    max_exposure_apt: PositiveDecimal = Decimal(10)
    max_orders_per_minute: PositiveInt = 10
    token_cooldown_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    allow_tokens: tuple[str, ...] = ()
    block_tokens: tuple[str, ...] = ()
    max_exposure_pct: NonNegativeDecimal = Decimal(25)
    min_pool_liquidity_sol: NonNegativeDecimal = Decimal(20)
    min_pool_liquidity_apt: NonNegativeDecimal = Decimal(200)
    max_price_impact_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 300
    max_slippage_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 500
    duplicate_window_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    max_daily_drawdown_pct: NonNegativeDecimal = Decimal(10)
    drawdown_action: Literal["reduce_only", "halted"] = "halted"
    stop_loss_guard_count: Annotated[int, msgspec.Meta(ge=0)] = 3
    stop_loss_guard_window_s: Positive = 3600.0
    stop_loss_guard_pause_s: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    fee_reserve_sol: NonNegativeDecimal = Decimal("0.001")
    rent_reserve_sol: NonNegativeDecimal = Decimal("0.00203928")
    fee_reserve_apt: NonNegativeDecimal = Decimal("0.01")
    rent_reserve_apt: NonNegativeDecimal = Decimal(0)


NonNegativeDecimal = Annotated[Decimal, Range(ge=Decimal(0))]


class ExitRule(_Section, frozen=True, kw_only=True):
    """One strategy's own price and time exit rules; a key left out keeps the global [exits] value."""

    take_profit_pct: NonNegativeDecimal | None = None
    stop_loss_pct: NonNegativeDecimal | None = None
    trailing_stop_pct: NonNegativeDecimal | None = None
    max_hold_s: Annotated[float, msgspec.Meta(ge=0)] | None = None


class ExitsConfig(_Section, frozen=True, kw_only=True):
    """Exit rules for every position; 0 turns a rule off."""

    take_profit_pct: NonNegativeDecimal = Decimal(100)
    stop_loss_pct: NonNegativeDecimal = Decimal(30)
    trailing_stop_pct: NonNegativeDecimal = Decimal(0)
    max_hold_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    follow_leader: bool = True
    rug_warning: bool = True
    strategies: dict[str, ExitRule] = {}
    """Strategy id -> its own rules, for the positions that strategy opened ([exits.strategies.<id>])."""


class RetentionConfig(_Section, frozen=True, kw_only=True):
    """Hours each table keeps its rows (0 = forever). Orders, fills and round trips are kept forever."""

    signals_h: NonNegativeFloat = 24.0
    token_verdicts_h: NonNegativeFloat = 168.0
    wallet_profiles_h: NonNegativeFloat = 0.0
    equity_interval_h: NonNegativeFloat = 720.0
    equity_daily_h: NonNegativeFloat = 0.0
    wallet_trades_h: NonNegativeFloat = 720.0
    """Tracked wallets' swaps (trader analytics, `quantbot leaderboard`/`candles`)."""


NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


class StoreConfig(_Section, frozen=True, kw_only=True):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: str = "quantbot.db"
    postgres_dsn: str = "postgresql://quantbot@127.0.0.1:5432/quantbot"
    postgres_password: Secret | None = None
    flush_interval_s: Positive = 2.0
    lease_check_s: Positive = 10.0
    """Seconds between checks that the trading lease is still ours (quantbot/lease.py)."""
    retention: RetentionConfig = RetentionConfig()


class OrdersConfig(_Section, frozen=True, kw_only=True):
    solana: tuple[str, ...] = ("paper",)
    aptos: tuple[str, ...] = ("paper",)
    execute_timeout: Positive = 120.0


class SizingRule(_Section, frozen=True, kw_only=True):
    """How buys given a sizing hint are sized; `method` is used when the intent names none."""

    method: Literal["fixed", "equity_pct", "kelly", "copy"] = "fixed"
    fixed_sol: PositiveDecimal = Decimal("0.05")
    fixed_apt: PositiveDecimal = Decimal("0.5")
    equity_pct: Annotated[Decimal, Range(gt=Decimal(0))] = Decimal(2)
    kelly_fraction: Annotated[Decimal, Range(gt=Decimal(0))] = Decimal("0.5")
    kelly_cap_pct: Annotated[Decimal, Range(gt=Decimal(0))] = Decimal(5)
    kelly_min_trades: PositiveInt = 20
    kelly_win_rate: Annotated[Decimal, Range(ge=Decimal(0))] = Decimal("0.4")
    kelly_payoff: Annotated[Decimal, Range(gt=Decimal(0))] = Decimal("1.5")
    copy_pct: Annotated[Decimal, Range(gt=Decimal(0))] = Decimal(10)


class SizingConfig(SizingRule, frozen=True, kw_only=True):
    """The global rule, and per-strategy rules that replace it for one strategy id."""

    strategies: dict[str, SizingRule] = {}


class PortfolioConfig(_Section, frozen=True, kw_only=True):
    equity_interval_s: Positive = 60.0
    """Seconds between equity rows (and `portfolio.equity` events)."""
    balance_interval_s: Positive = 300.0
    """Seconds between reads of the real balances through the executors."""


class WalletConfig(_Section, frozen=True, kw_only=True):
    solana_keypair: SigningKey | None = None
    aptos_private_key: SigningKey | None = None


class SolanaEndpointConfig(_Section, frozen=True, kw_only=True):
    """One Solana RPC provider: its HTTP JSON-RPC URL and (optionally) its WebSocket pubsub URL."""

    http: str
    ws: str = ""
    timeout: Positive = 10.0
    """Seconds one request (or one WebSocket subscribe) may take before failing over."""
    rps: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    """Requests per second sent to this provider; 0 = no limit."""


SolanaAddress = Annotated[str, msgspec.Meta(pattern=r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")]


class SolanaWalletConfig(_Section, frozen=True, kw_only=True):
    """A watched wallet: its address and an optional label for logs and events."""

    address: SolanaAddress
    label: str = ""


SolanaLaunchProgram = Literal["pumpfun", "pumpswap", "raydium_v4", "raydium_cpmm"]


class SolanaConfig(_Section, frozen=True, kw_only=True):
    """The Solana side: endpoints (tried in order, with failover) and the commitment read at."""

    enabled: bool = False
    endpoints: tuple[SolanaEndpointConfig, ...] = ()
    commitment: Literal["confirmed", "finalized"] = "confirmed"
    """Not "processed": getTransaction and getSignaturesForAddress refuse it, so no wallet could be read."""
    wallets: tuple[SolanaWalletConfig, ...] = ()
    launch_programs: tuple[SolanaLaunchProgram, ...] = ("pumpfun", "pumpswap", "raydium_v4", "raydium_cpmm")
    backfill_page_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    backfill_max_pages: PositiveInt = 10
    """Per address and backfill: older history beyond this many pages is skipped (and logged)."""
    dedup_window: PositiveInt = 20000
    """How many recent signatures are remembered to drop duplicates (notification + backfill)."""
    reconnect_max_s: Positive = 30.0
    fetch_concurrency: PositiveInt = 4
    """getTransaction calls in flight at once for watched-wallet activity."""


class AptosConfig(_Section, frozen=True, kw_only=True):
    """The Aptos side: fullnode REST base URLs ending in /v1 (tried in order, with failover)."""

    enabled: bool = False
    nodes: tuple[str, ...] = ()
    source: Literal["ledger", "accounts"] = "ledger"
    wallets: tuple[Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{1,64}$")], ...] = ()
    poll_interval: Positive = 1.0
    page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 100
    request_timeout: Positive = 10.0
    attempts: PositiveInt = 4
    retry_base: Positive = 0.5
    retry_cap: Positive = 30.0
    start_version: Annotated[int, msgspec.Meta(ge=0)] | None = None
    api_key: Secret | None = None


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
SCHEDULE_PATTERN = r"^(off|\d+(\.\d+)?\s*(s|m|h|d)|[0-9*/,A-Za-z-]+( [0-9*/,A-Za-z-]+){4})$"
"""An interval (`30s`, `15m`, `6h`, `1d`), a 5-field cron line in UTC (`0 3 * * *`) or `off`."""
Schedule = Annotated[str, msgspec.Meta(pattern=SCHEDULE_PATTERN)]


class HttpConfig(_Section, frozen=True, kw_only=True):
    """The operations endpoint: health, readiness, Prometheus metrics, status and control."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 8787
    control_token: Secret | None = None
    """Bearer token for POST /control/*; without one the control endpoints are off."""
    max_lag_s: dict[str, Positive] = {}
    """Readiness bound on a component's reported `lag_s`, by component name; `*` for every other."""


class JobsConfig(_Section, frozen=True, kw_only=True):
    """Scheduled jobs: store backup and retention, equity snapshots, component hooks."""

    enabled: bool = True
    schedules: dict[str, Schedule] = {}
    """Job name -> schedule; overrides the built-in defaults (see config/quantbot.toml)."""
    backup_dir: str = "backups"
    backup_keep: PositiveInt = 7
    record_retention_days: dict[str, Positive] = {}
    """Record kind (rows of the generic records table, e.g. scanner.creator) -> days kept; tables: [store.retention]."""


class PriceSourceConfig(_Section, frozen=True, kw_only=True):
    """One HTTP price source: `kind` picks the wire format, `base_url` where to send it."""

    kind: Literal["jupiter", "dexscreener", "coingecko"]
    base_url: str = ""
    """Default per kind: https://api.jup.ag, https://api.dexscreener.com, https://api.coingecko.com/api/v3."""
    api_key: Secret | None = None
    poll_interval_s: Positive = 30.0
    timeout_s: Positive = 10.0
    attempts: PositiveInt = 3


class PricesConfig(_Section, frozen=True, kw_only=True):
    """The PriceBook: prices from observed swaps, pump.fun curves, pool vaults and optional HTTP sources."""

    max_age_s: Positive = 120.0
    vwap_window_s: Positive = 60.0
    max_deviation_pct: PositiveDecimal = Decimal(20)
    publish_min_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    publish_min_change_pct: NonNegativeDecimal = Decimal("0.5")
    min_trade_native: Annotated[int, msgspec.Meta(ge=0)] = 10_000_000
    sources: tuple[PriceSourceConfig, ...] = ()
    pool_memory: PositiveInt = 10_000


class WhaleWallet(_Section, frozen=True, kw_only=True):
    """One watched wallet."""

    chain: Literal["solana", "aptos"]
    address: str
    label: str = ""


class WhalesConfig(_Section, frozen=True, kw_only=True):
    """The WhaleTracker: who counts as a whale and when a signal fires."""

    wallets: tuple[WhaleWallet, ...] = ()
    discover: bool = False
    discover_usd: PositiveDecimal = Decimal(5000)
    discover_sol: PositiveDecimal = Decimal(25)
    discover_apt: PositiveDecimal = Decimal(500)
    max_auto_wallets: PositiveInt = 100_000
    large_usd: PositiveDecimal = Decimal(10000)
    large_sol: PositiveDecimal = Decimal(50)
    large_apt: PositiveDecimal = Decimal(1000)
    accumulation_buys: Annotated[int, msgspec.Meta(ge=2)] = 3
    accumulation_window_s: Positive = 3600.0
    cluster_whales: Annotated[int, msgspec.Meta(ge=2)] = 3
    cluster_window_s: Positive = 900.0
    dump_pct: PositiveDecimal = Decimal(50)
    max_signal_age_s: Positive = 300.0
    max_tokens_per_wallet: PositiveInt = 64
    flush_interval_s: Positive = 5.0
    flush_batch: PositiveInt = 100


class MqttTopic(_Section, frozen=True, kw_only=True):
    """One mirrored bus topic pattern and how it is published: MQTT QoS and the retain flag."""

    topic: str
    qos: Annotated[int, msgspec.Meta(ge=0, le=2)] = 0
    retain: bool = False

    def __post_init__(self) -> None:
        parts = self.topic.split(".")
        if not self.topic or any(not p for p in parts) or "#" in parts[:-1]:
            raise ValueError(f"mqtt.mirror topic {self.topic!r} is not a topic pattern (e.g. order.# or chain.*.swap)")


MQTT_MIRROR_DEFAULT = (
    MqttTopic(topic="order.#", qos=1),
    MqttTopic(topic="position.update", qos=1),
    MqttTopic(topic="token.accepted"),
    MqttTopic(topic="whale.signal"),
    MqttTopic(topic="token.rug_warning", qos=1),
    MqttTopic(topic="plugin.disabled", qos=1),
    MqttTopic(topic="config.reloaded", qos=1),
)


class MqttConfig(_Section, frozen=True, kw_only=True):
    """The MQTT broker connection (bridge and cluster transport) and what the bridge mirrors."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 1883
    username: str = ""
    password: Secret | None = None
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False
    client_id: str = ""
    keepalive: Annotated[int, msgspec.Meta(ge=5, le=65535)] = 60
    timeout: Positive = 10.0
    reconnect_max_s: Positive = 30.0
    topic_prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "quantbot"
    mirror: tuple[MqttTopic, ...] = MQTT_MIRROR_DEFAULT
    buffer_size: PositiveInt = 1000
    commands: bool = False

    @property
    def authenticated(self) -> bool:
        """A password login or a TLS client certificate: the only sessions commands are taken over."""
        return bool(self.username and self.password) or bool(self.tls and self.cert_file and self.key_file)

    def __post_init__(self) -> None:
        if self.password is not None and not self.username:
            raise ValueError("mqtt.password is set but mqtt.username is empty; set both")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("mqtt.cert_file and mqtt.key_file go together (a TLS client certificate and its key)")
        if (self.ca_file or self.cert_file or self.tls_insecure) and not self.tls:
            raise ValueError("mqtt TLS options are set but mqtt.tls = false; set tls = true")
        if self.commands and not self.authenticated:
            raise ValueError(
                "mqtt.commands = true needs an authenticated broker session: set mqtt.username and "
                "mqtt.password (or tls = true with cert_file/key_file), and restrict cmd topics in the broker ACL"
            )


class ClusterConfig(_Section, frozen=True, kw_only=True):
    """Multi-host split over the MQTT broker: "all" runs everything here (no broker needed)."""

    role: Literal["all", "watchers", "trading"] = "all"
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "quantbot"
    exports: tuple[str, ...] | None = None
    imports: tuple[str, ...] | None = None
    dedup_window: PositiveInt = 65536


class RecordConfig(_Section, frozen=True, kw_only=True):
    """`run` records the chain-level events (and raw transactions) to `path` when it is set."""

    path: str = ""
    """Recording file (gzip JSON lines, appended); empty: no recording. `quantbot record -o FILE` sets it."""
    flush_interval_s: Positive = 5.0
    max_buffer_lines: PositiveInt = 10_000
    raw: bool = True
    """Also keep the raw transactions / logs the watchers parsed."""


class PluginSpec(_Section, frozen=True, kw_only=True):
    """One `[[filters]]` (etc.) table: the entry-point name, an instance id, and its parameters."""

    use: str
    id: str = ""
    enabled: bool = True
    params: dict[str, Any] = {}

    @property
    def key(self) -> str:
        return self.id or self.use


class ScannerWeights(_Section, frozen=True, kw_only=True):
    """Weight of each feature's sub-score (each in [0, 1]) in the scanner's score; 0 leaves it out."""

    liquidity: NonNegativeFloat = 1.0
    momentum: NonNegativeFloat = 1.0
    holders: NonNegativeFloat = 1.0
    lp_burned: NonNegativeFloat = 0.5
    immutable: NonNegativeFloat = 0.5
    renounced: NonNegativeFloat = 0.5
    creator_fresh: NonNegativeFloat = 0.5


class ScannerConfig(_Section, frozen=True, kw_only=True):
    """MemeScanner: launch -> enrichment -> [[filters]] -> token.accepted / token.rejected."""

    enabled: bool = True
    lookup_timeout_s: Positive = 5.0
    static_cache_ttl_s: NonNegativeFloat = 300.0
    state_cache_ttl_s: NonNegativeFloat = 2.0
    momentum_window_s: NonNegativeFloat = 0.0
    evaluate_all: bool = True
    filter_timeout_s: Positive = 5.0
    min_score: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    max_pending: PositiveInt = 64
    dedup_window: PositiveInt = 10_000
    creator_history_keep: PositiveInt = 50
    liquidity_target_sol: Positive = 10.0
    momentum_target_buyers: PositiveInt = 20
    weights: ScannerWeights = ScannerWeights()
    pumpportal_url: str = ""
    pumpportal_reconnect_max_s: Positive = 30.0
    rug_creator_sell_pct: Annotated[float, msgspec.Meta(gt=0, le=100)] = 50.0
    rug_liquidity_drop_pct: Annotated[float, msgspec.Meta(gt=0, le=100)] = 50.0
    rug_window_s: Positive = 300.0
    allow_no_filters: bool = False
    """Run the scanner without any enabled [[filters]]: every launch is accepted (refused unless set)."""


class AnalyticsConfig(_Section, frozen=True, kw_only=True):
    """Trader analytics over tracked wallets' stored swaps (`quantbot leaderboard`)."""

    leaderboard_metric: Literal[
        "total_return",
        "total_return_usd",
        "pct_return",
        "win_rate",
        "sharpe",
        "volatility",
        "max_drawdown",
        "trade_count",
        "avg_trade_size",
        "round_trips",
    ] = "total_return"
    leaderboard_limit: Annotated[int, msgspec.Meta(ge=1)] = 20


class Config(_Section, frozen=True, kw_only=True):
    mode: Literal["paper", "live"] = "paper"
    instance: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "quantbot"
    daemon: DaemonConfig = DaemonConfig()
    bus: BusConfig = BusConfig()
    risk: RiskConfig = RiskConfig()
    orders: OrdersConfig = OrdersConfig()
    exits: ExitsConfig = ExitsConfig()
    store: StoreConfig = StoreConfig()
    wallet: WalletConfig = WalletConfig()
    solana: SolanaConfig = SolanaConfig()
    aptos: AptosConfig = AptosConfig()
    http: HttpConfig = HttpConfig()
    jobs: JobsConfig = JobsConfig()
    filters: tuple[PluginSpec, ...] = ()
    strategies: tuple[PluginSpec, ...] = ()
    executors: tuple[PluginSpec, ...] = ()
    notifiers: tuple[PluginSpec, ...] = ()
    prices: PricesConfig = PricesConfig()
    whales: WhalesConfig = WhalesConfig()
    sizing: SizingConfig = SizingConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    mqtt: MqttConfig = MqttConfig()
    cluster: ClusterConfig = ClusterConfig()
    scanner: ScannerConfig = ScannerConfig()
    record: RecordConfig = RecordConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()


class PluginSchemas(typing.Protocol):
    """What the config needs from the plugin catalog: names and parameter schemas."""

    def names(self, section: str) -> list[str]: ...

    def config_type(self, section: str, name: str) -> type[msgspec.Struct]:
        """The plugin's `Config` struct; raises ConfigError if it cannot be loaded."""
        ...


@dataclass(frozen=True)
class LoadedConfig:
    """The typed config, each plugin instance's typed parameters, and the secret values."""

    config: Config
    sources: tuple[str, ...]
    plugin_params: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    """(section, instance id) -> the plugin's validated Config struct."""
    secrets: tuple[str, ...] = ()


# --- reading and merging -----------------------------------------------------------------------


def config_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Expand `-c` arguments: files as given, directories to their `*.toml` in name order."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(p.glob("*.toml"))
            if not found:
                raise ConfigError([f"{p}: directory holds no *.toml files"])
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError([f"{p}: no such file or directory (give -c FILE or -c DIR)"])
    return files


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None


class _Layers:
    """The merged tree and, for every key path, the layer that last set it."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.origin: dict[KeyPath, str] = {}

    def merge(self, data: Mapping[str, Any], source: str) -> None:
        self._merge(self.tree, data, (), source)

    def _merge(self, into: dict[str, Any], data: Mapping[str, Any], path: KeyPath, source: str) -> None:
        for key, value in data.items():
            here = (*path, key)
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                self._merge(into[key], value, here, source)
            else:
                into[key] = value
                self._mark(here, value, source)
        self.origin.setdefault(path, source)

    def _mark(self, path: KeyPath, value: Any, source: str) -> None:
        self.origin[path] = source
        if isinstance(value, dict):
            for k, v in value.items():
                self._mark((*path, k), v, source)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._mark((*path, i), v, source)

    def source_of(self, path: KeyPath) -> str:
        for n in range(len(path), -1, -1):
            if path[:n] in self.origin:
                return self.origin[path[:n]]
        return "<defaults>"

    def apply_env(self, environ: Mapping[str, str]) -> list[str]:
        problems = []
        for name in sorted(environ):
            if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
                continue
            parts: list[str | int] = [int(p) if p.isdigit() else p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
            source = f"environment {name}"
            problem = self._set(parts, _parse_env_value(environ[name]), source)
            if problem:
                problems.append(f"{source}: {problem}")
        return problems

    def _set(self, parts: list[str | int], value: Any, source: str) -> str | None:
        node: Any = self.tree
        for i, part in enumerate(parts):
            here = tuple(parts[: i + 1])
            last = i == len(parts) - 1
            if isinstance(node, list) and isinstance(part, int):
                if part >= len(node):
                    return (
                        f"cannot set {_fmt_path(tuple(parts))}: {_fmt_path(here[:-1])} has {len(node)} element(s); "
                        "overrides can change elements, not add them"
                    )
                if last:
                    node[part] = value
                else:
                    node = node[part]
            elif isinstance(node, dict) and isinstance(part, str):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if isinstance(parts[i + 1], int) else {})
            else:
                return f"cannot set {_fmt_path(tuple(parts))}: {_fmt_path(here[:-1])} is not a table or array"
        self._mark(tuple(parts), value, source)
        return None


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _fmt_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _fmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


# --- validation --------------------------------------------------------------------------------


class _Validator:
    """Walks a plain TOML tree against a Struct type, collecting user-facing problems.

    Returns the tree normalised for msgspec.convert (Decimals parsed, secrets resolved).
    """

    def __init__(self, layers: _Layers, environ: Mapping[str, str]) -> None:
        self.layers = layers
        self.environ = environ
        self.problems: list[str] = []
        self.secrets: list[str] = []

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(f"{self.layers.source_of(path)}: {_fmt_path(path)}: {message}")

    def expected(self, path: KeyPath, what: str, got: Any) -> None:
        self.problem(path, f"expected {what}, got {_fmt_value(got)}")

    def check(self, value: Any, tp: Any, path: KeyPath) -> Any:
        meta: list[Any] = []
        while typing.get_origin(tp) is Annotated:
            meta.extend(tp.__metadata__)
            tp = tp.__origin__
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(options) == 1:
                return self.check(value, options[0], path)
            raise TypeError(f"config unions other than Optional are not supported: {tp}")
        if tp is Any:
            return value
        if isinstance(tp, type) and issubclass(tp, Secret):
            return self._secret(value, tp, path)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            return self.struct(value, tp, path)
        if origin is Literal:
            allowed = typing.get_args(tp)
            if value not in allowed or isinstance(value, bool):
                hint = _did_you_mean(value, [str(a) for a in allowed])
                self.expected(path, "one of " + ", ".join(_fmt_value(a) for a in allowed) + hint, value)
            return value
        if origin in (tuple, list):
            args = typing.get_args(tp)
            if not isinstance(value, list):
                self.expected(path, "an array", value)
                return value
            return [self.check(v, args[0], (*path, i)) for i, v in enumerate(value)]
        if origin is dict:
            if not isinstance(value, dict):
                self.expected(path, "a table", value)
                return value
            vt = typing.get_args(tp)[1]
            return {k: self.check(v, vt, (*path, k)) for k, v in value.items()}
        return self._scalar(value, tp, meta, path)

    def struct(self, value: Any, tp: type[msgspec.Struct], path: KeyPath) -> Any:
        if not isinstance(value, dict):
            self.expected(path, "a table", value)
            return value
        fields = {f.name: f for f in msgspec.structs.fields(tp)}
        hints = typing.get_type_hints(tp, include_extras=True)
        out = {}
        for key, v in value.items():
            if key not in fields:
                hint = _did_you_mean(key, list(fields)) or f" (known keys: {', '.join(sorted(fields))})"
                self.problem((*path, key), f"unknown key{hint}")
                continue
            out[key] = self.check(v, hints[key], (*path, key))
        for name, f in fields.items():
            if f.required and name not in value:
                self.problem(path, f"missing required key {name!r}")
        return out

    def _scalar(self, value: Any, tp: Any, meta: list[Any], path: KeyPath) -> Any:
        bounds = {}
        for m in meta:
            if isinstance(m, msgspec.Meta):
                bounds = {k: getattr(m, k) for k in ("gt", "ge", "lt", "le") if getattr(m, k) is not None}
                if m.pattern is not None and isinstance(value, str):
                    if not re.search(m.pattern, value):
                        self.expected(path, f"a string matching {m.pattern}", value)
            elif isinstance(m, Range):
                bounds = {k: getattr(m, k) for k in ("gt", "ge") if getattr(m, k) is not None}
        if tp is bool:
            if not isinstance(value, bool):
                self.expected(path, "true or false", value)
            return value
        if tp is str:
            if not isinstance(value, str):
                self.expected(path, "a string", value)
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.expected(path, "an integer" + _bounds_text(bounds), value)
            elif not _within(value, bounds):
                self.expected(path, "an integer" + _bounds_text(bounds), value)
            return value
        if tp in (float, Decimal):
            number: float | Decimal | None = None
            if isinstance(value, bool):
                number = None
            elif tp is float and isinstance(value, int | float):
                number = float(value) if math.isfinite(value) else None  # TOML allows inf and nan
            elif tp is Decimal and isinstance(value, int | float | str):
                try:
                    number = Decimal(str(value))
                    if not number.is_finite():
                        number = None
                except InvalidOperation:
                    number = None
            if number is None or not _within(number, bounds):
                self.expected(path, "a number" + _bounds_text(bounds), value)
                return value
            return str(number) if tp is Decimal else number
        raise TypeError(f"config type not supported by the validator: {tp}")

    def _secret(self, value: Any, tp: type[Secret], path: KeyPath) -> Any:
        signing = issubclass(tp, SigningKey)
        kinds = ("file", "credential") if signing else ("env", "file", "credential")
        shape = " or ".join(f'{{ {k} = "..." }}' for k in kinds)
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in kinds:
            if signing and isinstance(value, dict) and "env" in value:
                self.problem(path, f"signing keys are never read from the environment; use {shape}")
            elif isinstance(value, str | int | float):
                # never the value: an unquoted key (0x...) reads as a number and would be printed in full
                kind = type(value).__name__
                self.problem(path, f"inline secrets are refused; write {shape} (got a value of type {kind})")
            else:
                self.problem(path, f"expected {shape}, got a value of type {type(value).__name__}")
            return value
        kind, ref = next(iter(value.items()))
        if not isinstance(ref, str) or not ref:
            self.expected((*path, kind), "a non-empty string", ref)
            return value
        secret = self._resolve(kind, ref, signing, path)
        if secret is None:
            return value
        self.secrets.append(secret)
        return tp(secret, f"{kind}:{ref}")

    def _resolve(self, kind: str, ref: str, signing: bool, path: KeyPath) -> str | None:
        if kind == "env":
            if ref not in self.environ:
                self.problem(path, f"environment variable {ref} is not set")
                return None
            return self._nonempty(self.environ[ref], f"environment variable {ref}", path)
        if kind == "credential":
            cred_dir = self.environ.get("CREDENTIALS_DIRECTORY")
            if not cred_dir:
                self.problem(
                    path, f"credential {ref!r}: $CREDENTIALS_DIRECTORY is not set (add LoadCredential= to the unit)"
                )
                return None
            file = Path(cred_dir) / ref
        else:
            file = Path(ref).expanduser()
            src = self.layers.source_of(path)
            if not file.is_absolute() and not src.startswith(("environment", "<")):
                file = Path(src).parent / file
        try:
            st = file.stat()
            if signing and kind == "file" and stat.S_IMODE(st.st_mode) & 0o077:
                mode = oct(stat.S_IMODE(st.st_mode))[2:]
                self.problem(path, f"key file {file} has mode {mode}, readable by others; fix with: chmod 600 {file}")
                return None
            text = file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            self.problem(path, f"cannot read {file}: {exc.strerror}")
            return None
        return self._nonempty(text, str(file), path)

    def _nonempty(self, text: str, where: str, path: KeyPath) -> str | None:
        if len(text) < 4:
            self.problem(path, f"{where} holds an empty or too short secret")
            return None
        return text


def _within(n: float | Decimal, bounds: Mapping[str, Any]) -> bool:
    checks = {"gt": lambda b: n > b, "ge": lambda b: n >= b, "lt": lambda b: n < b, "le": lambda b: n <= b}
    return all(checks[k](type(n)(v)) for k, v in bounds.items())


def _bounds_text(bounds: Mapping[str, Any]) -> str:
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return "".join(f" {signs[k]} {v}" for k, v in bounds.items())


def _did_you_mean(value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- the whole load ----------------------------------------------------------------------------


def _split_plugin_tables(tree: dict[str, Any], v: _Validator) -> None:
    """`[[filters]] use = "x", param = ...` -> {use, id, enabled, params: {...}}."""
    for section in PLUGIN_SECTIONS:
        tables = tree.get(section)
        if tables is None:
            continue
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            v.expected((section,), f"an array of tables ([[{section}]])", tables)
            tree.pop(section)
            continue
        tree[section] = [
            {k: t[k] for k in PLUGIN_RESERVED if k in t}
            | {"params": {k: val for k, val in t.items() if k not in PLUGIN_RESERVED}}
            for t in tables
        ]


def _check_plugins(
    tree: dict[str, Any], v: _Validator, plugins: PluginSchemas
) -> dict[tuple[str, str], msgspec.Struct]:
    typed: dict[tuple[str, str], msgspec.Struct] = {}
    for section in PLUGIN_SECTIONS:
        seen: set[str] = set()
        for i, spec in enumerate(tree.get(section) or []):
            use = spec.get("use")
            if not isinstance(use, str):
                continue  # the struct check already reported it
            key = spec.get("id") or use
            if key in seen:
                v.problem((section, i, "id"), f"duplicate {section} id {key!r}; give each instance its own id")
            seen.add(key)
            names = plugins.names(section)
            if use not in names:
                hint = _did_you_mean(use, names)
                known = ", ".join(names) if names else "none installed"
                v.problem((section, i, "use"), f"unknown plugin {use!r}{hint}; installed: {known}")
                continue
            try:
                cfg_type = plugins.config_type(section, use)
            except ConfigError as exc:
                v.problem((section, i, "use"), str(exc))
                continue
            before = len(v.problems)
            params = v.struct(spec.get("params", {}), cfg_type, (section, i))
            if len(v.problems) > before:
                continue
            try:
                typed[(section, key)] = msgspec.convert(params, cfg_type, dec_hook=_keep_secret)
            except msgspec.ValidationError as exc:
                v.problem((section, i), _msgspec_reason(exc))
    return typed


def _keep_secret(tp: type, obj: Any) -> Any:
    if isinstance(obj, tp):
        return obj
    raise NotImplementedError


def _msgspec_reason(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    return text.split(" - at `", 1)[0]


def _scans_without_filters(config: Config) -> bool:
    """The scanner would judge live launches (Solana watcher or launch feed) with no filter enabled."""
    sc = config.scanner
    launches = (config.solana.enabled and bool(config.solana.launch_programs)) or bool(sc.pumpportal_url)
    return sc.enabled and launches and not sc.allow_no_filters and not any(f.enabled for f in config.filters)


def load_config(
    paths: Sequence[str | os.PathLike[str]],
    *,
    environ: Mapping[str, str] | None = None,
    plugins: PluginSchemas | None = None,
) -> LoadedConfig:
    """Read, merge, override, validate. Raises ConfigError listing every problem found."""
    environ = os.environ if environ is None else environ
    files = config_files(paths)
    layers = _Layers()
    for f in files:
        layers.merge(_read_toml(f), str(f))
    problems = layers.apply_env(environ)
    v = _Validator(layers, environ)
    v.problems.extend(problems)
    tree = layers.tree
    # Safe default: with no executor configured, orders go to the paper executor.
    tree.setdefault("executors", [{"use": "paper"}])
    _split_plugin_tables(tree, v)
    normalised = v.struct(tree, Config, ())
    plugin_params = _check_plugins(tree, v, plugins) if plugins is not None else {}
    if v.problems:
        raise ConfigError(v.problems)
    try:
        config = msgspec.convert(normalised, Config, dec_hook=_keep_secret)
    except msgspec.ValidationError as exc:  # a rule only msgspec knows; still say where
        raise ConfigError([f"{files[-1] if files else '<defaults>'}: {exc}"]) from None
    executor_ids = {s.key for s in config.executors if s.enabled}
    route_problems = [
        f"{layers.source_of(('orders', chain))}: orders.{chain}: executor {name!r} is not configured; "
        f'add [[executors]] use = "{name}" (configured: {", ".join(sorted(executor_ids)) or "none"})'
        for chain in ("solana", "aptos")
        for name in getattr(config.orders, chain)
        if name not in executor_ids
    ]
    if route_problems:
        raise ConfigError(route_problems)
    if config.mode == "live" and config.wallet.solana_keypair is None and config.wallet.aptos_private_key is None:
        src = layers.source_of(("mode",))
        raise ConfigError(
            [f'{src}: mode: "live" needs a signing key: set wallet.solana_keypair or wallet.aptos_private_key']
        )
    if config.solana.enabled and not config.solana.endpoints:
        src = layers.source_of(("solana", "enabled"))
        raise ConfigError([f"{src}: solana.enabled: needs at least one [[solana.endpoints]] with an http URL"])
    if config.aptos.enabled and not config.aptos.nodes:
        src = layers.source_of(("aptos", "enabled"))
        raise ConfigError([f"{src}: aptos.enabled: true needs aptos.nodes (fullnode REST URLs ending in /v1)"])
    if _scans_without_filters(config):
        src = layers.source_of(("filters",))
        src = str(files[-1]) if src == "<defaults>" and files else src
        raise ConfigError(
            [
                f"{src}: filters: the scanner judges launches but no [[filters]] is enabled, so every launch would "
                "be accepted; add [[filters]], or set scanner.enabled = false, or scanner.allow_no_filters = true"
            ]
        )
    plain = [
        msgspec.to_builtins(config, enc_hook=str),
        [msgspec.to_builtins(p, enc_hook=str) for p in plugin_params.values()],
    ]
    return LoadedConfig(
        config=config,
        sources=tuple(str(f) for f in files),
        plugin_params=plugin_params,
        secrets=(*v.secrets, *sorted(url_secrets(plain) - set(v.secrets))),
    )


def redacted(loaded: LoadedConfig) -> dict[str, Any]:
    """The effective config as plain data with every secret replaced, for printing."""

    def enc(obj: Any) -> Any:
        if isinstance(obj, Secret):
            return obj.redacted()
        raise NotImplementedError(type(obj))

    data: dict[str, Any] = msgspec.to_builtins(loaded.config, enc_hook=enc)
    for section in PLUGIN_SECTIONS:
        for spec in data.get(section, []):
            params = loaded.plugin_params.get((section, spec["id"] or spec["use"]))
            if params is not None:
                spec["params"] = msgspec.to_builtins(params, enc_hook=enc)
    scrubbed: dict[str, Any] = Redactor(loaded.secrets).scrub_any(data)  # API keys inside URLs
    return scrubbed


def changed_sections(old: Config, new: Config) -> set[str]:
    """Top-level keys whose values differ; `daemon` is split into `daemon.<key>`."""
    out = set()
    for f in msgspec.structs.fields(Config):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a == b:
            continue
        if isinstance(a, DaemonConfig):
            out |= {f"daemon.{k.name}" for k in msgspec.structs.fields(a) if getattr(a, k.name) != getattr(b, k.name)}
        else:
            out.add(f.name)
    return out


def default_paths(environ: Mapping[str, str] | None = None) -> list[str]:
    """Where to look when no -c is given: systemd's ConfigurationDirectory, then ./config."""
    environ = os.environ if environ is None else environ
    conf_dir = environ.get("CONFIGURATION_DIRECTORY")
    if conf_dir:
        return [conf_dir.split(":")[0]]
    for candidate in ("config/quantbot.toml", "/etc/quantbot"):
        if Path(candidate).exists():
            return [candidate]
    return ["config/quantbot.toml"]


def print_problems(exc: ConfigError) -> None:
    for line in exc.problems:
        print(f"config error: {line}", file=sys.stderr)
