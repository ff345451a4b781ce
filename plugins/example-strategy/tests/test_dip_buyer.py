"""DipBuyer's behaviour, tested with quantbot's plugin harness: events in, intents out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from quantbot.api import PriceUpdate
from quantbot.testing import RecordingContext, feed, make_plugin, price_update, swap
from quantbot_example_strategy import DipBuyer

MINT = "Dip1111111111111111111111111111111111111111"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def prices(*values: str, start: datetime = T0, step_s: float = 60) -> list[PriceUpdate]:
    return [
        price_update(token=MINT, price_native=Decimal(v), observed_at=start + timedelta(seconds=i * step_s))
        for i, v in enumerate(values)
    ]


async def test_buys_once_when_the_price_falls_dip_pct_below_the_high() -> None:
    s = make_plugin(DipBuyer, tokens=[MINT], dip_pct=20, amount=5_000)
    intents = await feed(s, prices("100", "95", "81", "79", "70"))
    assert len(intents) == 1
    (buy,) = intents
    assert (buy.side, buy.token, buy.amount, buy.price_native) == ("buy", MINT, 5_000, Decimal(79))
    assert "21.0% below" in buy.reason


async def test_a_near_miss_does_not_buy() -> None:
    s = make_plugin(DipBuyer, tokens=[MINT], dip_pct=20)
    assert await feed(s, prices("100", "80.01", "90", "80.5")) == []


async def test_the_high_expires_with_the_window() -> None:
    s = make_plugin(DipBuyer, tokens=[MINT], dip_pct=20, window_s=300)
    # 100 was 10 minutes ago: the remembered high is now 85, and 75 is only 11.8% below it.
    assert await feed(s, prices("100", "85", "85", "85", "85", "85", "85", "85", "85", "85", "75")) == []


async def test_rearms_only_after_the_price_recovers() -> None:
    s = make_plugin(DipBuyer, tokens=[MINT], dip_pct=20, rearm_pct=10, window_s=10_000)
    ctx = RecordingContext(strategy_id="dip")
    assert len(await feed(s, prices("100", "80", "60"), ctx)) == 1  # 60 is a deeper dip, not a second buy
    later = T0 + timedelta(hours=1)
    assert await feed(s, prices("85", "89", start=later), ctx) == []  # 89 >= 80 * 1.1: re-armed, no buy
    assert len(await feed(s, prices("200", "150", start=later + timedelta(minutes=5)), ctx)) == 1


async def test_ignores_other_tokens_other_chains_and_other_topics() -> None:
    s = make_plugin(DipBuyer, tokens=[MINT], dip_pct=10)
    events = [
        *prices("100"),
        price_update(token="Other11111111111111111111111111111111111111", price_native=Decimal(1), observed_at=T0),
        price_update(chain="aptos", token=MINT, price_native=Decimal(1), observed_at=T0),
        swap(mint_out=MINT),
    ]
    assert await feed(s, events) == []


async def test_the_context_stamps_the_strategy_id() -> None:
    s = make_plugin(DipBuyer, id="my-dips", tokens=[MINT], dip_pct=10)
    ctx = RecordingContext(strategy_id="my-dips")
    (buy,) = await feed(s, prices("100", "50"), ctx)
    assert buy.strategy == "my-dips"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"dip_pct": 0}, "dip_pct must be between 0 and 100"),
        ({"dip_pct": 150}, "dip_pct must be between 0 and 100"),
        ({"rearm_pct": -1}, "rearm_pct must be >= 0"),
        ({"chain": "ethereum"}, "chain must be 'solana' or 'aptos'"),
        ({"amonut": 5}, "unknown field `amonut`"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(params: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        make_plugin(DipBuyer, **params)
