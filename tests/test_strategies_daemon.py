"""The three strategies enabled from TOML: listed by `quantbot plugins`, their parameters shown by
`quantbot check-config` (bad ones refused), and running inside the daemon, where observed swaps price
the tokens, the strategies act on swaps, whale signals and accepted tokens, and the real risk engine
decides every intent they submit."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from quantbot.clock import WallClock
from quantbot.config import load_config
from quantbot.events import Event, OrderApproved, OrderRejected, Swap
from quantbot.plugins import PluginCatalog
from quantbot.testing import swap, token_accepted, whale_signal
from tests.conftest import DaemonProcess, run_cli, start_daemon, write

WSOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
LEADER = "Leader1111111111111111111111111111111111111"
TOKENS = {name: f"{name}1" + "1" * (42 - len(name)) for name in ("Copy", "Whale", "Snipe")}
EX_CONFIG = 78

STRATEGIES = f"""
[[strategies]]
use = "whale_follow"
id = "whales"
kinds = ["cluster"]
min_confidence = 0.6
sizing = "equity_pct"

[[strategies]]
use = "copy_trade"
id = "copier"
copy_pct = 5
pause_after = 2
[[strategies.leaders]]
chain = "solana"
address = "{LEADER}"
label = "smart"
max_buy = 100000000

[[strategies]]
use = "sniper"
id = "snipe"
min_score = 0.6
bands = [{{ min_score = 0.6, amount = 30000000 }}, {{ min_score = 0.8, equity_pct = 1 }}]

[exits.strategies.snipe]
stop_loss_pct = 15
"""


def config(tmp: Path, extra: str = "") -> Path:
    text = f"""
