"""Portfolio: marks from price updates, unrealised PnL in native and USD, equity history (interval rows and a
daily snapshot), round trips per strategy, and real balances read through the executors, with a
disagreeing position corrected and announced."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from quantbot.api import NATIVE_TOKEN
from quantbot.breakers import TradingState, read_trading_state
from quantbot.clock import SimClock
from quantbot.config import ExitsConfig, RiskConfig
from quantbot.events import EquityUpdate, OrderIntent, PositionCorrected, PositionUpdate, PriceUpdate, Tick
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.paper import PaperExecutor
from tests.orderpath import OrderPath, first_call, order_path, order_row
from tests.test_risk_checks import FixedPrices

SOL = 10**9
T0 = datetime(2026, 6, 1, 23, 58, tzinfo=UTC)
LIMITS = RiskConfig(token_cooldown_s=0, duplicate_window_s=0, max_order_sol=Decimal(2), max_exposure_sol=Decimal(2))


def paper(**params: object) -> PaperExecutor:
    base: dict[str, object] = {"balance_sol": Decimal(10), "slippage_bps": 0, "fee_bps": 0, "network_fee": 0}
    return make_plugin(PaperExecutor, id="paper", **(base | params))


async def buy(path: OrderPath, token: str, sol: int = 1, strategy: str = "s") -> None:
    await path.bus.publish(
        order_intent(
            intent_id=f"{strategy}-{token}",
            strategy=strategy,
            token=token,
            amount=sol * SOL,
            notional_usd=Decimal(5),
            price_native=Decimal(1000),
        )
    )
    await path.settle()


async def sell(path: OrderPath, token: str, amount: int, price: str, intent_id: str) -> None:
    """An exit manager's sell of `amount` at `price` lamports per base unit."""
    await path.bus.publish(
        order_intent(
            intent_id=intent_id,
            strategy="exits",
            token=token,
            side="sell",
            reduce_only=True,
            amount=amount,
            price_native=Decimal(price),
        )
    )
    await path.settle()


async def sell_all(path: OrderPath, token: str, price: str) -> None:
    await sell(path, token, path.portfolio.position("solana", token).quantity, price, f"exit-{token}")


async def mark(path: OrderPath, token: str, price: str) -> None:
    await path.bus.publish(
        PriceUpdate(chain="solana", token=token, price_native=Decimal(price), source="t", observed_at=T0)
    )
    await path.settle()


async def test_marks_give_unrealised_pnl_and_equity_in_native_and_usd(tmp_path: Path) -> None:
    prices = FixedPrices(usd={"solana": Decimal(200)})
    async with order_path(tmp_path, executors={"paper": paper()}, limits=LIMITS, prices=prices) as path:
        await buy(path, "A")  # 1 SOL -> 1e6 units at 1000 lamports each
        pf = path.portfolio
        assert pf.equity_native("solana") == 10 * SOL, "unmarked positions count at cost"
        await mark(path, "A", "1500")
        assert pf.unrealised_pnl("solana", "A") == SOL // 2
        assert pf.equity_native("solana") == 10 * SOL + SOL // 2
        assert pf.to_usd("solana", pf.unrealised_pnl("solana", "A")) == Decimal(100)
        assert pf.equity_native("aptos") == 100 * 10**8, "the paper ledger's APT"
        await buy(path, "A", strategy="again")  # another fill: its position.update carries the mark and USD
    update = [e for e in path.events if isinstance(e, PositionUpdate)][-1]
    assert (update.quantity, update.mark_native) == (2_000_000, Decimal(1500))
    assert update.unrealised_pnl_native == SOL  # 2e6 units at 1500 = 3 SOL, cost 2 SOL
    assert update.unrealised_pnl_usd == Decimal(200)


