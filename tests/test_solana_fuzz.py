"""Hostile data: the Solana parser and decoders never raise anything but their own refusal.

Examples per target: QUANTBOT_FUZZ_EXAMPLES, else 10000 under CI=true, else 300 (quick local runs).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantbot.chains.solana.accounts import (
    DecodeError,
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
from quantbot.chains.solana.parser import SolanaParser
from quantbot.chains.solana.programs import PUMP_CREATE_EVENT, PUMP_FUN_PROGRAM, PUMP_TRADE_EVENT
from quantbot.events import Event, PumpTrade, Swap, Transfer, encode

from .test_solana_parser import TRANSACTIONS

EXAMPLES = int(os.environ.get("QUANTBOT_FUZZ_EXAMPLES") or (10_000 if os.environ.get("CI") == "true" else 300))
pytestmark = pytest.mark.timeout(max(120, EXAMPLES // 20))  # the suite's 120 s default fits ~2000 examples
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
ACCOUNT_FILES = (
    "web3js_fixture_spl-token-22-mint-account.json",
    "web3js_fixture_spl-token-mint-account.json",
    "web3js_fixture_spl-token-token-account.json",
    "metaplex_metadata_nft_getaccountinfo_base64.json",
    "pumpfun_bonding_curve_getaccountinfo.json",
    "pumpfun_bonding_curve_legacy_2024_getaccountinfo.json",
)
DECODERS = (
    decode_mint,
    decode_token_account,
    decode_metaplex_metadata,
    decode_bonding_curve,
    decode_raydium_v4_pool,
    decode_pumpswap_pool,
)
FIXTURES = Path(os.environ.get("QUANTBOT_FIXTURES", Path(__file__).parents[2] / "shared" / "fixtures")) / "solana"


def _load(names: tuple[str, ...]) -> list[Any]:
    if not FIXTURES.is_dir():
        return []
    return [json.loads((FIXTURES / n).read_text()) for n in names]


DOCS = _load(TRANSACTIONS)
ACCOUNTS = _load(ACCOUNT_FILES)
needs_fixtures = pytest.mark.usefixtures("solana_fixtures")  # skips (or fails under CI) when absent


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    """Millions of rejections would otherwise be millions of captured warning lines."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    yield
    structlog.configure(**saved)


KEYS = [
    "result", "transaction", "meta", "message", "accountKeys", "instructions", "signatures", "data", "parsed",
    "info", "value", "owner", "extensions", "state", "supply", "decimals", "preBalances", "postBalances",
]  # fmt: skip
"""Field names the parser and decoders look for, so random objects reach past the first check."""
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
nasty_strings = st.sampled_from(["", "\x00" * 8, "\u202e", "A" * 5000, "0", "-1", "1" * 30, "legacy", "base64"])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


PATHS = [list(_paths(d)) for d in DOCS]


def _exists(node: Any, path: tuple[Any, ...]) -> bool:
    for key in path:
        if isinstance(node, dict) and isinstance(key, str) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return False
    return True


