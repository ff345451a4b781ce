"""Record and replay, end to end: a session recorded by the real daemon from the local Solana endpoint, and
recordings replayed through the real pipeline (PriceBook, DipBuyer strategy, risk engine, paper executor,
exits) on simulated time, with the report, sweeps and walk-forward."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from quantbot.clock import WallClock
from quantbot.config import load_config
from quantbot.daemon import Daemon
from quantbot.events import Event, Swap
from quantbot.localnet.solana import LocalSolana
from quantbot.plugins import PluginCatalog
from quantbot.recording import ReadStats, read_recording, write_recording
from quantbot.replay_report import summarise, write_report
from quantbot.secrets import Redactor
from quantbot.sweep import Param, replay_once, sweep, walk_forward
from tests.conftest import REPO, cli_env, pip_install_target, run_cli

GUARD_S = 30.0  # a hang guard, not a speed assertion
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WSOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
TOKEN = "Dip1111111111111111111111111111111111111111"
STEP = timedelta(seconds=2)
# The token's price path (SOL lamports per token base unit): flat, a 10% dip, a recovery above take-profit.
PATH = ("1.0", "1.0", "1.0", "0.9", "0.95", "1.0", "1.0")
DIP_AT = 4  # index of the 0.9 swap in one session (after the USD swap and three flat ones)


def _swap(i: int, at: datetime, mint_out: str, amount_out: int, decimals_out: int) -> Swap:
    return Swap(
        chain="solana",
        wallet="Trader111111111111111111111111111111111111",
        mint_in=WSOL,
        amount_in=10**9,
        mint_out=mint_out,
        amount_out=amount_out,
        decimals_out=decimals_out,
        tx=f"tx{i}",
        slot=1000 + i,
        block_time=at,
        id=i + 1,
        ts=at,
    )


def dip_sessions(repeats: int = 1) -> list[Event]:
    """Each session: a SOL/USDC swap ($150), then the token's swaps at PATH prices, 2 s apart."""
    events: list[Event] = []
    at = T0
    for _ in range(repeats):
        events.append(_swap(len(events), at, USDC, 150_000_000, 6))
        at += STEP
        for price in PATH:
            events.append(_swap(len(events), at, TOKEN, int(Decimal(10**9) / Decimal(price)), 6))
            at += STEP
    return events


CONFIG = f"""
[daemon]
log_level = "warning"
[prices]
vwap_window_s = 1
max_age_s = 600
publish_min_interval_s = 0
publish_min_change_pct = 0
[exits]
take_profit_pct = 5
stop_loss_pct = 20
[[executors]]
use = "paper"
latency_ms = LATENCY
[[strategies]]
use = "dip_buyer"
id = "dip"
tokens = ["{TOKEN}"]
dip_pct = 5
window_s = 600
amount = 100000000
rearm_pct = 5
"""


def write_config(tmp: Path, latency_ms: int = 0) -> Path:
    path = tmp / "replay.toml"
    path.write_text(CONFIG.replace("LATENCY", str(latency_ms)))
    return path


