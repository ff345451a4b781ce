"""ExitManager: each rule sells the whole position reduce-only, once, even while halted; flatten works
from another process through the store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from quantbot.bus import EventBus
from quantbot.chains.aptos.addresses import APT, asset_name
from quantbot.clock import SimClock
from quantbot.config import ExitsConfig, PricesConfig, RiskConfig
from quantbot.events import (
    Event,
    OrderIntent,
    OrderRejected,
    PriceUpdate,
    RejectReason,
    Swap,
    Tick,
    TokenRugWarning,
    WhaleSignal,
)
from quantbot.execution import ExecutionReport, Outcome
from quantbot.exits import EXIT_ANSWER_S, UNPRICED_S, ExitManager
from quantbot.portfolio import Portfolio
from quantbot.prices import PriceBook
from quantbot.risk import TradingState, set_trading_state
from quantbot.store import StoreError
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import order_intent
from tests.conftest import run_cli, write
from tests.orderpath import OrderPath, first_call, order_path

T0 = datetime(2026, 6, 1, tzinfo=UTC)
OFF = ExitsConfig(take_profit_pct=Decimal(0), stop_loss_pct=Decimal(0))
LIMITS = RiskConfig(token_cooldown_s=0)


async def open_position(path: OrderPath, token: str = "A") -> None:
    """Buy 0.1 SOL of `token` at 1000 lamports per base unit (paper: 99252 units at cost 1e8)."""
    await path.bus.publish(
        order_intent(intent_id=f"buy-{token}", token=token, notional_usd=Decimal(5), price_native=Decimal(1000))
    )
    await path.settle()
    assert path.portfolio.position("solana", token).quantity == 99_252


async def price(path: OrderPath, value: str, token: str = "A") -> None:
    await path.bus.publish(
        PriceUpdate(chain="solana", token=token, price_native=Decimal(value), source="test", observed_at=T0)
    )
    await path.settle()


def exits_of(path: OrderPath) -> list[OrderIntent]:
    return [e for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"]


@pytest.mark.parametrize(
    ("rules", "prices", "reason"),
    [
        (ExitsConfig(stop_loss_pct=Decimal(20), take_profit_pct=Decimal(0)), ["900", "790"], "stop_loss"),
        (ExitsConfig(take_profit_pct=Decimal(50), stop_loss_pct=Decimal(0)), ["1400", "1600"], "take_profit"),
        (
            ExitsConfig(take_profit_pct=Decimal(0), stop_loss_pct=Decimal(0), trailing_stop_pct=Decimal(10)),
            ["1200", "1500", "1400", "1340"],
            "trailing_stop",
        ),
    ],
)
async def test_price_rules_sell_the_whole_position_once(
    tmp_path: Path, rules: ExitsConfig, prices: list[str], reason: str
) -> None:
    async with order_path(tmp_path, exits=rules, limits=LIMITS) as path:
        await open_position(path)
        for p in prices[:-1]:
            await price(path, p)
        assert exits_of(path) == [], f"no exit before the last price {prices}"
        await price(path, prices[-1])
        await price(path, prices[-1])  # the same signal again while the first exit is done or in flight
        pos = path.portfolio.position("solana", "A")
    (sell,) = exits_of(path)
    assert (sell.side, sell.reduce_only, sell.amount, sell.reason) == ("sell", True, 99_252, reason)
    assert pos.quantity == 0, "the paper executor filled the exit"


async def test_max_hold_sells_on_a_tick(tmp_path: Path) -> None:

    clock = SimClock(T0)
    rules = ExitsConfig(take_profit_pct=Decimal(0), stop_loss_pct=Decimal(0), max_hold_s=600)
    async with order_path(tmp_path, exits=rules, limits=LIMITS, clock=clock) as path:
        await open_position(path)
        await price(path, "1000")
        clock.advance(599)
        await path.bus.publish(Tick(seq=1))
        await path.settle()
        assert exits_of(path) == []
        clock.advance(1)
        await path.bus.publish(Tick(seq=2))
        await path.settle()
    assert [e.reason for e in exits_of(path)] == ["max_hold"]


async def test_an_exit_passes_while_trading_is_halted(tmp_path: Path) -> None:
    async with order_path(tmp_path, exits=ExitsConfig(stop_loss_pct=Decimal(10)), limits=LIMITS) as path:
        await open_position(path)
        await set_trading_state(path.store, TradingState.HALTED, reason="test", now=T0)
        await price(path, "500")
        assert path.portfolio.position("solana", "A").quantity == 0


async def test_flatten_from_the_command_line_sells_every_position(tmp_path: Path) -> None:
    cfg = write(tmp_path / "q.toml", f'[store]\nsqlite_path = "{tmp_path}/q.db"\n')
    async with order_path(tmp_path, exits=OFF, limits=LIMITS) as path:
        await open_position(path, "A")
        await open_position(path, "B")
        await price(path, "1000", "A")
        await price(path, "1000", "B")
        result = await asyncio.to_thread(run_cli, "flatten", "-c", str(cfg))
        assert result.returncode == 0, result.stderr
        assert "2 open position(s) to sell" in result.stdout
        await path.bus.publish(Tick(seq=1))
        await path.settle()
        assert {e.reason for e in exits_of(path)} == {"flatten"}
        assert path.portfolio.open_positions() == 0
        await path.bus.publish(Tick(seq=2))
        await path.settle()
        assert [k async for k, _ in path.store.records("command.flatten")] == [], "consumed once all is sold"


LEADER = "Wha1e111111111111111111111111111111111111111"


def whale(kind: str, token: str = "A", wallets: tuple[str, ...] = (LEADER,)) -> WhaleSignal:
    return WhaleSignal(chain="solana", kind=kind, wallets=wallets, token=token, size=10**9, confidence=0.9)  # type: ignore[arg-type]


async def test_follow_the_leader_sells_when_the_leader_sells_or_dumps_even_while_halted(tmp_path: Path) -> None:
    async with order_path(tmp_path, exits=OFF, limits=LIMITS) as path:
        for token in "ABC":
            await path.bus.publish(
                order_intent(
                    intent_id=f"copy-{token}",
                    token=token,
                    notional_usd=Decimal(5),
                    price_native=Decimal(1000),
                    leader=LEADER if token != "C" else None,
                )
            )
        await path.settle()
        for token in "ABC":
            await price(path, "1000", token)
        await set_trading_state(path.store, TradingState.HALTED, reason="test", now=T0)
        await path.bus.publish(whale("large_buy"))  # the leader buying more is no exit
        await path.bus.publish(whale("large_sell", wallets=("SomeoneElse",)))  # not our leader
        await path.bus.publish(whale("large_sell", token="C"))  # C followed nobody
        await path.settle()
        assert exits_of(path) == []
        await path.bus.publish(whale("large_sell", token="A"))
        await path.bus.publish(whale("dump", token="B", wallets=("Other", LEADER)))
        await path.settle()
        assert path.portfolio.position("solana", "A").leader == LEADER
    assert {(e.token, e.reason) for e in exits_of(path)} == {("A", "follow_leader"), ("B", "follow_leader")}
    assert path.portfolio.open_positions() == 1


async def test_a_rug_warning_sells_the_held_token_only(tmp_path: Path) -> None:
    async with order_path(tmp_path, exits=OFF, limits=LIMITS) as path:
        await open_position(path, "A")
        await price(path, "1000")
        await path.bus.publish(TokenRugWarning(chain="solana", token="Z", kind="creator_sell"))
        await path.bus.publish(TokenRugWarning(chain="solana", token="A", kind="liquidity_drop", measured=Decimal(80)))
        await path.bus.publish(TokenRugWarning(chain="solana", token="A", kind="creator_sell"))  # already exiting
        await path.settle()
    assert [(e.token, e.reason) for e in exits_of(path)] == [("A", "rug_warning")]
    assert path.portfolio.position("solana", "A").quantity == 0


async def test_leader_and_rug_exits_can_be_switched_off(tmp_path: Path) -> None:
    rules = msgspec.structs.replace(OFF, follow_leader=False, rug_warning=False)
    async with order_path(tmp_path, exits=rules, limits=LIMITS) as path:
        await path.bus.publish(
            order_intent(intent_id="b", token="A", notional_usd=Decimal(5), price_native=Decimal(1000), leader=LEADER)
        )
        await path.settle()
        await path.bus.publish(whale("dump"))
        await path.bus.publish(TokenRugWarning(chain="solana", token="A", kind="creator_sell"))
        await path.settle()
    assert exits_of(path) == []


async def test_an_exit_the_risk_engine_could_not_decide_is_answered_and_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store error while journaling the stop-loss must not leave the exit "in flight" for ever."""
    async with order_path(tmp_path, exits=ExitsConfig(stop_loss_pct=Decimal(10)), limits=LIMITS) as path:
        await open_position(path)
        monkeypatch.setattr(path.router, "journal", first_call(path.router.journal, StoreError("database is locked")))
        await price(path, "800")
        rejected = [e for e in path.events if isinstance(e, OrderRejected)]
        assert [e.reason for e in rejected] == [RejectReason.RISK_ERROR]
        await price(path, "700")
        assert path.portfolio.position("solana", "A").quantity == 0
    assert [e.reason for e in exits_of(path)] == ["stop_loss", "stop_loss"]