[daemon]
data_dir = "{tmp / "data"}"
[http]
enabled = false
[jobs]
enabled = false
[risk]
token_cooldown_s = 0
duplicate_window_s = 0
{STRATEGIES}{extra}"""
    return write(tmp / "q.toml", text)


def test_plugins_lists_the_three_strategies_with_their_parameters() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    strategies = {p["name"]: p for p in json.loads(result.stdout)["quantbot.strategies"]}
    assert {"whale_follow", "copy_trade", "sniper"} <= set(strategies)
    text = run_cli("plugins").stdout
    assert "  sniper  (quantbot " in text and "    bands: " in text
    assert "    leaders: " in text and "    min_confidence: number, default 0.8" in text


def test_check_config_shows_each_strategys_effective_parameters(tmp_path: Path) -> None:
    result = run_cli("check-config", "-c", str(config(tmp_path)))
    assert result.returncode == 0, result.stderr
    shown = {s["id"]: s["params"] for s in json.loads(result.stdout)["strategies"]}
    assert shown["whales"]["kinds"] == ["cluster"] and shown["whales"]["rebuy_after_s"] == 3600.0
    assert shown["copier"]["leaders"][0]["max_buy"] == 100_000_000 and shown["copier"]["pause_after"] == 2
    assert [b["min_score"] for b in shown["snipe"]["bands"]] == [0.6, 0.8]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('kinds = ["cluster"]', 'kinds = ["dump"]', "strategies[0]: kinds: 'dump' is a selling signal"),
        ("copy_pct = 5", "copy_pct = 500", r"strategies[1]: copy_pct must be in (0, 100], got 500"),
        ("amount = 30000000 }", "amount = 30000000, equity_pct = 1 }", "give exactly one of amount or equity_pct"),
    ],
)
def test_check_config_refuses_bad_strategy_parameters_with_the_reason(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = config(tmp_path)
    write(path, path.read_text().replace(old, new))
    result = run_cli("check-config", "-c", str(path))
    assert result.returncode == EX_CONFIG
    assert message in result.stderr


@pytest.mark.subprocess
def test_the_daemon_starts_and_stops_cleanly_with_the_three_strategies(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    d = DaemonProcess("-c", str(config(tmp_path)))
    daemons.append(d)
    d.wait_for("component.started", name="strategies")
    d.wait_for("daemon.ready")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    assert not [r for r in d.lines if r.get("event") in ("plugin.disabled", "bus.handler_failed")]


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived = asyncio.Condition()

    async def __call__(self, event: Event) -> None:
        async with self.arrived:
            self.events.append(event)
            self.arrived.notify_all()

    async def decision(self, strategy: str) -> OrderApproved | OrderRejected:
        """The risk engine's answer to the strategy's first intent."""
        async with asyncio.timeout(10), self.arrived:
            while True:
                for e in self.events:
                    if isinstance(e, OrderApproved | OrderRejected) and e.intent.strategy == strategy:
                        return e
                await self.arrived.wait()


def market(wallet: str, token: str, n: int) -> Swap:
    """A 1 SOL buy of `token` at 1000 lamports per base unit (what the PriceBook prices it from)."""
    return swap(
        wallet=wallet, mint_in=WSOL, amount_in=10**9, mint_out=token, amount_out=10**6, tx=f"mkt{n}", block_time=now()
    )


def now() -> datetime:
    return WallClock().now()


async def test_in_the_daemon_the_strategies_trade_through_the_risk_engine(tmp_path: Path) -> None:
    daemon, run = await start_daemon(config(tmp_path))
    assert daemon.bus is not None
    rec = Recorder()
    daemon.bus.subscribe("order.#", rec, name="test.orders")
    # SOL at 150 USD and the three tokens priced from swaps, as the watchers would publish them
    await daemon.bus.publish(
        swap(
            wallet="Mkt1" + "1" * 39,
            mint_in=WSOL,
            amount_in=10**9,
            mint_out=USDC,
            amount_out=150 * 10**6,
            tx="u",
            block_time=now(),
        )
    )
    for n, token in enumerate((TOKENS["Whale"], TOKENS["Snipe"])):
        await daemon.bus.publish(market("Mkt2" + "1" * 39, token, n))
    await daemon.bus.drain(5)  # the PriceBook has seen the market before the strategies act
    await daemon.bus.publish(market(LEADER, TOKENS["Copy"], 9))  # the leader's buy: copied
    await daemon.bus.publish(
        whale_signal(kind="cluster", token=TOKENS["Whale"], wallets=("W1", "W2", "W3"), confidence=0.7)
    )
    await daemon.bus.publish(msgspec.structs.replace(token_accepted(mint=TOKENS["Snipe"]), score=0.65))

    decided = {s: await rec.decision(s) for s in ("copier", "whales", "snipe")}
    daemon.request_stop()
    assert await run == 0
    assert {s: type(d).__name__ for s, d in decided.items()} == dict.fromkeys(decided, "OrderApproved"), {
        s: getattr(d, "detail", "") for s, d in decided.items()
    }
    amounts = {s: d.intent.amount for s, d in decided.items()}
    assert amounts["copier"] == 5 * 10**7, "5% of the leader's 1 SOL"
    assert amounts["snipe"] == 3 * 10**7, "the 0.6 band's amount"
    assert amounts["whales"] == 2 * 10**8, "sized by the engine: [sizing] equity_pct 2% of the 10 SOL paper equity"
    usd = {s: d.intent.notional_usd for s, d in decided.items()}
    assert usd == {"copier": Decimal("7.5"), "snipe": Decimal("4.5"), "whales": Decimal(30)}, "valued by the PriceBook"


def test_the_commented_examples_in_quantbot_toml_are_a_valid_config(tmp_path: Path) -> None:
    """Uncommenting the documented strategies and [exits.strategies.sniper] gives a config that loads."""
    text = (Path(__file__).parent.parent / "config" / "quantbot.toml").read_text()
    start = text.index("# whale_follow: buy on whale signals")
    block = text[start : text.index("# Its exits: [exits.strategies.sniper]", start)]
    lines = [ln[2:] for ln in block.splitlines() if ln.startswith("# ") and not ln.startswith("# #")]
    example = "\n".join(ln for ln in lines if "=" in ln or ln.startswith(("[", "{", "]", " ")))
    example = example.replace("<base58 wallet>", LEADER).replace("0x<wallet>", "0xabc")
    exits = text[text.index("# [exits.strategies.sniper]") :].split("\n\n", 1)[0]
    example += "\n" + "\n".join(ln[2:] for ln in exits.splitlines())
    loaded = load_config([write(tmp_path / "example.toml", example)], environ={}, plugins=PluginCatalog.discover())
    assert [s.use for s in loaded.config.strategies] == ["whale_follow", "copy_trade", "sniper"]
    assert len(loaded.plugin_params[("strategies", "copy_trade")].leaders) == 2  # type: ignore[attr-defined]
    assert loaded.config.exits.strategies["sniper"].max_hold_s == 3600
