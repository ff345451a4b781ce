"""`quantbot status` and the HTTP path of `quantbot halt|resume`, against a real daemon process."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from pathlib import Path

import pytest

from quantbot.risk import TradingState, read_trading_state
from quantbot.store.sqlite import SqliteStore
from tests.conftest import DaemonProcess, cli_env, run_cli, write

TOKEN = "cli-control-token-4242"

CONFIG = """
instance = "cli-test"
[daemon]
data_dir = "{data}"
[http]
port = {port}
{http}
[[filters]]
use = "blocklist"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def config(tmp: Path, *, token: bool = False, port: int | None = None) -> Path:
    http = 'control_token = { env = "QB_TOKEN" }' if token else ""
    return write(tmp / "q.toml", CONFIG.format(data=tmp / "data", port=port or free_port(), http=http))


def env() -> dict[str, str]:
    return cli_env(QB_TOKEN=TOKEN)


def trading_state(tmp: Path) -> TradingState:
    async def read() -> TradingState:
        async with SqliteStore(tmp / "data" / "quantbot.db") as store:
            return await read_trading_state(store)

    return asyncio.run(read())


@pytest.mark.subprocess
def test_status_prints_a_summary_and_json_from_the_running_daemon(tmp_path: Path, daemons: list[DaemonProcess]) -> None:
    cfg = config(tmp_path)
    d = DaemonProcess("-c", str(cfg), env=env())
    daemons.append(d)
    d.wait_for("daemon.ready")
    human = run_cli("status", "-c", str(cfg), env=env())
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("quantbot cli-test  mode=paper")
    assert "trading: active" in human.stdout and "positions: 0 open" in human.stdout
    assert "filters: blocklist" in human.stdout
    port = d.wait_for("http.listening")["port"]
    as_json = run_cli("status", "--json", "--url", f"http://127.0.0.1:{port}", env=env())
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert (body["instance"], body["ready"], body["trading"]["state"]) == ("cli-test", True, "active")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0


def test_status_without_a_running_daemon_says_so_and_exits_3(tmp_path: Path) -> None:
    result = run_cli("status", "-c", str(config(tmp_path)), env=env())
    assert result.returncode == 3
    assert "no quantbot daemon answers at http://127.0.0.1:" in result.stderr
    assert "is it running?" in result.stderr


def test_status_with_a_url_that_is_not_one_says_so_in_one_line_and_exits_2() -> None:
    result = run_cli("status", "--url", "notaurl", env=env())
    assert result.returncode == 2
    assert result.stderr == "status: --url 'notaurl' is not an http(s) URL; give e.g. http://127.0.0.1:8080\n"


@pytest.mark.subprocess
def test_halt_and_resume_go_through_the_daemon_when_a_token_is_configured(
    tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    cfg = config(tmp_path, token=True)
    d = DaemonProcess("-c", str(cfg), env=env())
    daemons.append(d)
    d.wait_for("daemon.ready")
    halted = run_cli("halt", "--reason", "news", "-c", str(cfg), env=env())
    assert halted.returncode == 0, halted.stderr
    assert halted.stdout.strip() == "trading: active -> halted (news)"
    assert "applied by the daemon" in halted.stderr
    assert d.wait_for("http.control", action="halt")["reason"] == "news"
    assert d.wait_for("control.trading_state")["after"] == "halted"
    resumed = run_cli("resume", "-c", str(cfg), env=env())
    assert resumed.stdout.strip() == "trading: halted -> active (operator)"
    assert d.wait_for("http.control", action="resume")
    d.signal(signal.SIGTERM)
    assert d.wait() == 0
    assert trading_state(tmp_path) is TradingState.ACTIVE


def test_halt_with_a_token_but_no_daemon_falls_back_to_the_store(tmp_path: Path) -> None:
    cfg = config(tmp_path, token=True)
    result = run_cli("halt", "--reason", "offline", "-c", str(cfg), env=env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "trading: active -> halted (offline)"
    assert "writing the trading state to the store instead" in result.stderr
    assert trading_state(tmp_path) is TradingState.HALTED
