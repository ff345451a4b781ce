"""New pools from instructions: PumpSwap `create_pool`, Raydium AMM v4 `initialize2`, CPMM `initialize`.

Account positions and data layouts are in shared/notes/solana.md section 4 (v4 verified on the
pump.fun migration fixture). The launched token is the side that is not SOL/USDC/USDT.
"""

from __future__ import annotations

from collections.abc import Iterator

from quantbot.chains.solana.balances import Balances
from quantbot.chains.solana.layout import Reader
from quantbot.chains.solana.programs import (
    PUMPSWAP_CREATE_POOL_IX,
    PUMPSWAP_PROGRAM,
    QUOTE_MINTS,
    RAYDIUM_AMM_V4_PROGRAM,
    RAYDIUM_CPMM_INITIALIZE_IX,
    RAYDIUM_CPMM_PROGRAM,
    RAYDIUM_V4_INITIALIZE2_TAG,
    VENUE_PUMPSWAP,
    VENUE_RAYDIUM_CPMM,
    VENUE_RAYDIUM_V4,
)
from quantbot.chains.solana.txmodel import Ix, TxView
from quantbot.events import TokenLaunch

_MAX_DATA_B58 = 180
"""Base58 length of 128 bytes: create_pool (58+), initialize2 (26) and CPMM initialize (32) are well below."""
_PROGRAMS = frozenset({PUMPSWAP_PROGRAM, RAYDIUM_AMM_V4_PROGRAM, RAYDIUM_CPMM_PROGRAM})


def pool_launches(tx: TxView, balances: Balances) -> Iterator[TokenLaunch]:
    """Every pool-creating instruction (top level or CPI, e.g. pump.fun `migrate`) in `tx`."""
    if _PROGRAMS.isdisjoint(tx.programs):
        return
    for ix in tx.ixs:
        if ix.program not in _PROGRAMS or ix.parsed is not None:
            continue
        if isinstance(ix.data, str) and len(ix.data) > _MAX_DATA_B58:
            continue  # event self-CPIs and other large payloads: no pool-creating instruction is this long
        found = _pool(ix)
        if found is None:
            continue
        source, pool, creator, mint_a, mint_b, amount_a, amount_b = found
        if mint_a in QUOTE_MINTS and mint_b not in QUOTE_MINTS:
            mint_a, mint_b, amount_a, amount_b = mint_b, mint_a, amount_b, amount_a
        yield TokenLaunch(
            chain="solana",
            mint=mint_a,
            creator=creator,
            source=source,
            pool=pool,
            tx=tx.signature,
            slot=tx.slot,
            block_time=tx.block_time,
            base_mint=mint_a,
            quote_mint=mint_b,
            base_amount=amount_a,
            quote_amount=amount_b,
            decimals=balances.decimals.get(mint_a),
        )


def _pool(ix: Ix) -> tuple[str, str, str, str, str, int, int] | None:
    """(venue, pool, creator, mint a, mint b, amount a, amount b), or None if `ix` creates no pool."""
    data = ix.raw()
    acc = ix.accounts
    if ix.program == RAYDIUM_AMM_V4_PROGRAM:
        if len(data) < 26 or data[0] != RAYDIUM_V4_INITIALIZE2_TAG or len(acc) < 18:
            return None
        r = Reader(data, 2)  # tag, nonce
        r.u64()  # open_time
        init_pc, init_coin = r.u64(), r.u64()
        return VENUE_RAYDIUM_V4, acc[4], acc[17], acc[8], acc[9], init_coin, init_pc
    if ix.program == RAYDIUM_CPMM_PROGRAM:
        if data[:8] != RAYDIUM_CPMM_INITIALIZE_IX or len(acc) < 6:
            return None
        r = Reader(data, 8)
        amount_0, amount_1 = r.u64(), r.u64()
        return VENUE_RAYDIUM_CPMM, acc[3], acc[0], acc[4], acc[5], amount_0, amount_1
    if data[:8] != PUMPSWAP_CREATE_POOL_IX or len(acc) < 5:
        return None
    r = Reader(data, 8)
    r.u16()  # index
    base_in, quote_in = r.u64(), r.u64()
    return VENUE_PUMPSWAP, acc[0], acc[2], acc[3], acc[4], base_in, quote_in