async def test_equity_history_has_interval_rows_and_one_daily_snapshot_per_utc_day(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with order_path(tmp_path, executors={"paper": paper()}, limits=LIMITS, clock=clock) as path:
        await buy(path, "A")
        await mark(path, "A", "2000")
        for seq in range(1, 4):  # 23:59, 00:00, 00:01: the second and third fall on the next day
            clock.advance(60)
            await path.bus.publish(Tick(seq=seq))
            await path.settle()
        await mark(path, "A", "500")
        await path.bus.publish(Tick(seq=4))  # not due: the interval has not passed
        await path.settle()
        rows = await path.store.equity_history("solana")
        daily = await path.store.equity_history("solana", kind="daily")
    assert [r.at.strftime("%H:%M") for r in rows] == ["23:58", "23:59", "00:00", "00:01"]
    assert [r.equity_native for r in rows] == [10 * SOL, 11 * SOL, 11 * SOL, 11 * SOL]
    assert [(r.at.strftime("%d %H:%M"), r.equity_native) for r in daily] == [
        ("01 23:58", 10 * SOL),
        ("02 00:00", 11 * SOL),
    ]
    updates = [e for e in path.events if isinstance(e, EquityUpdate) and e.chain == "solana"]
    assert updates[-1].day_start_native == 11 * SOL and updates[-1].unrealised_pnl_native == SOL


async def test_a_closed_position_is_a_round_trip_of_the_strategy_that_opened_it(tmp_path: Path) -> None:
    async with order_path(tmp_path, executors={"paper": paper()}, limits=LIMITS) as path:
        await buy(path, "A", strategy="alpha")
        await sell_all(path, "A", price="1200")
        await path.settle()
        (trip,) = await path.store.round_trips()
    assert (trip.strategy, trip.cost_native, trip.proceeds_native, trip.pnl_native) == (
        "alpha",
        SOL,
        1_200_000_000,
        2 * SOL // 10,
    )


async def test_a_round_trip_spanning_a_restart_keeps_what_the_sells_before_it_brought_in(tmp_path: Path) -> None:
    """Half sold at 2x before a restart, the rest at 0.4x after it: the trip cost 1 SOL and brought in 1.2 SOL."""
    async with order_path(tmp_path, executors={"paper": paper()}, limits=LIMITS) as path:
        await buy(path, "A", strategy="alpha")
        half = path.portfolio.position("solana", "A").quantity // 2
        await sell(path, "A", half, price="2000", intent_id="half")
    async with order_path(tmp_path, executors={"paper": paper()}, limits=LIMITS) as path:
        await sell_all(path, "A", price="400")
        await path.settle()
        (trip,) = await path.store.round_trips()
    assert (trip.strategy, trip.cost_native, trip.proceeds_native) == ("alpha", SOL, 1_200_000_000)
    assert trip.pnl_native == 2 * SOL // 10, "a win, not a loss"


async def test_network_fees_are_part_of_a_round_trips_cost_and_come_out_of_its_proceeds(tmp_path: Path) -> None:
    fee = 5_000
    executor = paper(network_fee=fee)
    async with order_path(tmp_path, executors={"paper": executor}, limits=LIMITS) as path:
        await buy(path, "A", strategy="alpha")  # 1 SOL of swap + the fee
        pos = path.portfolio.position("solana", "A")
        assert (pos.quantity, pos.cost_native) == (1_000_000, SOL + fee)
        assert path.portfolio.native["solana"] == 9 * SOL - fee
        await mark(path, "A", "1000")  # the price it was bought at: down by the fee
        assert path.portfolio.unrealised_pnl("solana", "A") == -fee
        await sell_all(path, "A", price="1200")
        await path.settle()
        (trip,) = await path.store.round_trips()
        native = path.portfolio.native["solana"]
        ledger = (await executor.balances())[NATIVE_TOKEN["solana"]]
    assert (trip.cost_native, trip.proceeds_native) == (SOL + fee, 1_200_000_000 - fee)
    assert trip.pnl_native == 2 * SOL // 10 - 2 * fee
    assert native == ledger == 10 * SOL + 2 * SOL // 10 - 2 * fee, "the cash the portfolio counts is the ledger's"


async def test_a_position_the_chain_disagrees_with_is_corrected_with_a_reason(tmp_path: Path) -> None:
    clock = SimClock(T0)
    ex = paper()
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS, clock=clock) as path:
        await buy(path, "A", sol=1)
        await buy(path, "B", sol=1)
        assert await path.portfolio.sync_balances() == 0, "agreeing positions are left alone"
        # Someone moves 400k units of A out of the wallet, outside quantbot.
        real = ex.balances

        async def moved(tokens: Collection[str] = ()) -> dict[str, int]:
            out = dict(await real(tokens))
            out["A"] -= 400_000
            out[NATIVE_TOKEN["solana"]] -= 5
            return out

        ex.balances = moved  # type: ignore[method-assign]
        clock.advance(300)
        await path.bus.publish(Tick(seq=1))  # balance_interval_s: 300
        await path.settle()
        a = path.portfolio.position("solana", "A")
        assert (a.quantity, a.cost_native) == (600_000, 600_000_000), "cost follows the units at average cost"
        assert path.portfolio.native["solana"] == 8 * SOL - 5
        (fixed,) = [e for e in path.events if isinstance(e, PositionCorrected)]
        assert (fixed.token, fixed.recorded, fixed.on_chain) == ("A", 1_000_000, 600_000)
        assert "outside quantbot" in fixed.reason
        (row,) = [r for r in await path.store.positions() if r.token == "A"]
        assert row.quantity == 600_000, "the correction is persisted"


