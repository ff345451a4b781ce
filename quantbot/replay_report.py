"""The replay report: metrics (quantbot.analytics) per chain, a stdout table, and trades.csv, equity.csv,
summary.json and equity.png in an output directory.

Conventions: the equity curve is sampled every `sample_s` simulated seconds (and at the end); returns are
per sample and ratios are annualised with periods_per_year = 365 * 86400 / sample_s. Native amounts are
reported in base units (exact integers) and, where a float is needed for a ratio, in whole coins.
Ratios that are undefined (a flat curve, no trades) are null in JSON and "n/a" in the table.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from quantbot import analytics as qa
from quantbot.replay import NATIVE_DECIMALS, ReplayResult
from quantbot.replay_cli import METRICS

SECONDS_PER_YEAR = 365 * 86_400


def _whole(native: int | float, chain: str) -> float:
    return float(native) / float(10 ** NATIVE_DECIMALS[chain])


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def chains_of(result: ReplayResult) -> list[str]:
    """Chains that traded, the most traded first (ties: alphabetical); every sampled chain if none traded."""
    counts: dict[str, int] = {}
    for t in result.trades:
        counts[t.chain] = counts.get(t.chain, 0) + 1
    if not counts:
        return sorted({s.chain for s in result.samples})
    return sorted(counts, key=lambda c: (-counts[c], c))


def chain_metrics(result: ReplayResult, chain: str) -> dict[str, Any]:
    samples = [s for s in result.samples if s.chain == chain]
    equity = np.array([_whole(s.equity_native, chain) for s in samples], dtype=np.float64)
    exposure_native = np.array([_whole(s.exposure_native, chain) for s in samples], dtype=np.float64)
    returns = qa.returns_from_equity(equity)
    ppy = SECONDS_PER_YEAR / result.sample_s
    dd = qa.max_drawdown(equity) if equity.size else qa.Drawdown(0.0, 0, 0)
    exposure = qa.exposure(exposure_native, equity) if equity.size else np.zeros(0)
    trades = [t for t in result.trades if t.chain == chain]
    trip_pnls = np.array([_whole(t.pnl_native, chain) for t in result.trips if t.chain == chain], dtype=np.float64)
    trips = qa.round_trips(trip_pnls)
    realised = result.realised_native.get(chain, 0)
    unrealised = result.unrealised_native.get(chain, 0)
    sizes = np.array([_whole(t.notional_native, chain) for t in trades], dtype=np.float64)
    return {
        "trades": qa.trade_count(sizes),
        "buys": sum(1 for t in trades if t.side == "buy"),
        "sells": sum(1 for t in trades if t.side == "sell"),
        "network_fees_base_units": sum(t.fee for t in trades),
        "avg_trade_native": _clean(qa.average_trade_size(sizes)),
        "round_trips": trips.count,
        "win_rate": _clean(trips.win_rate),
        "avg_win_native": _clean(trips.average_win),
        "avg_loss_native": _clean(trips.average_loss),
        "realised_pnl_base_units": realised,
        "unrealised_pnl_base_units": unrealised,
        "total_pnl_base_units": realised + unrealised,
        "total_pnl_native": _whole(realised + unrealised, chain),
        "start_equity_native": float(equity[0]) if equity.size else None,
        "end_equity_native": float(equity[-1]) if equity.size else None,
        "return_pct": _clean(qa.pct_return(equity) * 100) if equity.size else None,
        "volatility": _clean(qa.volatility(returns, periods_per_year=ppy)),
        "sharpe": _clean(qa.sharpe(returns, periods_per_year=ppy)),
        "sortino": _clean(qa.sortino(returns, periods_per_year=ppy)),
        "max_drawdown": dd.depth,
        "max_drawdown_from": samples[dd.peak_index].at.isoformat() if samples else None,
        "max_drawdown_to": samples[dd.trough_index].at.isoformat() if samples else None,
        "exposure_avg": float(exposure.mean()) if exposure.size else None,
        "exposure_max": float(exposure.max()) if exposure.size else None,
        "time_in_market": _clean(qa.time_in_market(exposure_native)) if exposure_native.size else None,
    }


def summarise(result: ReplayResult) -> dict[str, Any]:
    """The whole report as plain JSON-able data; `primary` is the most traded chain, which sweeps rank on."""
    chains = chains_of(result)
    return {
        "recording": result.recording,
        "overrides": dict(result.overrides),
        "window": [w.isoformat() if w else None for w in result.window],
        "events": result.events,
        "first_event": result.first.isoformat() if result.first else None,
        "last_event": result.last.isoformat() if result.last else None,
        "truncated_tail": result.truncated_tail,
        "sample_s": result.sample_s,
        "primary": chains[0] if chains else None,
        "chains": {c: chain_metrics(result, c) for c in chains},
        "rejections": dict(sorted(result.rejections.items())),
    }


def metric_value(summary: Mapping[str, Any], metric: str) -> float:
    """The primary chain's value of `metric` (nan when undefined or nothing traded)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    primary = summary.get("primary")
    if primary is None:
        return 0.0 if metric in ("total_pnl", "return_pct", "max_drawdown") else math.nan
    key = "total_pnl_native" if metric == "total_pnl" else metric
    value = summary["chains"][primary].get(key)
    return math.nan if value is None else float(value)


def rank_key(metric: str) -> Any:
    """Sort key: best first, undefined values last."""

    def key(value: float) -> tuple[int, float]:
        if math.isnan(value):
            return (1, 0.0)
        return (0, value if metric == "max_drawdown" else -value)

    return key


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value * 100:.2f}%" if pct else f"{value:.6g}"
    return str(value)