async def test_an_exit_never_answered_is_released_after_a_while(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with order_path(tmp_path, exits=ExitsConfig(stop_loss_pct=Decimal(10)), limits=LIMITS, clock=clock) as path:
        await open_position(path)
        assert path.exits is not None
        bus = path.exits.bus

        class Lost:  # the intent is published but never reaches the risk engine (its handler cut off)
            async def publish(self, event: object) -> None:
                pass

        path.exits.bus = Lost()  # type: ignore[assignment]
        await price(path, "800")
        path.exits.bus = bus
        await price(path, "790")
        assert path.portfolio.position("solana", "A").quantity == 99_252, "still held as in flight"
        clock.advance(EXIT_ANSWER_S)
        await path.bus.publish(Tick(seq=1))
        await path.settle()
        await price(path, "780")
        assert path.portfolio.position("solana", "A").quantity == 0


async def test_a_trailing_peak_belongs_to_the_position_that_saw_it(tmp_path: Path) -> None:
    """Sold on a trailing stop after a peak of 1500, then bought again at 1000: its first price is no exit."""
    rules = ExitsConfig(take_profit_pct=Decimal(0), stop_loss_pct=Decimal(0), trailing_stop_pct=Decimal(10))
    limits = msgspec.structs.replace(LIMITS, duplicate_window_s=0)
    async with order_path(tmp_path, exits=rules, limits=limits) as path:
        await open_position(path)
        for p in ("1500", "1340"):
            await price(path, p)
        assert path.portfolio.position("solana", "A").quantity == 0
        await path.bus.publish(
            order_intent(intent_id="again", token="A", notional_usd=Decimal(5), price_native=Decimal(1000))
        )
        await path.settle()
        await price(path, "1000")
        assert path.portfolio.position("solana", "A").quantity > 0
    assert [e.reason for e in exits_of(path)] == ["trailing_stop"]


async def test_a_trailing_peak_survives_a_restart(tmp_path: Path) -> None:
    """Peak 1500 before a restart; 1340 after it is more than 10 % below that peak, so the position is sold."""
    rules = ExitsConfig(take_profit_pct=Decimal(0), stop_loss_pct=Decimal(0), trailing_stop_pct=Decimal(10))
    async with order_path(tmp_path, exits=rules, limits=LIMITS) as path:
        await open_position(path)
        for p in ("1200", "1500", "1400"):
            await price(path, p)
        assert exits_of(path) == []
    async with order_path(tmp_path, exits=rules, limits=LIMITS) as path:
        await price(path, "1340")
        assert path.portfolio.position("solana", "A").quantity == 0
    assert [e.reason for e in exits_of(path)] == ["trailing_stop"]
    async with order_path(tmp_path, exits=rules, limits=LIMITS) as path:
        assert path.exits is not None and path.exits.peaks == {}, "the closed position's peak was forgotten"
        assert [k async for k, _ in path.store.records("exits.peak")] == []


async def test_flatten_keeps_selling_until_the_position_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(tmp_path / "q.toml", f'[store]\nsqlite_path = "{tmp_path}/q.db"\n')
    async with order_path(tmp_path, exits=OFF, limits=LIMITS) as path:
        await open_position(path, "A")
        await price(path, "1000", "A")
        paper = path.executors["paper"]
        slipped = ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.SLIPPAGE, detail="moved")
        monkeypatch.setattr(paper, "execute", first_call(paper.execute, slipped))
        result = await asyncio.to_thread(run_cli, "flatten", "-c", str(cfg))
        assert result.returncode == 0, result.stderr
        for seq in (1, 2, 3):
            await path.bus.publish(Tick(seq=seq))
            await path.settle()
        assert path.portfolio.open_positions() == 0
        assert [k async for k, _ in path.store.records("command.flatten")] == []
    assert [e.reason for e in exits_of(path)] == ["flatten", "flatten"]


