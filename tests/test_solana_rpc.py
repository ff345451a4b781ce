"""The Solana RPC pool fails over, honours 429 + Retry-After and bounds every request with a timeout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from structlog.testing import capture_logs

from quantbot.chains.solana.rpc import RpcUnavailable, SolanaRpcError, SolanaRpcPool, endpoint_name, ws_url_of
from quantbot.config import SolanaEndpointConfig
from quantbot.localnet.solana import LocalSolana
from quantbot.retry import Backoff
from tests.conftest import serve_app
from tests.solana_chain import RecordingClock, fund, make_mint, sol_transfer, token_account


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[LocalSolana, LocalSolana]]:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(LocalSolana())
        b = await stack.enter_async_context(LocalSolana())
        b.ledger.slot += 1000  # tell the nodes apart by their slot
        yield a, b


def pool_for(
    *nodes: LocalSolana, clock: RecordingClock, timeout: float = 5.0, rounds: int = 3, backoff: Backoff | None = None
) -> SolanaRpcPool:
    endpoints = [SolanaEndpointConfig(http=n.http_url, timeout=timeout, rps=0) for n in nodes]
    backoff = backoff or Backoff(base=0.01, cap=0.05)
    return SolanaRpcPool(endpoints=endpoints, clock=clock, rounds=rounds, backoff=backoff)


async def test_failing_endpoint_fails_over_to_the_next_and_the_healthy_one_becomes_preferred(
    two_nodes: tuple[LocalSolana, LocalSolana],
) -> None:
    a, b = two_nodes
    a.faults.server_errors = 1000
    async with pool_for(a, b, clock=RecordingClock()) as pool:
        assert await pool.get_slot() == b.slot
        assert await pool.get_slot() == b.slot
        health = pool.health()
        first, second = health[endpoint_name(0, a.http_url)], health[endpoint_name(1, b.http_url)]
        assert (first["requests"], first["errors"], first["failovers"]) == (1, 1, 1)
        assert (second["requests"], second["errors"]) == (2, 0)
        assert first["last_error"] == "HTTP 503"
        assert pool.ws_urls() == [b.ws_url, a.ws_url]


async def test_rate_limited_endpoint_is_parked_for_retry_after_and_the_other_answers_without_waiting(
    two_nodes: tuple[LocalSolana, LocalSolana],
) -> None:
    a, b = two_nodes
    a.faults.rate_limited = 1
    a.faults.retry_after = "120"
    clock = RecordingClock()
    async with pool_for(a, b, clock=clock) as pool:
        assert await pool.get_slot() == b.slot
        assert pool.health()[endpoint_name(0, a.http_url)]["rate_limited"] == 1
        # Parked: the next calls do not touch the rate-limited endpoint at all.
        served_by_a = a.calls["getSlot"]
        await pool.get_balance(str(Keypair().pubkey()))
        await pool.get_slot()
        assert a.calls["getSlot"] == served_by_a
    assert clock.sleeps == []


async def test_single_endpoint_429_waits_for_retry_after_then_succeeds(local_solana: LocalSolana) -> None:
    local_solana.faults.rate_limited = 1
    local_solana.faults.retry_after = "0.3"
    clock = RecordingClock()
    async with pool_for(local_solana, clock=clock) as pool:
        assert await pool.get_slot() == local_solana.slot
    assert len(clock.sleeps) == 1 and clock.sleeps[0] >= 0.29
    assert local_solana.calls["429"] == 1


async def test_stalled_endpoint_times_out_and_fails_over(two_nodes: tuple[LocalSolana, LocalSolana]) -> None:
    a, b = two_nodes
    a.faults.delay = 5.0
    async with pool_for(a, b, clock=RecordingClock(), timeout=0.2) as pool:
        assert await pool.get_slot() == b.slot
        assert pool.health()[endpoint_name(0, a.http_url)]["timeouts"] == 1


async def test_stopping_the_pool_under_a_call_ends_it_without_reopening_an_endpoint(
    two_nodes: tuple[LocalSolana, LocalSolana],
) -> None:
    """A call under way when the daemon stops the pool ends as unavailable; it does not go on to the next
    endpoint (whose closed client would open a new session nobody closes)."""
    a, b = two_nodes
    a.faults.delay = 5.0
    pool = pool_for(a, b, clock=SkippingClock(), timeout=0.5)
    await pool.start()
    call = asyncio.create_task(pool.get_slot())
    await asyncio.sleep(0.2)  # the request to `a` is under way (it stalls for 5 s)
    await pool.stop()
    with pytest.raises(RpcUnavailable, match="the pool was stopped"):
        await asyncio.wait_for(call, 10)
    assert b.calls["getSlot"] == 0


async def test_malformed_reply_fails_over(two_nodes: tuple[LocalSolana, LocalSolana]) -> None:
    a, b = two_nodes
    a.faults.malformed = 1
    async with pool_for(a, b, clock=RecordingClock()) as pool:
        assert await pool.get_slot() == b.slot
        assert "SerdeJSONError" in pool.health()[endpoint_name(0, a.http_url)]["last_error"]


@pytest.mark.parametrize("code", [-32429, -32000, 429])
async def test_an_error_code_solders_does_not_know_fails_over_instead_of_passing_as_an_answer(
    two_nodes: tuple[LocalSolana, LocalSolana], code: int
) -> None:
    """solders returns an unrecognised JSON-RPC error's code as a bare int rather than raising; the pool
    must not take that for the node's answer (nor prefer that node)."""
    a, b = two_nodes
    a.faults.rpc_errors, a.faults.rpc_error_code = 1, code
    async with pool_for(a, b, clock=RecordingClock()) as pool:
        assert await pool.get_slot() == b.slot
        health = pool.health()[endpoint_name(0, a.http_url)]
        assert health["errors"] == 1 and str(code) in health["last_error"]


