"""The pumpportal executor: PumpPortal-style trade-local transactions signed, sent and read back on LiteSVM."""

from __future__ import annotations

from pathlib import Path

from quantbot.api import Outcome
from tests.jupiter_env import approved, jupiter_env
from tests.test_jupiter_executor import token_balance


async def test_buy_in_sol_and_sell_in_whole_tokens_fill_with_what_moved_on_chain(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        ex = await env.started(env.pumpportal(slippage_pct=15, priority_fee_sol="0.0001", pool="pump"))
        mint = str(env.pool.mint)
        bought = await ex.execute(approved(mint, executors=("pumpportal",), amount=25 * 10**7, max_slippage_bps=500))
        held = token_balance(env, env.wallet.pubkey())
        sold = await ex.execute(approved(mint, executors=("pumpportal",), side="sell", amount=10**6, intent_id="s"))
        await ex.stop()
    assert bought.outcome is Outcome.FILLED and bought.fill is not None
    assert bought.fill.amount_in == 25 * 10**7 and bought.fill.amount_out == held > 0
    buy, sell = env.jup.requests.trades
    assert buy == {
        "publicKey": str(env.wallet.pubkey()),
        "action": "buy",
        "mint": mint,
        "amount": "0.250000000",
        "denominatedInSol": "true",
        "slippage": 5,  # 15 % asked, capped by the order's 500 bps
        "priorityFee": "0.0001",
        "pool": "pump",
    }
    assert (sell["action"], sell["amount"], sell["denominatedInSol"]) == ("sell", "1.000000", "false")
    assert sold.outcome is Outcome.FILLED and sold.fill is not None
    assert sold.fill.amount_in == 10**6 and sold.fill.amount_out > 0
    assert token_balance(env, env.wallet.pubkey()) == held - 10**6


async def test_rate_limited_trade_local_is_retried_and_an_error_answer_sends_nothing(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        env.jup.faults.rate_limited = 1
        env.jup.faults.retry_after = "0"
        ex = await env.started(env.pumpportal())
        ok = await ex.execute(approved(str(env.pool.mint), executors=("pumpportal",), amount=10**8))
        unknown = await ex.execute(approved("UnknownMint111111111111111111111111111111", amount=10**8, intent_id="2"))
        await ex.stop()
    assert ok.outcome is Outcome.FILLED
    assert unknown.outcome is Outcome.FAILED and "HTTP 400" in unknown.detail
    assert env.node.calls["sendTransaction"] == 1


async def test_a_venue_blockhash_is_bounded_from_the_newest_block_height_not_the_confirmed_one(tmp_path: Path) -> None:
    """PumpPortal gives no last valid height: the executor bounds it from the height after the transaction arrived.
    Read at the configured commitment, that trails the newest block, where the venue's blockhash may come from: a
    bound too low calls a transaction that can still land expired, and the next executor buys again."""
    async with jupiter_env(tmp_path) as env:
        env.node.commitment_lag = {"confirmed": 5, "finalized": 32}
        ex = await env.started(env.pumpportal())
        order = approved(str(env.pool.mint), executors=("pumpportal",), amount=10**8)
        newest = env.node.ledger.block_height
        report = await ex.execute(order)
        await ex.stop()
    assert report.outcome is Outcome.FILLED, report
    (sent,) = ex._sent[order.order_id]
    assert sent.last_valid_block_height >= newest + 150
