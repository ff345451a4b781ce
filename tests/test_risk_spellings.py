"""One Aptos asset, several spellings: the order path keys positions, sells in flight, exposure, cooldowns and
duplicates by the asset's canonical name (`quantbot.assets.normalise`), whatever spelling a strategy, an exit or a
store row written by an older version gives it.

THL (Thala's token) is published as `0x7fd500c1…::thl_coin::THL` (the REST API's spelling, leading zero dropped);
the parsers name it `0x07fd500c1…::thl_coin::THL` (AIP-40 long form)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from quantbot.api import ApprovedOrder, PluginEnv
from quantbot.assets import normalise
from quantbot.clock import SimClock
from quantbot.config import ExitsConfig, RiskConfig
from quantbot.events import (
    OrderFilled,
    OrderIntent,
    OrderRejected,
    PositionCorrected,
    PriceUpdate,
    RejectReason,
    Tick,
)
from quantbot.exits import PEAK_KIND, request_flatten
from quantbot.store import PositionRow
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.paper import PaperExecutor
from tests.orderpath import OrderPath, order_path, order_row
from tests.test_risk_checks import OPEN, T0
from tests.test_risk_sells import venue

APT = 10**8
THL = "0x07fd500c11216f0fe3095d0c4b8aa4d64a4e2e04f83758462f2b127255643615::thl_coin::THL"
"""The canonical spelling: what the parsers, the PriceBook and the whale tracker call it."""
THL_REST = "0x7fd500c11216f0fe3095d0c4b8aa4d64a4e2e04f83758462f2b127255643615::thl_coin::THL"
"""As the REST API prints it (and token lists publish it): the address's leading zero dropped."""
THL_UPPER = "0X07FD500C11216F0FE3095D0C4B8AA4D64A4E2E04F83758462F2B127255643615::thl_coin::THL"
PRICE = Decimal(10)  # octas per THL base unit


def test_the_spellings_are_one_asset() -> None:
    assert normalise("aptos", THL_REST) == normalise("aptos", THL_UPPER) == THL != THL_REST


def paper() -> PaperExecutor:
    return make_plugin(PaperExecutor, id="paper", slippage_bps=0, fee_bps=0, network_fee=0)


def buy(intent_id: str, token: str, amount: int = APT, strategy: str = "s") -> OrderIntent:
    return order_intent(
        chain="aptos",
        intent_id=intent_id,
        strategy=strategy,
        token=token,
        amount=amount,
        notional_usd=Decimal(5),
        price_native=PRICE,
    )


def sell(intent_id: str, token: str, amount: int, strategy: str = "s") -> OrderIntent:
    return order_intent(
        chain="aptos",
        intent_id=intent_id,
        strategy=strategy,
        side="sell",
        token=token,
        amount=amount,
        notional_usd=Decimal(5),
        price_native=PRICE,
    )


def rejected(path: OrderPath) -> dict[str, RejectReason]:
    return {e.intent.intent_id: e.reason for e in path.events if isinstance(e, OrderRejected)}


async def test_a_token_bought_under_two_spellings_is_one_position_a_third_spelling_sells_whole(tmp_path: Path) -> None:
    async with order_path(tmp_path, executors={"paper": paper()}, limits=OPEN, clock=SimClock(T0)) as path:
        await path.bus.publish(buy("rest", THL_REST))
        await path.settle()
        await path.bus.publish(buy("parsed", THL))
        await path.settle()
        held = path.portfolio.position("aptos", THL).quantity
        assert held == 2 * APT // 10, "both buys are in one position"
        assert path.portfolio.open_keys() == {("aptos", THL)}
        await path.bus.publish(sell("upper", THL_UPPER, held))
        await path.settle()
        assert rejected(path) == {}
        assert path.portfolio.position("aptos", THL).quantity == 0
        assert [(r.token, r.quantity) for r in await path.store.positions()] == [(THL, 0)]
        assert {o.token for o in await path.store.orders()} == {THL}, "the journal names the canonical spelling"


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (RiskConfig(token_cooldown_s=60, duplicate_window_s=0), RejectReason.COOLDOWN),
        (RiskConfig(token_cooldown_s=0, duplicate_window_s=60), RejectReason.RECENT_DUPLICATE),
        (
            RiskConfig(token_cooldown_s=0, duplicate_window_s=0, max_exposure_apt=Decimal("1.5")),
            RejectReason.MAX_EXPOSURE,
        ),
        (RiskConfig(token_cooldown_s=0, duplicate_window_s=0, max_open_positions=1), None),
    ],
)
async def test_another_spelling_of_a_token_is_the_same_token_to_the_per_token_limits(
    tmp_path: Path, limits: RiskConfig, reason: RejectReason | None
) -> None:
    async with order_path(tmp_path, executors={"paper": paper()}, limits=limits, clock=SimClock(T0)) as path:
        await path.bus.publish(buy("first", THL_REST))
        await path.settle()
        await path.bus.publish(buy("again", THL_UPPER))
        await path.settle()
        if reason is None:  # a second buy of a token held opens no second position
            assert rejected(path) == {}
            assert path.portfolio.open_positions() == 1
        else:
            assert rejected(path) == {"again": reason}


