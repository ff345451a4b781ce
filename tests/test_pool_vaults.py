"""Pool launches name their vaults: Raydium AMM v4 initialize2, CPMM initialize, PumpSwap create_pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import based58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from quantbot.chains.solana.parser import SolanaParser
from quantbot.chains.solana.programs import NATIVE_MINT
from quantbot.events import TokenLaunch

RAYDIUM_INIT = "raydium_v4_initialize2_gettransaction_jsonparsed.json"
V4 = "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8"
V4_AUTHORITY = "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"
MINT = "6Ed5YTw9AoUhr5VcsjZdGHqpdruqgCaZcLv7WU6npump"
CREATOR = "39azUYFWPz3VHgKCf3VChUwbpURdCHRxjWVowf5jUJjg"
POOL = "6DrWmJAVcCLUTHzgdMoKroZCwdcS8sodLgctiBqvyys6"


def _doc(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / RAYDIUM_INIT).read_text())
    return data


def _launch(parser: SolanaParser, doc: dict[str, Any]) -> TokenLaunch:
    [launch] = [e for e in parser.parse_transaction(doc) if isinstance(e, TokenLaunch)]
    assert not parser.rejected
    return launch


def _vault_balances(doc: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Token account address -> (mint, post amount) for accounts the v4 authority owns, from the fixture."""
    result = doc.get("result", doc)
    keys = [k if isinstance(k, str) else k["pubkey"] for k in result["transaction"]["message"]["accountKeys"]]
    return {
        keys[b["accountIndex"]]: (b["mint"], int(b["uiTokenAmount"]["amount"]))
        for b in result["meta"]["postTokenBalances"]
        if b["owner"] == V4_AUTHORITY
    }


def _swap_pool_ix(doc: dict[str, Any], program: str, accounts: list[str], data: bytes) -> dict[str, Any]:
    """The recorded initialize2 transaction with its pool instruction replaced by another program's."""
    ixs = doc["result"]["transaction"]["message"]["instructions"]
    i = next(n for n, ix in enumerate(ixs) if ix.get("programId") == V4)
    ixs[i] = {"programId": program, "accounts": accounts, "data": based58.b58encode(data).decode(), "stackHeight": None}
    return doc


@pytest.fixture
def parser() -> SolanaParser:
    return SolanaParser()


def test_raydium_v4_launch_names_the_vaults_that_hold_the_seeded_liquidity(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    doc = _doc(solana_fixtures)
    launch = _launch(parser, doc)
    vaults = _vault_balances(doc)
    assert launch.base_vault is not None and launch.quote_vault is not None
    # The recorded token balances: the base vault holds the launched token, the quote vault the WSOL,
    # with exactly the seeded amounts (coin = WSOL here, so the sides were swapped correctly).
    assert vaults[launch.base_vault] == (MINT, launch.base_amount) == (MINT, 206_900_000_000_000)
    assert vaults[launch.quote_vault] == (NATIVE_MINT, launch.quote_amount) == (NATIVE_MINT, 79_005_359_551)


def test_pumpswap_create_pool_launch_names_pool_base_and_quote_token_accounts(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    data = bytes.fromhex("e992d18ecf6840bc") + (0).to_bytes(2, "little")
    data += (206_900_000_000_000).to_bytes(8, "little") + (84_990_359_954).to_bytes(8, "little") + bytes(32)
    names = [f"{n:0<32}"[:32] for n in ("Lp", "UserBase", "UserQuote", "UserLp", "PoolBase", "PoolQuote")]
    accounts = [POOL, "ADyA8hdefvWN2dbGGWFotbzWxrAvLW83WG6QCVXvJKqw", CREATOR, MINT, NATIVE_MINT, *names]
    launch = _launch(
        parser, _swap_pool_ix(_doc(solana_fixtures), "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA", accounts, data)
    )
    assert (launch.mint, launch.base_vault, launch.quote_vault) == (MINT, names[4], names[5])


def test_cpmm_launch_with_sol_as_token0_swaps_the_vaults_with_the_sides(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    data = bytes.fromhex("afaf6d1f0d989bed") + (5_000_000_000).to_bytes(8, "little")
    data += (1_000_000_000_000).to_bytes(8, "little") + (0).to_bytes(8, "little")
    names = [f"{n:0<32}"[:32] for n in ("Lp", "CreatorZero", "CreatorOne", "CreatorLp", "VaultZero", "VaultOne")]
    accounts = [CREATOR, "D4FPEruKEHrG5TenZ2mpDGEfu1iUvTiqBxvpU8HLBvC2", "GpMZbSM2GgvTKHJirzeGfMFoaZ8UR2X7F4v8vHTvxFbL"]
    accounts += [POOL, NATIVE_MINT, MINT, *names]
    launch = _launch(
        parser, _swap_pool_ix(_doc(solana_fixtures), "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C", accounts, data)
    )
    assert (launch.mint, launch.quote_mint) == (MINT, NATIVE_MINT)
    assert (launch.base_vault, launch.quote_vault) == (names[5], names[4])  # token_1_vault holds the launched mint


def test_a_pool_instruction_listing_too_few_accounts_launches_without_vaults(
    solana_fixtures: Path, parser: SolanaParser
) -> None:
    data = bytes.fromhex("e992d18ecf6840bc") + (0).to_bytes(2, "little") + bytes(16) + bytes(32)
    accounts = [POOL, "ADyA8hdefvWN2dbGGWFotbzWxrAvLW83WG6QCVXvJKqw", CREATOR, MINT, NATIVE_MINT]
    launch = _launch(
        parser, _swap_pool_ix(_doc(solana_fixtures), "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA", accounts, data)
    )
    assert (launch.mint, launch.base_vault, launch.quote_vault) == (MINT, None, None)


PUMPSWAP = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
CPMM = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
_DOC: dict[str, Any] = {}


@settings(max_examples=40, deadline=None)
@given(
    program=st.sampled_from([PUMPSWAP, CPMM]),
    n_accounts=st.integers(min_value=6, max_value=24),
    sol_first=st.booleans(),
)
def test_vaults_are_the_listed_vault_positions_of_the_launched_and_quote_sides_or_none(
    solana_fixtures: Path, program: str, n_accounts: int, sol_first: bool
) -> None:
    if not _DOC:
        _DOC.update(_doc(solana_fixtures))
    doc = json.loads(json.dumps(_DOC))
    extra = [str(Pubkey.new_unique()) for _ in range(n_accounts)]
    mints = [NATIVE_MINT, MINT] if sol_first else [MINT, NATIVE_MINT]
    if program == PUMPSWAP:
        data = (
            bytes.fromhex("e992d18ecf6840bc")
            + bytes(2)
            + (10**12).to_bytes(8, "little")
            + (10**9).to_bytes(8, "little")
        )
        accounts = [POOL, extra[0], CREATOR, *mints, *extra[5:]]
        slots = (9, 10)
    else:
        data = bytes.fromhex("afaf6d1f0d989bed") + (10**12).to_bytes(8, "little") + (10**9).to_bytes(8, "little")
        accounts = [CREATOR, extra[0], extra[1], POOL, *mints, *extra[6:]]
        slots = (10, 11)
    launch = _launch(SolanaParser(), _swap_pool_ix(doc, program, accounts, data + bytes(8)))
    listed = [accounts[i] if len(accounts) > i else None for i in slots]
    if sol_first:
        listed.reverse()
    assert launch.mint == MINT
    assert (launch.base_vault, launch.quote_vault) == tuple(listed)
