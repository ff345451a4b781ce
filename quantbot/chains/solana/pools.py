"""Launchpad and pool accounts: pump.fun bonding curve, Raydium AMM v4 pool, PumpSwap pool.

Offsets from shared/notes/solana.md (bonding curve 2.3 and Raydium 1.1 verified on recorded bytes);
the PumpSwap `Pool` layout is the pump_amm IDL's (no recorded account to check it against).
"""

from __future__ import annotations

import struct

from quantbot.chains.solana.layout import DecodeError, Frozen, pubkey_str
from quantbot.chains.solana.programs import (
    NATIVE_MINT,
    PUMP_BONDING_CURVE_ACCOUNT,
    PUMP_FUN_PROGRAM,
    PUMPSWAP_PROGRAM,
    RAYDIUM_AMM_V4_PROGRAM,
    RAYDIUM_V4_POOL_SIZE,
)

_CURVE = struct.Struct("<8sQQQQQB")
_CURVE_V2 = struct.Struct("<32sBB32s")
_PUMPSWAP_POOL = struct.Struct("<8sBH32s32s32s32s32s32sQ32s")
PUMPSWAP_POOL_ACCOUNT = bytes.fromhex("f19a6d0411b16dbc")
"""sha256("account:Pool")[:8]."""


class BondingCurve(Frozen, frozen=True, kw_only=True):
    virtual_token_reserves: int
    virtual_sol_reserves: int
    """Named virtual_quote_reserves since quote mints other than SOL exist (USDC coins, 2026)."""
    real_token_reserves: int
    real_sol_reserves: int
    token_total_supply: int
    complete: bool
    creator: str | None = None
    is_mayhem_mode: bool | None = None
    is_cashback_coin: bool | None = None
    quote_mint: str = NATIVE_MINT


def decode_bonding_curve(data: bytes, *, owner: str | None = None) -> BondingCurve:
    """pump.fun BondingCurve: 49 bytes (2024), 81+ (creator), 115+ (mayhem, cashback, quote mint)."""
    if owner is not None and owner != PUMP_FUN_PROGRAM:
        raise DecodeError("wrong_owner", f"bonding curve owned by {owner}")
    if len(data) < _CURVE.size:
        raise DecodeError("bad_length", f"bonding curve of {len(data)} bytes")
    disc, vtok, vsol, rtok, rsol, supply, complete = _CURVE.unpack_from(data)
    if disc != PUMP_BONDING_CURVE_ACCOUNT:
        raise DecodeError("wrong_discriminator", disc.hex())
    if complete > 1:
        raise DecodeError("garbage", f"complete flag {complete}")
    fields: dict[str, object] = {
        "virtual_token_reserves": vtok,
        "virtual_sol_reserves": vsol,
        "real_token_reserves": rtok,
        "real_sol_reserves": rsol,
        "token_total_supply": supply,
        "complete": complete == 1,
    }
    if len(data) >= 81:
        fields["creator"] = pubkey_str(data[49:81])
    if len(data) >= 49 + _CURVE_V2.size:
        _, mayhem, cashback, quote = _CURVE_V2.unpack_from(data, 49)
        if mayhem > 1 or cashback > 1:
            raise DecodeError("garbage", "flag out of range")
        fields["is_mayhem_mode"], fields["is_cashback_coin"] = mayhem == 1, cashback == 1
        if quote != bytes(32):
            fields["quote_mint"] = pubkey_str(quote)
    return BondingCurve(**fields)  # type: ignore[arg-type]


class RaydiumV4Pool(Frozen, frozen=True, kw_only=True):
    status: int
    base_decimals: int
    quote_decimals: int
    pool_open_time: int
    base_vault: str
    quote_vault: str
    base_mint: str
    quote_mint: str
    lp_mint: str
    open_orders: str
    market_id: str
    market_program: str
    target_orders: str
    lp_reserve: int


def decode_raydium_v4_pool(data: bytes, *, owner: str | None = None) -> RaydiumV4Pool:
    """Raydium AMM v4 `LIQUIDITY_STATE_LAYOUT_V4` (752 bytes)."""
    if owner is not None and owner != RAYDIUM_AMM_V4_PROGRAM:
        raise DecodeError("wrong_owner", f"Raydium v4 pool owned by {owner}")
    if len(data) != RAYDIUM_V4_POOL_SIZE:
        raise DecodeError("bad_length", f"Raydium v4 pool of {len(data)} bytes")

    def u64(at: int) -> int:
        return int.from_bytes(data[at : at + 8], "little")

    def key(at: int) -> str:
        return pubkey_str(data[at : at + 32])

    return RaydiumV4Pool(
        status=u64(0),
        base_decimals=u64(32),
        quote_decimals=u64(40),
        pool_open_time=u64(224),
        base_vault=key(336),
        quote_vault=key(368),
        base_mint=key(400),
        quote_mint=key(432),
        lp_mint=key(464),
        open_orders=key(496),
        market_id=key(528),
        market_program=key(560),
        target_orders=key(592),
        lp_reserve=u64(720),
    )


class PumpSwapPool(Frozen, frozen=True, kw_only=True):
    index: int
    creator: str
    base_mint: str
    quote_mint: str
    lp_mint: str
    pool_base_token_account: str
    pool_quote_token_account: str
    lp_supply: int
    coin_creator: str | None = None


def decode_pumpswap_pool(data: bytes, *, owner: str | None = None) -> PumpSwapPool:
    """PumpSwap `Pool` (pump_amm IDL order: bump, index, creator, base/quote/lp mints, vaults, lp supply,
    coin creator)."""
    if owner is not None and owner != PUMPSWAP_PROGRAM:
        raise DecodeError("wrong_owner", f"PumpSwap pool owned by {owner}")
    if len(data) < _PUMPSWAP_POOL.size - 32:
        raise DecodeError("bad_length", f"PumpSwap pool of {len(data)} bytes")
    if data[:8] != PUMPSWAP_POOL_ACCOUNT:
        raise DecodeError("wrong_discriminator", data[:8].hex())
    padded = data if len(data) >= _PUMPSWAP_POOL.size else data + bytes(32)
    _, _, index, creator, base, quote, lp, base_vault, quote_vault, lp_supply, coin_creator = (
        _PUMPSWAP_POOL.unpack_from(padded)
    )
    return PumpSwapPool(
        index=index,
        creator=pubkey_str(creator),
        base_mint=pubkey_str(base),
        quote_mint=pubkey_str(quote),
        lp_mint=pubkey_str(lp),
        pool_base_token_account=pubkey_str(base_vault),
        pool_quote_token_account=pubkey_str(quote_vault),
        lp_supply=lp_supply,
        coin_creator=pubkey_str(coin_creator) if len(data) >= _PUMPSWAP_POOL.size and any(coin_creator) else None,
    )