async def test_a_held_token_that_no_price_reaches_is_reported(tmp_path: Path) -> None:
    """Its stop-loss is not watching it: the operator must hear of it (log and status), and again after a price."""
    from structlog.testing import capture_logs

    clock = SimClock(T0)
    async with order_path(tmp_path, exits=ExitsConfig(stop_loss_pct=Decimal(10)), limits=LIMITS, clock=clock) as path:
        await open_position(path)
        assert path.exits is not None
        await price(path, "1000")
        with capture_logs() as logs:
            clock.advance(UNPRICED_S - 1)
            await path.bus.publish(Tick(seq=1))
            await path.settle()
            assert path.exits.stats()["unpriced"] == []
            clock.advance(1)
            for seq in (2, 3):
                await path.bus.publish(Tick(seq=seq))
                await path.settle()
            assert path.exits.stats()["unpriced"] == ["solana:A"]
            await price(path, "990")
        assert path.exits.stats()["unpriced"] == []
    assert [e["event"] for e in logs if e["event"].startswith("exits.")] == ["exits.unpriced", "exits.priced_again"]


async def test_an_aptos_coin_with_a_leading_zero_address_is_priced_and_stopped_out(tmp_path: Path) -> None:
    """The position carries the parser's name for the coin (AIP-40: 64 digits, leading zero kept); the price book must
    publish under the same name, or no stop-loss ever sees a price."""
    coin = asset_name("0xabababababababababababababababababababababababababababababababc::meme::MEME")
    assert coin.startswith("0x0abab")
    clock = SimClock(T0)
    async with EventBus(clock=clock) as bus, SqliteStore(tmp_path / "q.db") as store:
        portfolio = Portfolio(store=store, clock=clock, bus=bus)
        await portfolio.start()
        book = PriceBook(bus=bus, clock=clock, config=PricesConfig(publish_min_interval_s=0))
        await book.start()
        exits = ExitManager(
            bus=bus, store=store, portfolio=portfolio, rules=ExitsConfig(stop_loss_pct=Decimal(30)), clock=clock
        )
        await exits.start()
        intents: list[OrderIntent] = []

        async def record(e: Event) -> None:
            assert isinstance(e, OrderIntent)
            intents.append(e)

        bus.subscribe("order.intent", record, name="test.intents")
        async with store.transaction():  # 10 APT for 10**7 units: 100 octas a unit
            await portfolio.apply_fill(chain="aptos", token=coin, side="buy", amount_in=10**9, amount_out=10**7)
        # the market trades it at 10 octas a unit (-90 %), the swap naming it as the Aptos parser does
        await bus.publish(
            Swap(
                chain="aptos",
                wallet="0x5",
                mint_in=APT,
                amount_in=10**8,
                mint_out=coin,
                amount_out=10**7,
                tx="t",
                slot=1,
                block_time=T0,
            )
        )
        await bus.drain(5)
        try:
            assert portfolio.mark("aptos", coin) == Decimal(10)
            assert [(i.token, i.reason) for i in intents] == [(coin, "stop_loss")]
        finally:
            await book.stop()
