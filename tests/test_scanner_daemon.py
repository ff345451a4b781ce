"""`quantbot run` with Solana enabled against the local endpoint: a recorded pump.fun launch is
scanned and its verdict appears in the daemon's log, with the failing filters' reasons."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from solders.keypair import Keypair

from quantbot.localnet.solana import LocalSolana
from tests.conftest import DaemonProcess, write
from tests.scanner_chain import CREATE_V2, MINT, serve_launch_accounts

CONFIG = """
mode = "paper"

[daemon]
data_dir = "{data_dir}"

[http]
enabled = false

[solana]
enabled = true
launch_programs = ["pumpfun"]

[[solana.endpoints]]
http = "{http}"
ws = "{ws}"
rps = 0

[scanner]
lookup_timeout_s = 5.0

[[filters]]
use = "renounced"

[[filters]]
use = "pool_size"
min_native = 0.5

[[filters]]
use = "holders"
max_share = 0.3

[[filters]]
use = "token2022_extensions"
max_transfer_fee_bps = 1000
"""


@pytest.mark.subprocess
async def test_the_daemon_logs_a_scanned_launch_as_rejected_with_its_reasons(
    local_solana: LocalSolana, tmp_path: Path, daemons: list[DaemonProcess], solana_fixtures: Path
) -> None:
    serve_launch_accounts(local_solana, solana_fixtures, others=[str(Keypair().pubkey()) for _ in range(3)])
    text = CONFIG.format(data_dir=tmp_path / "data", http=local_solana.http_url, ws=local_solana.ws_url)
    cfg = write(tmp_path / "q.toml", text)
    d = DaemonProcess("-c", str(cfg))
    daemons.append(d)
    # The node answers in this process's event loop: wait for the daemon in a thread.
    await asyncio.to_thread(d.wait_for, "watcher.connected")
    sig = local_solana.load_transaction(solana_fixtures / CREATE_V2)
    assert await local_solana.announce(sig) == 1
    line = await asyncio.to_thread(d.wait_for, "scanner.rejected", 30.0, mint=MINT)
    assert line["reasons"] == ["renounced: mint authority not revoked (7MyTjmRygJoCuDBUtAuSugiYZFULD2SWaoUTmtjtRDzD)"]
    assert line["source"] == "pump.fun" and 0 < line["score"] < 1
    # One getMultipleAccounts (mint, metadata, curve, creator accounts) next to getTokenLargestAccounts.
    assert local_solana.calls["getMultipleAccounts"] == 1 and local_solana.calls["getTokenLargestAccounts"] == 1
    d.proc.terminate()
    assert await asyncio.to_thread(d.wait) == 0
