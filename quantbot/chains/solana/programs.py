"""Solana program ids, venue names and discriminators (verified in shared/notes/solana.md).

Pure constants: the parser, the decoders and the watchers share them, so a program id is spelled once.
"""

from __future__ import annotations

from typing import Final

# --- core programs -------------------------------------------------------------------------------

SYSTEM_PROGRAM: Final = "11111111111111111111111111111111"
COMPUTE_BUDGET_PROGRAM: Final = "ComputeBudget111111111111111111111111111111"
TOKEN_PROGRAM: Final = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"  # noqa: S105  (a program id, not a password)
TOKEN_2022_PROGRAM: Final = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"  # noqa: S105  (a program id, not a password)
ASSOCIATED_TOKEN_PROGRAM: Final = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"  # noqa: S105  (a program id, not a password)
MEMO_PROGRAM: Final = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
METAPLEX_METADATA_PROGRAM: Final = "metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s"
TOKEN_PROGRAMS: Final = frozenset({TOKEN_PROGRAM, TOKEN_2022_PROGRAM})

# --- mints ---------------------------------------------------------------------------------------

NATIVE_MINT: Final = "So11111111111111111111111111111111111111112"
"""Wrapped SOL; quantbot also uses it to name native SOL in events."""
USDC_MINT: Final = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDT_MINT: Final = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
QUOTE_MINTS: Final = frozenset({NATIVE_MINT, USDC_MINT, USDT_MINT})
SOL_DECIMALS: Final = 9
KNOWN_DECIMALS: Final = {NATIVE_MINT: 9, USDC_MINT: 6, USDT_MINT: 6}

# --- venues --------------------------------------------------------------------------------------

PUMP_FUN_PROGRAM: Final = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
PUMP_FUN_EVENT_AUTHORITY: Final = "Ce6TQqeHC9p8KetsN6JsjHK7UTZk7nasjjnr7XxXp9F1"
PUMP_FUN_MINT_AUTHORITY: Final = "TSLvdd1pWpHVjahSpsvCXUbgwsL3JAcvokwaKt1eokM"
PUMP_FUN_GLOBAL: Final = "4wTV1YmiEkRvAtNtsSGPtUrqRYQMe5SKy2uB4Jjaxnjf"
PUMP_FEE_PROGRAM: Final = "pfeeUxB6jkeY1Hxd7CsFCAjcbHA9rWtchMGdZ6VojVZ"
PUMP_RAYDIUM_MIGRATOR: Final = "39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg"
PUMPSWAP_PROGRAM: Final = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
RAYDIUM_AMM_V4_PROGRAM: Final = "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8"
RAYDIUM_AMM_V4_AUTHORITY: Final = "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"
RAYDIUM_CPMM_PROGRAM: Final = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
RAYDIUM_CLMM_PROGRAM: Final = "CAMMCzo5YL8w4VFF8KVHrK22GGUsp5VTaW7grrKgrWqK"
RAYDIUM_LAUNCHLAB_PROGRAM: Final = "LanMV9sAd7wArD4vJFi2qDdfnVhFxYSUg6eADduJ3uj"
JUPITER_V6_PROGRAM: Final = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"
METEORA_DLMM_PROGRAM: Final = "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"
METEORA_DAMM_V2_PROGRAM: Final = "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG"
METEORA_DBC_PROGRAM: Final = "dbcij3LWUppWqq96dh6gJWwBifmcGfLSB5D4DuSMaqN"
METEORA_DAMM_V1_PROGRAM: Final = "Eo7WjKq67rjJQSZxS6z3YkapzY3eMj6Xy8X5EQVn5UaB"
ORCA_WHIRLPOOL_PROGRAM: Final = "whirLbMiicVdio4qvUfM3KAg6Ct8VwpYzGff3uctyCc"
OPENBOOK_V1_PROGRAM: Final = "srmqPvymJeFKQ4zGQed1GFppgkRHL9kaELCbyksJtPX"

VENUE_JUPITER: Final = "Jupiter"
VENUE_PUMP_FUN: Final = "pump.fun"
VENUE_PUMPSWAP: Final = "PumpSwap"
VENUE_RAYDIUM_V4: Final = "Raydium AMM v4"
VENUE_RAYDIUM_CPMM: Final = "Raydium CPMM"
VENUE_RAYDIUM_CLMM: Final = "Raydium CLMM"
VENUE_RAYDIUM_LAUNCHLAB: Final = "Raydium LaunchLab"
VENUE_METEORA: Final = "Meteora"
VENUE_ORCA: Final = "Orca"
VENUE_UNKNOWN: Final = "unknown"

AGGREGATORS: Final = {JUPITER_V6_PROGRAM: VENUE_JUPITER}
"""Programs that route through others: when present they name the venue."""

