"""Asset keys of the decimals cache: every spelling of an address or coin type finds the same entry."""

from __future__ import annotations

from aptos_sdk.account_address import AccountAddress
from hypothesis import given
from hypothesis import strategies as st

from quantbot.chains.aptos.addresses import normalize_address
from quantbot.chains.aptos.decimals import asset_key, assets_in

addresses = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())


def spellings(addr: str) -> list[str]:
    digits = addr[2:]
    return [addr, "0x" + (digits.lstrip("0") or "0"), "0x" + digits.upper(), "0x" + digits.rjust(64, "0")]


@given(addresses)
def test_every_spelling_of_an_address_normalizes_to_the_sdk_form(addr: str) -> None:
    expected = str(AccountAddress.from_str_relaxed(addr))
    assert {normalize_address(s) for s in spellings(addr)} == {expected}


@given(addresses, st.sampled_from(["coin", "asset", "usdc"]), st.sampled_from(["USDC", "Coin", "T"]))
def test_every_spelling_of_a_coin_type_is_one_asset_key(addr: str, module: str, name: str) -> None:
    keys = {asset_key(f"{s}::{module}::{name}") for s in spellings(addr)}
    assert len(keys) == 1


def test_assets_of_a_transaction_come_from_its_write_set_and_type_arguments() -> None:
    tx = {
        "changes": [
            {"data": {"type": "0x1::fungible_asset::FungibleStore", "data": {"metadata": {"inner": "0xa"}}}},
            {"data": {"type": "0x1::coin::CoinStore<0xcafe::usdc::USDC>", "data": {}}},
            {"data": None},
            "garbage",
        ],
        "payload": {"type_arguments": ["0x1::aptos_coin::AptosCoin", "vector<u8>"]},
    }
    assert list(assets_in(tx)) == ["0x1::aptos_coin::AptosCoin", "0xa", "0xcafe::usdc::USDC"]
