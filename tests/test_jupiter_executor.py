"""The jupiter executor against the local Solana node (LiteSVM) and the local Jupiter API."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from solders.token.associated import get_associated_token_address
from solders.token.state import TokenAccount

from quantbot.api import NATIVE_TOKEN, ExecutionReport, Outcome, RejectReason
from quantbot.testing import make_plugin
from quantbot_executors.jupiter import JupiterExecutor
from tests.jupiter_env import API_KEY, WALLET_SOL, approved, jupiter_env

SOL = NATIVE_TOKEN["solana"]


def token_balance(env: object, owner: object) -> int:
    node, pool = env.node, env.pool  # type: ignore[attr-defined]
    acc = node.ledger.svm.get_account(get_associated_token_address(owner, pool.mint))  # type: ignore[arg-type]
    return 0 if acc is None else TokenAccount.from_bytes(bytes(acc.data)[:165]).amount


async def test_buy_is_signed_sent_confirmed_and_filled_with_the_amounts_that_moved_on_chain(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        ex = await env.started(env.jupiter())
        order = approved(str(env.pool.mint), amount=10**9, max_price_impact_bps=300, max_slippage_bps=200)
        expected_out = env.jup.amount_out(env.pool, buy=True, amount_in=10**9)
        report = await ex.execute(order)
        await ex.stop()
    assert report.outcome is Outcome.FILLED, report
    fill = report.fill
    assert fill is not None and report.tx == fill.tx
    assert fill.amount_in == 10**9  # the lamports that went to the pool (fee and ATA rent not counted)
    assert fill.amount_out == expected_out == token_balance(env, env.wallet.pubkey())
    assert fill.fee > 5000  # base fee plus the priority fee Jupiter set
    assert fill.price_native == Decimal(10**9) / expected_out
    landed = env.node.ledger.transaction(fill.tx)
    assert landed is not None and landed.err is None
    quote, swap = env.jup.requests.quotes[-1], env.jup.requests.swaps[-1]
    assert quote["slippageBps"] == "100" and quote["inputMint"] == SOL
    assert swap["userPublicKey"] == str(env.wallet.pubkey()) and swap["wrapAndUnwrapSol"] is True
    assert swap["dynamicComputeUnitLimit"] is True
    assert swap["prioritizationFeeLamports"]["priorityLevelWithMaxLamports"]["maxLamports"] == 1_000_000
    assert env.node.calls["sendTransaction"] == 1 and "x-api-key" not in env.node.header_names, (
        "the Jupiter API key goes to Jupiter only, never to the RPC provider"
    )


async def test_sell_fill_reads_the_sol_received_and_balances_report_sol_and_tokens(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        ex = await env.started(env.jupiter())
        bought = await ex.execute(approved(str(env.pool.mint), amount=10**9, intent_id="b"))
        assert bought.fill is not None
        tokens = bought.fill.amount_out
        expected_sol = env.jup.amount_out(env.pool, buy=False, amount_in=tokens)
        sold = await ex.execute(approved(str(env.pool.mint), side="sell", amount=tokens, intent_id="s"))
        balances = await ex.balances()
        await ex.stop()
    assert sold.outcome is Outcome.FILLED and sold.fill is not None
    assert sold.fill.amount_in == tokens and sold.fill.amount_out == expected_sol
    assert balances is not None
    assert balances.get(str(env.pool.mint), 0) == 0
    spent = 10**9 - expected_sol + bought.fill.fee + sold.fill.fee
    rent = balances[SOL] - (WALLET_SOL - spent)
    assert rent == 0 or rent < 0 < -rent <= 2_039_280  # the new token account's rent is still in it (not SOL)


async def test_quote_above_the_price_impact_limit_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        ex = await env.started(env.jupiter())
        # 50 SOL into a 1000 SOL pool: impact 50/1050 = 476.2 bps, rounded up to 477 > 300.
        report = await ex.execute(approved(str(env.pool.mint), amount=50 * 10**9, max_price_impact_bps=300))
        await ex.stop()
    assert report.outcome is Outcome.FAILED and report.reason is RejectReason.PRICE_IMPACT
    assert "477 bps > allowed 300 bps" in report.detail
    assert env.jup.requests.swaps == [] and env.node.calls["sendTransaction"] == 0


async def test_slippage_sent_is_capped_by_the_orders_approved_limit_and_routes_by_config(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        ex = await env.started(env.jupiter(slippage_bps=500, dexes=["LocalPool"], only_direct_routes=True))
        report = await ex.execute(approved(str(env.pool.mint), amount=10**8, max_slippage_bps=150))
        refused = await env.started(env.jupiter(id="other", exclude_dexes=["LocalPool"]))
        no_route = await refused.execute(approved(str(env.pool.mint), amount=10**8, intent_id="2"))
        await ex.stop()
        await refused.stop()
    assert report.outcome is Outcome.FILLED
    q = env.jup.requests.quotes[0]
    assert (q["slippageBps"], q["dexes"], q["onlyDirectRoutes"]) == ("150", "LocalPool", "true")
    assert no_route.outcome is Outcome.FAILED and "COULD_NOT_FIND_ANY_ROUTE" in no_route.detail


async def test_rate_limited_api_is_retried_after_its_retry_after(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        env.jup.faults.rate_limited = 2
        env.jup.faults.retry_after = "0.05"
        ex = await env.started(env.jupiter())
        report = await ex.execute(approved(str(env.pool.mint), amount=10**8))
        retries = ex.http.retries if ex.http else -1
        await ex.stop()
    assert report.outcome is Outcome.FILLED
    assert retries == 2


async def test_expired_blockhash_is_requoted_only_after_the_status_proves_the_first_cannot_land(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        env.jup.faults.expired_blockhash = 1
        ex = await env.started(env.jupiter(skip_preflight=True))
        order = approved(str(env.pool.mint), amount=10**8)
        report = await ex.execute(order)
        sent = list(ex._sent[order.order_id])
        await ex.stop()
    assert report.outcome is Outcome.FILLED and report.fill is not None
    assert len(sent) == 2 and report.tx == sent[1].signature  # the second transaction landed
    assert env.node.ledger.status(sent[0].signature) is None  # the first never did
    assert len(env.jup.requests.quotes) == 2
    assert env.node.calls["getSignatureStatuses"] >= 2  # a status read proved the first dead before re-quoting


async def test_stale_quote_is_quoted_again_and_never_sent(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        env.jup.faults.stale_quotes = 1
        ex = await env.started(env.jupiter())
        report = await ex.execute(approved(str(env.pool.mint), amount=10**8))
        env.jup.faults.stale_quotes = 5
        refused = await ex.execute(approved(str(env.pool.mint), amount=10**8, intent_id="2"))
        await ex.stop()
    assert report.outcome is Outcome.FILLED
    assert env.node.calls["sendTransaction"] == 1
    assert refused.outcome is Outcome.FAILED and refused.reason is RejectReason.SLIPPAGE


async def test_transaction_failing_on_chain_is_failed_with_its_signature_and_no_fill(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        env.jup.faults.fail_on_chain = 1
        ex = await env.started(env.jupiter(skip_preflight=True))
        report = await ex.execute(approved(str(env.pool.mint), amount=10**8))
        await ex.stop()
    assert report.outcome is Outcome.FAILED and report.fill is None and report.tx is not None
    assert "landed and failed" in report.detail
    landed = env.node.ledger.transaction(report.tx)
    assert landed is not None and landed.err is not None
    assert report.fee == landed.result["meta"]["fee"] > 0, "the fee it cost is reported, to be booked"


@pytest.mark.parametrize(
    ("commitment", "seen", "final"),
    [("confirmed", "processed", False), ("confirmed", "confirmed", True), ("finalized", "confirmed", False)],
)
async def test_a_failed_status_is_final_only_at_the_configured_commitment(
    commitment: str, seen: str, final: bool
) -> None:
    """A failure seen only "processed" may sit on a fork that is dropped, and the same bytes can still land:
    calling it FAILED then would let the router send the order through the next executor as well."""

    class Rpc:
        async def block_height(self, commitment: str) -> int:
            return 10

        async def signature_status(self, signature: str) -> dict[str, object]:
            return {"err": {"InstructionError": [2, {"Custom": 6001}]}, "confirmationStatus": seen}

    executor = make_plugin(JupiterExecutor, id="jupiter", commitment=commitment)
    executor.rpc = Rpc()  # type: ignore[assignment]
    state = await executor.state(None, "sig", 100)  # type: ignore[arg-type]
    if final:
        assert isinstance(state, ExecutionReport) and state.outcome is Outcome.FAILED
    else:
        assert state == "pending"


async def test_preflight_refusal_is_failed_as_never_sent(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        env.jup.faults.fail_on_chain = 5
        ex = await env.started(env.jupiter(requote_attempts=1))
        report = await ex.execute(approved(str(env.pool.mint), amount=10**8))
        await ex.stop()
    assert report.outcome is Outcome.FAILED and report.reason is RejectReason.EXECUTOR_ERROR
    assert "refused every transaction" in report.detail
    assert env.node.ledger.signatures_for(str(env.wallet.pubkey())) == []


async def test_a_send_whose_answer_is_lost_is_waited_for_and_never_followed_by_a_second_swap(tmp_path: Path) -> None:
    """The node took the transaction, but its answer never came back. The retry of the same bytes is refused as
    already processed, which proves nothing was refused: the executor waits for that signature and builds no other."""
    async with jupiter_env(tmp_path) as env:
        env.node.faults.lost_answers = 1
        env.node.faults.only_methods = frozenset({"sendTransaction"})
        ex = await env.started(env.jupiter())
        order = approved(str(env.pool.mint), amount=10**9, max_price_impact_bps=300, max_slippage_bps=200)
        report = await ex.execute(order)
        await ex.stop()
    assert env.node.calls["lost_answer"] == 1 and env.node.calls["sendTransaction"] == 2
    assert report.outcome is Outcome.FILLED, report
    (sent,) = ex._sent[order.order_id]
    assert report.tx == sent.signature
    assert len(env.node.ledger.signatures_for(str(env.wallet.pubkey()))) == 1, "one swap landed, not two"
    assert len(env.jup.requests.swaps) == 1, "no second transaction was built"


async def test_a_rate_limited_send_then_a_refusal_is_refused_at_once_not_waited_for(tmp_path: Path) -> None:
    """A 429 answers that the node did not take the transaction: the refusal of the next try is then a real one,
    and the executor quotes again at once instead of waiting out the blockhash."""
    async with jupiter_env(tmp_path) as env:
        env.node.faults.rate_limited = 1
        env.node.faults.retry_after = "0"
        env.node.faults.only_methods = frozenset({"sendTransaction"})
        env.jup.faults.fail_on_chain = 5  # every transaction fails its preflight
        ex = await env.started(env.jupiter(requote_attempts=1, confirm_timeout=2))
        report = await ex.execute(approved(str(env.pool.mint), amount=10**8))
        await ex.stop()
    assert env.node.calls["429"] == 1
    assert report.outcome is Outcome.FAILED and "refused every transaction" in report.detail, report


async def test_reconcile_answers_from_the_recorded_signatures_after_a_restart(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        ex = await env.started(env.jupiter())
        order = approved(str(env.pool.mint), amount=10**8)
        filled = await ex.execute(order)
        await ex.stop()
        again = await env.started(env.jupiter())  # a new process: only the sent log survives
        by_log = await again.reconcile(order, None)
        by_tx = await again.reconcile(order, filled.tx)
        never = await again.reconcile(approved(str(env.pool.mint), amount=10**8, intent_id="x"), None)
        await again.stop()
    assert filled.outcome is Outcome.FILLED
    assert by_log.outcome is Outcome.FILLED and by_log.fill == filled.fill
    assert by_tx.outcome is Outcome.FILLED
    assert never.outcome is Outcome.NOT_SENT


async def test_reconcile_of_an_expired_signature_is_expired(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        env.jup.faults.expired_blockhash = 3
        ex = await env.started(env.jupiter(skip_preflight=True, requote_attempts=0))
        order = approved(str(env.pool.mint), amount=10**8)
        report = await ex.execute(order)
        reconciled = await ex.reconcile(order, report.tx)
        await ex.stop()
    assert report.outcome is Outcome.EXPIRED and report.tx is not None
    assert reconciled.outcome is Outcome.EXPIRED


async def test_api_key_goes_in_the_x_api_key_header_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        ex = await env.started(env.jupiter())
        ok = await ex.execute(approved(str(env.pool.mint), amount=10**8))
        await ex.stop()
        env.jup.api_key = API_KEY + "-rotated"
        ex2 = await env.started(env.jupiter(id="j2"))
        refused = await ex2.execute(approved(str(env.pool.mint), amount=10**8, intent_id="2"))
        await ex2.stop()
    assert ok.outcome is Outcome.FILLED
    assert refused.outcome is Outcome.FAILED and "HTTP 401" in refused.detail


async def test_without_a_wallet_key_nothing_is_sent(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        ex = env.jupiter()
        await env.started(ex)
        ex.keypair = None
        report = await ex.execute(approved(str(env.pool.mint), amount=10**8))
        await ex.stop()
    assert report.outcome is Outcome.FAILED and env.jup.requests.quotes == []


def test_shipped_config_documents_every_jupiter_and_pumpportal_key_with_its_default() -> None:
    import tomllib

    from quantbot.config import load_config
    from quantbot.plugins import PluginCatalog
    from quantbot_executors.jupiter import JupiterConfig
    from quantbot_executors.pumpportal import PumpPortalConfig
    from tests.conftest import REPO

    path = REPO / "config" / "quantbot.toml"
    loaded = load_config([path], environ={}, plugins=PluginCatalog.discover())
    assert loaded.config.orders.solana == ("paper",)  # shipped: paper mode, live executors off
    shipped = {e["use"]: e for e in tomllib.loads(path.read_text())["executors"]}
    text = path.read_text()
    for use, config in (("jupiter", JupiterConfig()), ("pumpportal", PumpPortalConfig())):
        assert shipped[use]["enabled"] is False
        for key in config.__struct_fields__:
            value = getattr(config, key)
            if key in shipped[use]:
                want = list(value) if isinstance(value, tuple) else value
                assert shipped[use][key] == (float(want) if isinstance(want, Decimal) else want), (use, key)
            else:
                assert key in text, (use, key)


def test_wallet_key_reads_keygen_json_and_base58_and_a_bad_one_is_refused_without_quoting_it() -> None:
    import pytest
    from solders.keypair import Keypair

    from quantbot_executors.solana_swap import load_keypair

    kp = Keypair()
    assert load_keypair(kp.to_json() + "\n", "file k.json").pubkey() == kp.pubkey()
    assert load_keypair(str(kp), "credential sol").pubkey() == kp.pubkey()
    broken = kp.to_json()[:-9] + "]"  # a truncated keygen file: still secret material
    with pytest.raises(ValueError, match=r"wallet key from file k\.json is neither") as err:
        load_keypair(broken, "file k.json")
    assert broken[1:30] not in str(err.value) and err.value.__cause__ is None and err.value.__context__ is not None
    assert broken[1:30] not in repr(err.value.__context__) or err.value.__suppress_context__


async def test_an_rpc_api_key_in_the_url_never_reaches_a_report_or_a_log(tmp_path: Path) -> None:
    """Order details travel far (the store, the bus, MQTT, notifiers): errors name the host, not the path/query."""
    import structlog

    async with jupiter_env(tmp_path) as env:
        url = "http://127.0.0.1:9/RPCPATHTOKEN/?api-key=RPCSECRET"  # nothing listens on port 9
        with structlog.testing.capture_logs() as logs:
            ex = await env.started(env.pumpportal(rpc_url=url, attempts=1))
            report = await ex.execute(approved(str(env.pool.mint), executors=("pumpportal",), amount=10**8))
            await ex.stop()
    assert report.outcome is Outcome.FAILED and "127.0.0.1" in report.detail, report
    text = repr(report) + repr(logs)
    assert "RPCSECRET" not in text and "RPCPATHTOKEN" not in text