class SkippingClock(RecordingClock):
    """Waits take no time: the monotonic clock jumps ahead by what was asked instead."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.skipped += seconds
        await asyncio.sleep(0)


@pytest.mark.parametrize("code", [429, -32429])
@pytest.mark.parametrize("method", ["getSlot", "getTransaction"])
async def test_a_rate_limit_answered_in_json_rpc_parks_the_endpoint(
    two_nodes: tuple[LocalSolana, LocalSolana], code: int, method: str
) -> None:
    """Some providers say "too many requests" as a JSON-RPC error in an HTTP 200: fail over and leave that
    endpoint alone for a while, as for HTTP 429, through the typed methods and the raw getTransaction alike."""
    a, b = two_nodes
    a.faults.rpc_errors, a.faults.rpc_error_code = 1, code
    unknown = str(Keypair().sign_message(b"never sent"))

    async def call(pool: SolanaRpcPool) -> object:
        return await (pool.get_slot() if method == "getSlot" else pool.get_transaction(unknown))

    async with pool_for(a, b, clock=SkippingClock(), backoff=Backoff(base=60, cap=60)) as pool:
        await call(pool)
        assert pool.health()[endpoint_name(0, a.http_url)]["rate_limited"] == 1
        asked = a.calls[method]
        b.faults.server_errors = 1  # the preferred endpoint fails once: the parked one is still not asked
        await call(pool)
    assert a.calls[method] == asked


async def test_block_status_not_yet_available_fails_over(two_nodes: tuple[LocalSolana, LocalSolana]) -> None:
    """-32014 is the node's state, not the request's: the typed methods fail over as the raw ones do."""
    a, b = two_nodes
    a.faults.rpc_errors, a.faults.rpc_error_code = 1, -32014
    async with pool_for(a, b, clock=RecordingClock()) as pool:
        assert await pool.get_slot() == b.slot
        assert "BlockStatusNotAvailableYet" in pool.health()[endpoint_name(0, a.http_url)]["last_error"]


async def test_every_endpoint_failing_raises_unavailable_after_the_configured_rounds(
    two_nodes: tuple[LocalSolana, LocalSolana],
) -> None:
    a, b = two_nodes
    a.faults.server_errors = b.faults.server_errors = 1000
    clock = RecordingClock()
    async with pool_for(a, b, clock=clock, rounds=3) as pool:
        with pytest.raises(RpcUnavailable, match="every Solana endpoint failed"):
            await pool.get_slot()
    assert a.calls["503"] == b.calls["503"] == 3
    assert len(clock.sleeps) == 2


async def test_deterministic_node_error_is_raised_at_once_without_failover(
    two_nodes: tuple[LocalSolana, LocalSolana],
) -> None:
    a, b = two_nodes
    async with pool_for(a, b, clock=RecordingClock()) as pool:
        with pytest.raises(SolanaRpcError, match="Invalid limit"):
            await pool.get_signatures_for_address(str(Keypair().pubkey()), limit=1001)
    assert a.calls["getSignaturesForAddress"] == 1
    assert b.calls["getSignaturesForAddress"] == 0


async def test_get_transaction_returns_the_raw_wire_json_for_the_parser(
    local_solana: LocalSolana, solana_fixtures: Path
) -> None:
    path = solana_fixtures / "pumpswap_amm_buy_gettransaction_json.json"
    recorded = json.loads(path.read_text())["result"]
    sig = local_solana.load_transaction(path)
    async with pool_for(local_solana, clock=RecordingClock()) as pool:
        raw = await pool.get_transaction(sig, encoding="json")
        assert raw == recorded  # nothing dropped or renamed (e.g. meta.costUnits survives)
        assert raw is not None and raw["meta"]["costUnits"] == 117451
        assert await pool.get_transaction(str(Keypair().sign_message(b"unknown"))) is None


async def test_pool_methods_cover_what_the_daemon_needs_against_real_executed_state(
    local_solana: LocalSolana,
) -> None:
    payer, dest = Keypair(), Keypair()
    fund(local_solana, payer.pubkey())
    mint = make_mint(local_solana, authority=payer.pubkey(), decimals=9)
    holder = token_account(local_solana, owner=payer.pubkey(), mint=mint, amount=42)
    async with pool_for(local_solana, clock=RecordingClock()) as pool:
        bh = await pool.get_latest_blockhash()
        assert bh.last_valid_block_height > 0
        sig = await pool.send_raw_transaction(
            bytes(sol_transfer(payer, dest.pubkey(), 10**7, Hash.from_string(bh.blockhash)))
        )
        [status, unknown] = await pool.get_signature_statuses([sig, str(Keypair().sign_message(b"x"))])
        assert status is not None and status.err is None and status.confirmation_status == "finalized"
        assert unknown is None
        assert await pool.get_balance(str(dest.pubkey())) == 10**7
        [info] = await pool.get_signatures_for_address(str(dest.pubkey()))
        assert info.signature == sig and info.err is None
        account = await pool.get_account_info(str(holder))
        assert account is not None and len(account.data) == 165
        many = await pool.get_multiple_accounts([str(holder), str(Keypair().pubkey())])
        assert many[0] == account and many[1] is None
        [top] = await pool.get_token_largest_accounts(str(mint))
        assert (top.address, top.amount, top.decimals) == (str(holder), 42, 9)


def test_endpoint_names_never_show_paths_or_api_keys() -> None:
    assert endpoint_name(0, "https://rpc.example.com/?api-key=SECRET") == "0:rpc.example.com"
    assert endpoint_name(1, "http://127.0.0.1:8899/v1/SECRET") == "1:127.0.0.1:8899"


def test_ws_url_is_derived_from_http_when_not_configured() -> None:
    assert (
        ws_url_of(SolanaEndpointConfig(http="https://rpc.example.com/?api-key=k")) == "wss://rpc.example.com/?api-key=k"
    )
    assert ws_url_of(SolanaEndpointConfig(http="http://127.0.0.1:8899")) == "ws://127.0.0.1:8900"
    assert ws_url_of(SolanaEndpointConfig(http="http://a:8899", ws="ws://b:1")) == "ws://b:1"


async def test_api_keys_in_endpoint_urls_never_reach_logs_health_or_errors(
    two_nodes: tuple[LocalSolana, LocalSolana],
) -> None:
    a, b = two_nodes
    keyed = f"{a.http_url}v2/SECRETPATH?api-key=SECRETQUERY"  # the node answers 404 on that path
    dead = "http://127.0.0.1:1/SECRETPATH?api-key=SECRETQUERY"
    endpoints = [SolanaEndpointConfig(http=u, rps=0, timeout=2.0) for u in (keyed, dead, b.http_url)]
    clock = RecordingClock()
    with capture_logs() as logs:
        async with SolanaRpcPool(endpoints=endpoints, clock=clock, rounds=1) as pool:
            assert await pool.get_slot() == b.slot
            b.faults.server_errors = 1
            with pytest.raises(RpcUnavailable) as failure:
                await pool.get_slot()
            health = pool.health()
    assert "SECRET" not in str(failure.value)
    assert "SECRET" not in json.dumps(health) and "SECRET" not in json.dumps(logs, default=str)
    assert health[endpoint_name(0, keyed)]["last_error"].startswith("HTTP 404")


# --- the transport under solana-py's AsyncClient ------------------------------------------------


async def test_the_pools_clients_run_on_the_aiohttp_transport(local_solana: LocalSolana) -> None:
    from quantbot.chains.solana.transport import AiohttpTransport

    async with pool_for(local_solana, clock=RecordingClock()) as pool:
        session = pool._endpoints[0].client._provider.session
        assert isinstance(session._transport, AiohttpTransport)
        assert await pool.get_slot() == local_solana.slot


async def test_an_unreachable_endpoint_fails_over(local_solana: LocalSolana) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    endpoints = [SolanaEndpointConfig(http=dead, rps=0), SolanaEndpointConfig(http=local_solana.http_url, rps=0)]
    async with SolanaRpcPool(endpoints=endpoints, clock=RecordingClock()) as pool:
        assert await pool.get_slot() == local_solana.slot
        assert await pool.get_transaction(str(Keypair().sign_message(b"unknown"))) is None
        assert "ConnectError" in pool.health()[endpoint_name(0, dead)]["last_error"]


async def test_get_transaction_fails_over_on_malformed_replies_and_raises_node_errors(
    two_nodes: tuple[LocalSolana, LocalSolana],
) -> None:
    a, b = two_nodes
    a.faults.malformed = 1
    unknown = str(Keypair().sign_message(b"unknown"))
    async with pool_for(a, b, clock=RecordingClock()) as pool:
        assert await pool.get_transaction(unknown) is None
        assert (a.calls["malformed"], b.calls["getTransaction"]) == (1, 1)
        assert "ValidationError" in pool.health()[endpoint_name(0, a.http_url)]["last_error"]
        with pytest.raises(SolanaRpcError, match="Invalid param"):
            await pool.get_transaction("not-a-signature")


async def test_the_transport_hands_compressed_bodies_to_httpx_undecoded() -> None:
    """httpx2 decodes Content-Encoding itself: the transport must not decode it first."""
    import gzip

    import httpx2
    from aiohttp import web

    from quantbot.chains.solana.transport import AiohttpTransport

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": 7}).encode()

    async def handler(request: web.Request) -> web.Response:
        assert await request.read() == b"{}"
        return web.Response(body=gzip.compress(body), headers={"Content-Encoding": "gzip"}, content_type="text/json")

    app = web.Application()
    app.router.add_post("/", handler)
    runner, port = await serve_app(app)
    try:
        async with httpx2.AsyncClient(transport=AiohttpTransport()) as client:
            resp = await client.post(f"http://127.0.0.1:{port}/", content=b"{}")
            assert (resp.status_code, resp.content) == (200, body)
    finally:
        await runner.cleanup()
