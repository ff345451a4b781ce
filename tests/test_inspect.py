"""`quantbot inspect tx`: a recorded transaction file or a signature fetched over real JSON-RPC -> events."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from quantbot.events import PumpTrade, Swap, TokenLaunch, Transfer, decode

from .conftest import cli_env, run_cli, serve_app, write

CREATE_V2 = "pumpfun_create_v2_gettransaction_jsonparsed.json"


def events_of(stdout: str) -> list[Any]:
    return [decode(line) for line in stdout.splitlines()]


@pytest.mark.subprocess
def test_inspect_file_prints_one_json_event_per_line(solana_fixtures: Path, tmp_path: Path) -> None:
    proc = run_cli("inspect", "tx", str(solana_fixtures / CREATE_V2), "--chain", "solana", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = events_of(proc.stdout)
    assert [type(e) for e in events] == [Swap, Transfer, Transfer, TokenLaunch, PumpTrade]
    launch = events[3]
    assert (launch.mint, launch.symbol) == ("CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump", "TAS")
    assert proc.stderr == ""


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"jsonrpc": "2.0", "result": {"slot": ', "rejected: bad_json"),
        ('{"jsonrpc": "2.0", "result": null, "id": 1}', "rejected: not_a_transaction"),
        (
            '{"jsonrpc": "2.0", "result": {"context": {"slot": 1}, "value": null}, "id": 1}',
            "not a Solana getTransaction",
        ),
    ],
)
def test_inspect_bad_file_is_one_line_error_and_nonzero(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path / "tx.json", content)
    proc = run_cli("inspect", "tx", str(path), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"error: {path}") and message in line
    assert "Traceback" not in proc.stderr


@pytest.mark.subprocess
def test_inspect_missing_file_or_garbage_target_says_so(tmp_path: Path) -> None:
    proc = run_cli("inspect", "tx", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope.json'}: not a file and not a transaction signature " + (
        "(base58, 64-88 characters)"
    )


async def _rpc_server(result: Any, *, throttle_first: int) -> tuple[web.AppRunner, str, list[dict[str, Any]]]:
    """A JSON-RPC endpoint on 127.0.0.1: 429 (Retry-After: 0) `throttle_first` times, then the result."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        if len(seen) <= throttle_first:
            return web.Response(status=429, headers={"Retry-After": "0"}, text="slow down")
        return web.json_response({"jsonrpc": "2.0", "result": result, "id": body["id"]})

    app = web.Application()
    app.router.add_post("/", handle)
    runner, port = await serve_app(app)
    return runner, f"http://127.0.0.1:{port}/", seen


async def _run_cli_async(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "quantbot", *args, cwd=cwd, env=cli_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.subprocess
async def test_inspect_signature_fetches_through_the_configured_endpoint_after_a_429(
    solana_fixtures: Path, tmp_path: Path
) -> None:
    doc = json.loads((solana_fixtures / CREATE_V2).read_text())
    signature = doc["result"]["transaction"]["signatures"][0]
    runner, url, seen = await _rpc_server(doc["result"], throttle_first=1)
    try:
        config = write(tmp_path / "q.toml", f'[solana]\n[[solana.endpoints]]\nhttp = "{url}"\n')
        code, out, err = await _run_cli_async("inspect", "tx", signature, "-c", str(config), cwd=tmp_path)
    finally:
        await runner.cleanup()
    assert code == 0, err
    from_file = run_cli("inspect", "tx", str(solana_fixtures / CREATE_V2), cwd=tmp_path)
    assert events_of(out) == events_of(from_file.stdout)
    assert len(seen) == 2  # the 429 was retried
    request = seen[-1]
    assert request["method"] == "getTransaction" and request["params"][0] == signature
    assert request["params"][1]["encoding"] == "jsonParsed"
    assert request["params"][1]["maxSupportedTransactionVersion"] == 0


@pytest.mark.subprocess
async def test_inspect_unknown_signature_is_not_found(tmp_path: Path) -> None:
    runner, url, _ = await _rpc_server(None, throttle_first=0)
    try:
        config = write(tmp_path / "q.toml", f'[solana]\n[[solana.endpoints]]\nhttp = "{url}"\n')
        sig = "5" * 88
        code, out, err = await _run_cli_async("inspect", "tx", sig, "-c", str(config), cwd=tmp_path)
    finally:
        await runner.cleanup()
    assert code == 1 and out == ""
    assert err.strip() == f"error: {sig}: transaction not found at {url} (commitment confirmed)"
