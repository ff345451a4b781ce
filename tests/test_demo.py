"""`quantbot demo`: the offline demo runs the daemon in paper mode against a market simulated on the local
Solana node (real mints, pools and signed swaps executed by LiteSVM) and narrates every stage; `--recording`
replays a recording with the same narrative. The market's trades are real: the node and the parser agree."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solders.token.associated import get_associated_token_address
from solders.token.state import TokenAccount

from quantbot.chains.solana.parser import SolanaParser
from quantbot.demo.market import LaunchFeed
from quantbot.demo.scenario import LAMPORTS, Demo
from quantbot.events import Event, Swap, TokenLaunch
from quantbot.localnet.jupiter import LocalJupiter
from quantbot.localnet.solana import LocalSolana
from quantbot.recording import write_recording
from tests.conftest import cli_env, run_cli

WSOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
TOKEN = "Wha1e11111111111111111111111111111111111111"
WHALES = [f"Whale{i}" + "1" * 38 for i in range(1, 4)]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def of(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == kind]


@pytest.mark.subprocess
def test_demo_narrates_launches_verdicts_whales_rugs_orders_fills_and_pnl_then_exits_0() -> None:
    result = run_cli("demo", "--json", "--speed", "10")
    assert result.returncode == 0, result.stderr[-2000:]
    out = lines(result.stdout)
    assert {r["event"]["symbol"] for r in of(out, "launch")} == {"MOON", "WHALE", "RUG"}
    assert {r["event"]["launch"]["symbol"] for r in of(out, "accepted")} == {"MOON", "WHALE"}
    [rejected] = of(out, "rejected")
    assert rejected["event"]["launch"]["symbol"] == "RUG"
    assert "renounced: mint authority not revoked" in rejected["text"]
    [whale] = of(out, "whale")
    assert whale["event"]["kind"] == "cluster" and len(whale["event"]["wallets"]) == 3
    approved = of(out, "order")
    assert {(r["event"]["intent"]["strategy"], r["event"]["intent"]["side"]) for r in approved} >= {
        ("sniper", "buy"),
        ("exits", "sell"),
    }
    [refused] = of(out, "refused")
    assert refused["event"]["intent"]["strategy"] == "whale_follow" and refused["event"]["reason"] == "cooldown"
    assert "cooldown" in refused["text"]
    [rug] = of(out, "rug")  # WHALE's creator dumps on the pool while the sniper holds it: the exit sells
    assert (rug["event"]["kind"], rug["event"]["token"]) == ("creator_sell", whale["event"]["token"])
    exits = {r["event"]["intent"]["token"]: r["text"] for r in approved if r["event"]["intent"]["strategy"] == "exits"}
    assert "rug_warning" in exits[rug["event"]["token"]]
    fills = of(out, "fill")
    assert len(fills) == len(approved) and all(f["event"]["amount_out"] > 0 for f in fills)
    [pnl] = of(out, "pnl")
    assert int(pnl["realised_lamports"]) > 0, "MOON's pump took the sniper's take-profit"
    reasons = {r["reason"] for r in of(out, "reason")}
    assert reasons == {"filter renounced", "risk cooldown"}
    balances = of(out, "balance")
    assert len(balances) == 3 and all(b["amount"] > 0 for b in balances)
    assert out[-1]["text"] == "daemon stopped with status 0"


@pytest.mark.subprocess
def test_demo_text_output_is_plain_when_not_a_tty() -> None:
    result = run_cli("demo", "--speed", "10")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "\x1b[" not in result.stdout
    assert "   launch  MOON launched by creator-moon" in result.stdout
    assert "  refused  risk engine refused whale_follow: buy WHALE: cooldown" in result.stdout


async def test_the_scripted_swaps_are_real_transactions_the_node_and_the_parser_agree_on() -> None:
    async with LocalSolana() as node, LocalJupiter(node) as jup:
        demo = Demo(node, jup, LaunchFeed(), step_s=0)
        try:
            whale = demo.whales[0]
            sig = await demo.market.swap(whale, demo.whaled.pool, buy=True, amount_in=5 * LAMPORTS)
            reported = demo.market.token_balance(whale.pubkey(), demo.whaled.pool.mint)
            async with AsyncClient(node.http_url) as rpc:
                ata = get_associated_token_address(whale.pubkey(), demo.whaled.pool.mint)
                account = (await rpc.get_account_info(ata)).value
            assert account is not None
            on_node = TokenAccount.from_bytes(bytes(account.data)[:165]).amount
        finally:
            await demo.market.close()
        landed = node.ledger.transaction(sig)
        assert landed is not None and landed.err is None
        rendered = node.ledger.render(landed, encoding="jsonParsed", max_version=0)
    swaps = [e for e in SolanaParser().parse_transaction(rendered) if isinstance(e, Swap)]
    mine = [s for s in swaps if s.wallet == str(whale.pubkey())]
    assert reported == on_node > 0
    assert len(mine) == 1 and (mine[0].mint_in, mine[0].amount_in) == (WSOL, 5 * LAMPORTS)
    assert (mine[0].mint_out, mine[0].amount_out) == (str(demo.whaled.pool.mint), on_node)


def recorded_events() -> list[Event]:
    """SOL at 150 USD, a launch nobody can enrich offline, three wallets buying one token, then a pump."""
    events: list[Event] = []

    def add(make: Any) -> None:
        at = T0 + timedelta(seconds=2 * len(events))
        events.append(make(at, len(events) + 1))

    def buy(wallet: str, sol: int, tokens: int, mint_out: str = TOKEN, decimals: int = 6) -> Any:
        return lambda at, n: Swap(
            chain="solana",
            wallet=wallet,
            mint_in=WSOL,
            amount_in=sol,
            mint_out=mint_out,
            amount_out=tokens,
            decimals_out=decimals,
            tx=f"tx{n}",
            slot=1000 + n,
            block_time=at,
            id=n,
            ts=at,
        )

    add(buy("Maker" + "1" * 38, 10**9, 150 * 10**6, USDC))
    add(
        lambda at, n: TokenLaunch(
            chain="solana", mint="Launch" + "1" * 37, symbol="NEW", creator="Creator" + "1" * 36, id=n, ts=at
        )
    )
    for wallet in WHALES:
        add(buy(wallet, 2 * 10**9, 2 * 10**12))
    add(buy("Crowd" + "1" * 38, 10**9, 5 * 10**11))
    return events


@pytest.mark.subprocess
def test_demo_replays_a_recording_with_the_same_narrative(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl.gz"
    assert write_recording(path, recorded_events()) == 6
    result = run_cli("demo", "--recording", str(path), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    out = lines(result.stdout)
    [launch] = of(out, "launch")
    assert launch["event"]["symbol"] == "NEW"
    [rejected] = of(out, "rejected")
    assert "renounced: mint account unknown" in rejected["text"]
    assert [w["event"]["kind"] for w in of(out, "whale")] == ["cluster"]
    [order] = of(out, "order")
    assert order["event"]["intent"]["strategy"] == "whale_follow"
    [fill] = of(out, "fill")
    assert fill["event"]["amount_out"] > 0
    [pnl] = of(out, "pnl")
    assert int(pnl["unrealised_lamports"]) > 0, "the crowd's buy at a higher price marks the position up"
    assert out[-1]["text"] == "replay finished with status 0"


@pytest.mark.subprocess
def test_ctrl_c_stops_the_demo_cleanly_with_exit_0() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantbot", "demo", "--json", "--speed", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(json.loads(line))
            if seen[-1]["kind"] == "launch":
                proc.send_signal(signal.SIGINT)
                break
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    out = seen + lines(rest)
    assert proc.returncode == 0, err[-2000:]
    assert "interrupted: the scenario stopped early" in [r["text"] for r in out]
    assert out[-1]["text"] == "daemon stopped with status 0"


def test_demo_refuses_a_recording_that_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "junk.jsonl.gz"
    path.write_bytes(b"not a recording")
    result = run_cli("demo", "--recording", str(path))
    assert result.returncode == 1
    assert "demo: " in result.stderr


@pytest.mark.parametrize("speed", ["nan", "inf", "0", "-1"])
def test_demo_refuses_a_speed_that_is_not_a_finite_positive_number(speed: str) -> None:
    result = run_cli("demo", "--speed", speed)
    assert result.returncode == 2
    assert result.stderr == f"demo: --speed must be a finite number > 0, got {float(speed)}\n"
