"""`inspect_aptos`: the events of a transaction from a file, or fetched from a local REST node."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from quantbot.chains.aptos import inspect as inspect_module
from quantbot.chains.aptos.inspect import AptosInspectError, inspect_aptos
from quantbot.config import AptosConfig, Config
from quantbot.events import Swap, Transfer
from quantbot.retry import Backoff
from tests.conftest import serve_app

CELLANA = "cellana_router_swap_route_entry_usdc_usdt_v3541198895.json"
USDC = "0xbae207659db88bea0cbead6da0ed00aac12edcdda169e591cd41c94180b46f3b"
USDT = "0x357b0b74bc833e95a115ad22604854d6b0fca151cecd94111770e5d6ffc9dc2b"
OFFLINE = Config()


async def test_a_file_with_one_rest_transaction_yields_its_events(aptos_fixtures: Path) -> None:
    events = await inspect_aptos(str(aptos_fixtures / CELLANA), config=OFFLINE)
    assert [(type(e), e.venue, e.amount_in) for e in events] == [(Swap, "cellana", 12_007_204)]  # type: ignore[attr-defined]


async def test_a_file_with_an_account_transactions_page_yields_every_swap(aptos_fixtures: Path) -> None:
    events = await inspect_aptos(
        str(aptos_fixtures / "account_transactions_page_0xbf9239_dex_swaps.json"), config=OFFLINE
    )
    assert len(events) == 20 and all(isinstance(e, Swap) for e in events)


async def test_a_block_file_yields_the_events_of_its_user_transactions(aptos_fixtures: Path) -> None:
    events = await inspect_aptos(str(aptos_fixtures / "block_by_height_477445097_with_txs.json"), config=OFFLINE)
    assert [type(e) for e in events] == [Transfer]


async def test_a_failed_transaction_yields_no_events_and_no_error(aptos_fixtures: Path) -> None:
    assert (
        await inspect_aptos(str(aptos_fixtures / "SYNTHETIC_failed_apt_transfer_v3509309.json"), config=OFFLINE) == []
    )


async def test_a_file_that_is_not_json_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "tx.json"
    bad.write_text("{not json")
    with pytest.raises(AptosInspectError, match=r"tx\.json: not JSON"):
        await inspect_aptos(str(bad), config=OFFLINE)


async def test_a_file_with_invalid_utf8_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "tx.json"
    bad.write_bytes(b'{"type": "\x98"}')
    with pytest.raises(AptosInspectError, match=r"tx\.json: not JSON"):
        await inspect_aptos(str(bad), config=OFFLINE)


async def test_a_file_in_another_format_names_the_reason(aptos_fixtures: Path) -> None:
    rows = aptos_fixtures / "indexer_rows_fungible_asset_activities_cellana_swap_v999929475.json"
    with pytest.raises(AptosInspectError, match="rejected: indexer_row"):
        await inspect_aptos(str(rows), config=OFFLINE)


async def test_a_target_that_is_neither_file_version_nor_hash_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AptosInspectError, match="not a file, a ledger version"):
        await inspect_aptos(str(tmp_path / "missing.json"), config=OFFLINE)


async def test_fetching_without_a_configured_node_says_how_to_configure_one() -> None:
    with pytest.raises(AptosInspectError, match=r"\[aptos\] nodes"):
        await inspect_aptos("3541198895", config=OFFLINE)


# --- fetched from a local node speaking the REST API ---------------------------------------------


@pytest.fixture
async def node(aptos_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, list[str]]]:
    monkeypatch.setattr(inspect_module, "RETRIES", Backoff(base=0.001, cap=0.01, attempts=4))
    tx: dict[str, Any] = json.loads((aptos_fixtures / CELLANA).read_text())
    seen: list[str] = []
    throttled = {"left": 1}

    async def by_version(request: web.Request) -> web.Response:
        seen.append(request.path)
        if throttled["left"]:
            throttled["left"] -= 1
            return web.Response(status=429, text="Per anonymous IP rate limit exceeded", headers={"Retry-After": "0"})
        if request.match_info["version"] != tx["version"]:
            body = {"message": "Transaction not found by Ledger version", "error_code": "transaction_not_found"}
            return web.json_response(body, status=404)
        return web.json_response(tx)

    async def by_hash(request: web.Request) -> web.Response:
        seen.append(request.path)
        if request.match_info["hash"] != tx["hash"]:
            return web.json_response({"message": "not found", "error_code": "transaction_not_found"}, status=404)
        return web.json_response(tx)

    async def resource(request: web.Request) -> web.Response:
        seen.append(request.path)
        if request.match_info["type"] != "0x1::fungible_asset::Metadata":
            return web.json_response({"message": "nope", "error_code": "resource_not_found"}, status=404)
        data = {"decimals": 6, "name": "x", "symbol": "X", "icon_uri": "", "project_uri": ""}
        return web.json_response({"type": "0x1::fungible_asset::Metadata", "data": data})

    app = web.Application()
    app.router.add_get("/v1/transactions/by_version/{version}", by_version)
    app.router.add_get("/v1/transactions/by_hash/{hash}", by_hash)
    app.router.add_get("/v1/accounts/{address}/resource/{type}", resource)
    runner, port = await serve_app(app)
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


async def test_fetch_by_version_retries_a_429_and_fills_decimals_from_the_node(node: tuple[str, list[str]]) -> None:
    url, seen = node
    events = await inspect_aptos("3541198895", config=Config(aptos=AptosConfig(nodes=(url,))))
    swap = events[0]
    assert isinstance(swap, Swap) and len(events) == 1
    assert (swap.mint_in, swap.decimals_in, swap.mint_out, swap.decimals_out) == (USDC, 6, USDT, 6)
    assert seen.count("/v1/transactions/by_version/3541198895") == 2  # throttled once, then served


async def test_fetch_by_hash(node: tuple[str, list[str]], aptos_fixtures: Path) -> None:
    url, _ = node
    tx_hash = json.loads((aptos_fixtures / CELLANA).read_text())["hash"]
    events = await inspect_aptos(tx_hash, config=Config(aptos=AptosConfig(nodes=(url,))))
    assert [e.tx for e in events] == [tx_hash]  # type: ignore[attr-defined]


async def test_an_unknown_version_is_reported_as_not_found(node: tuple[str, list[str]]) -> None:
    url, _ = node
    with pytest.raises(AptosInspectError, match=r"42: not found on http://127\.0\.0\.1"):
        await inspect_aptos("42", config=Config(aptos=AptosConfig(nodes=(url,))))
