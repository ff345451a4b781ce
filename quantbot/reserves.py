"""Prices from on-chain reserves: pump.fun bonding curves and pool vault token accounts.

Only the few fields a price needs are decoded here (layouts in shared/notes/solana.md 2.3 and the
SPL token account layout); the full decoders live in quantbot/chains/solana/accounts.py once merged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal

from solders.pubkey import Pubkey

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