def chain_shows(ex: PaperExecutor, token: str, units: int) -> None:
    """From now on the wallet holds `units` of `token` (rugged, drained, sold or moved outside quantbot)."""
    real = PaperExecutor.balances.__get__(ex)

    async def drained(tokens: Collection[str] = ()) -> dict[str, int]:
        return dict(await real(tokens)) | {token: units}

    ex.balances = drained  # type: ignore[method-assign]


async def test_a_position_corrected_to_zero_books_its_cost_as_a_realised_loss_and_a_round_trip(tmp_path: Path) -> None:
    """What vanished from the wallet cost what it cost: realised PnL, the round trip (what Kelly sizing learns
    from) and the daily report see the loss, and a restart keeps it."""
    ex = paper()
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS) as path:
        await buy(path, "A", strategy="alpha")  # 1 SOL -> 1e6 units
        chain_shows(ex, "A", 0)
        assert await path.portfolio.sync_balances() == 1
        await path.settle()
        a = path.portfolio.position("solana", "A")
        assert (a.quantity, a.cost_native, a.realised_pnl_native) == (0, 0, -SOL)
        (update,) = [e for e in path.events if isinstance(e, PositionUpdate) and e.quantity == 0]
        assert update.realised_pnl_native == -SOL
        await path.portfolio.record_equity()
        await path.settle()
        assert [e for e in path.events if isinstance(e, EquityUpdate)][-1].realised_pnl_native == -SOL
    async with order_path(tmp_path, executors={"paper": paper()}, limits=LIMITS) as path:
        (row,) = await path.store.positions()
        (trip,) = await path.store.round_trips()
        stats = await path.store.trip_stats("alpha")
        assert path.portfolio.position("solana", "A").realised_pnl_native == -SOL, "persisted like a sell's PnL"
    assert (row.quantity, row.cost_native, row.realised_pnl_native) == (0, 0, -SOL)
    assert (trip.strategy, trip.cost_native, trip.proceeds_native, trip.pnl_native) == ("alpha", SOL, 0, -SOL)
    assert (stats.trips, stats.wins, stats.lost_native) == (1, 0, SOL)


async def test_a_partial_correction_realises_the_vanished_units_share_of_cost(tmp_path: Path) -> None:
    """Half sold at 2x (+0.5 SOL), then 400k of the other 500k units vanish (-0.4 SOL at average cost), then the
    rest (-0.1 SOL): the trip cost 1 SOL and brought in 1 SOL, and the realised PnL says the same."""
    ex = paper()
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS) as path:
        await buy(path, "A", strategy="alpha")
        await sell(path, "A", 500_000, price="2000", intent_id="half")
        assert path.portfolio.position("solana", "A").realised_pnl_native == SOL // 2
        chain_shows(ex, "A", 100_000)
        await path.portfolio.sync_balances()
        a = path.portfolio.position("solana", "A")
        assert (a.quantity, a.cost_native) == (100_000, SOL // 10), "what is left keeps its average cost"
        assert a.realised_pnl_native == SOL // 2 - 4 * SOL // 10
        assert await path.store.round_trips() == [], "still open: no round trip yet"
        chain_shows(ex, "A", 0)
        await path.portfolio.sync_balances()
        (trip,) = await path.store.round_trips()
        (row,) = await path.store.positions()
    assert (trip.cost_native, trip.proceeds_native, trip.pnl_native) == (SOL, SOL, 0)
    assert row.realised_pnl_native == trip.pnl_native == 0


async def test_a_correction_the_store_does_not_take_is_not_booked_and_is_tried_again(tmp_path: Path) -> None:
    ex = paper()
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS) as path:
        await buy(path, "A", strategy="alpha")
        chain_shows(ex, "A", 0)
        path.store.record_round_trip = first_call(path.store.record_round_trip, OSError("disk full"))  # type: ignore[method-assign]
        with pytest.raises(OSError):
            await path.portfolio.sync_balances()
        a = path.portfolio.position("solana", "A")
        assert (a.quantity, a.realised_pnl_native, a.trip_cost) == (1_000_000, 0, SOL), "as the store still has it"
        assert await path.portfolio.sync_balances() == 1
        (trip,) = await path.store.round_trips()
    assert (trip.cost_native, a.realised_pnl_native) == (SOL, -SOL), "booked once, not twice"


