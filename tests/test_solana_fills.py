"""`api.solana_wallet_deltas`: what a transaction moved for one wallet, the executors' fill reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.api import NATIVE_TOKEN, solana_wallet_deltas
from quantbot.chains.solana.parser import SolanaParser
from quantbot.events import Swap

SOL = NATIVE_TOKEN["solana"]
WALLET = "8hnZamLJMaHYzTXGxWTEGUnyCXkjdtTV3EQ4JWaUwzGF"
MINTS = ["HhUVkZ1qz8vfMqZDemLyxBFxrHFKVSYAk7a6227Lpump", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", SOL]
KEYS = [
    WALLET,
    "GHa33oDG4yioeufqZkPUrbpYM5Vkb8pZFPaReZGRgd3w",
    "95rVs91daKmzom4SM41dg4MRmy5M7rMEHPerenZwWaCq",
    "FVdo7CDJarhYoH6McyTFqx71EtzCPViinvdd1v86Qmy5",
]


@pytest.mark.parametrize(
    ("name", "wallet", "expected"),
    [
        # 0.5 SOL in plus a 0.0045 SOL tip; the 305,001 fee is left out (the executor reports it on its own)
        (
            "raydium_v4_swap_direct_gettransaction_jsonparsed.json",
            WALLET,
            {MINTS[0]: 7_971_544_451, SOL: -504_500_000},
        ),
        # Jupiter route, token -> SOL: 964,248,099 out less a 1,000,000 lamport payment in the same transaction
        (
            "jupiter_v6_route_via_raydium_gettransaction_jsonparsed.json",
            "GHa33oDG4yioeufqZkPUrbpYM5Vkb8pZFPaReZGRgd3w",
            {"FVdo7CDJarhYoH6McyTFqx71EtzCPViinvdd1v86Qmy5": -11_288_441_160, SOL: 963_248_099},
        ),
        # raw "json" encoding with lookup tables
        (
            "pumpswap_amm_buy_gettransaction_json.json",
            "95rVs91daKmzom4SM41dg4MRmy5M7rMEHPerenZwWaCq",
            {"EWV6bjhKF5zkXANCdWPvDs7dofRVk4pKyVTitqgEWj8E": -468_934_276_696_458, SOL: 201_692_493},
        ),
    ],
)
def test_recorded_swaps_give_the_wallets_real_deltas_consistent_with_the_parsers_swap(
    solana_fixtures: Path, name: str, wallet: str, expected: dict[str, int]
) -> None:
    raw = (solana_fixtures / name).read_bytes()
    deltas = solana_wallet_deltas(raw, wallet)
    assert deltas == expected
    [swap] = [e for e in SolanaParser().parse_transaction(raw) if isinstance(e, Swap) and e.wallet == wallet]
    assert deltas[swap.mint_out] == swap.amount_out or swap.mint_out == SOL
    assert -deltas[swap.mint_in] == swap.amount_in or swap.mint_in == SOL


def test_a_wallet_the_transaction_does_not_touch_moved_nothing(solana_fixtures: Path) -> None:
    raw = (solana_fixtures / "raydium_v4_swap_direct_gettransaction_jsonparsed.json").read_bytes()
    assert solana_wallet_deltas(raw, "11111111111111111111111111111111") == {}


@pytest.mark.parametrize("bad", [b"", b"{}", b'{"result": null}', b"[1,2]", b'{"result": {"transaction": 5}}'])
def test_something_that_is_not_a_transaction_is_a_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):  # LayoutError, a ValueError with a reason
        solana_wallet_deltas(bad, WALLET)


lamports = st.integers(min_value=0, max_value=10**15)
token_row = st.tuples(st.sampled_from([0, 1]), st.integers(min_value=0, max_value=10**18))


@given(
    pre=st.lists(lamports, min_size=4, max_size=4),
    post=st.lists(lamports, min_size=4, max_size=4),
    fee=st.integers(min_value=0, max_value=10**7),
    pre_tokens=st.dictionaries(st.sampled_from([1, 2, 3]), token_row),
    post_tokens=st.dictionaries(st.sampled_from([1, 2, 3]), token_row),
)
def test_deltas_are_post_minus_pre_per_mint_with_sol_net_of_the_fee_and_rent_neutral(
    pre: list[int],
    post: list[int],
    fee: int,
    pre_tokens: dict[int, tuple[int, int]],
    post_tokens: dict[int, tuple[int, int]],
) -> None:
    # account i holds mint MINTS[...] for the wallet; WSOL (index 2 in MINTS) counts as SOL, never as a token
    mint_of = {1: MINTS[0], 2: MINTS[1], 3: SOL}

    def rows(table: dict[int, tuple[int, int]]) -> list[dict[str, Any]]:
        return [
            {
                "accountIndex": i,
                "mint": mint_of[i],
                "owner": WALLET if owner_flag == 0 else KEYS[1],
                "programId": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
                "uiTokenAmount": {"amount": str(amount), "decimals": 6, "uiAmount": None, "uiAmountString": "0"},
            }
            for i, (owner_flag, amount) in table.items()
        ]

    doc = {
        "slot": 1,
        "blockTime": None,
        "version": 0,
        "transaction": {
            "signatures": ["5" * 88],
            "message": {
                "header": {
                    "numRequiredSignatures": 1,
                    "numReadonlySignedAccounts": 0,
                    "numReadonlyUnsignedAccounts": 0,
                },
                "accountKeys": KEYS,
                "recentBlockhash": "11111111111111111111111111111111",
                "instructions": [],
            },
        },
        "meta": {
            "err": None,
            "fee": fee,
            "preBalances": pre,
            "postBalances": post,
            "preTokenBalances": rows(pre_tokens),
            "postTokenBalances": rows(post_tokens),
            "innerInstructions": [],
            "logMessages": [],
        },
    }
    got = solana_wallet_deltas(doc, WALLET)
    expected: dict[str, int] = {}
    sol = post[0] - pre[0] + fee
    for i in (1, 2, 3):
        before = pre_tokens[i][1] if i in pre_tokens and pre_tokens[i][0] == 0 else None
        after = post_tokens[i][1] if i in post_tokens and post_tokens[i][0] == 0 else None
        sol += (post[i] if after is not None else 0) - (pre[i] if before is not None else 0)
        if mint_of[i] != SOL and (before is not None or after is not None):
            expected[mint_of[i]] = expected.get(mint_of[i], 0) + (after or 0) - (before or 0)
    expected[SOL] = sol
    assert got == {m: v for m, v in expected.items() if v}
