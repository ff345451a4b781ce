"""Running replays: one run, a parameter grid (sweep), and walk-forward (tune in-sample, judge out-of-sample).

Each run is a fresh Daemon on a ReplayClock with its own throw-away data directory (store, paper ledger),
paper mode forced, no HTTP endpoint, no jobs, no HTTP price sources and no recording. Parameters are
dotted config paths (`risk.max_order_usd`, `strategies.sniper.min_score`: for plugin sections the second
part is the instance id), applied as QUANTBOT__... overrides so they are validated like any config.

Walk-forward with K splits cuts the recording's time span into K + 1 equal windows; fold k tunes on window
k (every grid point, ranked by the metric) and replays the chosen point on window k + 1, from a fresh state.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantbot.clock import Clock
from quantbot.config import PLUGIN_SECTIONS, ConfigError, LoadedConfig, load_config
from quantbot.plugins import PluginCatalog
from quantbot.recording import RecordingError, read_recording
from quantbot.replay import Progress, ReplayClock, ReplayResult, ReplaySource, window_bounds
from quantbot.replay_report import metric_value, rank_key, summarise
from quantbot.secrets import Redactor

if TYPE_CHECKING:
    from quantbot.daemon import Daemon

FORCED = {
    "QUANTBOT__MODE": '"paper"',
    "QUANTBOT__HTTP__ENABLED": "false",
    "QUANTBOT__JOBS__ENABLED": "false",
    "QUANTBOT__PRICES__SOURCES": "[]",
    "QUANTBOT__RECORD__PATH": '""',
    "QUANTBOT__STORE__BACKEND": '"sqlite"',
}
"""What every replay overrides, whatever the config says."""


@dataclass(frozen=True, slots=True)
class Param:
    path: str
    values: tuple[str, ...]


def parse_sweep(specs: Sequence[str]) -> list[Param]:
    """`PARAM=v1,v2,...` (repeatable) -> grid axes; a clear error for a malformed one."""
    out: list[Param] = []
    for spec in specs:
        path, sep, values = spec.partition("=")
        parts = path.strip().split(".")
        vals = tuple(v.strip() for v in values.split(",") if v.strip())
        if not sep or len(parts) < 2 or not all(parts) or not vals:
            raise ConfigError([f"--sweep {spec!r}: expected PARAM=v1,v2,... with a dotted PARAM (risk.max_order_usd)"])
        out.append(Param(path.strip(), vals))
    return out


def grid(params: Sequence[Param]) -> list[dict[str, str]]:
    """Every combination, in the order the values were given (the first parameter varies slowest)."""
    if not params:
        return [{}]
    return [
        dict(zip((p.path for p in params), combo, strict=True))
        for combo in itertools.product(*(p.values for p in params))
    ]


def override_env(loaded: LoadedConfig, overrides: Mapping[str, str]) -> dict[str, str]:
    """Dotted paths -> QUANTBOT__ variables; plugin instances are found by id in the loaded config."""
    env: dict[str, str] = {}
    for path, value in overrides.items():
        parts = path.split(".")
        if parts[0] in PLUGIN_SECTIONS:
            specs = getattr(loaded.config, parts[0])
            keys = [s.key for s in specs]
            if parts[1] not in keys or len(parts) < 3:
                known = ", ".join(keys) or "none configured"
                raise ConfigError([f"--sweep {path}: no [[{parts[0]}]] instance {parts[1]!r} (ids: {known})"])
            parts = [parts[0], str(keys.index(parts[1])), *parts[2:]]
        env["QUANTBOT__" + "__".join(p.upper() for p in parts)] = value
    return env


def load_for_replay(
    config_paths: Sequence[str], *, work_dir: Path, overrides: Mapping[str, str], catalog: PluginCatalog
) -> tuple[LoadedConfig, dict[str, str]]:
    """The config as a replay runs it (see FORCED), with the overrides applied and validated."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG_"))}
    base |= FORCED | {
        "QUANTBOT__DAEMON__DATA_DIR": _toml_str(str(work_dir)),
        "QUANTBOT__STORE__SQLITE_PATH": _toml_str(str(work_dir / "replay.db")),
    }
    loaded = load_config(config_paths, environ=base, plugins=catalog)
    if not all(_is_paper(catalog, s.use) for s in loaded.config.executors if s.enabled):
        # A live executor would be refused in paper mode anyway; route every order to the paper one.
        base |= {
            "QUANTBOT__EXECUTORS": '[{use = "paper"}]',
            "QUANTBOT__ORDERS__SOLANA": '["paper"]',
            "QUANTBOT__ORDERS__APTOS": '["paper"]',
        }
        loaded = load_config(config_paths, environ=base, plugins=catalog)
    env = base | override_env(loaded, overrides)
    return load_config(config_paths, environ=env, plugins=catalog), env


def _is_paper(catalog: PluginCatalog, use: str) -> bool:
    try:
        return not getattr(catalog.get("executors", use).load(), "live", True)
    except ConfigError:
        return False


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def time_span(path: Path) -> tuple[datetime, datetime, int]:
    """First and last event time and the event count (one pass over the file)."""
    first = last = None
    count = 0
    for _, at, _event in read_recording(path):
        first = first or at
        last = at
        count += 1
    if first is None or last is None:
        raise RecordingError(f"{path}: the recording holds no events")
    return first, last, count