async def test_a_position_that_vanishes_from_the_chain_trips_the_drawdown_breaker(tmp_path: Path) -> None:
    """The breaker reads equity (cash plus positions): a position corrected to 0 leaves it at once."""
    limits = msgspec.structs.replace(LIMITS, max_daily_drawdown_pct=Decimal(5))
    ex = paper()
    async with order_path(tmp_path, executors={"paper": ex}, limits=limits) as path:
        await buy(path, "A")  # 1 SOL of 10: equity still 10 SOL at cost
        await path.portfolio.record_equity()
        await path.settle()
        chain_shows(ex, "A", 0)
        await path.portfolio.sync_balances()
        await path.portfolio.record_equity()
        await path.settle()
        state = await read_trading_state(path.store)
    assert path.portfolio.equity_native("solana") == 9 * SOL
    assert state is TradingState.HALTED, "10% below the day's start > 5%"


def wallet_receives(ex: PaperExecutor, token: str, units: int) -> None:
    """From now on the wallet holds `units` of `token` more than quantbot bought (an airdrop, a transfer in): the
    balances show them and a sell may spend them."""
    real = PaperExecutor._holdings.__get__(ex)

    def more() -> dict[str, int]:
        out = real()
        out[token] = out.get(token, 0) + units
        return out

    ex._holdings = more  # type: ignore[method-assign]


async def test_units_received_from_outside_cost_nothing_and_their_sale_is_realised_as_the_round_trip(
    tmp_path: Path,
) -> None:
    """1 SOL buys 1e6 units; 1e6 more arrive for nothing; all 2e6 sell at the buy price for 2 SOL. Only 1 SOL was
    ever spent: the realised PnL and the round trip both say +1 SOL, and no phantom cost props up equity."""
    ex = paper()
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS) as path:
        await buy(path, "A", strategy="alpha")  # 1 SOL -> 1e6 units at 1000 lamports each
        wallet_receives(ex, "A", 1_000_000)
        assert await path.portfolio.sync_balances() == 1
        await path.settle()
        a = path.portfolio.position("solana", "A")
        assert (a.quantity, a.cost_native, a.trip_cost) == (2_000_000, SOL, SOL), "no SOL was spent on them"
        assert path.portfolio.equity_native("solana") == 10 * SOL, "unmarked: at what was paid, not 11 SOL"
        (fixed,) = [e for e in path.events if isinstance(e, PositionCorrected)]
        assert "at no cost" in fixed.reason and "avg cost" not in fixed.reason, fixed.reason
        (update,) = [e for e in path.events if isinstance(e, PositionUpdate) and e.quantity == 2_000_000]
        assert update.avg_cost_native == Decimal(1000), "still what was paid per unit bought"
        await mark(path, "A", "1000")
        assert path.portfolio.unrealised_pnl("solana", "A") == SOL, "2e6 units worth 2 SOL, 1 SOL paid"
        await sell_all(path, "A", price="1000")
        a = path.portfolio.position("solana", "A")
        (trip,) = await path.store.round_trips()
        (row,) = await path.store.positions()
    assert (trip.strategy, trip.cost_native, trip.proceeds_native, trip.pnl_native) == ("alpha", SOL, 2 * SOL, SOL)
    assert a.realised_pnl_native == row.realised_pnl_native == trip.pnl_native == SOL