TABLE_ROWS = (
    ("trades", "trades", False),
    ("round trips", "round_trips", False),
    ("win rate", "win_rate", True),
    ("avg win (native)", "avg_win_native", False),
    ("avg loss (native)", "avg_loss_native", False),
    ("avg trade (native)", "avg_trade_native", False),
    ("realised PnL (base units)", "realised_pnl_base_units", False),
    ("unrealised PnL (base units)", "unrealised_pnl_base_units", False),
    ("total PnL (native)", "total_pnl_native", False),
    ("return %", "return_pct", False),
    ("Sharpe (annualised)", "sharpe", False),
    ("Sortino (annualised)", "sortino", False),
    ("max drawdown", "max_drawdown", True),
    ("avg exposure", "exposure_avg", True),
    ("max exposure", "exposure_max", True),
    ("time in market", "time_in_market", True),
)


def render_table(summary: Mapping[str, Any]) -> str:
    chains = list(summary["chains"])
    lines = [f"replay of {summary['recording']}: {summary['events']} events"]
    if summary["first_event"]:
        lines.append(f"from {summary['first_event']} to {summary['last_event']}")
    if summary["overrides"]:
        lines.append("overrides: " + ", ".join(f"{k}={v}" for k, v in summary["overrides"].items()))
    width = max(len(label) for label, _, _ in TABLE_ROWS)
    lines.append(f"{'':{width}}  " + "  ".join(f"{c:>14}" for c in chains))
    for label, key, pct in TABLE_ROWS:
        cells = "  ".join(f"{_fmt(summary['chains'][c].get(key), pct):>14}" for c in chains)
        lines.append(f"{label:{width}}  {cells}")
    rejections = summary["rejections"]
    lines.append("rejections: " + (", ".join(f"{r}={n}" for r, n in rejections.items()) if rejections else "none"))
    return "\n".join(lines)


def write_report(result: ReplayResult, summary: Mapping[str, Any], out: Path) -> list[Path]:
    """trades.csv, equity.csv, summary.json and equity.png in `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    trades_csv, equity_csv = out / "trades.csv", out / "equity.csv"
    with trades_csv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["n", "at", "strategy", "chain", "token", "side", "amount_in", "amount_out", "fee", "price_native"])
        for n, t in enumerate(result.trades, 1):
            price = "" if t.price_native is None else str(t.price_native)
            w.writerow(
                [n, t.at.isoformat(), t.strategy, t.chain, t.token, t.side, t.amount_in, t.amount_out, t.fee, price]
            )
    with equity_csv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["at", "chain", "equity_native", "exposure_native", "exposure_pct", "drawdown", "equity_usd"])
        for chain in summary["chains"]:
            samples = [s for s in result.samples if s.chain == chain]
            eq = np.array([float(s.equity_native) for s in samples])
            dd = qa.drawdown_series(eq) if eq.size else eq
            ex = qa.exposure(np.array([float(s.exposure_native) for s in samples]), eq) if eq.size else eq
            for s, d, e in zip(samples, dd, ex, strict=True):
                usd = "" if s.equity_usd is None else str(s.equity_usd)
                w.writerow(
                    [s.at.isoformat(), chain, s.equity_native, s.exposure_native, f"{e * 100:.4f}", f"{d:.6f}", usd]
                )
    summary_json = out / "summary.json"
    summary_json.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    png = out / "equity.png"
    plot_equity(result, list(summary["chains"]), png)
    return [trades_csv, equity_csv, summary_json, png]


def plot_equity(result: ReplayResult, chains: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import DateFormatter, date2num
    from matplotlib.ticker import FixedLocator

    # Ticks are placed here, not by matplotlib's auto locators: those size themselves from the axis' pixel
    # extent and step arithmetic that has been seen to fail (nan steps) inside a long test process.
    rows = max(len(chains), 1)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 3.2 * rows), squeeze=False)
    for ax, chain in zip(axes[:, 0], chains, strict=False):
        samples = [s for s in result.samples if s.chain == chain]
        ax.set_title(f"{chain}: equity and exposure (native coins)")
        if not samples:
            ax.text(0.5, 0.5, "no equity samples", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        xs = np.array([date2num(s.at) for s in samples], dtype=np.float64)  # type: ignore[no-untyped-call]
        equity = np.array([_whole(s.equity_native, chain) for s in samples], dtype=np.float64)
        exposure = np.array([_whole(s.exposure_native, chain) for s in samples], dtype=np.float64)
        ax.plot(xs, equity, color="tab:blue", label="equity")
        ax.fill_between(xs, exposure, color="tab:orange", alpha=0.3, label="exposure")
        x_lo, x_hi = float(xs.min()), float(xs.max())
        if x_hi <= x_lo:  # one instant: a two-minute window around it
            x_lo, x_hi = x_lo - 1 / 1440, x_hi + 1 / 1440
        y_lo, y_hi = float(min(equity.min(), exposure.min(), 0.0)), float(max(equity.max(), exposure.max()))
        if y_hi <= y_lo:
            y_hi = y_lo + 1.0
        pad = (y_hi - y_lo) * 0.05
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo - pad, y_hi + pad)
        ax.xaxis.set_major_locator(FixedLocator(np.linspace(x_lo, x_hi, 5).tolist()))
        ax.xaxis.set_major_formatter(DateFormatter("%m-%d %H:%M:%S"))  # type: ignore[no-untyped-call]
        ax.yaxis.set_major_locator(FixedLocator(np.linspace(y_lo, y_hi, 6).tolist()))
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