@pytest.fixture(scope="session")
def strategy_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example-strategy distribution (DipBuyer), pip-installed offline into its own site directory."""
    work = tmp_path_factory.mktemp("dip-dist")
    source = shutil.copytree(REPO / "plugins" / "example-strategy", work / "src")
    return pip_install_target(source, work / "site")


@pytest.fixture
def dip_buyer(strategy_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(strategy_site))
    monkeypatch.setenv("PYTHONPATH", str(strategy_site))
    yield strategy_site


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "dip.jsonl.gz"
    write_recording(path, dip_sessions())
    return path


def read_trades(out: Path) -> list[dict[str, str]]:
    with (out / "trades.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.subprocess
def test_replay_buys_the_dip_sells_at_take_profit_and_writes_the_report(
    dip_buyer: Path, recording: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    proc = run_cli("replay", str(recording), "-c", str(write_config(tmp_path)), "--out", str(out), "--sample-s", "1")
    assert proc.returncode == 0, proc.stderr
    assert "Sharpe" in proc.stdout and "max drawdown" in proc.stdout
    assert "8 events" in proc.stdout
    buy, sell = read_trades(out)
    # The buy fills at the dip's own price (no look-ahead to the 0.95 that follows), the sell at 1.0.
    assert (buy["side"], buy["strategy"]) == ("buy", "dip")
    assert Decimal(buy["price_native"]).quantize(Decimal("0.000001")) == Decimal("0.900000")
    assert buy["at"] == (T0 + STEP * DIP_AT).isoformat()
    assert (sell["side"], sell["strategy"]) == ("sell", "exits")
    assert Decimal(sell["price_native"]).quantize(Decimal("0.000001")) == Decimal("1.000000")
    summary = json.loads((out / "summary.json").read_text())
    sol = summary["chains"]["solana"]
    fees = int(buy["fee"]) + int(sell["fee"])  # the paper network fee, on top of each swap
    pnl = int(sell["amount_out"]) - int(buy["amount_in"]) - fees  # native back from the sale less native spent
    assert pnl > 0 and fees == 2 * 5000
    assert (sol["trades"], sol["round_trips"], sol["win_rate"]) == (2, 1, 1.0)
    assert sol["network_fees_base_units"] == fees
    assert sol["realised_pnl_base_units"] == pnl
    assert sol["unrealised_pnl_base_units"] == 0
    assert summary["rejections"] == {}
    assert sol["time_in_market"] > 0
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    equity = (out / "equity.csv").read_text().splitlines()
    assert equity[0].startswith("at,chain,equity_native")
    assert equity[-1].split(",")[2] == str(10 * 10**9 + pnl)  # 10 paper SOL plus the round trip's profit


async def test_same_recording_and_config_give_the_same_report(dip_buyer: Path, recording: Path, tmp_path: Path) -> None:
    cfg = [str(write_config(tmp_path))]
    reports = []
    for run in ("a", "b"):
        result = await replay_once(path=recording, config_paths=cfg, work_dir=tmp_path / run, sample_s=1.0)
        out = tmp_path / f"out-{run}"
        write_report(result, summarise(result), out)
        reports.append({name: (out / name).read_bytes() for name in ("trades.csv", "equity.csv", "summary.json")})
    assert reports[0] == reports[1]
    assert len(reports[0]["trades.csv"].splitlines()) == 3


async def test_with_executor_latency_the_fill_uses_the_next_observed_price(
    dip_buyer: Path, recording: Path, tmp_path: Path
) -> None:
    cfg = [str(write_config(tmp_path, latency_ms=3000))]
    result = await replay_once(path=recording, config_paths=cfg, work_dir=tmp_path / "w", sample_s=1.0)
    buy = result.trades[0]
    # Signal at the 0.9 swap; the fill lands 3 s later, after the 0.95 swap (2 s later) was observed.
    assert buy.at == T0 + STEP * DIP_AT + timedelta(seconds=3)
    assert buy.price_native is not None
    assert buy.price_native.quantize(Decimal("0.000001")) == Decimal("0.950000")


async def test_sweep_ranks_the_grid_by_the_metric(dip_buyer: Path, recording: Path, tmp_path: Path) -> None:
    runs = await sweep(
        path=recording,
        config_paths=[str(write_config(tmp_path))],
        work_dir=tmp_path / "sweep",
        params=[Param("strategies.dip.dip_pct", ("50", "5"))],
        metric="total_pnl",
        sample_s=1.0,
    )
    assert [r.overrides for r in runs] == [{"strategies.dip.dip_pct": "5"}, {"strategies.dip.dip_pct": "50"}]
    assert runs[0].score > 0 == runs[1].score
    assert runs[1].summary["chains"]["solana"]["trades"] == 0  # a 50% dip never came


@pytest.mark.subprocess
def test_cli_sweep_prints_a_ranking_and_writes_it(dip_buyer: Path, recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    proc = run_cli(
        "replay",
        str(recording),
        "-c",
        str(write_config(tmp_path)),
        "--sweep",
        "strategies.dip.dip_pct=50,5",
        "--sweep",
        "risk.max_order_usd=20",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    ranking = [line for line in proc.stdout.splitlines() if line.strip()[:2] in ("1.", "2.")]
    assert "strategies.dip.dip_pct=5," in ranking[0] and "strategies.dip.dip_pct=50," in ranking[1]
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert [r["rank"] for r in runs] == [1, 2] and runs[0]["score"] > runs[1]["score"]


async def test_walk_forward_tunes_in_sample_and_reports_out_of_sample(dip_buyer: Path, tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl.gz"
    write_recording(path, dip_sessions(repeats=2))
    folds = await walk_forward(
        path=path,
        config_paths=[str(write_config(tmp_path))],
        work_dir=tmp_path / "wf",
        params=[Param("strategies.dip.dip_pct", ("50", "5"))],
        metric="total_pnl",
        splits=1,
        sample_s=1.0,
    )
    (fold,) = folds
    assert fold.in_sample[1] <= fold.out_of_sample[0]  # judged on data it was not tuned on
    assert fold.chosen == {"strategies.dip.dip_pct": "5"}
    assert fold.in_sample_score > 0
    oos = fold.oos.result
    assert oos.first is not None and oos.first >= fold.out_of_sample[0]
    assert [t.side for t in oos.trades] == ["buy", "sell"] and fold.oos.score > 0


@pytest.mark.subprocess
def test_a_corrupt_line_stops_the_replay_with_its_line_number(recording: Path, tmp_path: Path) -> None:
    import gzip

    lines = gzip.decompress(recording.read_bytes()).splitlines(keepends=True)
    lines[5] = b'{"t":"2026-03-01T12:00:08Z","event":{"type":"Swap","chain":"solana"\n'
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(b"".join(lines)))
    cfg = tmp_path / "plain.toml"
    cfg.write_text('[daemon]\nlog_level = "warning"\n')
    proc = run_cli("replay", str(bad), "-c", str(cfg), env=cli_env())
    assert proc.returncode == 1
    assert f"{bad}:6: corrupt line" in proc.stderr


async def test_session_recorded_by_the_daemon_from_local_solana_replays(
    local_solana: LocalSolana, solana_fixtures: Path, tmp_path: Path
) -> None:
    """The real daemon (watcher, parser, recorder) records announced mainnet transactions; replay reads them."""
    create = local_solana.load_transaction(solana_fixtures / "pumpfun_create_v2_gettransaction_jsonparsed.json")
    buy = local_solana.load_transaction(solana_fixtures / "pumpfun_buy_gettransaction_jsonparsed.json")
    pool = local_solana.load_transaction(solana_fixtures / "raydium_v4_initialize2_gettransaction_jsonparsed.json")
    path = tmp_path / "session.jsonl.gz"
    cfg = tmp_path / "record.toml"
    cfg.write_text(
        f"""
