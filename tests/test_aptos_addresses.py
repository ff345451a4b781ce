"""One canonical spelling for Aptos addresses, Move types and assets (quantbot.chains.aptos.addresses)."""

from __future__ import annotations

import pytest
from aptos_sdk.account_address import AccountAddress
from hypothesis import given
from hypothesis import strategies as st

from quantbot.chains.aptos.addresses import (
    APT,
    AddressError,
    AssetNamer,
    asset_name,
    long_address,
    normalize_address,
    normalize_addresses,
    normalize_type,
    paired_fa_metadata,
    primary_store_address,
    short_address,
    short_type,
)

THALA = "0x007730cd28ee1cdc9e999336cbc430f99e7c44397c0aa77516f6f23a78559bb5"
LZ_USDC = "0xf22bede237a07e121b56d91a491eb7bcdfd1f5907926a9e58338f964a01b17fa::asset::USDC"


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("0x7730cd28ee1cdc9e999336cbc430f99e7c44397c0aa77516f6f23a78559bb5", THALA),  # REST: zeros stripped
        (THALA, THALA),
        (THALA.upper().replace("0X", "0x"), THALA),
        ("0x1", "0x1"),
        ("0x0000000000000000000000000000000000000000000000000000000000000001", "0x1"),  # special: short
        ("0x0a", "0xa"),
        ("0x10", "0x" + "0" * 62 + "10"),  # 0x10 is not special: long
    ],
)
def test_every_spelling_of_an_address_normalises_to_aip40(spelling: str, canonical: str) -> None:
    assert normalize_address(spelling) == canonical


@pytest.mark.parametrize("bad", ["", "0x", "7730cd", "0x" + "1" * 65, "0xzz", "0x 1", "0x-1", "0x\u0661", None, 5])
def test_a_non_address_is_refused_with_an_error_naming_it(bad: object) -> None:
    with pytest.raises(AddressError, match="not an Aptos address"):
        normalize_address(bad)  # type: ignore[arg-type]


@given(st.binary(min_size=32, max_size=32))
def test_address_normalisation_agrees_with_aptos_sdk(raw: bytes) -> None:
    expected = str(AccountAddress(raw))
    stripped = "0x" + (raw.hex().lstrip("0") or "0")
    assert normalize_address(stripped) == normalize_address("0x" + raw.hex()) == expected
    assert long_address(stripped) == "0x" + raw.hex()
    assert short_address("0x" + raw.hex()) == stripped


def test_type_strings_normalise_addresses_inside_generics() -> None:
    printed = (
        "0xc7efb4076dbe143cbcd98cfaaa929ecfc8f299203dfff63b95ccb6bfe19850fa::swap::SwapEvent"
        "<0x1::aptos_coin::AptosCoin,0x07730cd28ee1cdc9e999336cbc430f99e7c44397c0aa77516f6f23a78559bb5::pool::X< u8 ,"
        " vector<0x0001::string::String>>>"
    )
    assert normalize_type(printed) == (
        "0xc7efb4076dbe143cbcd98cfaaa929ecfc8f299203dfff63b95ccb6bfe19850fa::swap::SwapEvent"
        f"<0x1::aptos_coin::AptosCoin, {THALA}::pool::X<u8, vector<0x1::string::String>>>"
    )
    assert (
        short_type(f"{THALA}::pool::X") == "0x7730cd28ee1cdc9e999336cbc430f99e7c44397c0aa77516f6f23a78559bb5::pool::X"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "foo",
        "0x1::coin",
        "0x1::coin::Coin<",
        "0x1::coin::Coin<>",
        "0x1::a::B>",
        "0x1::a::9b",
        "vector<u8, u8>",
        "0xg::a::B",
    ],
)
def test_a_malformed_type_string_is_refused(bad: str) -> None:
    with pytest.raises(AddressError):
        normalize_type(bad)


def test_deeply_nested_types_are_refused_not_recursed() -> None:
    with pytest.raises(AddressError, match="nested"):
        normalize_type("0x1::a::B<" * 50 + "u8" + ">" * 50)


def test_paired_fa_metadata_of_a_migrated_coin_matches_mainnet() -> None:
    # aptos.md §3.3: verified on chain; the hash takes the short (REST) spelling of the coin type.
    assert paired_fa_metadata(LZ_USDC) == "0x2b3be0a97a73c87ff62cbdd36837a9fb5bbd1d7f06a73b7ed62ec15c5326c1b8"
    assert paired_fa_metadata(APT) == "0xa"


def test_primary_store_address_matches_a_recorded_store() -> None:
    # fa_transfer_feepayer_v3665938237: the sender's primary store of 0x4378…e72d is 0x1f90…306f.
    owner = "0x5f9f8c58245aa43b289da4662079a38eab09f4d2f838918337995ad6951fa452"
    metadata = "0x43782fca70e1416fc0c75954942dadd4af8d305a608b6153397ad5801b71e72d"
    assert (
        primary_store_address(owner, metadata) == "0x1f90b383d8731a29cd84d2cdbb1a6b5818e975fdd9f1bd6db35ff8c1f263306f"
    )


def test_apt_has_one_asset_name_as_coin_and_as_fa() -> None:
    assert asset_name("0xa") == asset_name("0x000000000000000000000000000000000000000000000000000000000000000a") == APT
    assert asset_name("0x0001::aptos_coin::AptosCoin") == APT


def test_asset_namer_names_a_paired_fa_by_the_coin_type_the_transaction_mentions() -> None:
    namer = AssetNamer([LZ_USDC, "not a type"])
    assert namer.fa("0x2b3be0a97a73c87ff62cbdd36837a9fb5bbd1d7f06a73b7ed62ec15c5326c1b8") == LZ_USDC
    assert namer.fa("0xa") == APT
    other = "0xbae207659db88bea0cbead6da0ed00aac12edcdda169e591cd41c94180b46f3b"
    assert namer.fa(other) == other


def test_a_watch_list_normalises_to_a_set() -> None:
    assert normalize_addresses(["0x0a", "0xA", THALA[:2] + THALA[4:]]) == {"0xa", THALA}
