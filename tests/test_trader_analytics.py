"""Trader analytics: tracked wallets' swaps persisted, round trips by average cost, the leaderboard and candles
as an operator sees them through the CLI; every figure hand-computed."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.assets import WSOL
from quantbot.bus import EventBus
from quantbot.cli import main
from quantbot.clock import SimClock
from quantbot.config import WhalesConfig
from quantbot.store.sqlite import SqliteStore
from quantbot.store.wallet_trades import WalletTrade, wallet_trades
from quantbot.store.writer import WriteBehind
from quantbot.testing import swap
from quantbot.trader_analytics import closed_trips, leaderboard, token_candles, wallet_stats
from quantbot.whales import WhaleTracker

SOL = 10**9
TOK = 10**6  # the meme tokens' decimals
MEME = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"
WA = "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
WB = "8hnZamLJMaHYzTXGxWTEGUnyCXkjdtTV3EQ4JWaUwzGF"
WC = "Ef64qrMb664ht8yc7TzUxr5dUACufk9LNuRqQS6GFAVH"


def _buy(wallet: str, sol: float, tokens: int, at: datetime, tx: str) -> Any:
    return swap(
        wallet=wallet,
        mint_in=WSOL,
        amount_in=int(sol * SOL),
        decimals_in=9,
        mint_out=MEME,
        amount_out=tokens * TOK,
        decimals_out=6,
        tx=tx,
        block_time=at,
    )


def _sell(wallet: str, tokens: int, sol: float, at: datetime, tx: str) -> Any:
    return swap(
        wallet=wallet,
        mint_in=MEME,
        amount_in=tokens * TOK,
        decimals_in=6,
        mint_out=WSOL,
        amount_out=int(sol * SOL),
        decimals_out=9,
        tx=tx,
        block_time=at,
    )


def _history(t0: datetime) -> list[Any]:
    """A: buys 100 @ 1 SOL and 100 @ 3 SOL (avg 0.02), sells 100 for 3 (+1) then 100 for 1 (-1).
    B: buys 10 for 1 SOL, sells them for 2 (+1), ten days earlier. C: sells tokens it was never seen buying."""
    s = timedelta(seconds=1)
    old = t0 - timedelta(days=10)
    return [
        _buy(WA, 1, 100, t0 + 10 * s, "a1"),
        _buy(WA, 3, 100, t0 + 50 * s, "a2"),
        _sell(WA, 100, 3, t0 + 80 * s, "a3"),
        _sell(WA, 100, 1, t0 + 300 * s, "a4"),
        _buy(WB, 1, 10, old, "b1"),
        _sell(WB, 10, 2, old + 60 * s, "b2"),
        _sell(WC, 50, 5, t0 + 20 * s, "c1"),
    ]


async def _record(db: Path, swaps: list[Any], now: datetime) -> SqliteStore:
    clock = SimClock(now)
    store = SqliteStore(db)
    await store.start()
    writer = WriteBehind(store=store, clock=clock)
    config = msgspec.convert(
        {"wallets": [{"chain": "solana", "address": w} for w in (WA, WB, WC)]}, WhalesConfig, strict=False
    )
    tracker = WhaleTracker(bus=EventBus(clock=clock), clock=clock, config=config, writer=writer, store=store)
    for s in swaps:
        tracker.observe_swap(s)
        tracker.observe_swap(s)  # a transaction seen twice is kept once
    await writer.flush()
    return store


def _config(tmp_path: Path, db: Path, extra: str = "") -> str:
    path = tmp_path / "quantbot.toml"
    path.write_text(f'[daemon]\ndata_dir = "{tmp_path}"\n[store]\nsqlite_path = "{db}"\n{extra}')
    return str(path)


async def test_tracked_wallet_swaps_are_persisted_once_each_with_their_native_value(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    store = await _record(tmp_path / "q.db", _history(now - timedelta(hours=1)), now)
    try:
        rows = await wallet_trades(store, wallet=WA)
    finally:
        await store.stop()
    assert [(r.tx, r.side, r.quantity, r.native, r.decimals) for r in rows] == [
        ("a1", "buy", 100 * TOK, 1 * SOL, 6),
        ("a2", "buy", 100 * TOK, 3 * SOL, 6),
        ("a3", "sell", 100 * TOK, 3 * SOL, 6),
        ("a4", "sell", 100 * TOK, 1 * SOL, 6),
    ]


async def test_old_wallet_trades_are_removed_by_retention(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    store = await _record(tmp_path / "q.db", _history(now - timedelta(hours=1)), now)
    try:
        deleted = await store.apply_retention(now, {"wallet_trades_h": 24 * 5})
        left = {r.wallet for r in await wallet_trades(store)}
    finally:
        await store.stop()
    assert deleted == {"wallet_trades_h": 2}
    assert left == {WA, WC}


def test_leaderboard_cli_ranks_wallets_with_hand_computed_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    now = datetime.now(UTC).replace(microsecond=0)
    db = tmp_path / "q.db"

    async def prepare() -> None:
        store = await _record(db, _history(now - timedelta(hours=1)), now)
        await store.stop()

    asyncio.run(prepare())
    cfg = _config(tmp_path, db)
    assert main(["leaderboard", "-c", cfg, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metric"] == "total_return" and out["period"] == "all"
    by = {w["wallet"]: w for w in out["wallets"]}
    assert [w["wallet"] for w in out["wallets"]] == [WB, WA, WC]  # 1.0 > 0.0 = 0.0 (ties by address)
    a = by[WA]
    assert a["trade_count"] == 4 and a["round_trips"] == 2
    assert a["avg_trade_size"] == pytest.approx(2.0)  # (1 + 3 + 3 + 1) / 4 SOL
    assert a["win_rate"] == pytest.approx(0.5)
    assert a["total_return"] == pytest.approx(0.0)  # (3 - 2) + (1 - 2)
    assert a["pct_return"] == pytest.approx(0.0)
    assert a["max_drawdown"] == pytest.approx(0.2)  # equity 4 -> 5 -> 4
    assert a["sharpe"] == pytest.approx(0.0)  # returns +0.5, -0.5
    assert a["volatility"] == pytest.approx(math.sqrt(0.5))
    assert a["total_return_usd"] is None  # no USD price was known
    b = by[WB]
    assert (b["total_return"], b["pct_return"], b["win_rate"], b["max_drawdown"]) == (1.0, 1.0, 1.0, 0.0)
    assert b["sharpe"] is None and b["volatility"] is None  # one round trip: undefined
    c = by[WC]
    assert c["round_trips"] == 0 and c["win_rate"] is None, "a sell with no known cost closes no round trip"

    assert main(["leaderboard", "-c", cfg, "--json", "--period", "day", "--metric", "max_drawdown"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [w["wallet"] for w in out["wallets"]] == [WA, WC], "B traded ten days ago; nan drawdown ranks last"

    cfg2 = _config(tmp_path, db, '[analytics]\nleaderboard_metric = "win_rate"\nleaderboard_limit = 1\n')
    assert main(["leaderboard", "-c", cfg2]) == 0
    text = capsys.readouterr().out
    assert "win_rate" in text.splitlines()[0] and WB in text and WA not in text


def test_candles_cli_prints_hand_computed_ohlcv_and_vwap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    t0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
    db = tmp_path / "q.db"

    async def prepare() -> None:
        store = await _record(db, _history(t0), t0 + timedelta(hours=1))
        await store.stop()

    asyncio.run(prepare())
    assert main(["candles", MEME, "-c", _config(tmp_path, db), "--chain", "solana", "--json"]) == 0
    bars = json.loads(capsys.readouterr().out)["candles"]
    # 12:00 bar: A buys @0.01 (1 SOL), C sells @0.1 (5 SOL), A buys @0.03 (3 SOL); then 12:01 and 12:05.
    assert [b["start"][:16] for b in bars] == [
        "2026-05-22T12:00",  # B's buy and its sell a minute later
        "2026-05-22T12:01",
        "2026-06-01T12:00",
        "2026-06-01T12:01",
        "2026-06-01T12:05",
    ]
    first = bars[2]
    assert (first["open"], first["high"], first["low"], first["close"]) == pytest.approx((0.01, 0.1, 0.01, 0.03))
    assert first["volume"] == pytest.approx(9.0)
    assert first["vwap"] == pytest.approx((0.01 * 1 + 0.1 * 5 + 0.03 * 3) / 9)
    assert bars[0]["close"] == pytest.approx(0.1) and bars[1]["close"] == pytest.approx(0.2)
    assert bars[3]["close"] == pytest.approx(0.03) and bars[4]["close"] == pytest.approx(0.01)


def _trade(side: str, qty: int, native: int | None, usd: str | None, minute: int) -> WalletTrade:
    return WalletTrade(
        chain="solana",
        wallet=WA,
        tx=f"t{minute}",
        token=MEME,
        side="buy" if side == "buy" else "sell",
        quantity=qty,
        native=native,
        usd=None if usd is None else Decimal(usd),
        at=datetime(2026, 6, 1, 12, minute, tzinfo=UTC),
    )


def test_usd_pnl_uses_the_average_usd_cost_of_the_part_sold() -> None:
    trips = closed_trips([_trade("buy", 100, SOL, "100", 0), _trade("sell", 50, SOL, "80", 1)])
    assert len(trips) == 1
    assert trips[0].pnl == pytest.approx(0.5)  # proceeds 1 SOL - half the cost 0.5
    assert trips[0].pnl_usd == Decimal(30)  # 80 - 50


def test_a_sell_larger_than_the_holding_closes_only_what_was_held() -> None:
    trips = closed_trips([_trade("buy", 10, SOL, None, 0), _trade("sell", 40, 4 * SOL, None, 1)])
    assert [(t.cost, t.pnl, t.pnl_usd) for t in trips] == [(1.0, 0.0, None)]  # 10 of 40 sold: 1 SOL of 4


def test_an_unknown_metric_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown metric 'luck'"):
        leaderboard([], metric="luck", since=None, limit=5)


@given(
    st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 10**12), st.integers(0, 10**12)), max_size=30)
)
def test_realised_pnl_never_exceeds_proceeds_and_cost_never_exceeds_what_was_paid(
    legs: list[tuple[str, int, int]],
) -> None:
    trades = [_trade(side, q, n, None, i % 60) for i, (side, q, n) in enumerate(legs)]
    trips = closed_trips(trades)
    paid = sum(n for side, _, n in legs if side == "buy") / SOL
    received = sum(n for side, _, n in legs if side == "sell") / SOL
    assert sum(t.cost for t in trips) <= paid + 1e-9
    assert sum(t.pnl + t.cost for t in trips) <= received + 1e-9
    stats = wallet_stats("solana", WA, trades, since=None)
    assert stats.trade_count == len(legs) and stats.round_trips == len(trips)
    assert math.isnan(stats.max_drawdown) or 0.0 <= stats.max_drawdown <= 1.0
    assert len(token_candles(trades, interval=60)) <= len(legs)
