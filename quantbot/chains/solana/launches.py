"""New pools from instructions: PumpSwap `create_pool`, Raydium AMM v4 `initialize2`, CPMM `initialize`.

Account positions and data layouts are in shared/notes/solana.md section 4 (v4 verified on the
pump.fun migration fixture). The launched token is the side that is not SOL/USDC/USDT; its pool
vault is `base_vault`, the SOL/USDC side's is `quote_vault` (what the PriceBook watches to price it).
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
        source, pool, creator, (mint_a, amount_a, vault_a), (mint_b, amount_b, vault_b) = found
        if mint_a in QUOTE_MINTS and mint_b not in QUOTE_MINTS:
            mint_a, mint_b, amount_a, amount_b, vault_a, vault_b = mint_b, mint_a, amount_b, amount_a, vault_b, vault_a
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
            decimals=balances.decimals_of(mint_a),
            base_vault=vault_a,
            quote_vault=vault_b,
        )


_Side = tuple[str, int, str | None]
"""(mint, seed amount, the pool's vault token account for it when the instruction lists it)."""


def _pool(ix: Ix) -> tuple[str, str, str, _Side, _Side] | None:
    """(venue, pool, creator, side a, side b), or None if `ix` creates no pool.

    The data is checked first: most instructions of these programs are swaps, whose accounts need not
    be resolved at all.
    """
    data = ix.raw()
    if ix.program == RAYDIUM_AMM_V4_PROGRAM:
        if len(data) < 26 or data[0] != RAYDIUM_V4_INITIALIZE2_TAG or len(acc := ix.accounts) < 18:
            return None
        r = Reader(data, 2)  # tag, nonce
        r.u64()  # open_time
        init_pc, init_coin = r.u64(), r.u64()
        # 8 coin mint, 9 pc mint, 10 coin vault, 11 pc vault
        return VENUE_RAYDIUM_V4, acc[4], acc[17], (acc[8], init_coin, acc[10]), (acc[9], init_pc, acc[11])
    if ix.program == RAYDIUM_CPMM_PROGRAM:
        if data[:8] != RAYDIUM_CPMM_INITIALIZE_IX or len(acc := ix.accounts) < 6:
            return None
        r = Reader(data, 8)
        amount_0, amount_1 = r.u64(), r.u64()
        # 4 token_0_mint, 5 token_1_mint, 10 token_0_vault, 11 token_1_vault
        return VENUE_RAYDIUM_CPMM, acc[3], acc[0], (acc[4], amount_0, _at(acc, 10)), (acc[5], amount_1, _at(acc, 11))
    if data[:8] != PUMPSWAP_CREATE_POOL_IX or len(acc := ix.accounts) < 5:
        return None
    r = Reader(data, 8)
    r.u16()  # index
    base_in, quote_in = r.u64(), r.u64()
    # 3 base_mint, 4 quote_mint, 9 pool_base_token_account, 10 pool_quote_token_account (pump_amm IDL)
    return VENUE_PUMPSWAP, acc[0], acc[2], (acc[3], base_in, _at(acc, 9)), (acc[4], quote_in, _at(acc, 10))


def _at(accounts: list[str], i: int) -> str | None:
    return accounts[i] if len(accounts) > i else None
