"""Prices from on-chain reserves: pump.fun bonding curves and pool vault token accounts.

`ReserveWatches` knows which watched account prices which token and turns each AccountUpdate's
data into a price observation (a curve's virtual reserves, or a pool's two vault amounts).

Only the few fields a price needs are decoded here (layouts in shared/notes/solana.md 2.3 and the
SPL token account layout); the full decoders live in quantbot/chains/solana/accounts.py once merged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from solders.pubkey import Pubkey

from quantbot.assets import WSOL, is_native, stable
from quantbot.price_quorum import Observation

PUMP_PROGRAM = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
BONDING_CURVE_DISCRIMINATOR = bytes.fromhex("17b7f83760d8ac60")
TOKEN_PROGRAMS = frozenset(
    {"TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "TokenzQdBNbLqP5VEhdkAS6EPFLC1PE1P3ghqVMA4bvB"}
)
_ZERO_KEY = bytes(32)


class ReservesError(ValueError):
    """Account data that does not hold what it should."""


@dataclass(frozen=True, slots=True)
class CurveState:
    virtual_token_reserves: int
    virtual_quote_reserves: int
    complete: bool
    quote_mint: str | None
    """None for SOL-quoted curves (the field is absent before 2026 or the default key)."""

    def price(self) -> Decimal:
        """Quote base units per token base unit (lamports per token base unit for SOL curves)."""
        if self.virtual_token_reserves <= 0:
            raise ReservesError("bonding curve has no virtual token reserves")
        return Decimal(self.virtual_quote_reserves) / Decimal(self.virtual_token_reserves)


def decode_bonding_curve(data: bytes) -> CurveState:
    """pump.fun BondingCurve: 8 disc, vTok u64 @8, vSol/vQuote u64 @16, complete bool @48, quote_mint @83."""
    if len(data) < 49:
        raise ReservesError(f"bonding curve account is {len(data)} bytes, expected at least 49")
    if data[:8] != BONDING_CURVE_DISCRIMINATOR:
        raise ReservesError(f"not a bonding curve account (discriminator {data[:8].hex()})")
    v_tok, v_quote = struct.unpack_from("<QQ", data, 8)
    quote: str | None = None
    if len(data) >= 115 and data[83:115] != _ZERO_KEY:
        quote = str(Pubkey.from_bytes(data[83:115]))
    return CurveState(
        virtual_token_reserves=v_tok, virtual_quote_reserves=v_quote, complete=data[48] != 0, quote_mint=quote
    )


@dataclass(frozen=True, slots=True)
class TokenAccount:
    mint: str
    owner: str
    amount: int


def decode_token_account(data: bytes) -> TokenAccount:
    """SPL token account (also Token-2022's first 165 bytes): mint @0, owner @32, amount u64 @64."""
    if len(data) < 165:
        raise ReservesError(f"token account is {len(data)} bytes, expected at least 165")
    (amount,) = struct.unpack_from("<Q", data, 64)
    return TokenAccount(
        mint=str(Pubkey.from_bytes(data[0:32])), owner=str(Pubkey.from_bytes(data[32:64])), amount=amount
    )


def bonding_curve_address(mint: str) -> str:
    """pump.fun bonding curve PDA: seeds ["bonding-curve", mint] under the pump program."""
    program = Pubkey.from_string(PUMP_PROGRAM)
    pda, _ = Pubkey.find_program_address([b"bonding-curve", bytes(Pubkey.from_string(mint))], program)
    return str(pda)


@dataclass(slots=True)
class Watch:
    chain: str
    token: str
    kind: Literal["curve", "vault"]
    amount: int | None = None
    mint: str | None = None


class ReserveWatches:
    """Which watched accounts price which token, and what their latest data says about the price."""

    def __init__(self) -> None:
        self.watches: dict[str, Watch] = {}
        self._by_token: dict[tuple[str, str], list[str]] = {}

    def __len__(self) -> int:
        return len(self.watches)

    def add(self, account: str, *, chain: str, token: str, kind: Literal["curve", "vault"]) -> bool:
        """Remember `account`; False if it was already watched."""
        if account in self.watches:
            return False
        self.watches[account] = Watch(chain=chain, token=token, kind=kind)
        self._by_token.setdefault((chain, token), []).append(account)
        return True

    def remove(self, account: str) -> bool:
        watch = self.watches.pop(account, None)
        if watch is None:
            return False
        key = (watch.chain, watch.token)
        accounts = self._by_token.get(key, [])
        if account in accounts:
            accounts.remove(account)
        if not accounts:
            self._by_token.pop(key, None)
        return True

    def accounts_of(self, chain: str, token: str) -> list[str]:
        return list(self._by_token.get((chain, token), ()))

    def observe(
        self, account: str, owner: str, data: bytes, *, at: datetime
    ) -> tuple[Watch, Observation | None] | None:
        """(the watch, its price observation) for a watched account's new data; None if not watched.

        A completed curve gives (watch, None): it prices nothing any more. Raises ReservesError (a
        ValueError) on data that is not what the account should hold.
        """
        watch = self.watches.get(account)
        if watch is None:
            return None
        if watch.kind == "curve":
            if owner != PUMP_PROGRAM:
                raise ReservesError(f"curve account {account} is owned by {owner}, not pump.fun")
            state = decode_bonding_curve(data)
            if state.complete:
                return watch, None
            quote = state.quote_mint
            if quote is None or quote == WSOL:
                return watch, Observation(at=at, native=state.price())
            coin = stable(watch.chain, quote)
            if coin is None:
                raise ReservesError(f"curve {account} is quoted in {quote}, neither SOL nor a stablecoin")
            return watch, Observation(at=at, usd=state.price().scaleb(-coin.decimals))
        if owner not in TOKEN_PROGRAMS:
            raise ReservesError(f"vault {account} is owned by {owner}, not a token program")
        acct = decode_token_account(data)
        watch.amount, watch.mint = acct.amount, acct.mint
        return watch, self._pool(watch.chain, watch.token, at)

    def _pool(self, chain: str, token: str, at: datetime) -> Observation | None:
        """Quote vault amount / token vault amount, once both sides of the pool are known."""
        side = {w.mint: w.amount for a in self.accounts_of(chain, token) if (w := self.watches[a]).kind == "vault"}
        token_amt = side.get(token)
        quote = [(m, a) for m, a in side.items() if m != token and m is not None and a is not None]
        if not token_amt or len(quote) != 1:
            return None
        quote_mint, quote_amt = quote[0]
        if is_native(chain, quote_mint):
            return Observation(at=at, native=Decimal(quote_amt) / token_amt)
        coin = stable(chain, quote_mint)
        if coin is not None:
            return Observation(at=at, usd=Decimal(quote_amt).scaleb(-coin.decimals) / token_amt)
        return None
