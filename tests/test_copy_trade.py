"""copy_trade: leaders' buys copied at a percentage under per-leader caps, sells mirrored in proportion
from the strategy's own fills, a leader paused after repeated failures and resumed after the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from quantbot.api import (
    Event,
    OrderApproved,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    PluginEnv,
    PositionUpdate,
    RejectReason,
    Swap,
)
from quantbot.clock import SimClock
from quantbot.testing import RecordingContext, feed, make_plugin, swap
from quantbot_strategies.copy_trade import CopyTrade
from tests.conftest import write

T0 = datetime(2026, 6, 1, tzinfo=UTC)
WSOL = "So11111111111111111111111111111111111111112"
APT = "0x1::aptos_coin::AptosCoin"
LEADER = "Leader1111111111111111111111111111111111111"
OTHER = "Other11111111111111111111111111111111111111"
APTOS_LEADER = "0xabc"
SECOND = "Second111111111111111111111111111111111111"
MINT = "Mint111111111111111111111111111111111111111"


def leader_buy(spent: int, got: int, tx: str, wallet: str = LEADER, token: str = MINT, **fields: Any) -> Swap:
    fields = {"block_time": T0} | fields
    return swap(wallet=wallet, mint_in=WSOL, amount_in=spent, mint_out=token, amount_out=got, tx=tx, **fields)


def leader_sell(sold: int, got: int, tx: str, wallet: str = LEADER, token: str = MINT, **fields: Any) -> Swap:
    fields = {"block_time": T0} | fields
    return swap(wallet=wallet, mint_in=token, amount_in=sold, mint_out=WSOL, amount_out=got, tx=tx, **fields)


def ctx() -> RecordingContext:
    return RecordingContext(strategy_id="copy", clock=SimClock(T0))


def plugin(**params: Any) -> CopyTrade:
    leaders = params.pop("leaders", [{"chain": "solana", "address": LEADER}])
    return make_plugin(CopyTrade, id="copy", leaders=leaders, **params)


async def started(env: PluginEnv) -> CopyTrade:
    """The strategy as the daemon builds it: attached to its data directory (where its books are saved) and started."""
    s = plugin()
    s.attach(env)
    await s.start()
    return s


def fills(intent: OrderIntent, order_id: str, *, amount_in: int, amount_out: int) -> list[Event]:
    """What the order path publishes for an approved and filled order."""
    return [
        OrderApproved(order_id=order_id, intent=intent),
        OrderFilled(order_id=order_id, executor="paper", tx="t", amount_in=amount_in, amount_out=amount_out),
    ]


async def test_a_leader_buy_is_copied_at_the_copy_percentage() -> None:
    s = plugin(copy_pct=25, max_slippage_bps=300)
    (buy,) = await feed(s, [leader_buy(2_000_000_000, 10_000, "tx1")], ctx())
    assert (buy.side, buy.token, buy.amount, buy.sizing) == ("buy", MINT, 500_000_000, None)
    assert (buy.leader_amount, buy.leader, buy.max_slippage_bps, buy.reduce_only) == (2_000_000_000, None, 300, False)
    assert buy.intent_id == f"copy-solana-tx1-{LEADER}-buy", "derived from the leader's tx: a replay is a duplicate"


@pytest.mark.parametrize("second_token", [MINT, OTHER])
async def test_two_leaders_trading_in_one_transaction_are_two_copies_with_distinct_intent_ids(
    second_token: str,
) -> None:
    s = plugin(leaders=[{"chain": "solana", "address": LEADER}, {"chain": "solana", "address": SECOND}])
    both = [leader_buy(10**9, 1_000, "tx1"), leader_buy(2 * 10**9, 500, "tx1", wallet=SECOND, token=second_token)]
    first, second = await feed(s, both, ctx())
    assert (first.amount, second.amount) == (10**8, 2 * 10**8)
    assert first.intent_id != second.intent_id, "the same id would be refused as a duplicate of the first"


async def test_a_leader_buy_older_than_max_age_is_not_copied_but_an_old_sell_is_still_mirrored() -> None:
    s = plugin(copy_pct=10, max_age_s=120)
    c = ctx()
    hours_ago = leader_buy(10**9, 1_000, "old", token=OTHER, block_time=T0 - timedelta(hours=3))
    assert await feed(s, [hours_ago], c) == [], "a backfill after downtime is not copied at today's price"
    assert s.skipped == 1
    (fresh,) = await feed(s, [leader_buy(10**9, 1_000, "b1", block_time=T0 - timedelta(seconds=120))], c)
    await feed(s, fills(fresh, "o1", amount_in=10**8, amount_out=100), c)
    (sell,) = await feed(s, [leader_sell(1_000, 1, "s1", block_time=T0 - timedelta(minutes=30))], c)
    assert (sell.side, sell.amount) == ("sell", 100), "a sell only reduces what we hold, whatever its age"


async def test_a_buy_delivered_after_the_leaders_later_sell_of_the_token_is_not_copied() -> None:
    s = plugin()
    c = ctx()
    assert await feed(s, [leader_sell(1_000, 1, "s", slot=11)], c) == []
    assert await feed(s, [leader_buy(10**9, 1_000, "b", slot=10), leader_buy(10**9, 1_000, "b2", slot=11)], c) == []
    assert s.skipped == 2
    (later,) = await feed(s, [leader_buy(10**9, 1_000, "b3", slot=12)], c)
    await feed(s, fills(later, "o1", amount_in=10**8, amount_out=100), c)
    (sell,) = await feed(s, [leader_sell(500, 1, "s2", slot=13)], c)
    assert sell.amount == 50, "the skipped buys are not in the leader's holding: it sold half of 1000"


async def test_only_listed_leaders_and_native_trades_are_copied() -> None:
    s = plugin()
    events = [
        leader_buy(1_000_000_000, 5, "a", wallet=OTHER),
        swap(wallet=LEADER, mint_in="USDC111111111111111111111111111111111111111", mint_out=MINT, tx="b"),
        leader_sell(5, 1_000, "c"),  # a sell of something we never copied
    ]
    assert await feed(s, events, ctx()) == []


async def test_a_leaders_own_copy_pct_and_per_trade_cap_apply() -> None:
    s = plugin(leaders=[{"chain": "solana", "address": LEADER, "copy_pct": 50, "max_buy": 300_000_000}])
    c = ctx()
    (small,) = await feed(s, [leader_buy(400_000_000, 10, "t1")], c)
    (capped,) = await feed(s, [leader_buy(4_000_000_000, 10, "t2")], c)
    assert (small.amount, capped.amount) == (200_000_000, 300_000_000)


async def test_max_open_caps_what_one_leaders_open_copies_spend_and_frees_on_failure() -> None:
    s = plugin(leaders=[{"chain": "solana", "address": LEADER, "copy_pct": 10, "max_open": 150_000_000}])
    c = ctx()
    (a,) = await feed(s, [leader_buy(1_000_000_000, 10, "t1")], c)
    (b,) = await feed(s, [leader_buy(1_000_000_000, 10, "t2", token=OTHER)], c)
    assert (a.amount, b.amount) == (100_000_000, 50_000_000), "the second copy gets what is left under max_open"
    assert await feed(s, [leader_buy(1_000_000_000, 10, "t3")], c) == [], "at max_open: skipped"
    await feed(s, [OrderRejected(intent=b, reason=RejectReason.COOLDOWN)], c)
    (again,) = await feed(s, [leader_buy(1_000_000_000, 10, "t4")], c)
    assert again.amount == 50_000_000, "a refused copy no longer counts against max_open"


async def test_leader_sells_are_mirrored_in_proportion_to_our_filled_quantity() -> None:
    s = plugin(copy_pct=10)
    c = ctx()
    (buy,) = await feed(s, [leader_buy(1_000_000_000, 1_000_000, "b1")], c)
    await feed(s, fills(buy, "o1", amount_in=100_000_000, amount_out=90_000), c)
    assert s.holding("solana", LEADER, MINT).quantity == 90_000
    (first,) = await feed(s, [leader_sell(250_000, 300_000_000, "s1")], c)  # the leader sells 25%
    assert (first.side, first.reduce_only, first.amount) == ("sell", True, 22_500)
    await feed(s, fills(first, "o2", amount_in=22_500, amount_out=30_000_000), c)
    (second,) = await feed(s, [leader_sell(375_000, 400_000_000, "s2")], c)  # half of the 750k left
    assert second.amount == 33_750, "half of our 67.5k left, as the leader sold half of its 750k left"
    await feed(s, fills(second, "o3", amount_in=33_750, amount_out=50_000_000), c)
    (last,) = await feed(s, [leader_sell(375_000, 400_000_000, "s3")], c)  # the rest
    assert last.amount == 33_750, "a leader selling out sells everything we still hold"
    await feed(s, fills(last, "o4", amount_in=33_750, amount_out=25_000_000), c)
    assert s.holding("solana", LEADER, MINT).quantity == 0


async def test_a_sell_never_oversells_while_an_earlier_mirrored_sell_is_in_flight() -> None:
    s = plugin(copy_pct=10)
    c = ctx()
    (buy,) = await feed(s, [leader_buy(1_000_000_000, 1_000, "b1")], c)
    await feed(s, fills(buy, "o1", amount_in=100_000_000, amount_out=100), c)
    (a,) = await feed(s, [leader_sell(900, 1, "s1")], c)
    (b,) = await feed(s, [leader_sell(100, 1, "s2")], c)
    assert (a.amount, b.amount) == (90, 10)
    assert await feed(s, [leader_sell(1, 1, "s3")], c) == [], "nothing left that is not already being sold"


async def test_a_leader_selling_out_while_our_copy_is_in_flight_sells_the_copy_once_it_fills() -> None:
    s = plugin(copy_pct=10)
    c = ctx()
    (buy,) = await feed(s, [leader_buy(10**9, 1_000_000, "b1")], c)
    assert await feed(s, [leader_sell(1_000_000, 2 * 10**9, "s1")], c) == [], "nothing of ours filled yet"
    (sell,) = await feed(s, fills(buy, "o1", amount_in=10**8, amount_out=100_000), c)
    assert (sell.side, sell.reduce_only, sell.token, sell.amount) == ("sell", True, MINT, 100_000)
    await feed(s, fills(sell, "o2", amount_in=100_000, amount_out=2 * 10**8), c)
    assert s.holding("solana", LEADER, MINT).quantity == 0
    assert await feed(s, [leader_sell(1, 1, "s2")], c) == []


async def test_a_leaders_partial_sells_while_our_copy_is_in_flight_sell_their_share_once_it_fills() -> None:
    s = plugin(copy_pct=10)
    c = ctx()
    (buy,) = await feed(s, [leader_buy(10**9, 1_000, "b1")], c)
    await feed(s, [leader_sell(500, 1, "s1"), leader_sell(250, 1, "s2")], c)  # half, then half of the rest
    (sell,) = await feed(s, fills(buy, "o1", amount_in=10**8, amount_out=100), c)
    assert sell.amount == 75, "the leader kept a quarter of its holding: we keep a quarter of the copy"
    (last,) = await feed(s, [leader_sell(250, 1, "s3")], c)
    assert last.amount == 25, "the leader's exit sells the rest"


async def test_two_quarter_sells_without_a_fill_between_them_mirror_half_of_ours() -> None:
    s = plugin(copy_pct=10)
    c = ctx()
    (buy,) = await feed(s, [leader_buy(1_000_000_000, 1_000, "b1")], c)
    await feed(s, fills(buy, "o1", amount_in=100_000_000, amount_out=1_000), c)
    (a,) = await feed(s, [leader_sell(250, 1, "s1")], c)
    (b,) = await feed(s, [leader_sell(250, 1, "s2")], c)  # the first mirror is still in flight
    assert (a.amount, b.amount) == (250, 250), "the leader sold half of its 1000: we sell half of our 1000"


async def test_buys_before_their_fill_are_not_sold_and_aptos_leaders_match_in_any_address_form() -> None:
    s = plugin(leaders=[{"chain": "aptos", "address": APTOS_LEADER}])
    c = ctx()
    long_form = "0x" + "abc".zfill(64)
    apt_buy = swap(
        chain="aptos", wallet=long_form, mint_in=APT, amount_in=10**9, mint_out="0x1::m::T", amount_out=50, tx="a1"
    )
    (buy,) = await feed(s, [msgspec.structs.replace(apt_buy, block_time=T0)], c)
    assert (buy.chain, buy.token, buy.amount) == ("aptos", "0x1::m::T", 10**8)
    sell = swap(
        chain="aptos", wallet=long_form, mint_in="0x1::m::T", amount_in=50, mint_out="0xa", amount_out=1, tx="a2"
    )
    assert await feed(s, [sell], c) == [], "no fill yet: nothing of ours to sell"


async def test_a_leader_is_paused_after_n_failed_copies_in_a_row_and_resumes_after_the_period() -> None:
    s = plugin(pause_after=2, pause_s=600)
    c = ctx()
    (b1,) = await feed(s, [leader_buy(10**9, 10, "t1")], c)
    await feed(s, [OrderApproved(order_id="o1", intent=b1), OrderFailed(order_id="o1", executor="x", reason="boom")], c)
    assert not s.paused("solana", LEADER, c.clock.now())
    (b2,) = await feed(s, [leader_buy(10**9, 10, "t2")], c)
    await feed(s, [OrderRejected(intent=b2, reason=RejectReason.MAX_ORDER_USD)], c)
    assert s.paused("solana", LEADER, c.clock.now())
    assert await feed(s, [leader_buy(10**9, 10, "t3")], c) == [], "paused: not copied"
    c.clock.advance(599)  # type: ignore[attr-defined]
    assert await feed(s, [leader_buy(10**9, 10, "t4", block_time=c.clock.now())], c) == []
    c.clock.advance(1)  # type: ignore[attr-defined]
    assert len(await feed(s, [leader_buy(10**9, 10, "t5", block_time=c.clock.now())], c)) == 1, "resumed after pause_s"


async def test_a_fill_resets_the_failure_count_and_other_strategies_orders_are_ignored() -> None:
    s = plugin(pause_after=2)
    c = ctx()
    (b1,) = await feed(s, [leader_buy(10**9, 10, "t1")], c)
    await feed(s, [OrderRejected(intent=b1, reason=RejectReason.MIN_LIQUIDITY)], c)
    (b2,) = await feed(s, [leader_buy(10**9, 10, "t2")], c)
    await feed(s, fills(b2, "o2", amount_in=10**8, amount_out=1), c)
    foreign = msgspec.structs.replace(b2, intent_id="someone-else", strategy="other")
    await feed(s, [OrderRejected(intent=foreign, reason=RejectReason.MIN_LIQUIDITY)], c)
    (b3,) = await feed(s, [leader_buy(10**9, 10, "t3")], c)
    await feed(s, [OrderRejected(intent=b3, reason=RejectReason.MIN_LIQUIDITY)], c)
    assert not s.paused("solana", LEADER, c.clock.now()), "one failure since the last fill"


@pytest.mark.parametrize("reason", [RejectReason.COOLDOWN, RejectReason.RECENT_DUPLICATE, RejectReason.RATE_LIMIT])
async def test_refusals_by_our_own_risk_policy_do_not_pause_the_leader(reason: RejectReason) -> None:
    s = plugin(pause_after=3)
    c = ctx()
    for n in range(3):
        (buy,) = await feed(s, [leader_buy(10**9, 10, f"t{n}")], c)
        await feed(s, [OrderRejected(intent=buy, reason=reason, detail="last order 5s ago")], c)
    assert not s.paused("solana", LEADER, c.clock.now()), "the pace of our own orders says nothing of the leader"
    assert len(await feed(s, [leader_buy(10**9, 10, "t3", token=OTHER)], c)) == 1


async def test_paused_leaders_sells_are_still_mirrored() -> None:
    s = plugin(pause_after=1)
    c = ctx()
    (b1,) = await feed(s, [leader_buy(10**9, 100, "t1")], c)
    await feed(s, fills(b1, "o1", amount_in=10**8, amount_out=10), c)
    (b2,) = await feed(s, [leader_buy(10**9, 100, "t2", token=OTHER)], c)
    await feed(s, [OrderRejected(intent=b2, reason=RejectReason.PRICE_IMPACT)], c)
    assert s.paused("solana", LEADER, c.clock.now())
    (sell,) = await feed(s, [leader_sell(100, 1, "s1")], c)
    assert (sell.side, sell.amount) == ("sell", 10)


async def test_leader_exit_names_the_leader_on_the_intent() -> None:
    s = plugin(leader_exit=True)
    (buy,) = await feed(s, [leader_buy(10**9, 10, "t1")], ctx())
    assert buy.leader == LEADER


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"copy_pct": 0}, r"copy_pct must be in \(0, 100\]"),
        ({"copy_pct": 101}, r"copy_pct must be in \(0, 100\]"),
        ({"leaders": [{"chain": "solana", "address": "not-base58!"}]}, "is not a solana address"),
        ({"leaders": [{"chain": "aptos", "address": LEADER}]}, "is not a aptos address"),
        ({"leaders": [{"chain": "solana", "address": LEADER, "max_buy": 0}]}, "max_buy must be > 0"),
        ({"leaders": [{"chain": "solana", "address": LEADER, "copy_pct": -5}]}, r"copy_pct must be in \(0, 100\]"),
        (
            {"leaders": [{"chain": "aptos", "address": "0xABC"}, {"chain": "aptos", "address": "0x0abc"}]},
            "listed twice",
        ),
        ({"pause_after": 0}, "Expected `int` >= 1"),
        ({"pause_s": 0}, "Expected `float` > 0"),
        ({"max_age_s": 0}, "Expected `float` > 0"),
        ({"leaders": [{"chain": "solana", "adress": LEADER}]}, "unknown field `adress`"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(params: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        plugin(**params)


@settings(max_examples=60, deadline=None)
@given(
    ours=st.integers(min_value=1, max_value=10**12),
    held=st.integers(min_value=1, max_value=10**15),
    sells=st.lists(st.integers(min_value=1, max_value=10**15), min_size=1, max_size=8),
)
async def test_mirrored_sells_track_the_leaders_remaining_share_and_never_oversell(
    ours: int, held: int, sells: list[int]
) -> None:
    s = plugin()
    c = ctx()
    (buy,) = await feed(s, [leader_buy(10**9, held, "b")], c)
    await feed(s, fills(buy, "ob", amount_in=10**8, amount_out=ours), c)
    leader_left = held
    for i, sold in enumerate(sells):
        for intent in await feed(s, [leader_sell(sold, 1, f"s{i}")], c):
            await feed(s, fills(intent, f"o{i}", amount_in=intent.amount, amount_out=1), c)
        leader_left = max(0, leader_left - sold)
        left = s.holding("solana", LEADER, MINT).quantity
        assert 0 <= left <= ours
        assert left * held >= leader_left * ours, "never sold a larger share than the leader"
        assert (left - 1 - i) * held < leader_left * ours, "at most one base unit per sell behind the leader"
        if leader_left == 0:
            assert left == 0


async def test_a_swap_delivered_twice_counts_once_and_a_duplicate_refusal_is_not_a_failure() -> None:
    s = plugin(pause_after=1)
    c = ctx()
    (buy,) = await feed(s, [leader_buy(10**9, 100, "t1"), leader_buy(10**9, 100, "t1")], c)
    await feed(s, [OrderRejected(intent=buy, reason=RejectReason.DUPLICATE_INTENT)], c)
    assert not s.paused("solana", LEADER, c.clock.now()), "a replay refused as a duplicate is not a failed copy"
    (again,) = await feed(s, [leader_buy(10**9, 100, "t2")], c)
    await feed(s, fills(again, "o", amount_in=10**8, amount_out=10), c)
    (sell,) = await feed(s, [leader_sell(100, 1, "s1")], c)
    assert sell.amount == 5, "the leader held 200 (not 300): it sold half"


async def test_a_position_sold_elsewhere_shrinks_what_we_mirror() -> None:
    s = plugin()
    c = ctx()
    (buy,) = await feed(s, [leader_buy(10**9, 1_000, "b1")], c)
    await feed(s, fills(buy, "o1", amount_in=10**8, amount_out=100), c)
    update = PositionUpdate(chain="solana", token=MINT, quantity=40, avg_cost_native=Decimal(1))
    await feed(s, [update], c)  # e.g. the ExitManager's stop-loss sold 60 of our 100
    assert s.holding("solana", LEADER, MINT).quantity == 40
    (sell,) = await feed(s, [leader_sell(500, 1, "s1")], c)
    assert sell.amount == 20, "half of the 40 still held, not of the 100 bought"
    await feed(s, [msgspec.structs.replace(update, quantity=0)], c)
    assert await feed(s, [leader_sell(500, 1, "s2")], c) == [], "nothing left after the position closed"


async def test_after_a_restart_the_leaders_sells_are_still_mirrored_from_the_saved_holdings(tmp_path: Path) -> None:
    env = PluginEnv(clock=SimClock(T0), data_dir=tmp_path / "copy")
    first = await started(env)
    c = ctx()
    (buy,) = await feed(first, [leader_buy(10**9, 1_000, "b1")], c)
    await feed(first, fills(buy, "o1", amount_in=10**8, amount_out=100), c)
    await first.stop()

    again = await started(env)
    (sell,) = await feed(again, [leader_sell(250, 1, "s1")], ctx())
    assert (sell.side, sell.amount) == ("sell", 25), "a quarter of our 100, as the leader sold a quarter of 1000"


async def test_a_leader_buy_published_again_after_a_restart_is_not_counted_twice(tmp_path: Path) -> None:
    env = PluginEnv(clock=SimClock(T0), data_dir=tmp_path / "copy")
    first = await started(env)
    c = ctx()
    (buy,) = await feed(first, [leader_buy(10**9, 1_000_000, "b1")], c)
    await feed(first, fills(buy, "o1", amount_in=10**8, amount_out=100_000), c)
    await first.stop()

    again = await started(env)
    c = ctx()
    replayed = await feed(again, [leader_buy(10**9, 1_000_000, "b1")], c)  # the watcher publishes it again
    (sell,) = await feed(again, [leader_sell(1_000_000, 2 * 10**9, "s1")], c)
    assert sell.amount == 100_000, "the leader sold all it held: so do we, not half"
    assert replayed == [], "not even a copy for the risk engine to refuse"


async def test_a_state_file_written_before_applied_swaps_were_saved_still_loads(tmp_path: Path) -> None:
    old = {"leaders": [], "own": [["solana", LEADER, MINT, 100, 10**8, 1_000]]}
    write(tmp_path / "copy" / "copy_trade.json", msgspec.json.encode(old).decode())
    s = plugin()
    s.attach(PluginEnv(clock=SimClock(T0), data_dir=tmp_path / "copy"))
    await s.start()
    (sell,) = await feed(s, [leader_sell(500, 1, "s1")], ctx())
    assert sell.amount == 50


async def test_an_unreadable_state_file_is_logged_and_the_strategy_starts_empty(tmp_path: Path) -> None:
    write(tmp_path / "copy" / "copy_trade.json", "{not json")
    s = plugin()
    s.attach(PluginEnv(clock=SimClock(T0), data_dir=tmp_path / "copy"))
    with capture_logs() as logs:
        await s.start()
    assert [e["event"] for e in logs] == ["copy_trade.state_unreadable"]
    assert len(await feed(s, [leader_buy(10**9, 10, "t1")], ctx())) == 1


async def test_the_leaders_holding_of_a_token_we_hold_is_never_forgotten_by_the_bounded_books() -> None:
    s = plugin(max_tokens=2, leaders=[{"chain": "solana", "address": LEADER, "max_open": 10**8}])
    c = ctx()
    (buy,) = await feed(s, [leader_buy(10**9, 1_000, "a")], c)
    await feed(s, fills(buy, "o1", amount_in=10**8, amount_out=100), c)
    others = [leader_buy(10**9, 1_000, f"x{n}", token=f"Other{n}" + "1" * 38) for n in range(5)]
    assert await feed(s, others, c) == [], "at max_open: the leader's other buys are watched, not copied"
    (sell,) = await feed(s, [leader_sell(500, 1, "s")], c)
    assert sell.amount == 50


async def test_reconfiguring_changes_the_leaders_and_keeps_the_books() -> None:
    s = plugin()
    c = ctx()
    (buy,) = await feed(s, [leader_buy(10**9, 100, "b1")], c)
    await feed(s, fills(buy, "o1", amount_in=10**8, amount_out=10), c)
    s.reconfigure(msgspec.convert({"leaders": [{"chain": "solana", "address": SECOND}]}, CopyTrade.Config))
    assert await feed(s, [leader_buy(10**9, 100, "b2")], c) == [], "no longer a leader"
    assert len(await feed(s, [leader_buy(10**9, 100, "b3", wallet=SECOND)], c)) == 1
    assert s.holding("solana", LEADER, MINT).quantity == 10, "what we hold from the old leader is kept"