async def test_a_partial_sale_after_units_arrived_from_outside_agrees_with_the_round_trip_across_a_restart(
    tmp_path: Path,
) -> None:
    """Half of the 2e6 units (1e6 bought for 1 SOL, 1e6 received) sells for 1 SOL before a restart, the rest for
    1 SOL after it: each half carries half the 1 SOL cost, the trip made +1 SOL, and the realised PnL says so."""
    ex = paper()
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS) as path:
        await buy(path, "A", strategy="alpha")
        wallet_receives(ex, "A", 1_000_000)
        await path.portfolio.sync_balances()
        await sell(path, "A", 1_000_000, price="1000", intent_id="half")
        a = path.portfolio.position("solana", "A")
        assert (a.quantity, a.cost_native, a.realised_pnl_native) == (1_000_000, SOL // 2, SOL // 2)
        assert a.avg_cost() == Decimal(1000), "the units left were paid for at 1000 each, as before the sale"
    ex = paper()
    wallet_receives(ex, "A", 1_000_000)  # the same wallet, read by the next run
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS) as path:
        a = path.portfolio.position("solana", "A")
        assert (a.quantity, a.cost_native, a.trip_cost, a.trip_proceeds) == (1_000_000, SOL // 2, SOL, SOL)
        assert a.avg_cost() == Decimal(1000), "a restart keeps what was paid per unit bought"
        assert path.portfolio.corrections == 0, "the store kept the correction: nothing to correct again"
        await sell_all(path, "A", price="1000")
        a = path.portfolio.position("solana", "A")
        (trip,) = await path.store.round_trips()
    assert (trip.cost_native, trip.proceeds_native, trip.pnl_native) == (SOL, 2 * SOL, SOL)
    assert a.realised_pnl_native == trip.pnl_native == SOL


async def test_units_received_from_outside_do_not_move_the_stop_loss_or_take_profit(tmp_path: Path) -> None:
    """The price rules measure from what was paid per unit bought (1000): doubling the position for nothing neither
    takes profit at the buy price nor lets the stop-loss wait until 500. The exit's trip is a win all the same."""
    ex = paper()
    rules = ExitsConfig(stop_loss_pct=Decimal(20), take_profit_pct=Decimal(50))
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS, exits=rules) as path:
        await buy(path, "A", strategy="alpha")
        wallet_receives(ex, "A", 1_000_000)
        await path.portfolio.sync_balances()
        for price in ("1000", "1400", "810"):
            await mark(path, "A", price)
        assert [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"] == []
        await mark(path, "A", "790")
        (exit_,) = [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"]
        a = path.portfolio.position("solana", "A")
        (trip,) = await path.store.round_trips()
    assert (exit_.reason, exit_.amount) == ("stop_loss", 2_000_000)
    assert (trip.cost_native, trip.proceeds_native) == (SOL, 2_000_000 * 790)
    assert a.realised_pnl_native == trip.pnl_native == 2_000_000 * 790 - SOL


async def test_the_native_balance_is_not_adopted_while_an_order_of_that_chain_is_under_way(tmp_path: Path) -> None:
    """The read may already hold the swap that the book has not booked yet: adopting it would count the SOL
    twice once the fill is booked (enough to trip a drawdown breaker)."""
    ex, clock = paper(), SimClock(T0)
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS, clock=clock) as path:
        await buy(path, "A")
        real = ex.balances

        async def landed_not_booked(tokens: Collection[str] = ()) -> dict[str, int]:
            out = dict(await real(tokens))
            out[NATIVE_TOKEN["solana"]] -= SOL  # a second 1 SOL buy landed; its fill is not read yet
            return out

        ex.balances = landed_not_booked  # type: ignore[method-assign]
        await path.store.journal_order(order_row(path.approve("o-B", order_intent(token="B", amount=SOL), at=T0)))
        await path.portfolio.sync_balances()
        assert path.portfolio.native["solana"] == 9 * SOL, "our book stands while B is under way"
        clock.advance(30)
        await path.bus.publish(Tick(seq=1))  # deferred: the next read comes 30 s later, not 300
        await path.settle()
        assert path.portfolio.native["solana"] == 9 * SOL, "B is still under way"
        await path.store.set_order_status("o-B", "failed", now=clock.now(), reason="test")
        retired = path.approve(
            "o-C", order_intent(token="C", amount=SOL), at=T0, executor="retired"
        )  # gone from the config
        await path.store.journal_order(order_row(retired))
        clock.advance(30)
        await path.bus.publish(Tick(seq=2))
        await path.settle()
        assert path.portfolio.native["solana"] == 8 * SOL, "an order nothing can settle does not freeze it"


async def test_a_balance_read_overtaken_by_a_fill_is_not_used(tmp_path: Path) -> None:
    ex = paper()
    async with order_path(tmp_path, executors={"paper": ex}, limits=LIMITS) as path:
        await buy(path, "A")
        real = ex.balances

        filled: list[int] = []

        async def read_then_fill(tokens: Collection[str] = ()) -> dict[str, int]:
            out = dict(await real(tokens))  # the wallet as it was
            if not filled:  # (the Aptos read goes here too)
                filled.append(1)
                await path.portfolio.apply_fill(chain="solana", token="A", side="buy", amount_in=SOL, amount_out=10**6)
            return out  # ... returned after another buy was booked

        ex.balances = read_then_fill  # type: ignore[method-assign]
        assert await path.portfolio.sync_balances() == 0
        pos = path.portfolio.position("solana", "A")
    assert pos.quantity == 2 * 10**6, "not 'corrected' back to the read's 1e6"
    assert path.portfolio.native["solana"] == 8 * SOL
    assert not [e for e in path.events if isinstance(e, PositionCorrected)]
