"""Account decoders on recorded mainnet accounts, and their refusals of the wrong thing."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from quantbot.chains.solana.accounts import (
    BondingCurve,
    DecodeError,
    MetaplexMetadata,
    Mint,
    TokenAccount,
    account_bytes,
    decode_account,
    decode_bonding_curve,
    decode_metaplex_metadata,
    decode_mint,
    decode_pumpswap_pool,
    decode_raydium_v4_pool,
    decode_token_account,
    mint_from_parsed,
)
from quantbot.chains.solana.pools import PUMPSWAP_POOL_ACCOUNT
from quantbot.chains.solana.programs import (
    METAPLEX_METADATA_PROGRAM,
    NATIVE_MINT,
    PUMP_FUN_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
)


def load(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / name).read_text())
    return data


def raw_of(folder: Path, name: str) -> bytes:
    return account_bytes(load(folder, name))[0]


def test_spl_mint_with_authority_set_and_no_freeze(solana_fixtures: Path) -> None:
    mint = decode_account(load(solana_fixtures, "web3js_fixture_spl-token-mint-account.json"))
    assert isinstance(mint, Mint)
    assert (mint.program, mint.decimals, mint.supply) == (TOKEN_PROGRAM, 6, 1_690_580_887_590_527_729)
    assert mint.mint_authority == "Gh9ZwEmdLJ8DscKNTkTqPbNwLNNBjuSzaG9Vp2KGtKJr"
    assert mint.freeze_authority is None and mint.extensions == ()


def test_token2022_mint_reads_transfer_fee_extension(solana_fixtures: Path) -> None:
    mint = decode_account(load(solana_fixtures, "web3js_fixture_spl-token-22-mint-account.json"))
    assert isinstance(mint, Mint)
    assert mint.program == TOKEN_2022_PROGRAM and mint.extensions == ("transferFeeConfig",)
    assert mint.freeze_authority == mint.mint_authority == "7MyTjmRygJoCuDBUtAuSugiYZFULD2SWaoUTmtjtRDzD"
    fee = mint.transfer_fee
    assert fee is not None
    assert (fee.older.epoch, fee.older.basis_points) == (455, 0)
    assert (fee.newer.epoch, fee.newer.basis_points, fee.newer.maximum_fee) == (457, 690, 3_906_250_000_000_000_000)
    assert mint.transfer_fee_bps == 690


def test_jsonparsed_mints_decode_to_the_same_struct(solana_fixtures: Path) -> None:
    fee_mint = mint_from_parsed(load(solana_fixtures, "token2022_mint_transferfee_getaccountinfo_jsonparsed.json"))
    assert fee_mint.transfer_fee_bps == 300 and fee_mint.transfer_fee is not None
    assert fee_mint.transfer_fee.newer.maximum_fee == 50_000_000_000_000
    assert (fee_mint.mint_authority, fee_mint.freeze_authority, fee_mint.decimals) == (None, None, 5)
    renounced = mint_from_parsed(load(solana_fixtures, "spl_mint_renounced_getaccountinfo_jsonparsed.json"))
    assert renounced == Mint(
        program=TOKEN_PROGRAM, supply=999_717_986_436_501, decimals=9, mint_authority=None, freeze_authority=None
    )


def test_token_account_owner_mint_amount(solana_fixtures: Path) -> None:
    acc = decode_account(load(solana_fixtures, "web3js_fixture_spl-token-token-account.json"))
    assert isinstance(acc, TokenAccount)
    assert acc.mint == "Gh9ZwEmdLJ8DscKNTkTqPbNwLNNBjuSzaG9Vp2KGtKJr"
    assert acc.owner == "6UsGbaMgchgj4wiwKKuE1v5URHdcDfEiMSM25QpesKir"
    assert (acc.amount, acc.state, acc.delegate, acc.is_native) == (9_999_999_779_500_000, "initialized", None, None)


def test_metaplex_metadata_strips_padding(solana_fixtures: Path) -> None:
    md = decode_account(load(solana_fixtures, "metaplex_metadata_nft_getaccountinfo_base64.json"))
    assert isinstance(md, MetaplexMetadata)
    assert (md.name, md.symbol, md.is_mutable, md.seller_fee_basis_points) == ("Gooberg #2235", "TGB", True, 750)
    assert md.uri.endswith("/2235.json") and "\x00" not in md.uri
    assert md.update_authority == "3sJDa9yoaPGiCdCMUxPVqKractvrBoxt7NnBUktcR7Bs"
    assert len(md.creators) == 2


def test_bonding_curve_current_and_legacy_sizes(solana_fixtures: Path) -> None:
    cur = decode_account(load(solana_fixtures, "pumpfun_bonding_curve_getaccountinfo.json"))
    assert isinstance(cur, BondingCurve)
    assert cur.creator == "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM" and cur.quote_mint == NATIVE_MINT
    assert (cur.token_total_supply, cur.complete, cur.is_cashback_coin) == (10**15, False, True)
    assert cur.virtual_token_reserves - cur.real_token_reserves == 279_900_000_000_000  # 1.073e15 - 793.1e12
    old = decode_bonding_curve(raw_of(solana_fixtures, "pumpfun_bonding_curve_legacy_2024_getaccountinfo.json"))
    assert old.creator is None and old.is_mayhem_mode is None
    assert (old.virtual_sol_reserves - old.real_sol_reserves) == 30_000_000_000  # the 30 SOL virtual start


def test_raydium_v4_pool_fields_at_their_offsets() -> None:
    """Offsets of raydium-sdk LIQUIDITY_STATE_LAYOUT_V4 (notes 1.1); no recorded pool account exists."""
    keys = [bytes([i]) * 32 for i in range(1, 11)]
    data = bytearray(752)
    struct.pack_into("<Q", data, 0, 6)  # status SwapOnly
    struct.pack_into("<QQ", data, 32, 9, 6)  # base, quote decimals
    for offset, key in zip((336, 368, 400, 432, 464, 496, 528, 560, 592), keys, strict=False):
        data[offset : offset + 32] = key
    pool = decode_raydium_v4_pool(bytes(data))
    assert (pool.status, pool.base_decimals, pool.quote_decimals) == (6, 9, 6)
    from quantbot.chains.solana.layout import pubkey_str

    assert pool.base_mint == pubkey_str(keys[2]) and pool.quote_mint == pubkey_str(keys[3])
    assert pool.lp_mint == pubkey_str(keys[4]) and pool.open_orders == pubkey_str(keys[5])
    with pytest.raises(DecodeError, match="bad_length"):
        decode_raydium_v4_pool(bytes(data[:751]))


def test_pumpswap_pool_layout() -> None:
    """pump_amm IDL `Pool` order; no recorded pool account exists."""
    body = PUMPSWAP_POOL_ACCOUNT + struct.pack("<BH", 255, 0) + b"".join(bytes([i]) * 32 for i in range(1, 7))
    body += struct.pack("<Q", 4_193_388_146_921) + bytes([7]) * 32
    pool = decode_pumpswap_pool(body)
    assert pool.lp_supply == 4_193_388_146_921 and pool.coin_creator is not None
    assert decode_pumpswap_pool(body[:-32]).coin_creator is None


@pytest.mark.parametrize(
    ("decoder", "data", "owner", "reason"),
    [
        (decode_mint, bytes(82), PUMP_FUN_PROGRAM, "wrong_owner"),
        (decode_mint, bytes(81), None, "bad_length"),
        (decode_mint, bytes(100), None, "bad_length"),
        (decode_mint, b"\x07" + bytes(81), None, "garbage"),
        (decode_token_account, bytes(100), TOKEN_PROGRAM, "bad_length"),
        (decode_bonding_curve, bytes(49), PUMP_FUN_PROGRAM, "wrong_discriminator"),
        (decode_bonding_curve, bytes(10), None, "bad_length"),
        (decode_metaplex_metadata, b"\x04" + bytes(10), METAPLEX_METADATA_PROGRAM, "short_data"),
        (decode_metaplex_metadata, b"\x05", None, "wrong_discriminator"),
        (decode_pumpswap_pool, bytes(300), None, "wrong_discriminator"),
    ],
)
def test_wrong_owner_length_or_garbage_is_a_decode_error_with_reason(
    decoder: Any, data: bytes, owner: str | None, reason: str
) -> None:
    with pytest.raises(DecodeError) as err:
        decoder(data, owner=owner)
    assert err.value.reason == reason


def test_token2022_extension_past_the_end_is_refused(solana_fixtures: Path) -> None:
    raw = bytearray(raw_of(solana_fixtures, "web3js_fixture_spl-token-22-mint-account.json"))
    struct.pack_into("<H", raw, 168, 500)  # the transfer-fee TLV now claims 500 bytes
    with pytest.raises(DecodeError, match="bad_length"):
        decode_mint(bytes(raw), owner=TOKEN_2022_PROGRAM)


def test_account_plumbing_refuses_missing_and_non_base64() -> None:
    with pytest.raises(DecodeError, match="not_an_account"):
        decode_account({"jsonrpc": "2.0", "result": {"context": {"slot": 1}, "value": None}})
    with pytest.raises(DecodeError, match="bad_base64"):
        decode_account({"value": {"data": ["***", "base64"], "owner": TOKEN_PROGRAM}})
    with pytest.raises(DecodeError, match="unknown_owner"):
        decode_account({"value": {"data": [base64.b64encode(b"x").decode(), "base64"], "owner": "x"}})
