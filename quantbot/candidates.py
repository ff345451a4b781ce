"""TokenCandidate: a launched token with every feature the scanner measured, as filters see it.

Each feature group is None when its look-up failed or does not apply, and `missing[name]` then says
why ("timeout", "account not found", "bonding curve: no LP mint"...). Amounts are integers in base
units with their decimals; shares, prices and USD are Decimal.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from quantbot.events import TokenLaunch

FEATURES = ("mint", "metadata", "liquidity", "lp", "holders", "creator", "momentum")
"""The feature groups of a candidate, in the order the scanner reports them."""


class MintInfo(msgspec.Struct, frozen=True, kw_only=True):
    program: str
    supply: int
    decimals: int
    mint_authority: str | None
    freeze_authority: str | None
    extensions: tuple[str, ...] = ()
    """Token-2022 extension names (camelCase, as jsonParsed names them)."""
    transfer_fee_bps: int = 0
    """The higher of the fee in force and the one scheduled (the current epoch is not known)."""
    permanent_delegate: str | None = None
    transfer_hook_program: str | None = None
    transfer_hook_authority: str | None = None
    """Who can set (or change) the transfer hook program, even while none is set."""
    non_transferable: bool = False
    default_account_state: str | None = None
    """"initialized" or "frozen"; None when the mint has no DefaultAccountState extension."""
    pause_authority: str | None = None
    """PausableConfig: who can pause every transfer of the token."""
    paused: bool = False


class MetadataInfo(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    """"metaplex" (metadata PDA) or "token2022" (TokenMetadata extension on the mint)."""
    name: str
    symbol: str
    uri: str
    update_authority: str | None
    is_mutable: bool


class LiquidityInfo(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    pool: str
    """The bonding curve or the pool account."""
    quote_mint: str
    quote_reserve: int
    quote_decimals: int
    native: Decimal | None
    """Quote liquidity in whole SOL (None for a non-SOL quote without a SOL/USD price)."""
    usd: Decimal | None = None
    bonding_curve: bool = False
    complete: bool = False
    """A bonding curve that has finished (the coin migrates)."""


class LpInfo(msgspec.Struct, frozen=True, kw_only=True):
    lp_mint: str
    minted: int
    """LP tokens the pool issued (its own record)."""
    supply: int
    """LP tokens still in existence (the LP mint's supply)."""
    decimals: int

    @property
    def burned(self) -> int:
        return max(0, self.minted - self.supply)

    @property
    def burned_share(self) -> Decimal:
        """Burned LP as a share of what was minted, in [0, 1]."""
        return Decimal(self.burned) / Decimal(self.minted) if self.minted > 0 else Decimal(0)


class Holder(msgspec.Struct, frozen=True):
    account: str
    amount: int


class HoldersInfo(msgspec.Struct, frozen=True, kw_only=True):
    supply: int
    top: tuple[Holder, ...]
    """Largest token accounts, biggest first, without pool and bonding-curve accounts."""
    excluded: tuple[str, ...] = ()
    """Token accounts left out (pool vaults, bonding-curve accounts)."""

    def share(self, n: int) -> Decimal:
        """Share of supply the `n` biggest holders hold, in [0, 1] (0 for an empty supply)."""
        if self.supply <= 0:
            return Decimal(0)
        return Decimal(sum(h.amount for h in self.top[:n])) / Decimal(self.supply)


class CreatorInfo(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    previous_launches: tuple[datetime, ...] = ()
    """When this creator's earlier launches were seen by the daemon, newest first (persisted)."""
    holding: int | None = None
    """Tokens in the creator's associated token account (None when it could not be read)."""

    def launches_since(self, since: datetime) -> int:
        return sum(1 for t in self.previous_launches if t >= since)


class MomentumInfo(msgspec.Struct, frozen=True, kw_only=True):
    window_s: float
    """Seconds of trading after the launch that were observed."""
    buys: int = 0
    sells: int = 0
    buyers: int = 0
    """Distinct buying wallets (the creator included)."""
    net_native_in: int = 0
    """Net SOL (lamports) into the bonding curve from trades: buys minus sells."""


class TokenCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """A launch plus every feature; None features are explained in `missing`."""

    launch: TokenLaunch
    mint: MintInfo | None = None
    metadata: MetadataInfo | None = None
    liquidity: LiquidityInfo | None = None
    lp: LpInfo | None = None
    holders: HoldersInfo | None = None
    creator: CreatorInfo | None = None
    momentum: MomentumInfo | None = None
    missing: dict[str, str] = msgspec.field(default_factory=dict)
    """Feature name -> why it is None."""
    observed_at: datetime | None = None
    """When the scanner finished enriching (the injected clock)."""

    @property
    def chain(self) -> str:
        return self.launch.chain

    @property
    def token(self) -> str:
        return self.launch.mint

    def why_missing(self, feature: str) -> str:
        return self.missing.get(feature, "not measured")
