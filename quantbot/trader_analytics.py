"""Trader analytics: how well each tracked wallet trades, from its stored swaps (`wallet_trades`).

Definitions (every figure is checked against hand-computed values in tests/test_trader_analytics.py):

- Round trips by *average cost per token*: per (wallet, token), a buy adds its quantity and its cost; a
  sell of ``q`` closes ``min(q, held)`` at the running average cost, and its realised PnL is the matching
  share of the proceeds minus that cost. Tokens sold with nothing held (bought before tracking began)
  close no round trip. Native values are in whole native units (SOL, APT); a leg nothing priced is left
  out of the native figures (an unpriced buy adds no quantity). USD PnL only where the position's every
  buy and the sell carried USD.
- ``trade_count`` and ``avg_trade_size`` (native units) count the wallet's trade legs in the period;
  round-trip figures count round trips *closed* in the period (their cost may come from earlier buys).
- ``total_return`` = sum of realised PnL (native); ``total_return_usd`` likewise in USD (None if none);
  ``pct_return`` = total PnL / total cost of the closed round trips.
- The equity curve is ``B, B + pnl1, B + pnl1 + pnl2, ...`` with ``B`` the total cost of the closed round
  trips (the capital that went round); ``max_drawdown`` is quantbot.analytics.max_drawdown of it.
- Per-trade returns ``pnl_i / cost_i`` give ``sharpe`` and ``volatility`` (not annualised).
- Undefined figures are nan (JSON null), as in quantbot.analytics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from quantbot import analytics
from quantbot.assets import NATIVE_DECIMALS
from quantbot.store.wallet_trades import WalletTrade

PERIODS: dict[str, timedelta] = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
INTERVALS: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600}
METRICS: tuple[str, ...] = (
    "total_return",
    "total_return_usd",
    "pct_return",
    "win_rate",
    "sharpe",
    "volatility",
    "max_drawdown",
    "trade_count",
    "avg_trade_size",
    "round_trips",
)
LOWER_IS_BETTER = frozenset({"volatility", "max_drawdown"})


@dataclass(frozen=True, slots=True)
class ClosedTrip:
    token: str
    closed_at: datetime
    cost: float
    """Whole native units."""
    pnl: float
    pnl_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class WalletStats:
    chain: str
    wallet: str
    trade_count: int
    avg_trade_size: float
    round_trips: int
    win_rate: float
    total_return: float
    total_return_usd: float | None
    pct_return: float
    max_drawdown: float
    sharpe: float
    volatility: float

    def as_json(self) -> dict[str, object]:
        """Plain JSON values: nan becomes None."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


class _Book:
    __slots__ = ("cost", "cost_usd", "quantity", "usd_known")

    def __init__(self) -> None:
        self.quantity = 0
        self.cost = 0
        self.cost_usd = Decimal(0)
        self.usd_known = True


def closed_trips(trades: Iterable[WalletTrade]) -> list[ClosedTrip]:
    """Realised round trips of one wallet's trades (oldest first), by average cost per token."""
    books: dict[str, _Book] = {}
    out: list[ClosedTrip] = []
    for t in sorted(trades, key=lambda t: t.at):
        if t.quantity <= 0 or t.native is None:
            continue
        scale = 10 ** NATIVE_DECIMALS.get(t.chain, 0)
        b = books.setdefault(t.token, _Book())
        if t.side == "buy":
            b.quantity += t.quantity
            b.cost += t.native
            if t.usd is None:
                b.usd_known = False
            else:
                b.cost_usd += t.usd
            continue
        closed = min(t.quantity, b.quantity)
        if closed == 0:
            continue
        cost = b.cost * closed // b.quantity
        proceeds = t.native * closed // t.quantity
        pnl_usd: Decimal | None = None
        if b.usd_known and t.usd is not None:
            cost_usd = b.cost_usd * closed / b.quantity
            pnl_usd = t.usd * closed / t.quantity - cost_usd
            b.cost_usd -= cost_usd
        b.quantity -= closed
        b.cost -= cost
        if b.quantity == 0:
            books[t.token] = _Book()
        out.append(ClosedTrip(t.token, t.at, cost / scale, (proceeds - cost) / scale, pnl_usd))
    return out


def wallet_stats(chain: str, wallet: str, trades: Sequence[WalletTrade], *, since: datetime | None) -> WalletStats:
    """The wallet's figures over the period starting at `since` (None: all stored history)."""
    trips = [c for c in closed_trips(trades) if since is None or c.closed_at >= since]
    scale = 10 ** NATIVE_DECIMALS.get(chain, 0)
    sizes = [t.native / scale for t in trades if t.native is not None and (since is None or t.at >= since)]
    legs = sum(1 for t in trades if since is None or t.at >= since)
    pnls = np.array([c.pnl for c in trips], dtype=np.float64)
    costs = np.array([c.cost for c in trips], dtype=np.float64)
    base = float(costs.sum())
    equity = np.concatenate(([base], base + np.cumsum(pnls))) if trips else np.zeros(0)
    returns = np.zeros(pnls.size)
    np.divide(pnls, costs, out=returns, where=costs > 0)
    usd = [c.pnl_usd for c in trips if c.pnl_usd is not None]
    return WalletStats(
        chain=chain,
        wallet=wallet,
        trade_count=legs,
        avg_trade_size=analytics.average_trade_size(sizes),
        round_trips=len(trips),
        win_rate=analytics.win_rate(pnls),
        total_return=float(pnls.sum()),
        total_return_usd=float(sum(usd, Decimal(0))) if usd else None,
        pct_return=float(pnls.sum()) / base if base > 0 else math.nan,
        max_drawdown=analytics.max_drawdown(np.maximum(equity, 0.0)).depth if trips else math.nan,
        sharpe=analytics.sharpe(returns),
        volatility=analytics.volatility(returns),
    )


def leaderboard(trades: Sequence[WalletTrade], *, metric: str, since: datetime | None, limit: int) -> list[WalletStats]:
    """Wallets ranked best first by `metric` (volatility and drawdown: lowest first); undefined values last."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    by_wallet: dict[tuple[str, str], list[WalletTrade]] = {}
    for t in trades:
        by_wallet.setdefault((t.chain, t.wallet), []).append(t)
    stats = [wallet_stats(c, w, ts, since=since) for (c, w), ts in by_wallet.items()]
    stats = [s for s in stats if s.trade_count > 0]
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0

    def key(s: WalletStats) -> tuple[bool, float, str, str]:
        v = getattr(s, metric)
        missing = v is None or (isinstance(v, float) and math.isnan(v))
        return (missing, 0.0 if missing else sign * float(v), s.chain, s.wallet)

    return sorted(stats, key=key)[:limit]


def token_candles(trades: Iterable[WalletTrade], *, interval: int) -> analytics.Candles:
    """OHLCV + VWAP of a token's observed trades: price in native units per whole token (per base unit when
    no decimals are known), volume in native units; legs without a native value are left out."""
    times: list[float] = []
    prices: list[float] = []
    volumes: list[float] = []
    for t in trades:
        if t.native is None or t.quantity <= 0:
            continue
        native = t.native / 10 ** NATIVE_DECIMALS.get(t.chain, 0)
        quantity = t.quantity / 10 ** (t.decimals or 0)
        times.append(t.at.timestamp())
        prices.append(native / quantity)
        volumes.append(native)
    return analytics.candles(times, prices, volumes, interval=interval)
