"""sniper: an accepted token at or above min_score is bought once, sized by its score band."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from quantbot.api import TokenAccepted, TokenRejected
from quantbot.testing import RecordingContext, feed, make_plugin, token_accepted, token_launch
from quantbot_strategies.sniper import Sniper

MINT = "Snipe111111111111111111111111111111111111111"
BANDS = [{"min_score": 0.5, "amount": 20_000_000}, {"min_score": 0.8, "equity_pct": "2.5"}]


def accepted(score: float | None, mint: str = MINT, **launch: Any) -> TokenAccepted:
    return msgspec.structs.replace(token_accepted(mint=mint, **launch), score=score)


@pytest.mark.parametrize(
    ("score", "amount", "sizing", "pct"),
    [
        (0.5, 20_000_000, None, None),
        (0.79, 20_000_000, None, None),
        (0.8, 0, "equity_pct", Decimal("2.5")),
        (0.99, 0, "equity_pct", Decimal("2.5")),
    ],
)
async def test_the_score_band_sets_the_size(score: float, amount: int, sizing: str | None, pct: Decimal | None) -> None:
    s = make_plugin(Sniper, id="snipe", bands=BANDS, min_score=0.5, max_slippage_bps=800)
    (buy,) = await feed(s, [accepted(score)], RecordingContext(strategy_id="snipe"))
    assert (buy.side, buy.token, buy.amount, buy.sizing, buy.equity_pct) == ("buy", MINT, amount, sizing, pct)
    assert (buy.intent_id, buy.max_slippage_bps, buy.reduce_only) == ("snipe-solana-" + MINT, 800, False)
    assert f"score {score:.3f}" in buy.reason


@pytest.mark.parametrize("score", [0.49, 0.0, None])
async def test_scores_below_the_minimum_or_missing_are_skipped(score: float | None) -> None:
    s = make_plugin(Sniper, bands=BANDS, min_score=0.5)
    assert await feed(s, [accepted(score)]) == []
    assert s.skipped == 1


async def test_min_score_above_the_lowest_band_wins() -> None:
    s = make_plugin(Sniper, bands=BANDS, min_score=0.6)
    assert await feed(s, [accepted(0.55)]) == []
    (buy,) = await feed(s, [accepted(0.6)])
    assert buy.amount == 20_000_000


async def test_each_token_is_bought_once_and_rejected_tokens_and_other_chains_never() -> None:
    s = make_plugin(Sniper, bands=BANDS, chains=["solana"])
    ctx = RecordingContext()
    events = [
        accepted(0.9),
        accepted(0.95),
        TokenRejected(launch=token_launch(mint="Rej1111111111111111111111111111111111111111"), score=0.99),
        accepted(0.9, mint="0x1::apt::T", chain="aptos"),
        accepted(0.9, mint="Two1111111111111111111111111111111111111111"),
    ]
    assert [i.token for i in await feed(s, events, ctx)] == [MINT, "Two1111111111111111111111111111111111111111"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bands": []}, "bands must list at least one score band"),
        ({"bands": [{"min_score": 0.5}]}, "give exactly one of amount or equity_pct"),
        ({"bands": [{"min_score": 0.5, "amount": 1, "equity_pct": 1}]}, "give exactly one of amount or equity_pct"),
        ({"bands": [{"min_score": 0.5, "amount": 0}]}, "amount must be > 0"),
        ({"bands": [{"min_score": 0.5, "equity_pct": 150}]}, r"equity_pct must be in \(0, 100\]"),
        ({"bands": [{"min_score": 0.5, "amount": 1}, {"min_score": 0.5, "amount": 2}]}, "its own min_score"),
        ({"bands": [{"min_score": 0.5, "amount": 1}], "min_score": 0.9}, "no band reaches min_score 0.9"),
        ({"bands": BANDS, "chains": []}, "chains must name at least one chain"),
        ({"bands": BANDS, "max_slippage_bps": 20_000}, "max_slippage_bps must be between 1 and 10000"),
        ({"bands": [{"min_score": 0.5, "amout": 1}]}, "unknown field `amout`"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(params: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        make_plugin(Sniper, **params)


@given(
    scores=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=6, unique=True),
    score=st.floats(min_value=-1, max_value=2),
    floor=st.floats(min_value=0, max_value=1),
)
async def test_a_buy_uses_the_highest_band_the_score_reaches_and_nothing_below_the_floor(
    scores: list[float], score: float, floor: float
) -> None:
    assume(max(scores) >= floor)
    bands = [{"min_score": s, "amount": n + 1} for n, s in enumerate(scores)]
    intents = await feed(make_plugin(Sniper, bands=bands, min_score=floor), [accepted(score)])
    reached = [n + 1 for n, s in enumerate(scores) if score >= s]
    if score < floor or not reached:
        assert intents == []
    else:
        (buy,) = intents
        assert buy.amount == max(reached, key=lambda amount: scores[amount - 1])
