"""Metrics in process: PnL signs, equity from a portfolio that knows its balance, resilience of a scrape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.ops.metrics import Metrics
from quantbot.portfolio import Portfolio
from quantbot.store.sqlite import SqliteStore


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


class BalancePortfolio(Portfolio):
    """The portfolio as the risk issue extends it: it knows the wallet's native balance."""

    def equity_native(self, chain: str) -> int | None:
        return {"solana": 12_500_000_000}.get(chain)


class Broken:
    name = "broken.watcher"

    def stats(self) -> dict[str, Any]:
        raise RuntimeError("stats exploded")


async def test_a_losing_sale_shows_negative_realised_pnl_and_equity_comes_from_the_portfolio(tmp_path: Path) -> None:
    clock = SimClock()
    async with EventBus(clock=clock) as bus, SqliteStore(tmp_path / "q.db") as store:
        portfolio = BalancePortfolio(store=store, clock=clock)
        await portfolio.start()
        await portfolio.apply_fill(chain="aptos", token="0x1::m::C", side="buy", amount_in=300_000_000, amount_out=10)
        await portfolio.apply_fill(chain="aptos", token="0x1::m::C", side="sell", amount_in=10, amount_out=100_000_000)
        metrics = Metrics(bus=bus, store=store, portfolio=portfolio, components=lambda: [Broken()])
        got = samples(await metrics.render())
    assert got[("quantbot_pnl_realised", (("chain", "aptos"),))] == pytest.approx(-2.0), "2 APT lost, not dropped"
    assert got[("quantbot_pnl_total", (("chain", "aptos"),))] == pytest.approx(-2.0)
    assert got[("quantbot_equity", (("chain", "solana"),))] == pytest.approx(12.5)
    assert ("quantbot_equity", (("chain", "aptos"),)) not in got, "no balance known, no equity claimed"


async def test_a_scrape_answers_when_the_store_fails_and_keeps_the_last_counts(tmp_path: Path) -> None:
    clock = SimClock()
    async with EventBus(clock=clock) as bus:
        store = SqliteStore(tmp_path / "q.db")
        await store.start()
        metrics = Metrics(bus=bus, store=store, portfolio=Portfolio(store=store, clock=clock), components=list)
        first = samples(await metrics.render())
        await store.close()
        second = samples(await metrics.render())
    assert first[("quantbot_metrics_store_errors_total", ())] == 0
    assert second[("quantbot_metrics_store_errors_total", ())] == 1
    assert second[("quantbot_orders", (("status", "filled"),))] == 0
