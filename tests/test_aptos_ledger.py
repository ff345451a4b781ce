"""The ledger-stream filter keeps exactly the transactions touching a watched wallet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantbot.chains.aptos.addresses import normalize_address, normalize_addresses
from quantbot.chains.aptos.parser import AptosParser
from quantbot.events import Swap, Transfer

FEEPAYER_TX = "fa_transfer_feepayer_v3665938237.json"
SENDER = "0x5f9f8c58245aa43b289da4662079a38eab09f4d2f838918337995ad6951fa452"
RECIPIENT = "0x541e28fb12aa661a30358f2bebcd44460187ec918cb9cee075c2db86ee6aed93"
FEE_PAYER = "0xcff3f102c7aaed500afa51d94d74f3b9f7e7b8e5a399fee14b60ac2211f97f1b"
STRANGER = "0x" + "ab" * 32


def load(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text())


def test_sender_fee_payer_and_fa_recipient_are_touched(aptos_fixtures: Path) -> None:
    touched = AptosParser().touched_addresses(load(aptos_fixtures, FEEPAYER_TX))
    assert {SENDER, RECIPIENT, FEE_PAYER} <= touched
    assert STRANGER not in touched


@pytest.mark.parametrize("wallet", [SENDER, RECIPIENT, FEE_PAYER])
def test_touches_finds_a_watched_wallet_among_many_others(aptos_fixtures: Path, wallet: str) -> None:
    others = {normalize_address(f"0x{i:064x}") for i in range(1, 10_000)}
    parser = AptosParser()
    tx = load(aptos_fixtures, FEEPAYER_TX)
    assert parser.touches(tx, others | {wallet})
    assert not parser.touches(tx, others)


def test_watched_addresses_match_whatever_spelling_the_node_prints(aptos_fixtures: Path) -> None:
    tx = load(aptos_fixtures, "fa_primary_fungible_store_transfer_mainnet_v1642580695.json")
    # The recipient is the special address 0x5; the sender's store prints with 63 hex digits.
    assert AptosParser().touches(
        tx, normalize_addresses(["0x0000000000000000000000000000000000000000000000000000000000000005"])
    )


def test_coin_v1_recipient_is_touched_through_its_event_handle(aptos_fixtures: Path) -> None:
    tx = load(aptos_fixtures, "coin_apt_transfer_aptos_account_transfer_v3509309.json")
    assert AptosParser().touches(tx, {"0x2a5ddd8e5ac5e30f61e42e4dc54a2d6a904412810767fa2e1674b08ca3b04365"})


def test_every_owner_in_a_parsed_event_is_touched(aptos_fixtures: Path, aptos_launch_fixtures: Path) -> None:
    """Whatever wallet the parser reports, the filter would have kept the transaction for it."""
    parser = AptosParser()
    files = [*aptos_fixtures.glob("*.json"), *aptos_launch_fixtures.glob("*.json")]
    checked = 0
    for path in files:
        data = json.loads(path.read_text())
        txs = data["transactions"] if isinstance(data, dict) and "transactions" in data else data
        for tx in txs if isinstance(txs, list) else [txs]:
            if not isinstance(tx, dict) or tx.get("type") != "user_transaction":
                continue
            touched = parser.touched_addresses(tx)
            for event in parser.parse_transaction(tx):
                owners = [event.wallet] if isinstance(event, Swap) else [event.source, event.destination]
                assert isinstance(event, Swap | Transfer)
                assert set(owners) <= touched, (path.name, owners)
                checked += 1
    assert checked >= 40


@pytest.mark.parametrize(
    "hostile", [{}, {"sender": 5}, {"events": "x"}, {"events": [1, {"guid": 3}]}, {"changes": [None]}]
)
def test_malformed_transactions_touch_nothing_and_never_raise(hostile: dict[str, Any]) -> None:
    parser = AptosParser()
    assert parser.touches(hostile, {STRANGER}) is False
    assert parser.touched_addresses(hostile) == set()
