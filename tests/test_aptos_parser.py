"""Recorded Aptos transactions in, normalized Swap/Transfer events out (quantbot.chains.aptos.parser)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from quantbot.chains.aptos.addresses import APT, asset_name, normalize_address, normalize_type
from quantbot.chains.aptos.parser import AptosParser
from quantbot.chains.aptos.rest import FEE_STATEMENT
from quantbot.events import Swap, Transfer

USDC = "0xbae207659db88bea0cbead6da0ed00aac12edcdda169e591cd41c94180b46f3b"
USDT = "0x357b0b74bc833e95a115ad22604854d6b0fca151cecd94111770e5d6ffc9dc2b"
LZ_USDC = "0xf22bede237a07e121b56d91a491eb7bcdfd1f5907926a9e58338f964a01b17fa::asset::USDC"
TRADER = "0xbf9239be9eb7e7a3d8e4c1f36083464fd47e6bd1f82a43b7c0f7ee958705a52f"
EMOJICOIN_LOCALNET = "0xf000d910b99722d201c6cf88eb7d1112b43475b9765b118f289b5d65d919000d"
VENUE_BY_ROUTER = {
    "0x487e905f899ccb6d46fdaec56ba1e0c4cf119862a16c409904b8c78fab1f5e8a": "tapp",
    "0x007730cd28ee1cdc9e999336cbc430f99e7c44397c0aa77516f6f23a78559bb5": "thala",
    "0x4bf51972879e3b95c4781a5cdcb9e1ee24ef483e7d22f2d903626f126df62bd1": "cellana",
    "0x8b4a2c4bb53857c718a04c020b98f8c2e1f99a68b0f57389a8bf5434cd22e05c": "hyperion",
    "0xc7efb4076dbe143cbcd98cfaaa929ecfc8f299203dfff63b95ccb6bfe19850fa": "pancakeswap",
}


def load(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text())


def only(events: list[Any], kind: type) -> Any:
    assert len(events) == 1 and isinstance(events[0], kind), events
    return events[0]


def _generics(event_type: str) -> list[str]:
    inner = event_type[event_type.index("<") + 1 : -1]
    return [part.strip() for part in inner.split(",")]


def expected_from_dex_event(tx: dict[str, Any]) -> tuple[str, int, str, int]:
    """(mint_in, amount_in, mint_out, amount_out) as the DEX's own swap event states it.

    Amounts are what the pool saw; Hyperion's gross input adds its protocol fee (aptos.md §4.1).
    """
    found = []
    for event in tx["events"]:
        kind, data = event["type"], event["data"]
        if kind.endswith("::swap::SwapEvent") or "::swap::SwapEvent<" in kind:  # PancakeSwap <X, Y>
            x, y = _generics(kind)
            if data["amount_x_in"] == "0":
                found.append((y, int(data["amount_y_in"]), x, int(data["amount_x_out"])))
            else:
                found.append((x, int(data["amount_x_in"]), y, int(data["amount_y_out"])))
        elif kind.endswith("::pool::SwapEvent"):  # ThalaSwap v2
            meta = [m["inner"] for m in data["metadata"]]
            idx_in, idx_out = int(data["idx_in"]), int(data["idx_out"])
            found.append((meta[idx_in], int(data["amount_in"]), meta[idx_out], int(data["amount_out"])))
        elif kind.endswith("::liquidity_pool::SwapEvent"):  # Cellana
            found.append((data["from_token"], int(data["amount_in"]), data["to_token"], int(data["amount_out"])))
        elif kind.endswith("::pool_v3::SwapEventV3"):  # Hyperion
            gross = int(data["amount_in"]) + int(data["protocol_fee_amount"])
            found.append((data["from_token"]["inner"], gross, data["to_token"]["inner"], int(data["amount_out"])))
        elif kind.endswith("::router::Swapped"):  # Tapp
            assets = data["assets"]
            found.append(
                (
                    assets[int(data["asset_in_index"])],
                    int(data["amount_in"]),
                    assets[int(data["asset_out_index"])],
                    int(data["amount_out"]),
                )
            )
    assert len(found) == 1, found
    mint_in, amount_in, mint_out, amount_out = found[0]
    return asset_name(mint_in), amount_in, asset_name(mint_out), amount_out


def router_extra_input(tx: dict[str, Any]) -> int:
    """Tapp's router takes a fee from the trader's input store after the pool swap (hand-checked: 660)."""
    after = False
    extra = 0
    stores = {
        c["address"]
        for c in tx["changes"]
        if c["type"] == "write_resource"
        and c["data"]["type"] == "0x1::object::ObjectCore"
        and c["data"]["data"]["owner"] == tx["sender"]
    }
    for event in tx["events"]:
        if event["type"].endswith("::router::Swapped"):
            after = True
        elif after and event["type"] == "0x1::fungible_asset::Withdraw" and event["data"]["store"] in stores:
            extra += int(event["data"]["amount"])
    return extra


@pytest.mark.parametrize(
    ("name", "venue", "mint_in", "amount_in", "mint_out", "amount_out", "fee"),
    [
        ("pancakeswap_swap_exact_input_v223495386.json", "pancakeswap", LZ_USDC, 10_000, APT, 141_520, 1_400),
        (
            "thala_v2_pool_swap_exact_in_weighted_entry_v3541198894.json",
            "thala",
            APT,
            39_856_517,
            "0xb2c7780f0a255a6137e5b39733f5a4c85fe093c549de5c359c1232deef57d1b7",
            5_688_883_554,
            5_400,
        ),
        (
            "thala_v2_coin_wrapper_swap_exact_in_weighted_apt_coin_v3541198891.json",
            "thala",
            USDC,
            16_009_606,
            APT,
            318_716_385,
            6_900,
        ),
        (
            "cellana_router_swap_route_entry_usdc_usdt_v3541198895.json",
            "cellana",
            USDC,
            12_007_204,
            USDT,
            11_994_686,
            4_600,
        ),
        (
            "hyperion_router_v3_swap_batch_v3541198897.json",
            "hyperion",
            "0xb36527754eb54d7ff55daf13bcb54b42b88ec484bd6f0e3b2e0d1db169de6451",
            8_555_700_426,
            APT,
            79_713_183,
            5_700,
        ),
        (
            "hyperion_router_v3_swap_batch_coin_entry_v3541198896.json",
            "hyperion",
            USDC,
            160_096_058,
            USDT,
            160_007_758,
            8_300,
        ),
        ("tapp_router_swap_stable_v3541198602.json", "tapp", USDT, 20_012_007, USDC, 20_019_032, 8_000),
    ],
)
def test_dex_swap_fixture_yields_the_traders_swap_at_that_venue_with_hand_checked_amounts(
    aptos_fixtures: Path,
    name: str,
    venue: str,
    mint_in: str,
    amount_in: int,
    mint_out: str,
    amount_out: int,
    fee: int,
) -> None:
    tx = load(aptos_fixtures, name)
    swap = only(AptosParser().parse_transaction(json.dumps(tx)), Swap)
    assert (swap.venue, swap.mint_in, swap.amount_in, swap.mint_out, swap.amount_out) == (
        venue,
        mint_in,
        amount_in,
        mint_out,
        amount_out,
    )
    assert swap.wallet == normalize_address(tx["sender"])
    assert swap.fee == fee == int(tx["gas_used"]) * int(tx["gas_unit_price"])
    assert (swap.chain, swap.tx, swap.slot) == ("aptos", tx["hash"], int(tx["version"]))
    assert swap.block_time == datetime.fromtimestamp(int(tx["timestamp"]) // 10**6, UTC).replace(
        microsecond=int(tx["timestamp"]) % 10**6
    )


def test_every_swap_on_the_account_page_matches_its_dex_event_and_router(aptos_fixtures: Path) -> None:
    page = load(aptos_fixtures, "account_transactions_page_0xbf9239_dex_swaps.json")
    parser = AptosParser()
    swaps = parser.parse_transaction(json.dumps(page).encode())
    assert len(swaps) == len(page) == 20
    for tx, swap in zip(page, swaps, strict=True):
        assert isinstance(swap, Swap) and swap.slot == int(tx["version"])
        router = normalize_address(tx["payload"]["function"].split("::")[0])
        assert swap.venue == VENUE_BY_ROUTER[router]
        mint_in, amount_in, mint_out, amount_out = expected_from_dex_event(tx)
        assert (swap.mint_in, swap.mint_out, swap.amount_out) == (mint_in, mint_out, amount_out)
        assert swap.amount_in == amount_in + router_extra_input(tx)
        assert swap.wallet == TRADER
    assert not parser.rejected


def test_pancakeswap_sorted_pair_reads_the_coin_types_from_the_event_generics(aptos_fixtures: Path) -> None:
    tx = load(aptos_fixtures, "pancakeswap_swap_exact_input_v223495386.json")
    swap = only(AptosParser().parse_transaction(tx), Swap)
    assert expected_from_dex_event(tx) == (swap.mint_in, swap.amount_in, swap.mint_out, swap.amount_out)
    # The payload's <In, Out> order is what the trader meant; the event's <X, Y> is sorted.
    assert [normalize_type(t) for t in tx["payload"]["type_arguments"]] == [swap.mint_in, swap.mint_out]


def test_decimals_come_from_the_write_set_or_the_callers_lookup(aptos_fixtures: Path) -> None:
    asked: list[str] = []

    def lookup(asset: str) -> int | None:
        asked.append(asset)
        return {USDC: 6, USDT: 6}.get(asset)

    tx = load(aptos_fixtures, "cellana_router_swap_route_entry_usdc_usdt_v3541198895.json")
    swap = only(AptosParser(decimals=lookup).parse_transaction(tx), Swap)
    assert (swap.decimals_in, swap.decimals_out) == (6, 6)
    assert set(asked) == {USDC, USDT}
    apt = only(
        AptosParser(decimals=lookup).parse_transaction(
            load(aptos_fixtures, "thala_v2_pool_swap_exact_in_weighted_entry_v3541198894.json")
        ),
        Swap,
    )
    assert apt.decimals_in == 8  # APT is known without asking
    faucet = only(
        AptosParser().parse_transaction(load(aptos_fixtures, "fa_transfer_coins_testfaucetcoin_v6717630095.json")),
        Transfer,
    )
    assert faucet.decimals == 6  # the coin's CoinInfo/Metadata is in the write set


def test_a_failing_decimals_lookup_leaves_decimals_unknown_and_is_counted(aptos_fixtures: Path) -> None:
    def broken(asset: str) -> int | None:
        raise RuntimeError("node down")

    parser = AptosParser(decimals=broken)
    swap = only(
        parser.parse_transaction(load(aptos_fixtures, "cellana_router_swap_route_entry_usdc_usdt_v3541198895.json")),
        Swap,
    )
    assert swap.decimals_in is None and swap.amount_in == 12_007_204
    assert parser.rejected["decimals_lookup_failed"] == 2


def test_a_decimals_lookup_answering_nonsense_is_ignored_and_counted(aptos_fixtures: Path) -> None:
    parser = AptosParser(decimals=lambda asset: "6" if asset == USDC else -1)  # type: ignore[arg-type,return-value]
    tx = load(aptos_fixtures, "cellana_router_swap_route_entry_usdc_usdt_v3541198895.json")
    swap = only(parser.parse_transaction(tx), Swap)
    assert (swap.decimals_in, swap.decimals_out) == (None, None)
    assert parser.rejected["decimals_lookup_invalid"] == 2


def test_sponsored_swap_charges_no_fee_to_the_trader(aptos_fixtures: Path) -> None:
    tx = load(aptos_fixtures, "cellana_router_swap_route_entry_usdc_usdt_v3541198895.json")
    tx["signature"] = {
        "type": "fee_payer_signature",
        "sender": tx["signature"],
        "secondary_signer_addresses": [],
        "secondary_signers": [],
        "fee_payer_address": "0xcff3f102c7aaed500afa51d94d74f3b9f7e7b8e5a399fee14b60ac2211f97f1b",
        "fee_payer_signer": tx["signature"],
    }
    swap = only(AptosParser().parse_transaction(tx), Swap)
    assert swap.fee == 0 and swap.amount_in == 12_007_204


# --- transfers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "source", "destination", "amount"),
    [
        (
            "coin_apt_transfer_aptos_account_transfer_mainnet_v1747361321.json",
            "0x559d4f690c683fca7c539237aa8dc4c6ec09886b7016bf66f2cdeffef55468f0",
            "0x5d6233bb8d7f8bd714af196339e9fb3104c9d66f38867b2a0585c4f7b9d04d28",
            10,
        ),
        (
            "coin_apt_transfer_aptos_account_transfer_v3509309.json",
            "0xf08819a2ca002c1da8c6242040607617093f519eb2525201efaba47b0841f682",
            "0x2a5ddd8e5ac5e30f61e42e4dc54a2d6a904412810767fa2e1674b08ca3b04365",
            123_400_000,
        ),
        (
            "coin_apt_batch_transfer_coins_1400apt_v176278674.json",
            "0x80174e0fe8cb2d32b038c6c888dd95c3e1560736f0d4a6e8bed6ae43b5c91f6f",
            "0xcdaa56944a811c22398165b6c885b8aaad39fe7b91b008bb6334d639cbaec8f7",
            140_099_000_000,
        ),
        (
            # APT as the 0xa fungible asset, with the 2024 gas Withdraw (545 * 100) that is not a transfer.
            "fa_primary_fungible_store_transfer_mainnet_v1642580695.json",
            "0xa746e980ae21949a4f084db7403430f00bce3c9a1da4101ffcf0bf45ebd35e7e",
            "0x5",
            10_000,
        ),
    ],
)
def test_apt_transfer_fixture_yields_one_apt_transfer(
    aptos_fixtures: Path, name: str, source: str, destination: str, amount: int
) -> None:
    tx = load(aptos_fixtures, name)
    transfer = only(AptosParser().parse_transaction(tx), Transfer)
    assert (transfer.source, transfer.destination, transfer.mint, transfer.amount, transfer.decimals) == (
        source,
        destination,
        APT,
        amount,
        8,
    )
    assert (transfer.tx, transfer.slot) == (tx["hash"], int(tx["version"]))


def test_fa_transfer_names_a_migrated_coin_by_its_coin_type(aptos_fixtures: Path) -> None:
    transfer = only(
        AptosParser().parse_transaction(load(aptos_fixtures, "fa_transfer_coins_testfaucetcoin_v6717630095.json")),
        Transfer,
    )
    assert (
        transfer.mint
        == "0x448c83c716bd1144173c0522f108ff507bb8f4ddbe34a925bf3e1d7ea2632cfa::test_faucet::TestFaucetCoin"
    )
    assert transfer.amount == 10_000
    assert transfer.source == "0x5249a0f1ccb427e6595343ef001ec18765fd325beb70fbea0a9c25807167e60d"
    assert transfer.destination == "0xb7c348a3253a8102e354b21972319600f0933dd454db12d3e2fc81623ffa49be"


def test_sponsored_fa_transfer_resolves_stores_to_their_owners(aptos_fixtures: Path) -> None:
    transfer = only(
        AptosParser().parse_transaction(load(aptos_fixtures, "fa_transfer_feepayer_v3665938237.json")), Transfer
    )
    assert transfer.source == "0x5f9f8c58245aa43b289da4662079a38eab09f4d2f838918337995ad6951fa452"
    assert transfer.destination == "0x541e28fb12aa661a30358f2bebcd44460187ec918cb9cee075c2db86ee6aed93"
    assert transfer.mint == "0x43782fca70e1416fc0c75954942dadd4af8d305a608b6153397ad5801b71e72d"
    assert transfer.amount == 300_000_000


def test_one_source_paying_two_recipients_is_two_transfers_from_a_block(aptos_fixtures: Path) -> None:
    parser = AptosParser()
    events = parser.parse_transaction(load(aptos_fixtures, "block_by_version_86447894_coin_v1_events.json"))
    coin = "0x0000777821c78442e17d82c3d7a371f42de7189e4248e529fe6eee6bca40ddbb::apcoin::ApCoin"
    payer = "0xb731146f64e49695f67ec7d7cd11b58a94194c897a5c2a1fea6e00d36e220926"
    assert [(e.source, e.destination, e.mint, e.amount) for e in events] == [
        (payer, "0x48af300f89da29d2a355913fd95d77bd9102025a558fd66541de4e20960764ee", coin, 36_000_000),
        (payer, "0x111111988671bf90f28a06ece99f293677c35017e46c4f81a3e20f5b1d1cbdd6", coin, 18_000_000),
    ]
    assert parser.skipped == {"block_metadata_transaction": 1, "state_checkpoint_transaction": 1}
    assert not parser.rejected


def test_block_by_height_parses_its_user_transaction_and_skips_the_rest(aptos_fixtures: Path) -> None:
    parser = AptosParser()
    events = parser.parse_transaction((aptos_fixtures / "block_by_height_477445097_with_txs.json").read_bytes())
    assert [(type(e), e.slot) for e in events] == [(Transfer, 3665938237)]
    assert parser.skipped == {"block_metadata_transaction": 1, "block_epilogue_transaction": 1}


def test_failed_transaction_yields_nothing(aptos_fixtures: Path) -> None:
    parser = AptosParser()
    assert parser.parse_transaction(load(aptos_fixtures, "SYNTHETIC_failed_apt_transfer_v3509309.json")) == []
    assert parser.skipped == {"failed": 1} and not parser.rejected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("indexer_rows_fungible_asset_activities_cellana_swap_v999929475.json", "indexer_row"),
        ("indexer_rows_current_fungible_asset_balances_v999929475.json", "not_a_transaction"),
    ],
)
def test_files_that_are_not_rest_transactions_are_rejected_with_their_reason(
    aptos_fixtures: Path, name: str, reason: str
) -> None:
    parser = AptosParser()
    data = load(aptos_fixtures, name)
    assert parser.parse_transaction(json.dumps(data)) == []
    rows = len(data) if isinstance(data, list) else 1
    assert parser.rejected == {reason: rows}


def test_transaction_stream_protojson_is_parsed_like_its_rest_form(aptos_fixtures: Path) -> None:
    """gRPC shape: base64 hash, {seconds, nanos} timestamp, event data as JSON strings (aptos.md §6)."""
    data = load(aptos_fixtures, "grpc_protojson_apt_transfer_coins_fa_events_v119309341.json")
    parser = AptosParser()
    transfer = only(parser.parse_transaction(data), Transfer)
    assert (transfer.source, transfer.destination, transfer.mint, transfer.amount, transfer.decimals) == (
        "0x11111121810b0dd82da7fe72abc0972cb087cd8f37b55367a8fb0b2faead0763",
        "0x79e9f7c949bc47254ee4a881f424d0eaba65a0071cf6e8faa5c081599f44519d",
        APT,
        10_000,
        8,
    )
    assert transfer.tx == "0x" + base64.b64decode(data["info"]["hash"]).hex()
    assert transfer.slot == 119_309_341
    assert transfer.block_time == datetime(2025, 5, 9, 23, 46, 22, 648852, tzinfo=UTC)
    assert parser.touches(data, {"0x79e9f7c949bc47254ee4a881f424d0eaba65a0071cf6e8faa5c081599f44519d"})


def test_malformed_protojson_is_rejected_with_its_reason(aptos_fixtures: Path) -> None:
    data = load(aptos_fixtures, "grpc_protojson_apt_transfer_coins_fa_events_v119309341.json")
    data["info"]["hash"] = "not base64!"
    parser = AptosParser()
    assert parser.parse_transaction(data) == []
    assert parser.rejected == {"bad_protojson": 1}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("timestamp", "18446744073709551615", "bad_timestamp"),
        ("hash", "0x1234", "schema"),
        ("version", "-1", "schema"),
        ("gas_used", "18446744073709551616", "bad_number"),
        ("sender", "0xnothex", "schema"),
        ("events", {"not": "a list"}, "schema"),
    ],
)
def test_out_of_range_or_malformed_fields_are_rejected_with_their_reason(
    aptos_fixtures: Path, field: str, value: Any, reason: str
) -> None:
    tx = load(aptos_fixtures, "coin_apt_transfer_aptos_account_transfer_v3509309.json")
    tx[field] = value
    parser = AptosParser()
    assert parser.parse_transaction(tx) == []
    assert parser.rejected == {reason: 1}


def test_the_last_representable_timestamp_still_parses(aptos_fixtures: Path) -> None:
    tx = load(aptos_fixtures, "coin_apt_transfer_aptos_account_transfer_v3509309.json")
    tx["timestamp"] = "253402300799999999"
    transfer = only(AptosParser().parse_transaction(tx), Transfer)
    assert transfer.block_time == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_an_fa_event_whose_store_is_missing_from_the_write_set_rejects_the_transaction(aptos_fixtures: Path) -> None:
    tx = load(aptos_fixtures, "cellana_router_swap_route_entry_usdc_usdt_v3541198895.json")
    store = tx["events"][0]["data"]["store"]
    tx["changes"] = [c for c in tx["changes"] if c.get("address") != store]
    parser = AptosParser()
    assert parser.parse_transaction(tx) == []
    assert parser.rejected == {"unresolved_store": 1}


def test_a_coin_event_without_its_coin_store_rejects_the_transaction(aptos_fixtures: Path) -> None:
    tx = load(aptos_fixtures, "coin_apt_transfer_aptos_account_transfer_v3509309.json")
    tx["changes"] = [c for c in tx["changes"] if "CoinStore" not in json.dumps(c)]
    parser = AptosParser()
    assert parser.parse_transaction(tx) == []
    assert parser.rejected == {"unresolved_coin_store": 1}


def test_a_withdraw_of_the_fee_amount_is_gas_only_when_the_fee_statement_follows(aptos_fixtures: Path) -> None:
    tx = load(aptos_fixtures, "fa_primary_fungible_store_transfer_mainnet_v1642580695.json")
    assert [e["type"] for e in tx["events"]][-2:] == ["0x1::fungible_asset::Withdraw", FEE_STATEMENT]
    assert [e.amount for e in AptosParser().parse_transaction(tx)] == [10_000]  # 54_500 of gas dropped

    # A 2025 swap of APT (no gas event) with a 2024-style gas Withdraw added before its FeeStatement:
    swap_tx = load(aptos_fixtures, "thala_v2_pool_swap_exact_in_weighted_entry_v3541198894.json")
    apt_store = swap_tx["events"][0]["data"]["store"]  # the trader's APT store, sold from
    fee = int(swap_tx["gas_used"]) * int(swap_tx["gas_unit_price"])
    gas = {"guid": {"creation_number": "0", "account_address": "0x0"}, "sequence_number": "0"}
    gas |= {"type": "0x1::fungible_asset::Withdraw", "data": {"amount": str(fee), "store": apt_store}}
    charged = copy.deepcopy(swap_tx)
    charged["events"].insert(len(charged["events"]) - 1, gas)
    assert only(AptosParser().parse_transaction(charged), Swap).amount_in == 39_856_517
    # The same withdraw anywhere else is a real outflow of the trader's APT.
    moved = copy.deepcopy(swap_tx)
    moved["events"].append(gas)
    assert only(AptosParser().parse_transaction(moved), Swap).amount_in == 39_856_517 + fee


def test_a_storage_refund_is_netted_from_the_gas_charge_and_its_withdraw_is_still_gas(aptos_fixtures: Path) -> None:
    """The framework burns gas_used * gas_unit_price less the FeeStatement's storage refund: on the 2024 framework
    the gas Withdraw is that net amount, which is still gas (not the sender's outflow), and it is the fee booked."""
    from quantbot.api import aptos_gas_charge, aptos_wallet_deltas

    tx = load(aptos_fixtures, "fa_primary_fungible_store_transfer_mainnet_v1642580695.json")
    assert aptos_gas_charge(tx) == 545 * 100
    refunded = copy.deepcopy(tx)
    *_, gas, statement = refunded["events"]
    statement["data"]["storage_fee_refund_octas"] = "4500"
    gas["data"]["amount"] = "50000"  # what the epilogue burnt: 54_500 - 4_500
    assert aptos_gas_charge(refunded) == 50_000
    assert [e.amount for e in AptosParser().parse_transaction(refunded)] == [10_000]
    assert aptos_wallet_deltas(refunded, tx["sender"]) == aptos_wallet_deltas(tx, tx["sender"])

    statement["data"]["storage_fee_refund_octas"] = "abc"
    parser = AptosParser()
    assert parser.parse_transaction(refunded) == []
    assert parser.rejected == {"bad_fee_statement": 1}


def test_apt_moved_as_coin_and_as_fa_nets_to_one_asset(aptos_fixtures: Path) -> None:
    """Thala's coin wrapper withdraws and re-deposits APT on the same store: no APT leg, one swap."""
    tx = load(aptos_fixtures, "thala_v2_coin_wrapper_swap_exact_in_weighted_apt_coin_v3541198891.json")
    swap = only(AptosParser().parse_transaction(tx), Swap)
    assert swap.mint_out == APT and swap.amount_out == 318_716_385


# --- launchpad (emojicoin, localnet recordings) ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quote_in", "base_out"),
    [
        ("LOCALNET_emojicoin_swap_buy_bonding_curve_v1687.json", 100_000_000, 12_097_319_416_221),
        ("LOCALNET_emojicoin_swap_buy_first_swap_v3498.json", 200_000_000, 24_135_529_130_802),
    ],
)
def test_emojicoin_buy_is_an_apt_to_emojicoin_swap(
    aptos_launch_fixtures: Path, name: str, quote_in: int, base_out: int
) -> None:
    tx = load(aptos_launch_fixtures, name)
    swap_event = next(e for e in tx["events"] if e["type"].endswith("::emojicoin_dot_fun::Swap"))["data"]
    state = next(e for e in tx["events"] if e["type"].endswith("::emojicoin_dot_fun::State"))["data"]
    assert (int(swap_event["input_amount"]), int(swap_event["base_volume"])) == (quote_in, base_out)
    localnet = AptosParser(venues={"emojicoin": [(EMOJICOIN_LOCALNET, "emojicoin_dot_fun::Swap")]})
    swap = only(localnet.parse_transaction(tx), Swap)
    market = normalize_address(state["market_metadata"]["market_address"])
    assert (swap.mint_in, swap.amount_in) == (APT, quote_in)
    assert (swap.mint_out, swap.amount_out) == (f"{market}::coin_factory::Emojicoin", base_out)
    assert swap.wallet == normalize_address(swap_event["swapper"]) == normalize_address(tx["sender"])
    assert swap.venue == "emojicoin"
    # The same package at an address that is not mainnet's is not emojicoin.fun.
    assert only(AptosParser().parse_transaction(tx), Swap).venue == "unknown"


def test_mainnet_emojicoin_indexer_rows_are_rejected_as_indexer_rows(aptos_launch_fixtures: Path) -> None:
    rows = load(
        aptos_launch_fixtures, "MAINNET_indexer_rows_fungible_asset_activities_panora_buy_emojicoin_v2308282694.json"
    )
    parser = AptosParser()
    assert parser.parse_transaction(rows) == []
    assert parser.rejected == {"indexer_row": len(rows)}


def test_emojicoin_arena_trades_belong_to_the_escrow_not_to_the_sender(aptos_launch_fixtures: Path) -> None:
    """Arena swaps move the sender's escrowed coins, so the sender has no swap of their own here."""
    tx = load(aptos_launch_fixtures, "LOCALNET_emojicoin_arena_swap_sell_and_buy_fa_v176.json")
    events = AptosParser().parse_transaction(copy.deepcopy(tx))
    assert not any(isinstance(e, Swap) for e in events)
    sender = normalize_address(tx["sender"])
    assert all(isinstance(e, Transfer) and sender not in (e.source, e.destination) for e in events)
