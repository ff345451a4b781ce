"""Performance metrics: pure functions over numpy arrays (the one module where floats are allowed).

Conventions, shared by every caller (replay report, demo, trader analytics, benchmarks):

- An *equity curve* is the account value (USD, as float) sampled once per period, oldest first.
- *Returns* are simple per-period returns ``r[t] = equity[t+1] / equity[t] - 1`` (``len(equity) - 1`` values).
- Annualisation is the caller's choice: ``periods_per_year`` (1 = no annualisation; 365 for daily samples,
  ``365 * 24`` for hourly ...). Ratios scale by ``sqrt(periods_per_year)``, volatility too.
- The risk-free rate (``risk_free``) is *per period* and 0 by default.
- Standard deviations are sample standard deviations (``ddof=1``).
- Sortino's downside deviation is ``sqrt(sum(min(r - target, 0)**2) / (n - 1))``: the same ``ddof=1`` divisor
  over *all* n periods (periods above the target count as zero shortfall).
- Undefined ratios (fewer than two returns, a zero deviation, no round trips) are ``nan``, never an exception and
  never ``inf``; callers render ``nan`` as "n/a" (JSON: ``null``).
- Max drawdown is a positive fraction of the running peak, in ``[0, 1]`` for a non-negative equity curve, with
  the index of that peak and of the trough.
- Round trips are given by their realised PnL (one value per closed trade); a trade with PnL exactly 0 is neither
  a win nor a loss but counts in the win-rate denominator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Candles",
    "Drawdown",
    "RoundTrips",
    "average_loss",
    "average_trade_size",
    "average_win",
    "candles",
    "drawdown_series",
    "exposure",
    "max_drawdown",
    "pct_return",
    "returns_from_equity",
    "round_trips",
    "sharpe",
    "sortino",
    "time_in_market",
    "total_return",
    "trade_count",
    "volatility",
    "vwap",
    "win_rate",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _arr(values: npt.ArrayLike, name: str) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains nan or inf")
    return out


def returns_from_equity(equity: npt.ArrayLike) -> FloatArray:
    """Simple per-period returns of an equity curve; a period starting at 0 equity has return 0."""
    eq = _arr(equity, "equity")
    if eq.size < 2:
        return np.zeros(0, dtype=np.float64)
    prev, nxt = eq[:-1], eq[1:]
    out = np.zeros(prev.size, dtype=np.float64)
    np.divide(nxt - prev, prev, out=out, where=prev != 0)
    return out


def total_return(equity: npt.ArrayLike) -> float:
    """Absolute change of the equity curve, last minus first (0 for fewer than two points)."""
    eq = _arr(equity, "equity")
    return float(eq[-1] - eq[0]) if eq.size >= 2 else 0.0


def pct_return(equity: npt.ArrayLike) -> float:
    """Return over the whole curve as a fraction (0.1 = +10%); nan when the curve starts at 0."""
    eq = _arr(equity, "equity")
    if eq.size < 2:
        return 0.0
    return float(eq[-1] / eq[0] - 1.0) if eq[0] != 0 else math.nan


def volatility(returns: npt.ArrayLike, *, periods_per_year: float = 1.0) -> float:
    """Sample standard deviation (ddof=1) of per-period returns, scaled by sqrt(periods_per_year)."""
    r = _arr(returns, "returns")
    if r.size < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def sharpe(returns: npt.ArrayLike, *, periods_per_year: float = 1.0, risk_free: float = 0.0) -> float:
    """mean(r - risk_free) / std(r, ddof=1) * sqrt(periods_per_year); nan if undefined."""
    r = _arr(returns, "returns")
    if r.size < 2:
        return math.nan
    excess = r - risk_free
    sd = float(np.std(excess, ddof=1))
    if sd == 0.0 or not math.isfinite(sd):
        return math.nan
    return float(np.mean(excess)) / sd * math.sqrt(periods_per_year)


def sortino(returns: npt.ArrayLike, *, periods_per_year: float = 1.0, target: float = 0.0) -> float:
    """mean(r - target) / downside deviation * sqrt(periods_per_year); nan if undefined (no shortfall)."""
    r = _arr(returns, "returns")
    if r.size < 2:
        return math.nan
    shortfall = np.minimum(r - target, 0.0)
    dd = math.sqrt(float(np.sum(shortfall * shortfall)) / (r.size - 1))
    if dd == 0.0:
        return math.nan
    return float(np.mean(r - target)) / dd * math.sqrt(periods_per_year)


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The deepest fall from a running peak: ``depth`` as a fraction of the peak, with both indices."""

    depth: float
    peak_index: int
    trough_index: int


def drawdown_series(equity: npt.ArrayLike) -> FloatArray:
    """Drawdown at every point, ``(peak - equity) / peak`` of the running peak (0 while the peak is <= 0)."""
    eq = _arr(equity, "equity")
    if np.any(eq < 0):
        raise ValueError("equity must be non-negative for a drawdown")
    peak = np.maximum.accumulate(eq) if eq.size else eq
    out = np.zeros(eq.size, dtype=np.float64)
    np.divide(peak - eq, peak, out=out, where=peak > 0)
    return np.clip(out, 0.0, 1.0)


def max_drawdown(equity: npt.ArrayLike) -> Drawdown:
    """Deepest drawdown with the index of its running peak and of its trough (all 0 for a rising curve)."""
    dd = drawdown_series(equity)
    if dd.size == 0 or float(dd.max()) == 0.0:
        return Drawdown(0.0, 0, 0)
    trough = int(np.argmax(dd))
    eq = np.asarray(equity, dtype=np.float64)
    peak = int(np.argmax(eq[: trough + 1]))  # first index reaching the running peak
    return Drawdown(float(dd[trough]), peak, trough)


