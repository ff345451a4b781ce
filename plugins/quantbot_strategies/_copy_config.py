"""copy_trade's parameters: the leaders to copy and the caps, validated with clear messages."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

import msgspec

from quantbot.api import PluginConfig
from quantbot_strategies._common import ChainName, check_bps

SOLANA_ADDRESS = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
APTOS_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
HUNDRED = Decimal(100)


def normal_address(chain: str, address: str) -> str:
    """Aptos addresses compared in long lower-case form (0x + 64 hex digits); Solana's as written."""
    return "0x" + address[2:].lower().zfill(64) if chain == "aptos" else address


class Leader(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    chain: ChainName
    address: str
    label: str = ""
    copy_pct: Decimal | None = None
    """Percent of the leader's spend to copy; default: the strategy's copy_pct."""
    max_buy: int | None = None
    """Most native base units (lamports / octas) one copied buy spends; default: no cap of its own."""
    max_open: int | None = None
    """Most native base units spent on this leader's copies still held or in flight; default: no cap."""

    def __post_init__(self) -> None:
        pattern = SOLANA_ADDRESS if self.chain == "solana" else APTOS_ADDRESS
        if not pattern.match(self.address):
            raise ValueError(f"leader {self.address!r} is not a {self.chain} address")
        if self.copy_pct is not None and not 0 < self.copy_pct <= HUNDRED:
            raise ValueError(f"leader {self.address}: copy_pct must be in (0, 100], got {self.copy_pct}")
        for name in ("max_buy", "max_open"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"leader {self.address}: {name} must be > 0 base units, got {value}")


class CopyTradeConfig(PluginConfig, frozen=True, kw_only=True):
    leaders: Annotated[
        tuple[Leader, ...],
        msgspec.Meta(
            description="the wallets to copy: [[strategies.leaders]] tables with chain, address and optional caps"
        ),
    ] = ()
    copy_pct: Annotated[
        Decimal, msgspec.Meta(description="percent of a leader's spend each copy spends (a leader's own copy_pct wins)")
    ] = Decimal(10)
    min_buy: Annotated[
        int, msgspec.Meta(ge=0, description="copies smaller than this many native base units are skipped (dust)")
    ] = 0
    pause_after: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            description="failed copies in a row, or refused for what the leader trades (size, price, liquidity), "
            "that pause a leader",
        ),
    ] = 3
    pause_s: Annotated[float, msgspec.Meta(gt=0, description="how long a paused leader's buys are not copied")] = 3600.0
    max_age_s: Annotated[
        float,
        msgspec.Meta(
            gt=0,
            description="a leader's buy older than this many seconds (its block time to now: a backfill after "
            "downtime) is not copied; sells are mirrored whatever their age",
        ),
    ] = 120.0
    leader_exit: Annotated[
        bool,
        msgspec.Meta(
            description="name the leader on the intent: its large sell or dump exits the whole position "
            "(off: sells are mirrored in proportion only)"
        ),
    ] = False
    max_slippage_bps: Annotated[
        int | None, msgspec.Meta(description="slippage tolerance sent with the order, in bps (default: the executor's)")
    ] = None
    max_tokens: Annotated[
        int,
        msgspec.Meta(
            ge=1, description="how many (leader, token) holdings and orders in flight are remembered (bounded state)"
        ),
    ] = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.copy_pct <= HUNDRED:
            raise ValueError(f"copy_pct must be in (0, 100], got {self.copy_pct}")
        seen: set[tuple[str, str]] = set()
        for leader in self.leaders:
            key = (leader.chain, normal_address(leader.chain, leader.address))
            if key in seen:
                raise ValueError(f"leader {leader.address} ({leader.chain}) is listed twice")
            seen.add(key)
        check_bps("max_slippage_bps", self.max_slippage_bps)
