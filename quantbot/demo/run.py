"""`quantbot demo`: the daemon in paper mode against a market simulated on local Solana, narrated.

The scenario: a SOL/USDC swap prices SOL in USD; three tokens launch on the local PumpPortal-style feed
(MOON pumps, WHALE is accumulated by three whales, RUG keeps its mint authority and its creator dumps);
the scanner enriches each from the local node and the filters judge it; the sniper buys what passes,
whale_follow acts on the whales' cluster signal, the risk engine decides every order, the paper
executor fills them; MOON's pump takes the sniper's take-profit. Then the daemon stops cleanly.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from quantbot.analytics import win_rate
from quantbot.clock import WallClock
from quantbot.config import load_config
from quantbot.daemon import Daemon
from quantbot.demo.market import LaunchFeed
from quantbot.demo.narrate import TOPICS, Narrator, sol
from quantbot.demo.scenario import STEP_S, Demo
from quantbot.localnet.aptos import AptosLocalNode
from quantbot.localnet.jupiter import LocalJupiter
from quantbot.localnet.solana import LocalSolana
from quantbot.logs import setup_logging
from quantbot.plugins import PluginCatalog
from quantbot.secrets import Redactor

GUARD_S = 60.0


async def run_demo(*, speed: float = 1.0, as_json: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    colour = out.isatty()
    setup_logging(level="warning", fmt="json", stream=sys.stderr)  # the narrative owns stdout
    catalog = PluginCatalog.discover()
    with tempfile.TemporaryDirectory(prefix="quantbot-demo-") as tmp:
        async with LocalSolana() as node, LocalJupiter(node) as jup, AptosLocalNode() as aptos:
            feed = LaunchFeed()
            await feed.start()
            demo = Demo(node, jup, feed, STEP_S / speed)
            try:
                status = await _run(demo, Path(tmp), catalog, out, as_json=as_json, colour=colour, aptos=aptos.url)
            finally:
                await demo.market.close()
                await feed.stop()
    return status


async def _run(
    demo: Demo, tmp: Path, catalog: PluginCatalog, out: TextIO, *, as_json: bool, colour: bool, aptos: str
) -> int:
    cfg = tmp / "demo.toml"
    cfg.write_text(demo.config_text(tmp / "data", aptos_url=aptos))
    loaded = load_config([cfg], environ={}, plugins=catalog)
    daemon = Daemon(
        loaded=loaded, config_paths=[str(cfg)], catalog=catalog, redactor=Redactor(), clock=WallClock(), environ={}
    )
    narrator = Narrator(out, as_json=as_json, colour=colour, names=demo.name)
    narrator.emit(
        "demo",
        f"local Solana at {demo.node.http_url}, local Aptos at {aptos}, launch feed at {demo.feed.url}, paper mode",
    )
    run = asyncio.create_task(daemon.run(), name="quantbot[demo].daemon")
    ready = asyncio.create_task(daemon.started.wait(), name="quantbot[demo].ready")
    await asyncio.wait({run, ready}, timeout=GUARD_S, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done() or run.done():
        await _cancel(ready)
        daemon.request_stop()
        status = await run
        narrator.emit("demo", f"the daemon stopped before it was ready (status {status})")
        return status or 1
    bus = daemon.bus
    assert bus is not None  # noqa: S101  (set before started)
    bus.subscribe(TOPICS, narrator, name="demo.narrator")

    async def settle() -> None:
        await bus.drain(GUARD_S)

    async def scenario() -> None:
        async with asyncio.timeout(GUARD_S):
            for component in daemon.components:
                if hasattr(component, "wait_synced"):
                    await component.wait_synced()
            await demo.feed.subscribed.wait()
            await demo.script(settle, lambda text: narrator.emit("market", text))
            await settle()

    script = asyncio.create_task(scenario(), name="quantbot[demo].scenario")
    try:
        await asyncio.wait({run, script}, return_when=asyncio.FIRST_COMPLETED)
        if not script.done():  # Ctrl-C or SIGTERM: the daemon is stopping, so the scenario ends here
            await _cancel(script)
            narrator.emit("demo", "interrupted: the scenario stopped early")
    finally:
        daemon.request_stop()
        async with asyncio.timeout(GUARD_S):
            status = await run
    if script.done() and not script.cancelled():
        script.result()  # a scenario error is a bug: raise it (after the daemon stopped)
    _summary(narrator, demo)
    narrator.emit("demo", f"daemon stopped with status {status}")
    return status


def _counts(narrator: Narrator) -> None:
    c = narrator.counts
    narrator.emit(
        "summary",
        f"{c['launch']} launches, {c['accepted']} accepted, {c['rejected']} rejected, {c['whale']} whale signals, "
        f"{c['order']} orders approved, {c['refused']} refused, {c['fill']} fills",
        counts=dict(c),
    )


def _summary(narrator: Narrator, demo: Demo) -> None:
    _counts(narrator)
    realised = sum((p.realised_pnl_native for p in narrator.positions.values()), Decimal(0))
    unrealised = sum((p.unrealised_pnl_native or Decimal(0) for p in narrator.positions.values()), Decimal(0))
    usd = sum((p.realised_pnl_usd or Decimal(0) for p in narrator.positions.values()), Decimal(0))
    closed = [float(p.realised_pnl_native) for p in narrator.positions.values() if p.quantity == 0]
    rate = f", {win_rate(closed):.0%} of {len(closed)} closed positions won" if closed else ""
    narrator.emit(
        "pnl",
        f"realised {sol(realised)} (~{usd:.2f} USD), unrealised {sol(unrealised)}{rate}",
        realised_lamports=str(realised),
        unrealised_lamports=str(unrealised),
        realised_usd=str(usd),
    )
    for reason, n in sorted(narrator.rejections.items()):
        narrator.emit("reason", f"{n} x {reason}", reason=reason, count=n)
    for kp in demo.whales:
        mint = demo.whaled.pool.mint
        held = demo.market.token_balance(kp.pubkey(), mint)
        address = str(kp.pubkey())
        narrator.emit(
            "balance",
            f"{demo.name(address)} holds {held} WHALE on chain (LiteSVM)",
            wallet=address,
            mint=str(mint),
            amount=held,
        )


REPLAY_CONFIG = """
[daemon]
log_level = "warning"
[prices]
vwap_window_s = 1
max_age_s = 600
publish_min_interval_s = 0
max_deviation_pct = 1000
[whales]
discover = true
discover_sol = 1
discover_usd = 100
cluster_whales = 3
[risk]
min_pool_liquidity_sol = 0
[[filters]]
use = "renounced"
[[strategies]]
use = "sniper"
id = "sniper"
bands = [{ min_score = 0.0, amount = 100000000 }]
[[strategies]]
use = "whale_follow"
id = "whale_follow"
kinds = ["cluster", "accumulation", "large_buy"]
min_confidence = 0.3
"""


async def run_recording(
    path: Path,
    *,
    speed: float | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
    config_paths: list[str] | None = None,
) -> int:
    """Replay `path` through the daemon in paper mode (simulated time) with the same narrative and summary."""
    from quantbot.recording import RecordingError
    from quantbot.replay_report import summarise
    from quantbot.sweep import replay_once

    out = out or sys.stdout
    setup_logging(level="warning", fmt="json", stream=sys.stderr)
    narrator = Narrator(out, as_json=as_json, colour=out.isatty(), names=lambda a: a[:8])

    def observe(daemon: Daemon) -> None:
        assert daemon.bus is not None  # noqa: S101  (the daemon builds its sources after its bus)
        daemon.bus.subscribe(TOPICS, narrator, name="demo.narrator")

    with tempfile.TemporaryDirectory(prefix="quantbot-demo-") as tmp:
        if not config_paths:
            cfg = Path(tmp) / "demo.toml"
            cfg.write_text(REPLAY_CONFIG)
            config_paths = [str(cfg)]
        narrator.emit("demo", f"replaying {path} in paper mode")
        try:
            result = await replay_once(
                path=path, config_paths=config_paths, work_dir=Path(tmp) / "work", speed=speed, observe=observe
            )
        except RecordingError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
    summary = summarise(result)
    _counts(narrator)
    realised = sum(result.realised_native.values())
    unrealised = sum(result.unrealised_native.values())
    narrator.emit(
        "pnl",
        f"realised {sol(realised)}, unrealised {sol(unrealised)}, {len(result.trades)} trades",
        realised_lamports=str(realised),
        unrealised_lamports=str(unrealised),
        report=summary,
    )
    for reason, n in sorted(narrator.rejections.items()):
        narrator.emit("reason", f"{n} x {reason}", reason=reason, count=n)
    narrator.emit("demo", f"replay finished with status {result.exit_status}")
    return result.exit_status


async def _cancel(task: asyncio.Task[object] | asyncio.Task[bool] | asyncio.Task[None]) -> None:
    """Cancel a child task and wait for it; a cancellation of the caller itself propagates."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