def win_rate(pnls: npt.ArrayLike) -> float:
    """Fraction of round trips with PnL > 0; nan with no round trips."""
    p = _arr(pnls, "pnls")
    return float(np.count_nonzero(p > 0)) / p.size if p.size else math.nan


def average_win(pnls: npt.ArrayLike) -> float:
    """Mean PnL of the winning round trips (> 0); nan if none."""
    p = _arr(pnls, "pnls")
    wins = p[p > 0]
    return float(wins.mean()) if wins.size else math.nan


def average_loss(pnls: npt.ArrayLike) -> float:
    """Mean PnL of the losing round trips (< 0), a negative number; nan if none."""
    p = _arr(pnls, "pnls")
    losses = p[p < 0]
    return float(losses.mean()) if losses.size else math.nan


@dataclass(frozen=True, slots=True)
class RoundTrips:
    """Summary of closed trades; ``profit_factor`` = gross wins / |gross losses| (nan without losses)."""

    count: int
    wins: int
    losses: int
    win_rate: float
    average_win: float
    average_loss: float
    gross_profit: float
    gross_loss: float
    profit_factor: float


def round_trips(pnls: npt.ArrayLike) -> RoundTrips:
    """Win/loss statistics of closed trades, one realised PnL per round trip."""
    p = _arr(pnls, "pnls")
    gross_profit = float(p[p > 0].sum())
    gross_loss = float(p[p < 0].sum())
    return RoundTrips(
        count=int(p.size),
        wins=int(np.count_nonzero(p > 0)),
        losses=int(np.count_nonzero(p < 0)),
        win_rate=win_rate(p),
        average_win=average_win(p),
        average_loss=average_loss(p),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=gross_profit / -gross_loss if gross_loss < 0 else math.nan,
    )


def exposure(position_value: npt.ArrayLike, equity: npt.ArrayLike) -> FloatArray:
    """Gross exposure per period: |position value| / equity (0 where equity is 0)."""
    pos = _arr(position_value, "position_value")
    eq = _arr(equity, "equity")
    if pos.shape != eq.shape:
        raise ValueError(f"position_value and equity differ in length ({pos.size} != {eq.size})")
    out = np.zeros(pos.size, dtype=np.float64)
    np.divide(np.abs(pos), eq, out=out, where=eq != 0)
    return out


def time_in_market(position_value: npt.ArrayLike) -> float:
    """Fraction of periods with a non-zero position; nan for an empty series."""
    pos = _arr(position_value, "position_value")
    return float(np.count_nonzero(pos)) / pos.size if pos.size else math.nan


def trade_count(sizes: npt.ArrayLike) -> int:
    """Number of trades (fills) in a series of trade sizes."""
    return int(_arr(sizes, "sizes").size)


def average_trade_size(sizes: npt.ArrayLike) -> float:
    """Mean absolute trade size (e.g. USD notional per fill); nan with no trades."""
    s = _arr(sizes, "sizes")
    return float(np.abs(s).mean()) if s.size else math.nan


def vwap(prices: npt.ArrayLike, volumes: npt.ArrayLike) -> float:
    """Volume-weighted average price: sum(p * v) / sum(v); nan with zero total volume."""
    p = _arr(prices, "prices")
    v = _arr(volumes, "volumes")
    if p.shape != v.shape:
        raise ValueError(f"prices and volumes differ in length ({p.size} != {v.size})")
    total = float(v.sum())
    return float(np.dot(p, v)) / total if total > 0 else math.nan


@dataclass(frozen=True, slots=True)
class Candles:
    """OHLCV bars as parallel arrays; ``start`` is each bar's bucket start (``floor(t / interval) * interval``)."""

    start: FloatArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    vwap: FloatArray

    def __len__(self) -> int:
        return int(self.start.size)


def candles(times: npt.ArrayLike, prices: npt.ArrayLike, volumes: npt.ArrayLike, *, interval: float) -> Candles:
    """OHLCV + VWAP bars of trades (time in seconds, any epoch); only buckets holding a trade appear.

    Trades are ordered by time (stable, so same-second trades keep their given order); a bar's open is its
    first trade, its close its last. A bar with zero volume has vwap nan.
    """
    if not interval > 0:
        raise ValueError(f"interval must be > 0, got {interval}")
    t = _arr(times, "times")
    p = _arr(prices, "prices")
    v = _arr(volumes, "volumes")
    if not (t.shape == p.shape == v.shape):
        raise ValueError(f"times, prices and volumes differ in length ({t.size}, {p.size}, {v.size})")
    if t.size == 0:
        empty = np.zeros(0, dtype=np.float64)
        return Candles(empty, empty, empty, empty, empty, empty, empty)
    order = np.argsort(t, kind="stable")
    t, p, v = t[order], p[order], v[order]
    bucket = np.floor(t / interval)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], t.size] - 1
    vol = np.add.reduceat(v, starts)
    # Weights relative to each bar's largest volume: p * v of tiny (subnormal) volumes loses the price's
    # precision (5e-324 * 2.5 == 1e-323), while v / max(v) keeps the VWAP inside [low, high].
    peak = np.repeat(np.maximum.reduceat(v, starts), ends - starts + 1)
    w = np.zeros_like(v)
    np.divide(v, peak, out=w, where=peak > 0)
    bar_vwap = np.full(starts.size, np.nan)
    np.divide(np.add.reduceat(p * w, starts), np.add.reduceat(w, starts), out=bar_vwap, where=vol > 0)
    return Candles(
        start=bucket[starts] * interval,
        open=p[starts],
        high=np.maximum.reduceat(p, starts),
        low=np.minimum.reduceat(p, starts),
        close=p[ends],
        volume=vol,
        vwap=bar_vwap,
    )
