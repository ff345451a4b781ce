"""whale_follow: qualifying whale signals become one sizing-hinted buy naming the whale; near misses don't."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from quantbot.api import PluginEnv
from quantbot.clock import SimClock
from quantbot.testing import RecordingContext, feed, make_plugin, swap, whale_signal
from quantbot_strategies.whale_follow import WhaleFollow
from tests.conftest import write

T0 = datetime(2026, 6, 1, tzinfo=UTC)
WHALE = "Wha1e11111111111111111111111111111111111111"
MINT = "So1anaTestMint1111111111111111111111111111"


def ctx() -> RecordingContext:
    return RecordingContext(strategy_id="wf", clock=SimClock(T0))


async def test_a_confident_large_buy_becomes_one_hinted_buy_that_names_the_whale() -> None:
    s = make_plugin(WhaleFollow, id="wf", min_confidence=0.7, sizing="equity_pct")
    (buy,) = await feed(s, [whale_signal(wallets=(WHALE,), size=70_000_000_000, confidence=0.71)], ctx())
    assert (buy.side, buy.token, buy.amount, buy.sizing) == ("buy", MINT, 0, "equity_pct")
    assert (buy.leader, buy.leader_amount, buy.strategy) == (WHALE, 70_000_000_000, "wf")
    assert "large_buy" in buy.reason


@pytest.mark.parametrize(
    ("params", "signal"),
    [
        ({"min_confidence": 0.7}, {"confidence": 0.69}),
        ({"kinds": ["cluster"]}, {"kind": "large_buy"}),
        ({}, {"kind": "large_sell"}),
        ({}, {"kind": "dump"}),
        ({"chains": ["aptos"]}, {"chain": "solana"}),
        ({"min_size_usd": 10_000}, {"size_usd": Decimal("9999.99")}),
        ({"min_size_usd": 10_000}, {"size_usd": None}),
    ],
)
async def test_near_misses_do_not_buy(params: dict[str, Any], signal: dict[str, Any]) -> None:
    s = make_plugin(WhaleFollow, **params)
    assert await feed(s, [whale_signal(**({"confidence": 0.9} | signal))], ctx()) == []
    assert s.skipped == 1


async def test_the_same_token_is_bought_again_only_after_rebuy_after_s() -> None:
    c = ctx()
    s = make_plugin(WhaleFollow, rebuy_after_s=600)
    assert len(await feed(s, [whale_signal(), whale_signal(kind="accumulation")], c)) == 1
    assert len(await feed(s, [whale_signal(token="Other1111111111111111111111111111111111111")], c)) == 1
    c.clock.advance(599)  # type: ignore[attr-defined]
    assert await feed(s, [whale_signal()], c) == []
    c.clock.advance(1)  # type: ignore[attr-defined]
    assert len(await feed(s, [whale_signal()], c)) == 1


async def started(data_dir: Path, now: datetime) -> WhaleFollow:
    """The strategy as the daemon builds it: attached to its data directory and started."""
    s = make_plugin(WhaleFollow, id="wf", rebuy_after_s=3600)
    s.attach(PluginEnv(clock=SimClock(now), data_dir=data_dir))
    await s.start()
    return s


async def test_a_restart_inside_the_rebuy_window_does_not_buy_the_token_again(tmp_path: Path) -> None:
    first = await started(tmp_path / "wf", T0)
    assert len(await feed(first, [whale_signal(tx="tx1")], ctx())) == 1
    await first.stop()

    later = T0 + timedelta(minutes=10)
    again = await started(tmp_path / "wf", later)
    c = RecordingContext(strategy_id="wf", clock=SimClock(later))
    assert await feed(again, [whale_signal(tx="tx2")], c) == [], "bought 10 minutes ago, before the restart"
    c.clock.advance(3000)  # type: ignore[attr-defined]
    assert len(await feed(again, [whale_signal(tx="tx3")], c)) == 1, "the hour since the first buy has passed"


async def test_an_unreadable_state_file_is_logged_and_the_strategy_starts_empty(tmp_path: Path) -> None:
    write(tmp_path / "wf" / "whale_follow.json", "{not json")
    with capture_logs() as logs:
        s = await started(tmp_path / "wf", T0)
    assert [e["event"] for e in logs] == ["whale_follow.state_unreadable"]
    assert len(await feed(s, [whale_signal()], ctx())) == 1


async def test_without_follow_leader_the_intent_names_no_leader_and_other_topics_are_ignored() -> None:
    s = make_plugin(WhaleFollow, follow_leader=False)
    (buy,) = await feed(s, [swap(), whale_signal()], ctx())
    assert buy.leader is None


async def test_remembered_tokens_are_bounded() -> None:
    c = ctx()
    s = make_plugin(WhaleFollow, max_tokens=2)
    tokens = [f"Tok{i}" + "1" * 40 for i in range(3)]
    assert len(await feed(s, [whale_signal(token=t) for t in tokens], c)) == 3
    # the oldest was forgotten, so a new signal for it buys again; the two newest are still remembered
    assert len(await feed(s, [whale_signal(token=t) for t in (tokens[2], tokens[1], tokens[0])], c)) == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kinds": ["dump"]}, "'dump' is a selling signal"),
        ({"kinds": ["whale"]}, "unknown signal kind 'whale'"),
        ({"kinds": []}, "kinds must name at least one"),
        ({"min_confidence": 1.5}, "Expected `float` <= 1"),
        ({"min_size_usd": -1}, "min_size_usd must be >= 0"),
        ({"sizing": "all_in"}, "Invalid enum value .all_in."),
        ({"chains": []}, "chains must name at least one chain"),
        ({"max_slippage_bps": 0}, "max_slippage_bps must be between 1 and 10000"),
        ({"min_confidance": 0.5}, "unknown field `min_confidance`"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(params: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        make_plugin(WhaleFollow, **params)