VENUES: Final = {
    PUMP_FUN_PROGRAM: VENUE_PUMP_FUN,
    PUMPSWAP_PROGRAM: VENUE_PUMPSWAP,
    RAYDIUM_AMM_V4_PROGRAM: VENUE_RAYDIUM_V4,
    RAYDIUM_CPMM_PROGRAM: VENUE_RAYDIUM_CPMM,
    RAYDIUM_CLMM_PROGRAM: VENUE_RAYDIUM_CLMM,
    RAYDIUM_LAUNCHLAB_PROGRAM: VENUE_RAYDIUM_LAUNCHLAB,
    METEORA_DLMM_PROGRAM: VENUE_METEORA,
    METEORA_DAMM_V2_PROGRAM: VENUE_METEORA,
    METEORA_DBC_PROGRAM: VENUE_METEORA,
    METEORA_DAMM_V1_PROGRAM: VENUE_METEORA,
    ORCA_WHIRLPOOL_PROGRAM: VENUE_ORCA,
}
"""Programs that execute a trade themselves (AMMs, bonding curves) -> venue name."""

# --- discriminators ------------------------------------------------------------------------------

ANCHOR_EVENT_IX_TAG: Final = bytes.fromhex("e445a52e51cb9a1d")
"""Prefix of an Anchor `emit_cpi!` self-invocation: tag, then the 8-byte event discriminator and body."""

PUMP_CREATE_IX: Final = bytes.fromhex("181ec828051c0777")
PUMP_CREATE_V2_IX: Final = bytes.fromhex("d6904cec5f8b31b4")
PUMP_BUY_IX: Final = bytes.fromhex("66063d1201daebea")
PUMP_BUY_EXACT_SOL_IN_IX: Final = bytes.fromhex("38fc74089edfcd5f")
PUMP_SELL_IX: Final = bytes.fromhex("33e685a4017f83ad")
PUMP_BUY_V2_IX: Final = bytes.fromhex("b817ee6167c5d33d")
PUMP_BUY_EXACT_QUOTE_IN_V2_IX: Final = bytes.fromhex("c2ab1c46684d5b2f")
PUMP_SELL_V2_IX: Final = bytes.fromhex("5df6823ce7e940b2")
PUMP_MIGRATE_IX: Final = bytes.fromhex("9beae792ec9ea21e")

PUMP_CREATE_EVENT: Final = bytes.fromhex("1b72a94ddeeb6376")
PUMP_TRADE_EVENT: Final = bytes.fromhex("bddb7fd34ee661ee")
PUMP_COMPLETE_EVENT: Final = bytes.fromhex("5f72619cd42e9808")
PUMP_COMPLETE_AMM_MIGRATION_EVENT: Final = bytes.fromhex("bde95db95c94ea94")
PUMP_EXTEND_ACCOUNT_EVENT: Final = bytes.fromhex("6161d7905d92167c")
PUMP_BONDING_CURVE_ACCOUNT: Final = bytes.fromhex("17b7f83760d8ac60")

PUMPSWAP_CREATE_POOL_IX: Final = bytes.fromhex("e992d18ecf6840bc")
PUMPSWAP_CREATE_POOL_EVENT: Final = bytes.fromhex("b1310cd2a076a774")
PUMPSWAP_BUY_EVENT: Final = bytes.fromhex("67f4521f2cf57777")
PUMPSWAP_SELL_EVENT: Final = bytes.fromhex("3e2f370aa503dc2a")

RAYDIUM_V4_INITIALIZE2_TAG: Final = 1
RAYDIUM_V4_SWAP_TAGS: Final = frozenset({9, 11, 16, 17})
RAYDIUM_CPMM_INITIALIZE_IX: Final = bytes.fromhex("afaf6d1f0d989bed")
RAYDIUM_CPMM_SWAP_BASE_INPUT_IX: Final = bytes.fromhex("8fbe5adac41e33de")
RAYDIUM_CPMM_SWAP_BASE_OUTPUT_IX: Final = bytes.fromhex("37d96256a34ab4ad")

JUPITER_ROUTE_IX: Final = bytes.fromhex("e517cb977ae3ad2a")
JUPITER_SHARED_ACCOUNTS_ROUTE_IX: Final = bytes.fromhex("c1209b3341d69c81")
JUPITER_SWAP_EVENT: Final = bytes.fromhex("40c6cde8260871e2")

SYSTEM_TRANSFER_TAG: Final = 2
TOKEN_TRANSFER_TAG: Final = 3
TOKEN_TRANSFER_CHECKED_TAG: Final = 12

# --- account sizes -------------------------------------------------------------------------------

TOKEN_ACCOUNT_RENT: Final = 2_039_280
"""Lamports a new 165-byte SPL token account holds (refunded on close)."""
TOKEN_2022_ACCOUNT_RENT: Final = 2_074_080
MINT_SIZE: Final = 82
TOKEN_ACCOUNT_SIZE: Final = 165
RAYDIUM_V4_POOL_SIZE: Final = 752
