"""`quantbot leaderboard` and `quantbot candles`: trader analytics read straight from the store."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from typing import Any

from quantbot.config import Config
from quantbot.trader_analytics import INTERVALS, METRICS, PERIODS, WalletStats, leaderboard, token_candles


def add_analytics_parsers(sub: Any, config_help: str) -> None:
    board = sub.add_parser(
        "leaderboard",
        help="rank tracked wallets by win rate, return, Sharpe, drawdown... from their stored swaps",
        description="Read the tracked wallets' swaps from the store the config names (the daemon may be running "
        "or stopped), compute each wallet's round trips by average cost per token and rank the wallets by "
        "--metric (default [analytics] leaderboard_metric). Volatility and max_drawdown rank lowest first. "
        "Exit 0, 1 if the store cannot be read, 78 on a config error.",
    )
    board.add_argument("-c", "--config", action="append", metavar="PATH", help=config_help)
    board.add_argument("--period", choices=tuple(PERIODS), help="only the last day, week or month (default: all)")
    board.add_argument("--metric", choices=METRICS, help="rank by this (default: [analytics] leaderboard_metric)")
    board.add_argument("--chain", choices=("solana", "aptos"), help="only this chain")
    board.add_argument("--limit", type=int, metavar="N", help="show N wallets (default: [analytics] leaderboard_limit)")
    board.add_argument("--json", action="store_true", help="machine-readable output")

    candles = sub.add_parser(
        "candles",
        help="OHLCV candles and VWAP of a token from the tracked wallets' stored swaps",
        description="Bars of TOKEN's observed trades: price in native units (SOL/APT) per whole token, volume in "
        "native units, VWAP per bar. Exit 0, 1 if the store cannot be read, 78 on a config error.",
    )
    candles.add_argument("token", metavar="TOKEN", help="mint or asset type")
    candles.add_argument("-c", "--config", action="append", metavar="PATH", help=config_help)
    candles.add_argument("--interval", choices=tuple(INTERVALS), default="1m", help="bar length (default: 1m)")
    candles.add_argument("--chain", choices=("solana", "aptos"), help="only this chain")
    candles.add_argument("--json", action="store_true", help="machine-readable output")


def _num(v: object, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _table(rows: list[WalletStats], metric: str) -> str:
    head = ("#", "chain", "wallet", metric, "trades", "trips", "win%", "return", "ret%", "sharpe", "maxdd")
    lines = [head]
    for i, s in enumerate(rows, 1):
        pct = s.pct_return * 100 if not math.isnan(s.pct_return) else math.nan
        lines.append(
            (
                str(i),
                s.chain,
                s.wallet,
                _num(getattr(s, metric)),
                str(s.trade_count),
                str(s.round_trips),
                _num(s.win_rate * 100, 1) if not math.isnan(s.win_rate) else "n/a",
                _num(s.total_return),
                _num(pct, 1),
                _num(s.sharpe, 2),
                _num(s.max_drawdown, 3),
            )
        )
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines)


async def leaderboard_command(config: Config, args: argparse.Namespace) -> int:
    from quantbot.daemon import open_store
    from quantbot.store import StoreError
    from quantbot.store.wallet_trades import wallet_trades

    metric = args.metric or config.analytics.leaderboard_metric
    limit = args.limit if args.limit is not None else config.analytics.leaderboard_limit
    if limit < 1:
        print("error: --limit must be >= 1", file=sys.stderr)
        return 2
    since = datetime.now(UTC) - PERIODS[args.period] if args.period else None
    try:
        async with open_store(config) as store:
            trades = await wallet_trades(store, chain=args.chain)
    except (StoreError, OSError) as exc:
        print(f"error: cannot read the store: {exc}", file=sys.stderr)
        return 1
    rows = leaderboard(trades, metric=metric, since=since, limit=limit)
    if args.json:
        print(json.dumps({"metric": metric, "period": args.period or "all", "wallets": [r.as_json() for r in rows]}))
    elif not rows:
        print("no trades of tracked wallets in the store for this period")
    else:
        print(_table(rows, metric))
    return 0


async def candles_command(config: Config, args: argparse.Namespace) -> int:
    from quantbot.daemon import open_store
    from quantbot.store import StoreError
    from quantbot.store.wallet_trades import wallet_trades

    try:
        async with open_store(config) as store:
            trades = await wallet_trades(store, chain=args.chain, token=args.token)
    except (StoreError, OSError) as exc:
        print(f"error: cannot read the store: {exc}", file=sys.stderr)
        return 1
    bars = token_candles(trades, interval=INTERVALS[args.interval])
    rows = [
        {
            "start": datetime.fromtimestamp(float(bars.start[i]), UTC).isoformat(),
            "open": float(bars.open[i]),
            "high": float(bars.high[i]),
            "low": float(bars.low[i]),
            "close": float(bars.close[i]),
            "volume": float(bars.volume[i]),
            "vwap": None if math.isnan(bars.vwap[i]) else float(bars.vwap[i]),
        }
        for i in range(len(bars))
    ]
    if args.json:
        print(json.dumps({"token": args.token, "interval": args.interval, "candles": rows}))
    elif not rows:
        print(f"no priced trades of {args.token} in the store")
    else:
        print("start                      open          high          low           close         volume        vwap")
        for r in rows:
            vals = "  ".join(f"{_num(r[k], 9):<12}" for k in ("open", "high", "low", "close", "volume", "vwap"))
            print(f"{r['start']:<26} {vals}".rstrip())
    return 0
