"""The plugin authors' harness behaves like the daemon: topics honoured, filters fail closed."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from quantbot.api import Event, Filter, FilterVerdict, OrderIntent, Strategy, StrategyContext, TokenCandidate
from quantbot.testing import (
    check_filter,
    feed,
    make_plugin,
    price_update,
    swap,
    token_accepted,
    token_launch,
    whale_signal,
)
from quantbot_filters.blocklist import BlocklistFilter


class EchoBuys(Strategy):
    def topics(self) -> tuple[str, ...]:
        return ("whale.signal", "chain.*.swap")

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        token = getattr(event, "token", None) or getattr(event, "mint_out", "")
        await ctx.submit(
            OrderIntent(chain="solana", intent_id=str(len(token)), strategy="x", side="buy", token=token, amount=1)
        )


class Raises(Filter):
    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        raise RuntimeError("boom")


class Hangs(Filter):
    async def check(self, candidate: TokenCandidate) -> FilterVerdict:
        await asyncio.sleep(60)
        return self.verdict(True)


async def test_feed_delivers_only_the_topics_a_strategy_asked_for() -> None:
    s = make_plugin(EchoBuys, id="echo")
    events = [whale_signal(token="W"), price_update(), swap(mint_out="M"), token_accepted(), swap(chain="aptos")]
    intents = await feed(s, events)
    assert [i.token for i in intents] == ["W", "M", "So1anaTestMint1111111111111111111111111111"]
    assert {i.strategy for i in intents} == {"echo"}


async def test_check_filter_passes_verdicts_through_and_fails_closed() -> None:
    blocklist = make_plugin(BlocklistFilter, name_patterns=["rug"])
    assert (await check_filter(blocklist, token_launch(name="Good Coin"))).passed
    assert not (await check_filter(blocklist, token_launch(name="rug pull"))).passed
    raised = await check_filter(make_plugin(Raises), token_launch())
    assert (raised.passed, raised.reason) == (False, "filter error: RuntimeError")
    hung = await check_filter(make_plugin(Hangs), token_launch(), timeout=0.05)
    assert (hung.passed, hung.reason) == (False, "filter error: TimeoutError")


def test_event_builders_make_real_typed_events() -> None:
    p = price_update(price_native=Decimal(3))
    assert p.topic == "price.update" and p.price_native == Decimal(3)
    assert whale_signal().topic == "whale.signal"
    assert token_accepted(name="X").launch.name == "X"


def test_make_plugin_refuses_unknown_parameters() -> None:
    with pytest.raises(Exception, match="unknown field"):
        make_plugin(BlocklistFilter, name_paterns=["x"])


async def test_token_candidate_builds_features_and_explains_the_unmeasured_ones() -> None:
    from quantbot.testing import holders_info, mint_info, token_candidate

    c = token_candidate(name="Pepe", mint=mint_info(supply=100), holders=holders_info(supply=100, top=[5, 30]))
    assert c.launch.name == "Pepe" and c.mint is not None and c.mint.supply == 100
    assert c.holders is not None and [h.amount for h in c.holders.top] == [30, 5]
    assert c.liquidity is None and c.why_missing("liquidity") == "not measured (test candidate)"
    addressed = token_candidate(mint="Mint1", creator="Dev1", missing={"lp": "timeout"})
    assert (addressed.launch.mint, addressed.launch.creator, addressed.mint) == ("Mint1", "Dev1", None)
    assert addressed.why_missing("lp") == "timeout"