[daemon]
data_dir = "{tmp_path / "data"}"
log_level = "warning"
[http]
enabled = false
[jobs]
enabled = false
[record]
path = "{path}"
flush_interval_s = 0.2
[scanner]
allow_no_filters = true  # not about filters
[solana]
enabled = true
launch_programs = ["pumpfun", "raydium_v4"]
[[solana.endpoints]]
http = "{local_solana.http_url}"
ws = "{local_solana.ws_url}"
"""
    )
    loaded = load_config([str(cfg)], plugins=PluginCatalog.discover(), environ={})
    daemon = Daemon(
        loaded=loaded, config_paths=[str(cfg)], catalog=PluginCatalog.discover(), redactor=Redactor(), environ={}
    )
    run = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(GUARD_S):
            await daemon.started.wait()
            assert daemon.recorder is not None
            watcher: Any = next(c for c in daemon.components if c.name == "solana")
            await watcher.wait_synced()
            for sig in (create, buy, pool):
                await local_solana.announce(sig)
            while daemon.recorder.raws < 4 or daemon.recorder.events < 3:  # noqa: ASYNC110  (counters, no event)
                await asyncio.sleep(0.02)
    finally:
        daemon.request_stop()
        status = await run
    assert status == 0
    stats = ReadStats()
    recorded = [e for _, _, e in read_recording(path, stats)]
    topics = {e.topic for e in recorded}
    assert {"token.launch", "chain.solana.pump_trade"} <= topics
    assert any(getattr(e, "tx", None) == create for e in recorded)
    assert stats.raw >= 4  # three logs notifications and the fetched pool transaction
    assert not stats.truncated_tail
    plain = tmp_path / "plain.toml"
    plain.write_text('[daemon]\nlog_level = "warning"\n')
    result = await replay_once(path=path, config_paths=[str(plain)], work_dir=tmp_path / "replay", sample_s=1.0)
    assert result.events == len(recorded)
    assert result.exit_status == 0
    assert summarise(result)["events"] == len(recorded)


class PaceClock(WallClock):
    """Wall clock that records the real-time waits replay asks for, without waiting."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


