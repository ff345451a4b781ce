"""`quantbot record` and `quantbot replay`: argument parsing and output; the work is in sweep.py."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantbot.config import EX_CONFIG, ConfigError, default_paths

if TYPE_CHECKING:
    from quantbot.sweep import Fold, Run

EX_RECORDING = 1
METRICS = ("total_pnl", "sharpe", "sortino", "return_pct", "win_rate", "max_drawdown")
"""What sweeps rank by (on the most traded chain); all but max_drawdown are better higher."""
DEFAULT_METRIC = "total_pnl"
# The replay machinery (numpy, the daemon) is imported only when `replay` runs: other commands stay light.


def record_environ(output: str) -> dict[str, str]:
    """The process environment plus [record] path = OUTPUT."""
    quoted = '"' + output.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return dict(os.environ) | {"QUANTBOT__RECORD__PATH": quoted}


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed takes a number > 0 or 'max', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--speed takes a number > 0 or 'max', got {text!r}")
    return value


def add_replay_parser(sub: Any, config_help: str) -> None:
    replay = sub.add_parser(
        "replay",
        help="feed a recording through the live pipeline on simulated time and report the trades",
        description="Replay FILE (from `quantbot record`) through the scanner, tracker, filters, strategies, "
        "risk engine and paper executor, on a clock driven by the recording's timestamps. Paper mode is forced; "
        "the store is a throw-away one. Prints a report (trades, PnL, win rate, Sharpe, Sortino, drawdown, "
        "exposure, rejections) and with --out writes trades.csv, equity.csv, summary.json and equity.png. "
        "A corrupt line stops the replay with its line number (exit 1); a config error exits 78.",
    )
    replay.add_argument("file", metavar="FILE", help="the recording")
    replay.add_argument("-c", "--config", action="append", metavar="PATH", help=config_help)
    replay.add_argument(
        "--speed",
        type=_speed,
        default=None,
        metavar="N|max",
        help="N: sleep real time / N between events; max (default): no sleeping",
    )
    replay.add_argument("--out", metavar="DIR", help="write the report files here")
    replay.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="PARAM=v1,v2,...",
        help="replay over every combination of these values (repeatable); PARAM is a dotted config path, "
        "e.g. risk.max_order_usd or strategies.<id>.<param>",
    )
    replay.add_argument(
        "--metric",
        choices=METRICS,
        default=DEFAULT_METRIC,
        help=f"what --sweep and --walk-forward rank by, on the most traded chain (default: {DEFAULT_METRIC})",
    )
    replay.add_argument(
        "--walk-forward",
        action="store_true",
        help="tune the --sweep grid on each in-sample window and report the choice on the next window",
    )
    replay.add_argument("--splits", type=int, default=3, metavar="K", help="walk-forward folds (default: 3)")
    replay.add_argument(
        "--sample-s",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="equity sampling interval in simulated seconds; ratios are annualised from it (default: 60)",
    )


def replay_command(args: argparse.Namespace) -> int:
    from quantbot.logs import setup_logging
    from quantbot.recording import RecordingError

    setup_logging(level="warning", stream=sys.stderr)  # stdout carries the report
    paths = args.config or default_paths()
    path = Path(args.file)
    out = Path(args.out) if args.out else None
    if not args.sample_s > 0:
        print("error: --sample-s must be > 0", file=sys.stderr)
        return EX_CONFIG
    try:
        with tempfile.TemporaryDirectory(prefix="quantbot-replay-") as tmp:
            work = Path(tmp)
            if args.walk_forward:
                return _walk_forward(args, paths, path, work, out)
            if args.sweep:
                return _sweep(args, paths, path, work, out)
            return _single(args, paths, path, work, out)
    except RecordingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_RECORDING
    except ConfigError as exc:
        for line in exc.problems:
            print(f"config error: {line}", file=sys.stderr)
        return EX_CONFIG


def _single(args: argparse.Namespace, paths: list[str], path: Path, work: Path, out: Path | None) -> int:
    from quantbot.replay import Progress
    from quantbot.replay_report import render_table, summarise, write_report
    from quantbot.sweep import replay_once

    progress = Progress(total_bytes=path.stat().st_size) if path.exists() else None
    result = asyncio.run(
        replay_once(
            path=path,
            config_paths=paths,
            work_dir=work / "run",
            speed=args.speed,
            sample_s=args.sample_s,
            progress=progress,
        )
    )
    summary = summarise(result)
    print(render_table(summary))
    if out is not None:
        files = write_report(result, summary, out)
        print(f"report written: {', '.join(str(f) for f in files)}", file=sys.stderr)
    return 0 if result.exit_status == 0 else 1


def _sweep(args: argparse.Namespace, paths: list[str], path: Path, work: Path, out: Path | None) -> int:
    from quantbot.replay_report import render_table, write_report
    from quantbot.sweep import parse_sweep, render_ranking, sweep

    params = parse_sweep(args.sweep)
    runs = asyncio.run(
        sweep(path=path, config_paths=paths, work_dir=work, params=params, metric=args.metric, sample_s=args.sample_s)
    )
    print(render_ranking(runs, args.metric))
    print()
    print("best run:")
    print(render_table(runs[0].summary))
    if out is not None:
        write_report(runs[0].result, runs[0].summary, out)
        ranking = [_run_json(rank, r) for rank, r in enumerate(runs, 1)]
        (out / "sweep.json").write_text(json.dumps({"metric": args.metric, "runs": ranking}, indent=2) + "\n")
    return 0


def _walk_forward(args: argparse.Namespace, paths: list[str], path: Path, work: Path, out: Path | None) -> int:
    from quantbot.replay_report import write_report
    from quantbot.sweep import parse_sweep, render_folds, walk_forward

    params = parse_sweep(args.sweep)
    folds = asyncio.run(
        walk_forward(
            path=path,
            config_paths=paths,
            work_dir=work,
            params=params,
            metric=args.metric,
            splits=args.splits,
            sample_s=args.sample_s,
        )
    )
    print(render_folds(folds, args.metric))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for k, fold in enumerate(folds):
            write_report(fold.oos.result, fold.oos.summary, out / f"fold-{k}")
        report = {"metric": args.metric, "folds": [_fold_json(f) for f in folds]}
        (out / "walk_forward.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _num(x: float) -> float | None:
    return None if x != x else x  # NaN -> null


def _run_json(rank: int, run: Run) -> dict[str, Any]:
    return {"rank": rank, "overrides": run.overrides, "score": _num(run.score), "summary": run.summary}


def _fold_json(fold: Fold) -> dict[str, Any]:
    return {
        "in_sample": [t.isoformat() for t in fold.in_sample],
        "out_of_sample": [t.isoformat() for t in fold.out_of_sample],
        "chosen": fold.chosen,
        "in_sample_score": _num(fold.in_sample_score),
        "out_of_sample_score": _num(fold.oos.score),
        "out_of_sample_summary": fold.oos.summary,
    }
