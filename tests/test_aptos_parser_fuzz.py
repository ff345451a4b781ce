"""Hostile input never raises out of the Aptos parser; every event it still emits is well formed.

`max_examples` comes from QUANTBOT_FUZZ_EXAMPLES (default 10000, what CI runs; set it lower locally).
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantbot.chains.aptos.addresses import asset_name, normalize_address
from quantbot.chains.aptos.parser import AptosParser
from quantbot.events import Event, Swap, Transfer, decode, encode

EXAMPLES = int(os.environ.get("QUANTBOT_FUZZ_EXAMPLES", "10000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL_FIXTURES = [
    "pancakeswap_swap_exact_input_v223495386.json",
    "cellana_router_swap_route_entry_usdc_usdt_v3541198895.json",
    "thala_v2_pool_swap_exact_in_weighted_entry_v3541198894.json",
    "hyperion_router_v3_swap_batch_v3541198897.json",
    "coin_apt_transfer_aptos_account_transfer_mainnet_v1747361321.json",
    "fa_primary_fungible_store_transfer_mainnet_v1642580695.json",
    "fa_transfer_feepayer_v3665938237.json",
    "fa_transfer_coins_testfaucetcoin_v6717630095.json",
    "grpc_protojson_apt_transfer_coins_fa_events_v119309341.json",
]
HASH_KEYS = frozenset(
    {
        "hash",
        "state_change_hash",
        "event_root_hash",
        "accumulator_root_hash",
        "state_checkpoint_hash",
        "state_key_hash",
        "signature",
        "public_key",
        "authentication_key",
        "emoji_bytes",
    }
)

# Keys the parser reads, so random objects reach past the first checks.
REAL_KEYS = (
    "type version hash success sender gas_used gas_unit_price timestamp events changes data guid account_address"
    " creation_number amount store owner metadata inner address signature fee_payer_address payload transactions"
    " block_height coin_type info user typeStr"
).split()
NASTY = [
    "",
    "-1",
    "1e3",
    " 1",
    "18446744073709551616",
    "99999999999999999999999",
    "0x",
    "0xzz",
    "0x" + "f" * 65,
    "0x1::coin::Coin<",
    "0x1::a::B<" * 20,
    "\x00",
    "0x0",
    "0x1",
    "0xa",
    "user_transaction",
    "write_resource",
    "TRANSACTION_TYPE_USER",
    "0x1::fungible_asset::Deposit",
    "0x1::coin::WithdrawEvent",
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, biased towards the keys and strings a transaction has.

    Seeded by hypothesis (`st.randoms`): drawing it is ~100x cheaper than a recursive strategy,
    which is what lets CI run 10,000 examples per target within its time budget.
    """
    roll = rng.random()
    if depth < 4 and roll < 0.25:
        return {
            rng.choice(REAL_KEYS) if rng.random() < 0.8 else rng.choice(NASTY): random_json(rng, depth + 1)
            for _ in range(rng.randint(0, 6))
        }
    if depth < 4 and roll < 0.4:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(
        [
            None,
            rng.random() < 0.5,
            rng.randint(-(2**70), 2**70),
            rng.randint(0, 10),
            rng.uniform(-1e9, 1e9),
            rng.choice(NASTY),
            "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 8))),
        ]
    )


seeds = st.randoms(use_true_random=True)  # a seeded random.Random: fast draws, replayable, no shrinking


@pytest.fixture(scope="module")
def fixtures(aptos_fixtures: Path) -> list[dict[str, Any]]:
    return [json.loads((aptos_fixtures / name).read_text()) for name in SMALL_FIXTURES]


@pytest.fixture(scope="module")
def mutable_fixtures(fixtures: list[dict[str, Any]]) -> list[tuple[bytes, list[tuple[Any, ...]]]]:
    """Each fixture as JSON bytes (a fast deep copy) with every path into it, computed once."""
    return [(json.dumps(tx).encode(), [p for p in _paths(tx) if p]) for tx in fixtures]


def assert_well_formed(events: list[Event]) -> None:
    for event in events:
        assert isinstance(event, Swap | Transfer)
        assert event.chain == "aptos" and event.slot >= 0
        if isinstance(event, Swap):
            assert event.amount_in > 0 and event.amount_out > 0 and event.mint_in != event.mint_out
            assert normalize_address(event.wallet) == event.wallet
            assert asset_name(event.mint_in) == event.mint_in and asset_name(event.mint_out) == event.mint_out
        else:
            assert event.amount > 0 and event.source != event.destination
            assert asset_name(event.mint) == event.mint
        assert decode(encode(event)) == event


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