async def replay_once(
    *,
    path: Path,
    config_paths: Sequence[str],
    work_dir: Path,
    overrides: Mapping[str, str] | None = None,
    speed: float | None = None,
    sample_s: float = 60.0,
    window: tuple[datetime | None, datetime | None] = (None, None),
    progress: Progress | None = None,
    catalog: PluginCatalog | None = None,
    pace: Clock | None = None,
    observe: Callable[[Daemon], None] | None = None,
) -> ReplayResult:
    """Replay `path` once through a fresh Daemon; raises RecordingError for a bad recording.

    `observe` is called with the daemon once its bus exists, before any event is replayed (the demo
    subscribes its narrator there).

    `speed` None runs as fast as possible; N sleeps (on `pace`, the wall clock by default) simulated time / N.
    """
    from quantbot.daemon import Daemon

    overrides = dict(overrides or {})
    catalog = catalog or PluginCatalog.discover()
    work_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  (once per run, before the loop has work)
    loaded, env = load_for_replay(config_paths, work_dir=work_dir, overrides=overrides, catalog=catalog)
    start = window[0] or _first_time(path)
    clock = ReplayClock(start)
    result = ReplayResult(recording=str(path), overrides=overrides, window=window, sample_s=sample_s)
    built: list[ReplaySource] = []

    def sources(daemon: Daemon) -> list[Any]:
        source = ReplaySource(
            daemon=daemon,
            path=path,
            clock=clock,
            result=result,
            speed=speed,
            start=window[0],
            end=window[1],
            progress=progress,
            pace=pace,
        )
        built.append(source)
        if observe is not None:
            observe(daemon)
        return [source]

    daemon = Daemon(
        loaded=loaded,
        config_paths=list(config_paths),
        catalog=catalog,
        redactor=Redactor(loaded.secrets),
        clock=clock,
        environ=env,
        sources=sources,
    )
    result.exit_status = await daemon.run()
    if built and built[0].error is not None:
        raise built[0].error
    return result


def _first_time(path: Path) -> datetime:
    for _, at, _event in read_recording(path):
        return at
    raise RecordingError(f"{path}: the recording holds no events")


@dataclass
class Run:
    overrides: dict[str, str]
    result: ReplayResult
    summary: dict[str, Any]
    score: float


async def sweep(
    *,
    path: Path,
    config_paths: Sequence[str],
    work_dir: Path,
    params: Sequence[Param],
    metric: str,
    sample_s: float = 60.0,
    window: tuple[datetime | None, datetime | None] = (None, None),
    catalog: PluginCatalog | None = None,
) -> list[Run]:
    """Every grid point replayed over `window`; best first by `metric` (undefined last, ties in grid order)."""
    runs: list[Run] = []
    for i, point in enumerate(grid(params)):
        result = await replay_once(
            path=path,
            config_paths=config_paths,
            work_dir=work_dir / f"run-{i:03d}",
            overrides=point,
            sample_s=sample_s,
            window=window,
            catalog=catalog,
        )
        summary = summarise(result)
        runs.append(Run(point, result, summary, metric_value(summary, metric)))
    key = rank_key(metric)
    return sorted(runs, key=lambda r: key(r.score))


@dataclass
class Fold:
    in_sample: tuple[datetime, datetime]
    out_of_sample: tuple[datetime, datetime]
    chosen: dict[str, str]
    in_sample_score: float
    oos: Run
    """The chosen parameters replayed on the out-of-sample window."""


async def walk_forward(
    *,
    path: Path,
    config_paths: Sequence[str],
    work_dir: Path,
    params: Sequence[Param],
    metric: str,
    splits: int,
    sample_s: float = 60.0,
    catalog: PluginCatalog | None = None,
) -> list[Fold]:
    """Tune on window k, replay the chosen parameters on window k + 1, for k = 0 .. splits - 1."""
    if splits < 1:
        raise ConfigError([f"--splits {splits}: needs at least 1"])
    first, last, _ = time_span(path)
    windows = window_bounds(first, last, splits + 1)
    folds: list[Fold] = []
    for k in range(splits):
        ins, oos = windows[k], windows[k + 1]
        tuned = await sweep(
            path=path,
            config_paths=config_paths,
            work_dir=work_dir / f"fold-{k}" / "in-sample",
            params=params,
            metric=metric,
            sample_s=sample_s,
            window=ins,
            catalog=catalog,
        )
        best = tuned[0]
        result = await replay_once(
            path=path,
            config_paths=config_paths,
            work_dir=work_dir / f"fold-{k}" / "out-of-sample",
            overrides=best.overrides,
            sample_s=sample_s,
            window=oos,
            catalog=catalog,
        )
        summary = summarise(result)
        oos_run = Run(best.overrides, result, summary, metric_value(summary, metric))
        folds.append(Fold(ins, oos, best.overrides, best.score, oos_run))
    return folds


def _score(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.6g}"


def render_ranking(runs: Sequence[Run], metric: str) -> str:
    lines = [f"sweep: {len(runs)} runs ranked by {metric} (best first)"]
    for rank, run in enumerate(runs, 1):
        params = ", ".join(f"{k}={v}" for k, v in run.overrides.items()) or "(config as is)"
        primary = run.summary["primary"]
        trades = run.summary["chains"][primary]["trades"] if primary else 0
        lines.append(f"{rank:>3}. {metric}={_score(run.score):>12}  trades={trades:<4} {params}")
    return "\n".join(lines)


def render_folds(folds: Sequence[Fold], metric: str) -> str:
    lines = [f"walk-forward: {len(folds)} folds, tuned on {metric}"]
    for k, f in enumerate(folds):
        params = ", ".join(f"{p}={v}" for p, v in f.chosen.items()) or "(config as is)"
        lines.append(
            f"fold {k}: in-sample {f.in_sample[0].isoformat()}..{f.in_sample[1].isoformat()} "
            f"{metric}={_score(f.in_sample_score)} -> chose {params}; out-of-sample "
            f"{f.out_of_sample[0].isoformat()}..{f.out_of_sample[1].isoformat()} "
            f"{metric}={_score(f.oos.score)}"
        )
    return "\n".join(lines)
