"""The local Aptos fullnode endpoint, driven by the real aptos-sdk RestClient over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aptos_sdk.account import Account
from aptos_sdk.account_address import AccountAddress
from aptos_sdk.async_client import ApiError, ResourceNotFound, RestClient
from aptos_sdk.authenticator import Authenticator, Ed25519Authenticator
from aptos_sdk.bcs import Serializer
from aptos_sdk.ed25519 import Signature
from aptos_sdk.transactions import (
    EntryFunction,
    RawTransaction,
    SignedTransaction,
    TransactionArgument,
    TransactionPayload,
)
from aptos_sdk.type_tag import StructTag, TypeTag
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.localnet.aptos import AptosLocalNode
from quantbot.localnet.aptos_ledger import RouterSwap
from quantbot.localnet.aptos_state import APT, addr_short, primary_store
from quantbot.localnet.aptos_wire import decode_signed, transaction_hash

USDC = "0xcafe::usdc::USDC"
ROUTER = "0xbeef"
POOL = "0x5001"
HEADERS = (
    "X-Aptos-Chain-Id",
    "X-Aptos-Ledger-Version",
    "X-Aptos-Ledger-Oldest-Version",
    "X-Aptos-Ledger-TimestampUsec",
    "X-Aptos-Epoch",
    "X-Aptos-Block-Height",
    "X-Aptos-Oldest-Block-Height",
)


@pytest.fixture
async def rest(aptos_node: AptosLocalNode) -> AsyncIterator[RestClient]:
    client = RestClient(aptos_node.url)
    yield client
    await client.close()


def transfer_payload(to: AccountAddress, amount: int) -> TransactionPayload:
    return TransactionPayload(
        EntryFunction.natural(
            "0x1::aptos_account",
            "transfer",
            [],
            [TransactionArgument(to, Serializer.struct), TransactionArgument(amount, Serializer.u64)],
        )
    )


def signed_txn(
    sender: Account, payload: TransactionPayload, *, seq: int = 0, expires: int | None = None, chain_id: int = 4
) -> SignedTransaction:
    raw = RawTransaction(sender.address(), seq, payload, 2_000, 100, expires or int(time.time()) + 600, chain_id)
    return SignedTransaction(raw, sender.sign_transaction(raw))


def error_body(exc: ApiError) -> dict[str, Any]:
    return dict(json.loads(str(exc)))


async def test_every_response_carries_the_ledger_headers_and_info_matches_them(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    info = await rest.info()
    assert info["chain_id"] == 4
    assert info["node_role"] == "full_node"
    for path in ("", "/transactions?start=0&limit=1", "/transactions/by_version/999"):
        response = await rest.client.get(aptos_node.url + path)
        for header in HEADERS:
            assert header in response.headers, (path, header)
        assert response.headers["X-Aptos-Ledger-Version"] == info["ledger_version"]
        assert response.headers["X-Aptos-Chain-Id"] == "4"


async def test_signed_transfer_commits_and_moves_fungible_store_balances(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    alice, bob = Account.generate(), Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)

    tx_hash = await rest.bcs_transfer(alice, bob.address(), 250_000)
    await rest.wait_for_transaction(tx_hash)
    tx = await rest.transaction_by_hash(tx_hash)

    assert tx["type"] == "user_transaction" and tx["success"] is True
    assert tx["vm_status"] == "Executed successfully"
    assert tx["payload"]["function"] == "0x1::aptos_account::transfer"
    assert tx["payload"]["arguments"] == [addr_short(str(bob.address())), "250000"]
    fee = int(tx["gas_used"]) * int(tx["gas_unit_price"])
    store = await rest.account_resource(
        AccountAddress.from_str_relaxed(primary_store(str(bob.address()), "0xa")), "0x1::fungible_asset::FungibleStore"
    )
    assert store["data"] == {"balance": "250000", "frozen": False, "metadata": {"inner": "0xa"}}
    assert aptos_node.balance(str(alice.address())) == 10**9 - 250_000 - fee
    assert await rest.account_sequence_number(alice.address()) == 1
    # The events name stores, and the write set says who owns them: the mainnet FA shape.
    events = {e["type"]: e["data"] for e in tx["events"]}
    owners = {
        c["address"]: c["data"]["data"]["owner"]
        for c in tx["changes"]
        if c["data"]["type"] == "0x1::object::ObjectCore"
    }
    assert owners[events["0x1::fungible_asset::Withdraw"]["store"]] == addr_short(str(alice.address()))
    assert owners[events["0x1::fungible_asset::Deposit"]["store"]] == addr_short(str(bob.address()))
    assert events["0x1::transaction_fee::FeeStatement"]["total_charge_gas_units"] == tx["gas_used"]


async def test_transaction_hash_is_the_one_the_client_can_compute_before_submitting(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    alice = Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    signed = signed_txn(alice, transfer_payload(Account.generate().address(), 1))
    assert await rest.submit_bcs_transaction(signed) == transaction_hash(signed.bytes())


async def test_bad_signature_is_refused_with_the_real_error_shape(aptos_node: AptosLocalNode, rest: RestClient) -> None:
    alice = Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    good = signed_txn(alice, transfer_payload(Account.generate().address(), 1))
    auth = good.authenticator.authenticator
    assert isinstance(auth, Ed25519Authenticator)
    forged = bytearray(auth.signature.data())
    forged[0] ^= 0xFF
    bad = SignedTransaction(
        good.transaction, Authenticator(Ed25519Authenticator(auth.public_key, Signature(bytes(forged))))
    )

    with pytest.raises(ApiError) as refused:
        await rest.submit_bcs_transaction(bad)

    assert refused.value.status_code == 400
    assert error_body(refused.value) == {
        "message": "Invalid transaction: Type: Validation Code: INVALID_SIGNATURE",
        "error_code": "vm_error",
        "vm_error_code": 1,
    }
    assert await rest.account_sequence_number(alice.address()) == 0


async def test_replayed_expired_and_wrong_chain_transactions_are_refused(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    alice = Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    first = signed_txn(alice, transfer_payload(alice.address(), 1))
    await rest.submit_bcs_transaction(first)
    cases = {
        "SEQUENCE_NUMBER_TOO_OLD": signed_txn(alice, transfer_payload(alice.address(), 2), seq=0),
        "TRANSACTION_EXPIRED": signed_txn(alice, transfer_payload(alice.address(), 1), seq=1, expires=1_000),
        "BAD_CHAIN_ID": signed_txn(alice, transfer_payload(alice.address(), 1), seq=1, chain_id=1),
        "SENDING_ACCOUNT_DOES_NOT_EXIST": signed_txn(Account.generate(), transfer_payload(alice.address(), 1)),
    }
    for status, txn in cases.items():
        with pytest.raises(ApiError) as refused:
            await rest.submit_bcs_transaction(txn)
        assert refused.value.status_code == 400
        body = error_body(refused.value)
        assert body["error_code"] == "vm_error"
        assert body["message"] == f"Invalid transaction: Type: Validation Code: {status}"


async def test_garbage_body_is_invalid_input_not_a_server_error(aptos_node: AptosLocalNode, rest: RestClient) -> None:
    response = await rest.client.post(
        aptos_node.url + "/transactions",
        content=b"\x01\x02",
        headers={"Content-Type": "application/x.aptos.signed_transaction+bcs"},
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_input"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_decoding_arbitrary_bytes_gives_a_transaction_or_a_clear_error(body: bytes) -> None:
    try:
        decode_signed(body)
    except ValueError as exc:
        assert str(exc).startswith("Failed to deserialize input into SignedTransaction")


async def test_transfer_beyond_balance_commits_as_failed_with_gas_charged(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    alice = Account.generate()
    aptos_node.fund(str(alice.address()), 20_000_000)  # covers the SDK's max gas deposit (100_000 * 100)
    tx_hash = await rest.bcs_transfer(alice, Account.generate().address(), 50_000_000)
    tx = await rest.transaction_by_hash(tx_hash)
    assert tx["success"] is False
    assert tx["vm_status"].startswith("Move abort in 0x1::fungible_asset: EINSUFFICIENT_BALANCE(0x10004)")
    assert [e["type"] for e in tx["events"]] == ["0x1::transaction_fee::FeeStatement"]
    assert aptos_node.balance(str(alice.address())) == 20_000_000 - int(tx["gas_used"]) * 100
    assert await rest.account_sequence_number(alice.address()) == 1
    with pytest.raises(AssertionError):  # aptos-sdk 0.11 reports a failed transaction this way
        await rest.wait_for_transaction(tx_hash)


async def test_simulation_runs_without_changing_state_and_refuses_real_signatures(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    alice = Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    raw = await rest.create_bcs_transaction(alice, transfer_payload(Account.generate().address(), 777))

    [simulated] = await rest.simulate_transaction(raw, alice)
    assert simulated["success"] is True and int(simulated["gas_used"]) > 0
    assert aptos_node.balance(str(alice.address())) == 10**9
    assert await rest.account_sequence_number(alice.address()) == 0

    with pytest.raises(ApiError) as refused:
        await rest.simulate_bcs_transaction(SignedTransaction(raw, alice.sign_transaction(raw)))
    assert error_body(refused.value)["message"] == "Simulated transactions must not have a valid signature"


async def test_pending_until_released_and_wait_by_hash_long_polls(aptos_node: AptosLocalNode, rest: RestClient) -> None:
    alice = Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    aptos_node.hold_commits()
    aptos_node.wait_by_hash_timeout = 0.05
    tx_hash = await rest.bcs_transfer(alice, Account.generate().address(), 5)

    assert (await rest.transaction_by_hash(tx_hash))["type"] == "pending_transaction"
    still = await rest.client.get(f"{aptos_node.url}/transactions/wait_by_hash/{tx_hash}")
    assert still.status_code == 200 and still.json()["type"] == "pending_transaction"

    aptos_node.wait_by_hash_timeout = 30.0
    waiting = asyncio.create_task(rest.client.get(f"{aptos_node.url}/transactions/wait_by_hash/{tx_hash}"))
    while aptos_node.hits["GET /transactions/wait_by_hash/{hash}"] < 2:  # noqa: ASYNC110  (request in flight)
        await asyncio.sleep(0.01)
    assert await aptos_node.release() == [tx_hash]
    committed = (await waiting).json()
    assert committed["type"] == "user_transaction" and committed["hash"] == tx_hash

    missing = await rest.client.get(f"{aptos_node.url}/transactions/wait_by_hash/0x{'ab' * 32}")
    assert missing.status_code == 404 and missing.json()["error_code"] == "transaction_not_found"


async def test_router_swap_moves_both_assets_and_emits_mainnet_shaped_events() -> None:
    router = RouterSwap(address=ROUTER, pool=POOL, rates={(APT, USDC): Decimal("0.05")})
    async with AptosLocalNode(router=router) as node:
        node.add_coin(USDC, name="USD Coin", symbol="USDC", decimals=6)
        node.set_balance(POOL, USDC, 10**12)
        trader = Account.generate()
        node.fund(str(trader.address()), 10**9)
        rest = RestClient(node.url)
        try:
            payload = EntryFunction.natural(
                "0x" + "0" * 60 + "beef::router",
                "swap_exact_input",
                [TypeTag(StructTag.from_str(APT)), TypeTag(StructTag.from_str(USDC))],
                [TransactionArgument(10**8, Serializer.u64), TransactionArgument(4_000_000, Serializer.u64)],
            )
            signed = await rest.create_bcs_signed_transaction(trader, TransactionPayload(payload))
            tx = await rest.transaction_by_hash(await rest.submit_bcs_transaction(signed))

            assert tx["success"] is True, tx["vm_status"]
            assert tx["payload"]["function"] == "0xbeef::router::swap_exact_input"
            assert tx["payload"]["type_arguments"] == [APT, "0xcafe::usdc::USDC"]
            types = [e["type"] for e in tx["events"]]
            assert types == [
                "0x1::fungible_asset::Withdraw",
                "0x1::fungible_asset::Deposit",
                "0x1::coin::WithdrawEvent",
                "0x1::account::CoinRegisterEvent",
                "0x1::coin::DepositEvent",
                "0xbeef::router::SwapEvent",
                "0x1::transaction_fee::FeeStatement",
            ]
            swap = tx["events"][5]["data"]
            assert (swap["amount_in"], swap["amount_out"]) == (str(10**8), "5000000")
            store = await rest.account_resource(trader.address(), "0x1::coin::CoinStore<0xcafe::usdc::USDC>")
            assert store["data"]["coin"] == {"value": "5000000"}
            deposit = tx["events"][4]
            assert deposit["guid"]["creation_number"] == store["data"]["deposit_events"]["guid"]["id"]["creation_num"]
            assert node.balance(POOL, USDC) == 10**12 - 5_000_000
            assert node.balance(POOL, APT) == 10**8

            greedy = EntryFunction.natural(
                "0x" + "0" * 60 + "beef::router",
                "swap_exact_input",
                [TypeTag(StructTag.from_str(APT)), TypeTag(StructTag.from_str(USDC))],
                [TransactionArgument(10**8, Serializer.u64), TransactionArgument(6_000_000, Serializer.u64)],
            )
            signed = await rest.create_bcs_signed_transaction(trader, TransactionPayload(greedy))
            failed = await rest.transaction_by_hash(await rest.submit_bcs_transaction(signed))
            assert failed["success"] is False
            assert "E_OUTPUT_LESS_THAN_MIN" in failed["vm_status"]
            assert node.balance(str(trader.address()), USDC) == 5_000_000
        finally:
            await rest.close()


async def test_recorded_mainnet_transactions_are_served_renumbered_with_their_hashes(
    aptos_node: AptosLocalNode, rest: RestClient, aptos_fixtures: Path
) -> None:
    recorded = json.loads((aptos_fixtures / "pancakeswap_swap_exact_input_v223495386.json").read_text())
    recorded = recorded[0] if isinstance(recorded, list) else recorded
    [version] = aptos_node.add_transactions([recorded])

    by_version = await rest.transaction_by_version(version)
    assert by_version["hash"] == recorded["hash"]
    assert by_version["version"] == str(version)
    assert by_version["events"] == recorded["events"]
    assert (await rest.transaction_by_hash(recorded["hash"]))["version"] == str(version)
    page = await rest.transactions(start=0, limit=100)
    assert [int(t["version"]) for t in page] == list(range(version + 1))
    with pytest.raises(ValueError, match="already in the ledger"):
        aptos_node.add_transactions([recorded])

    for path, code in (
        ("/transactions/by_version/99999", "transaction_not_found"),
        (f"/transactions/by_hash/0x{'cd' * 32}", "transaction_not_found"),
        (f"/accounts/0x{'12' * 32}", "account_not_found"),
    ):
        response = await rest.client.get(aptos_node.url + path)
        assert response.status_code == 404
        assert response.json()["error_code"] == code
        assert set(response.json()) == {"message", "error_code", "vm_error_code"}

    aptos_node.ledger.oldest_version = 1
    pruned = await rest.client.get(aptos_node.url + "/transactions?start=0")
    assert pruned.status_code == 410 and pruned.json()["error_code"] == "version_pruned"


async def test_account_transactions_page_by_sequence_number(aptos_node: AptosLocalNode, rest: RestClient) -> None:
    alice = Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    hashes = [await rest.bcs_transfer(alice, Account.generate().address(), n) for n in range(1, 4)]
    page = await rest.transactions_by_account(alice.address(), start=1, limit=10)
    assert [t["hash"] for t in page] == hashes[1:]
    assert [t["sequence_number"] for t in page] == ["1", "2"]


async def test_decimals_resources_for_coins_and_fungible_assets(aptos_node: AptosLocalNode, rest: RestClient) -> None:
    aptos_node.add_coin(USDC, name="USD Coin", symbol="USDC", decimals=6)
    aptos_node.add_fungible_asset("0x357b", name="Tether", symbol="USDt", decimals=6)
    coin = await rest.account_resource(AccountAddress.from_str_relaxed("0xcafe"), f"0x1::coin::CoinInfo<{USDC}>")
    assert coin["data"]["decimals"] == 6 and coin["data"]["symbol"] == "USDC"
    meta = await rest.account_resource(AccountAddress.from_str_relaxed("0x357b"), "0x1::fungible_asset::Metadata")
    assert meta["data"]["decimals"] == 6
    apt = await rest.account_resource(AccountAddress.from_str_relaxed("0x1"), f"0x1::coin::CoinInfo<{APT}>")
    assert apt["data"]["decimals"] == 8
    with pytest.raises(ResourceNotFound):
        await rest.account_resource(AccountAddress.from_str_relaxed("0xcafe"), "0x1::coin::CoinInfo<0xcafe::x::Y>")


async def test_injected_faults_rate_limit_fail_and_corrupt_then_recover(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    aptos_node.fail("status", status=429, retry_after="7", path="/transactions")
    aptos_node.fail("status", status=503, path="/transactions")
    aptos_node.fail("malformed", path="/transactions")
    url = aptos_node.url + "/transactions?start=0"

    limited = await rest.client.get(url)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    unavailable = await rest.client.get(url)
    assert unavailable.status_code == 503 and unavailable.json()["error_code"] == "internal_error"
    corrupt = await rest.client.get(url)
    with pytest.raises(json.JSONDecodeError):
        corrupt.json()
    assert (await rest.client.get(url)).status_code == 200
    assert aptos_node.faults == []


async def test_json_submission_of_a_signed_transfer_commits_with_the_bcs_hash(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    alice, bob = Account.generate(), Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    signed = signed_txn(alice, transfer_payload(bob.address(), 4242))
    raw = signed.transaction
    auth = signed.authenticator.authenticator
    assert isinstance(auth, Ed25519Authenticator)
    body = {
        "sender": str(alice.address()),
        "sequence_number": "0",
        "max_gas_amount": str(raw.max_gas_amount),
        "gas_unit_price": str(raw.gas_unit_price),
        "expiration_timestamp_secs": str(raw.expiration_timestamps_secs),
        "payload": {
            "type": "entry_function_payload",
            "function": "0x1::aptos_account::transfer",
            "type_arguments": [],
            "arguments": [str(bob.address()), "4242"],
        },
        "signature": {
            "type": "ed25519_signature",
            "public_key": str(auth.public_key),
            "signature": "0x" + auth.signature.data().hex(),
        },
    }
    response = await rest.client.post(aptos_node.url + "/transactions", json=body)
    assert response.status_code == 202
    assert response.json()["hash"] == transaction_hash(signed.bytes())
    assert aptos_node.balance(str(bob.address())) == 4242

    body["payload"]["function"] = "0x1::some::unknown"  # type: ignore[index]
    refused = await rest.client.post(aptos_node.url + "/transactions", json=body)
    assert refused.status_code == 400 and refused.json()["error_code"] == "invalid_input"


async def test_transfer_coins_of_an_unmigrated_coin_moves_coin_stores_with_v1_events(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    aptos_node.add_coin(USDC, name="USD Coin", symbol="USDC", decimals=6)
    alice, bob = Account.generate(), Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    aptos_node.set_balance(str(alice.address()), USDC, 1_000_000)

    tx = await rest.transaction_by_hash(await rest.transfer_coins(alice, bob.address(), USDC, 400_000))

    assert tx["success"] is True and tx["payload"]["type_arguments"] == [USDC]
    events = [(e["type"], e["guid"]["account_address"]) for e in tx["events"]]
    assert events == [
        ("0x1::coin::WithdrawEvent", addr_short(str(alice.address()))),
        ("0x1::account::CoinRegisterEvent", addr_short(str(bob.address()))),
        ("0x1::coin::DepositEvent", addr_short(str(bob.address()))),
        ("0x1::transaction_fee::FeeStatement", "0x0"),
    ]
    stores = {
        c["address"]: c["data"]["data"]["coin"]["value"] for c in tx["changes"] if "CoinStore" in c["data"]["type"]
    }
    assert stores == {addr_short(str(alice.address())): "600000", addr_short(str(bob.address())): "400000"}


async def test_a_transaction_ahead_of_its_sequence_number_waits_for_the_gap_to_fill(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    alice = Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    later = signed_txn(alice, transfer_payload(alice.address(), 2), seq=1)
    later_hash = await rest.submit_bcs_transaction(later)
    assert (await rest.transaction_by_hash(later_hash))["type"] == "pending_transaction"

    await rest.submit_bcs_transaction(signed_txn(alice, transfer_payload(alice.address(), 1), seq=0))

    assert (await rest.transaction_by_hash(later_hash))["type"] == "user_transaction"
    assert await rest.account_sequence_number(alice.address()) == 2


async def test_arguments_of_the_wrong_shape_commit_as_a_failed_transaction(
    aptos_node: AptosLocalNode, rest: RestClient
) -> None:
    alice = Account.generate()
    aptos_node.fund(str(alice.address()), 10**9)
    short_args = TransactionPayload(
        EntryFunction.natural("0x1::aptos_account", "transfer", [], [TransactionArgument(5, Serializer.u8)])
    )
    tx = await rest.transaction_by_hash(await rest.submit_bcs_transaction(signed_txn(alice, short_args)))
    assert tx["success"] is False and tx["vm_status"] == "FAILED_TO_DESERIALIZE_ARGUMENT"
    assert await rest.account_sequence_number(alice.address()) == 1