@FUZZ
@given(rng=seeds)
def test_mutated_fixtures_never_raise_and_emit_only_well_formed_events(
    mutable_fixtures: list[tuple[bytes, list[tuple[Any, ...]]]], rng: random.Random
) -> None:
    encoded, paths = rng.choice(mutable_fixtures)
    tx = json.loads(encoded)
    for _ in range(rng.randint(1, 4)):
        path = rng.choice(paths)
        try:  # an earlier mutation may have removed or replaced part of this path
            parent = tx
            for step in path[:-1]:
                parent = parent[step]
            if rng.random() < 0.4 and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = random_json(rng)
        except (KeyError, IndexError, TypeError):
            continue
    parser = AptosParser()
    events = parser.parse_transaction(tx)
    assert_well_formed(events)
    assert "internal_error" not in parser.rejected  # every rejection has a reason, none is a bug
    assert parser.parse_transaction(json.dumps(tx)) == events
    assert isinstance(parser.touches(tx, {"0x1"}), bool)


@FUZZ
@given(rng=seeds)
def test_random_json_never_raises(rng: random.Random) -> None:
    value = random_json(rng)
    parser = AptosParser()
    assert_well_formed(parser.parse_transaction(json.dumps(value)))
    assert "internal_error" not in parser.rejected
    if isinstance(value, dict):
        assert isinstance(parser.touches(value, {"0x1"}), bool)


@settings(max_examples=min(EXAMPLES, 300), deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.sampled_from(NASTY),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(REAL_KEYS), inner, max_size=5),
        max_leaves=10,
    )
)
def test_random_json_from_a_shrinking_strategy_never_raises(value: Any) -> None:
    """The same property with hypothesis-native structure (shrinks to a minimal example, slower to draw)."""
    assert_well_formed(AptosParser().parse_transaction(json.dumps(value)))


@FUZZ
@given(rng=seeds)
def test_random_bytes_are_rejected_with_a_counted_reason(rng: random.Random) -> None:
    raw = rng.randbytes(rng.randint(0, 200))
    parser = AptosParser()
    assert parser.parse_transaction(raw) == []
    try:
        empty_batch = json.loads(raw) == []
    except ValueError:
        empty_batch = False
    assert empty_batch or sum(parser.rejected.values()) >= 1


@settings(max_examples=min(EXAMPLES, 500), deadline=None)
@given(data=st.data())
def test_events_do_not_depend_on_how_addresses_are_spelled(fixtures: list[dict[str, Any]], data: st.DataObject) -> None:
    """Leading zeros stripped (REST), padded (indexer) or upper-cased: the same events come out."""
    tx = data.draw(st.sampled_from(fixtures))
    style = data.draw(st.sampled_from(["long", "short", "upper"]))

    def respell(match: re.Match[str]) -> str:
        digits = match.group(1)
        if style == "long":
            return "0x" + digits.rjust(64, "0")
        if style == "short":
            return "0x" + (digits.lstrip("0") or "0")
        return "0x" + digits.upper()

    def walk(node: Any, key: Any = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if isinstance(node, str) and key not in HASH_KEYS:
            return re.sub(r"0x([0-9a-fA-F]{1,64})(?![0-9a-fA-F])", respell, node)
        return node

    original = AptosParser().parse_transaction(tx)
    assert original
    assert AptosParser().parse_transaction(walk(tx)) == original


def test_invalid_utf8_inside_a_json_string_is_rejected_as_invalid_json() -> None:
    """Found by the fuzz test above: msgspec raises UnicodeDecodeError, not DecodeError, for these."""
    parser = AptosParser()
    assert parser.parse_transaction(b'"\x98"') == []
    assert parser.rejected == {"invalid_json": 1}


def test_deeply_nested_json_is_rejected_not_a_recursion_error() -> None:
    parser = AptosParser()
    assert parser.parse_transaction("[" * 100_000 + "]" * 100_000) == []
    assert parser.parse_transaction({"type": "user_transaction", "events": [[[[[]]]]]}) == []
    assert sum(parser.rejected.values()) == 2
