"""Per-strategy exit rules ([exits.strategies.<id>]) and per-intent equity_pct sizing: what a strategy
like the sniper needs from the order path beyond the global rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from quantbot.clock import SimClock
from quantbot.config import ConfigError, ExitRule, ExitsConfig, RiskConfig, SizingConfig, load_config
from quantbot.events import OrderIntent, PriceUpdate, Tick
from quantbot.sizing import Sizer, SizingError
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import order_intent
from tests.conftest import write
from tests.orderpath import OrderPath, order_path

T0 = datetime(2026, 6, 1, tzinfo=UTC)
LIMITS = RiskConfig(token_cooldown_s=0, duplicate_window_s=0)
RULES = ExitsConfig(
    take_profit_pct=Decimal(0),
    stop_loss_pct=Decimal(50),
    strategies={"snipe": ExitRule(stop_loss_pct=Decimal(10), take_profit_pct=Decimal(40), max_hold_s=600)},
)


async def buy(path: OrderPath, token: str, strategy: str) -> None:
    intent = order_intent(
        intent_id=f"buy-{token}", token=token, strategy=strategy, notional_usd=Decimal(5), price_native=Decimal(1000)
    )
    await path.bus.publish(intent)
    await path.settle()
    assert path.portfolio.position("solana", token).quantity > 0


async def price(path: OrderPath, token: str, value: str) -> None:
    await path.bus.publish(
        PriceUpdate(chain="solana", token=token, price_native=Decimal(value), source="test", observed_at=T0)
    )
    await path.settle()


def exits(path: OrderPath) -> dict[str, str]:
    return {e.token: e.reason for e in path.events if isinstance(e, OrderIntent) and e.strategy == "exits"}


async def test_a_strategys_own_stop_loss_and_take_profit_apply_to_the_positions_it_opened(tmp_path: Path) -> None:
    async with order_path(tmp_path, exits=RULES, limits=LIMITS) as path:
        await buy(path, "S", "snipe")
        await buy(path, "O", "other")
        await buy(path, "T", "snipe")
        await price(path, "S", "880")  # -12%: the sniper's 10% stop, not the global 50%
        await price(path, "O", "880")
        await price(path, "T", "1300")  # +30%: below its 40% take-profit (the global one is off)
        assert exits(path) == {"S": "stop_loss"}
        await price(path, "T", "1450")
    assert exits(path) == {"S": "stop_loss", "T": "take_profit"}


async def test_a_strategys_own_max_hold_applies_only_to_its_positions(tmp_path: Path) -> None:
    clock = SimClock(T0)
    async with order_path(tmp_path, exits=RULES, limits=LIMITS, clock=clock) as path:
        await buy(path, "S", "snipe")
        await buy(path, "O", "other")
        clock.advance(599)
        await path.bus.publish(Tick(seq=1))
        await path.settle()
        assert exits(path) == {}
        clock.advance(1)
        await path.bus.publish(Tick(seq=2))
        await path.settle()
    assert exits(path) == {"S": "max_hold"}, "the global rules have no max hold"


def test_exit_rules_per_strategy_load_from_toml_and_bad_values_are_refused(tmp_path: Path) -> None:
    good = write(tmp_path / "good.toml", "[exits.strategies.snipe]\nstop_loss_pct = 15\nmax_hold_s = 900\n")
    rule = load_config([good], environ={}).config.exits.strategies["snipe"]
    assert (rule.stop_loss_pct, rule.max_hold_s, rule.take_profit_pct) == (Decimal(15), 900, None)
    bad = write(tmp_path / "bad.toml", "[exits.strategies.snipe]\nstop_loss_pct = -5\n")
    with pytest.raises(ConfigError) as err:
        load_config([bad], environ={})
    assert any("exits.strategies.snipe.stop_loss_pct" in p for p in err.value.problems)


async def test_an_intent_can_carry_its_own_equity_pct(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "s.db") as store:
        s = Sizer(config=SizingConfig(equity_pct=Decimal(2)), store=store, equity=lambda chain: 10**11)
        hint = {"amount": 0, "sizing": "equity_pct"}
        assert (await s.size(order_intent(**hint)))[0] == 2 * 10**9
        assert (await s.size(order_intent(**hint, equity_pct=Decimal("0.5"))))[0] == 5 * 10**8
        with pytest.raises(SizingError, match=r"equity_pct must be in \(0, 100\]"):
            await s.size(order_intent(**hint, equity_pct=Decimal(0)))