def _replace(node: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    """A copy of `node` with `path` replaced (or deleted); only the containers on the path are copied."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    if delete and not rest:
        del copy[head]
    else:
        copy[head] = _replace(node[head], rest, value, delete)
    return copy


def _check(events: list[Event], parser: SolanaParser) -> None:
    for e in events:
        assert isinstance(e, Event)
        encode(e)  # every event is publishable
        if isinstance(e, Swap):
            assert e.amount_in > 0 and e.amount_out > 0 and e.mint_in != e.mint_out
        if isinstance(e, Transfer):
            assert e.amount > 0 and e.source != e.destination
        if isinstance(e, PumpTrade):
            assert e.token_amount >= 0
    assert all(isinstance(k, str) and v > 0 for k, v in parser.rejected.items())


@needs_fixtures
@FUZZ
@given(data=st.data())
def test_fuzz_mutated_recorded_transactions_never_raise(data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(DOCS) - 1))
    doc = DOCS[i]
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(PATHS[i]))
        value = data.draw(json_values | nasty_strings)
        if _exists(doc, path):  # an earlier mutation may have removed it
            doc = _replace(doc, path, value, delete=bool(path) and data.draw(st.booleans()))
    parser = SolanaParser()
    as_bytes = data.draw(st.booleans())
    raw: Any = msgspec.json.encode(doc) if as_bytes else doc
    _check(parser.parse_transaction(raw), parser)


@needs_fixtures
@FUZZ
@given(data=st.data())
def test_fuzz_byte_mangled_transactions_never_raise(data: st.DataObject) -> None:
    raw = bytearray(msgspec.json.encode(data.draw(st.sampled_from(DOCS))))
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at : at + data.draw(st.integers(0, 8))] = data.draw(st.binary(max_size=8))
    parser = SolanaParser()
    _check(parser.parse_transaction(bytes(raw)), parser)


NASTY: list[Any] = [
    None, True, 0, -1, 2**63, 2**64, -(2**63) - 1, 10**30, 1.5, "", "x", "\x00", "\u202e", "9" * 40,
    [], {}, [0], {"a": 1}, "legacy", "base64", ["AAAA", "base64"], "11111111111111111111111111111111",
]  # fmt: skip


def _random_value(rng: random.Random) -> Any:
    pick = rng.random()
    if pick < 0.6:
        return rng.choice(NASTY)
    if pick < 0.8:
        return rng.randint(-(2**65), 2**65)
    return "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 20)))


def _mutate(doc: Any, paths: list[tuple[Any, ...]], rng: random.Random) -> Any:
    for _ in range(rng.randint(1, 5)):
        path = rng.choice(paths)
        if not _exists(doc, path):
            continue
        if path and rng.random() < 0.3:
            doc = _replace(doc, path, None, delete=True)
        else:
            doc = _replace(doc, path, _random_value(rng), delete=False)
    return doc


@needs_fixtures
@FUZZ
@given(seed=st.integers(0, 2**64 - 1))
def test_fuzz_seeded_transaction_mutations_never_raise(seed: int) -> None:
    """Cheap per example (the mutations come from a seeded PRNG), so it scales to a million runs."""
    rng = random.Random(seed)
    i = rng.randrange(len(DOCS))
    doc = _mutate(DOCS[i], PATHS[i], rng)
    parser = SolanaParser()
    raw: Any = doc
    mode = rng.random()
    if mode < 0.4:
        raw = msgspec.json.encode(doc)
    elif mode < 0.55:
        mangled = bytearray(msgspec.json.encode(doc))
        at = rng.randrange(len(mangled))
        mangled[at : at + rng.randint(0, 6)] = rng.randbytes(rng.randint(0, 6))
        raw = bytes(mangled)
    _check(parser.parse_transaction(raw), parser)


@FUZZ
@given(value=json_values | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_fuzz_random_json_is_rejected_cleanly(value: Any) -> None:
    parser = SolanaParser()
    for raw in (value, json.dumps(value).encode(), {"jsonrpc": "2.0", "result": value, "id": 1}):
        assert parser.parse_transaction(raw) == [] or isinstance(value, dict)
    _check([], parser)


PUMP_PAYLOADS = [
    base64.b64decode(line[14:])
    for d in DOCS
    for line in (d.get("result", d)["meta"].get("logMessages") or [])
    if line.startswith("Program data: ") and base64.b64decode(line[14:])[:8] in (PUMP_CREATE_EVENT, PUMP_TRADE_EVENT)
]


@needs_fixtures
@FUZZ
@given(data=st.data())
def test_fuzz_random_and_mutated_program_data_in_logs_never_raise(data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        payload = data.draw(st.sampled_from([PUMP_CREATE_EVENT, PUMP_TRADE_EVENT])) + data.draw(st.binary(max_size=400))
    else:
        payload = bytearray(data.draw(st.sampled_from(PUMP_PAYLOADS)))
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(8, len(payload)))
            payload[at : at + data.draw(st.integers(0, 40))] = data.draw(st.binary(max_size=40))
        payload = bytes(payload)
    line = "Program data: " + base64.b64encode(payload).decode()
    if data.draw(st.integers(0, 9)) == 0:
        line = line[: data.draw(st.integers(0, len(line)))] + data.draw(st.text(max_size=8))
    logs = [f"Program {PUMP_FUN_PROGRAM} invoke [1]", line, f"Program {PUMP_FUN_PROGRAM} success"]
    parser = SolanaParser()
    events = parser.parse_logs(signature="s", slot=data.draw(st.integers(0, 2**63)), logs=logs)
    _check(events, parser)
    assert len(events) <= 1


@needs_fixtures
@FUZZ
@given(data=st.data())
def test_fuzz_decoders_on_random_and_mutated_account_bytes(data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        raw = data.draw(st.binary(max_size=800))
    else:
        mutable = bytearray(account_bytes(data.draw(st.sampled_from(ACCOUNTS)))[0])
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(mutable)))
            mutable[at : at + data.draw(st.integers(0, 16))] = data.draw(st.binary(max_size=16))
        raw = bytes(mutable)
    for decoder in DECODERS:
        try:
            decoder(raw)
        except DecodeError as exc:
            assert exc.reason


@FUZZ
@given(value=json_values)
def test_fuzz_account_responses_and_parsed_mints_are_decode_errors(value: Any) -> None:
    for fn in (decode_account, mint_from_parsed):
        for doc in (value, {"result": {"value": value}}, {"value": {"data": value, "owner": value}}):
            try:
                fn(doc)
            except DecodeError as exc:
                assert exc.reason