async def test_a_stop_loss_watches_a_position_bought_under_the_rest_spelling(tmp_path: Path) -> None:
    """The PriceBook names the token canonically; the stop-loss must find the position all the same."""
    rules = ExitsConfig(stop_loss_pct=Decimal(20), take_profit_pct=Decimal(0))
    async with order_path(tmp_path, executors={"paper": paper()}, limits=OPEN, exits=rules, clock=SimClock(T0)) as path:
        await path.bus.publish(buy("rest", THL_REST))
        await path.settle()
        drop = PriceUpdate(chain="aptos", token=THL, price_native=PRICE * 7 / 10, source="swap", observed_at=T0)
        await path.bus.publish(drop)
        await path.settle()
        exits = [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"]
        assert [(e.token, e.reason) for e in exits] == [(THL, "stop_loss")]
        assert path.portfolio.position("aptos", THL).quantity == 0


class RestSpelledBalances(PaperExecutor):
    """Paper, except that its balance read names Aptos coin types as the REST API prints them (leading zeros dropped),
    as a reader built on the REST resource listing would."""

    async def balances(self, tokens: Collection[str] = ()) -> Mapping[str, int]:
        held = await super().balances(tokens)
        return {THL_REST if normalise("aptos", k) == THL else k: v for k, v in held.items()}


async def test_a_balance_read_in_another_spelling_confirms_the_position_and_corrects_nothing(tmp_path: Path) -> None:
    ex = make_plugin(RestSpelledBalances, id="paper", slippage_bps=0, fee_bps=0, network_fee=0)
    async with order_path(tmp_path, executors={"paper": ex}, limits=OPEN, clock=SimClock(T0)) as path:
        await path.bus.publish(buy("parsed", THL))
        await path.settle()
        assert await path.portfolio.sync_balances() == 0
        assert path.portfolio.position("aptos", THL).quantity == APT // 10
        assert not [e for e in path.events if isinstance(e, PositionCorrected)]


def approved(order_id: str, intent: OrderIntent) -> ApprovedOrder:
    return ApprovedOrder(
        order_id=order_id, idempotency_key=f"k:{order_id}", intent=intent, executors=("paper",), approved_at=T0
    )


async def old_version_bought(tmp_path: Path, *spellings: str) -> int:
    """What a version that keyed positions by the intent's spelling left behind: a paper fill and a position row per
    spelling bought (APT // 10 THL each). Returns the quantity bought in all."""
    ex = paper()
    ex.attach(PluginEnv(clock=SimClock(T0), data_dir=tmp_path / "executors" / "paper"))
    await ex.start()
    async with SqliteStore(tmp_path / "q.db") as store:
        for n, token in enumerate(spellings):
            report = await ex.execute(approved(f"old-{n}", buy(f"old-{n}", token)))
            assert report.fill is not None
            await store.put_position(
                PositionRow(
                    chain="aptos",
                    token=token,
                    quantity=report.fill.amount_out,
                    cost_native=report.fill.amount_in,
                    realised_pnl_native=0,
                    opened_at=T0,
                    updated_at=T0,
                    strategy="s",
                    trip_cost=report.fill.amount_in,
                )
            )
    await ex.stop()
    return len(spellings) * APT // 10


async def test_a_position_an_older_version_stored_under_another_spelling_is_kept_and_sold(tmp_path: Path) -> None:
    qty = await old_version_bought(tmp_path, THL_REST)
    async with order_path(tmp_path, executors={"paper": paper()}, limits=OPEN, clock=SimClock(T0)) as path:
        assert path.portfolio.corrections == 0, "the wallet (paper's) holds it under the old spelling: no correction"
        assert path.portfolio.position("aptos", THL).quantity == qty
        await path.bus.publish(sell("parsed", THL, qty))
        await path.settle()
        assert rejected(path) == {}
        assert [e.amount_in for e in path.events if isinstance(e, OrderFilled)] == [qty]
        assert path.portfolio.position("aptos", THL).quantity == 0


async def test_two_rows_an_older_version_stored_for_one_asset_become_one_position_once(tmp_path: Path) -> None:
    qty = await old_version_bought(tmp_path, THL_REST, THL_UPPER)
    for _ in range(2):  # the merge is stored: a second start does not count the old rows again
        async with order_path(tmp_path, executors={"paper": paper()}, limits=OPEN, clock=SimClock(T0)) as path:
            assert path.portfolio.corrections == 0
            pos = path.portfolio.position("aptos", THL)
            assert (pos.quantity, pos.cost_native, pos.trip_cost) == (qty, 2 * APT, 2 * APT)
            assert path.portfolio.open_keys() == {("aptos", THL)}
    async with SqliteStore(tmp_path / "q.db") as store:
        assert [(r.token, r.quantity) for r in await store.positions()] == [(THL, qty)]


async def test_a_sell_an_older_version_left_in_flight_still_counts_after_a_restart(tmp_path: Path) -> None:
    """Its journal row names the token as the strategy spelled it; the rebuilt sells in flight name it canonically."""
    qty = await old_version_bought(tmp_path, THL)
    async with SqliteStore(tmp_path / "q.db") as store:
        in_flight = approved("old-sell", sell("old-sell", THL_REST, qty * 6 // 10))
        await store.journal_order(order_row(in_flight, status="submitted"))
    held_sells = venue()  # the old sell has not landed: reconciling it leaves it open
    rules = ExitsConfig(stop_loss_pct=Decimal(20), take_profit_pct=Decimal(0))
    async with order_path(
        tmp_path, executors={"paper": held_sells}, limits=OPEN, exits=rules, clock=SimClock(T0)
    ) as path:
        assert path.risk.selling("aptos", THL) == qty * 6 // 10
        drop = PriceUpdate(chain="aptos", token=THL, price_native=PRICE * 7 / 10, source="swap", observed_at=T0)
        await path.bus.publish(drop)
        await path.bus.drain(5)
        assert not [e for e in path.events if isinstance(e, OrderIntent)], "the old sell is the exit in flight"
        await path.bus.publish(sell("all", THL, qty))
        await path.bus.publish(sell("rest", THL_UPPER, qty * 4 // 10))
        await path.bus.drain(5)
        held_sells.release("all", "rest")
        await path.bus.drain(5)
        assert rejected(path) == {"all": RejectReason.INSUFFICIENT_POSITION}


async def test_a_flatten_naming_the_token_in_another_spelling_sells_it(tmp_path: Path) -> None:
    rules = ExitsConfig(stop_loss_pct=Decimal(0), take_profit_pct=Decimal(0))
    async with order_path(tmp_path, executors={"paper": paper()}, limits=OPEN, exits=rules, clock=SimClock(T0)) as path:
        await path.bus.publish(buy("parsed", THL))
        await path.settle()
        await path.bus.publish(PriceUpdate(chain="aptos", token=THL, price_native=PRICE, source="swap", observed_at=T0))
        await request_flatten(path.store, token=THL_REST, now=T0)
        await path.bus.publish(Tick(seq=1))
        await path.settle()
        exits = [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"]
        assert [(e.token, e.reason) for e in exits] == [(THL, "flatten")]
        assert path.portfolio.position("aptos", THL).quantity == 0


async def test_a_trailing_peak_an_older_version_saved_under_another_spelling_still_guards_the_position(
    tmp_path: Path,
) -> None:
    """The old run saw THL at 20 (bought at 10) and saved that peak under the REST spelling; 17 after the restart is
    15 % below it, so the 10 % trailing stop sells, and the peak is kept under the canonical spelling."""
    await old_version_bought(tmp_path, THL_REST)
    async with SqliteStore(tmp_path / "q.db") as store:
        payload = json.dumps({"peak": "20", "opened_at": T0.isoformat()})
        await store.put_record(PEAK_KIND, f"aptos:{THL_REST}", payload, now=T0)
    rules = ExitsConfig(stop_loss_pct=Decimal(0), take_profit_pct=Decimal(0), trailing_stop_pct=Decimal(10))
    async with order_path(tmp_path, executors={"paper": paper()}, limits=OPEN, exits=rules, clock=SimClock(T0)) as path:
        assert path.exits is not None and path.exits.peaks == {("aptos", THL): Decimal(20)}
        assert [k async for k, _ in path.store.records(PEAK_KIND)] == [f"aptos:{THL}"]
        await path.bus.publish(
            PriceUpdate(chain="aptos", token=THL, price_native=Decimal(17), source="swap", observed_at=T0)
        )
        await path.settle()
        exits = [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"]
        assert [(e.token, e.reason) for e in exits] == [(THL, "trailing_stop")]