async def test_speed_n_sleeps_simulated_time_divided_by_n(recording: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text('[daemon]\nlog_level = "warning"\n')
    for speed, expect in ((4.0, True), (None, False)):
        pace = PaceClock()
        result = await replay_once(
            path=recording, config_paths=[str(plain)], work_dir=tmp_path / f"s{speed}", speed=speed, pace=pace
        )
        assert result.first is not None and result.last is not None
        span = (result.last - result.first).total_seconds()  # 14 s of recording
        if expect:
            assert sum(pace.sleeps) == pytest.approx(span / speed)  # type: ignore[operator]
        else:
            assert pace.sleeps == []  # --speed max: never sleeps


@pytest.mark.subprocess
async def test_record_command_writes_a_recording_readable_while_it_runs(
    local_solana: LocalSolana, solana_fixtures: Path, tmp_path: Path
) -> None:
    """`quantbot record -o FILE`: the daemon's events land in FILE while it runs; SIGTERM ends it cleanly."""
    import signal
    import sys

    create = local_solana.load_transaction(solana_fixtures / "pumpfun_create_v2_gettransaction_jsonparsed.json")
    path = tmp_path / "live.jsonl.gz"
    cfg = tmp_path / "record.toml"
    cfg.write_text(
        f"""
[daemon]
data_dir = "{tmp_path / "data"}"
log_level = "warning"
[http]
enabled = false
[jobs]
enabled = false
[record]
flush_interval_s = 0.1
[scanner]
allow_no_filters = true  # not about filters
[solana]
enabled = true
launch_programs = ["pumpfun"]
[[solana.endpoints]]
http = "{local_solana.http_url}"
ws = "{local_solana.ws_url}"
"""
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "quantbot", "record", "-o", str(path), "-c", str(cfg),
        env=cli_env(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(GUARD_S):
            while not local_solana.subscriptions("logs"):  # noqa: ASYNC110  (the node has no event for it)
                await asyncio.sleep(0.05)
            await local_solana.announce(create)
            seen: list[Event] = []
            while not any(e.topic == "token.launch" for e in seen):
                await asyncio.sleep(0.05)
                seen = [e for _, _, e in read_recording(path)] if path.exists() else []
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(GUARD_S):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        assert proc.stderr is not None
        errors = (await proc.stderr.read()).decode()
    assert proc.returncode == 0, errors
    stats = ReadStats()
    events = [e for _, _, e in read_recording(path, stats)]
    assert any(getattr(e, "tx", None) == create for e in events)
    assert stats.raw >= 1 and not stats.truncated_tail


async def test_replay_clock_knows_its_sleepers_and_their_next_deadline() -> None:
    from quantbot.replay import ReplayClock

    clock = ReplayClock(T0)
    assert clock.next_deadline() is None
    woke: list[datetime] = []

    async def nap(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.now())

    tasks = [asyncio.create_task(nap(s)) for s in (5.0, 2.0)]
    await asyncio.sleep(0)
    assert set(clock.sleeping) == set(tasks)
    assert clock.next_deadline() == 2.0
    clock.advance_to(2.0)
    await asyncio.sleep(0)
    assert woke == [T0 + timedelta(seconds=2)]
    assert set(clock.sleeping) == {tasks[0]} and clock.next_deadline() == 5.0
    clock.advance_to(1.0)  # never backwards
    assert clock.now() == T0 + timedelta(seconds=2)
    clock.advance_to(5.0)
    await asyncio.gather(*tasks)
    assert woke[-1] == T0 + timedelta(seconds=5) and not clock.sleeping


def test_sweep_parameters_become_a_grid_of_validated_config_overrides(dip_buyer: Path, tmp_path: Path) -> None:
    from quantbot.config import ConfigError
    from quantbot.sweep import grid, load_for_replay, parse_sweep

    params = parse_sweep(["strategies.dip.dip_pct=5,10", "risk.max_order_usd=20"])
    assert grid(params) == [
        {"strategies.dip.dip_pct": "5", "risk.max_order_usd": "20"},
        {"strategies.dip.dip_pct": "10", "risk.max_order_usd": "20"},
    ]
    catalog = PluginCatalog.discover()
    cfg = [str(write_config(tmp_path))]
    loaded, _ = load_for_replay(cfg, work_dir=tmp_path, overrides=grid(params)[1], catalog=catalog)
    assert loaded.plugin_params[("strategies", "dip")].dip_pct == Decimal(10)
    assert loaded.config.risk.max_order_usd == Decimal(20)
    assert loaded.config.mode == "paper" and not loaded.config.http.enabled  # forced for every replay
    with pytest.raises(ConfigError, match="no \\[\\[strategies\\]\\] instance 'nope'"):
        load_for_replay(cfg, work_dir=tmp_path, overrides={"strategies.nope.x": "1"}, catalog=catalog)
    with pytest.raises(ConfigError, match="expected PARAM=v1,v2"):
        parse_sweep(["dip_pct"])


def test_progress_is_a_bar_on_a_tty_and_plain_lines_otherwise() -> None:
    import io

    from quantbot.replay import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = Progress(total_bytes=1000, stream=stream)
        for n in range(1, 11):
            bar.update(offset=n * 100, events=n * 1000, now=T0)
        bar.done(events=10_000)
    assert "\r" in tty.getvalue() and "[" + "#" * 30 + "]" in tty.getvalue()
    lines = pipe.getvalue().splitlines()
    assert "\r" not in pipe.getvalue() and len(lines) == 10  # one line per 10%, nothing rewritten
    assert lines[-1].startswith("replay: 100% 10000 events")
