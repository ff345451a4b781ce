"""The order router's executor chain with the real Solana executors: the next one only after proof."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import structlog

from quantbot.clock import WallClock
from quantbot.config import OrdersConfig
from quantbot.events import OrderExpired, OrderFailed, OrderFilled, PositionUpdate
from quantbot.execution import ApprovedOrder
from quantbot.testing import order_intent
from tests.jupiter_env import jupiter_env
from tests.orderpath import order_path

CHAIN = ("jupiter", "jupiter_selfhosted", "pumpportal")


async def _buy(path: object, token: str, intent_id: str = "i1") -> None:
    await path.bus.publish(  # type: ignore[attr-defined]
        order_intent(
            token=token, intent_id=intent_id, amount=10**8, notional_usd=Decimal(10), price_native=Decimal("0.001")
        )
    )
    await path.settle()  # type: ignore[attr-defined]


async def test_expired_transaction_falls_back_to_the_next_executor_which_fills(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        env.jup.faults.expired_blockhash = 1
        executors = {
            "jupiter": env.keyed(env.jupiter(skip_preflight=True, requote_attempts=0)),
            "jupiter_selfhosted": env.keyed(env.jupiter(id="jupiter_selfhosted")),
            "pumpportal": env.keyed(env.pumpportal()),
        }
        async with order_path(
            tmp_path, executors=executors, routes=OrdersConfig(solana=CHAIN), mode="live", clock=WallClock()
        ) as path:
            await _buy(path, str(env.pool.mint))
            rows = await path.store.orders()
            fills = await path.store.fills()
            pos = path.portfolio.position("solana", str(env.pool.mint))
        for ex in executors.values():
            await ex.stop()
    expired_sig = executors["jupiter"]._sent[rows[0].order_id][0].signature
    assert env.node.ledger.status(expired_sig) is None
    filled = [e for e in path.events if isinstance(e, OrderFilled)]
    assert [e.executor for e in filled] == ["jupiter_selfhosted"]
    assert not any(isinstance(e, OrderExpired | OrderFailed) for e in path.events)
    assert [(r.status, r.executor) for r in rows] == [("filled", "jupiter_selfhosted")]
    assert [f.tx for f in fills] == [filled[0].tx] and fills[0].amount_out == filled[0].amount_out
    assert pos.quantity == filled[0].amount_out
    assert env.jup.requests.trades == []  # pumpportal was never needed


async def test_refused_and_unreachable_executors_fall_back_to_pumpportal(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        env.jup.faults.rate_limited = 3  # the hosted API: every attempt 429
        env.jup.faults.retry_after = "0"
        executors = {
            "jupiter": env.keyed(env.jupiter(attempts=3)),
            "jupiter_selfhosted": env.keyed(
                env.jupiter(id="jupiter_selfhosted", base_url="http://127.0.0.1:9/swap/v1", attempts=1)
            ),
            "pumpportal": env.keyed(env.pumpportal()),
        }
        async with order_path(
            tmp_path, executors=executors, routes=OrdersConfig(solana=CHAIN), mode="live", clock=WallClock()
        ) as path:
            await _buy(path, str(env.pool.mint))
            rows = await path.store.orders()
            pos = path.portfolio.position("solana", str(env.pool.mint))
        for ex in executors.values():
            await ex.stop()
    filled = [e for e in path.events if isinstance(e, OrderFilled)]
    assert [e.executor for e in filled] == ["pumpportal"]
    assert [(r.status, r.executor) for r in rows] == [("filled", "pumpportal")]
    trade = env.jup.requests.trades[0]
    assert (trade["action"], trade["denominatedInSol"], trade["amount"]) == ("buy", "true", "0.100000000")
    assert pos.quantity == filled[0].amount_out > 0
    updates = [e for e in path.events if isinstance(e, PositionUpdate)]
    assert updates and updates[-1].quantity == filled[0].amount_out


async def test_a_transaction_that_may_still_land_is_never_followed_by_another_executor(tmp_path: Path) -> None:
    async with jupiter_env(tmp_path) as env:
        # A send whose answer is lost and whose blockhash is still valid: unknown, so SUBMITTED, no fallback.
        env.node.faults.only_methods = frozenset({"sendTransaction"})
        env.node.faults.server_errors = 10
        executors = {
            "jupiter": env.keyed(env.jupiter(attempts=1, confirm_timeout=0.05)),
            "jupiter_selfhosted": env.keyed(env.jupiter(id="jupiter_selfhosted")),
            "pumpportal": env.keyed(env.pumpportal()),
        }
        async with order_path(
            tmp_path, executors=executors, routes=OrdersConfig(solana=CHAIN), mode="live", clock=WallClock()
        ) as path:
            await _buy(path, str(env.pool.mint))
            rows = await path.store.orders()
        for ex in executors.values():
            await ex.stop()
    assert [(r.status, r.executor) for r in rows] == [("submitted", "jupiter")]
    assert len(env.jup.requests.quotes) == 1 and env.jup.requests.trades == []


async def test_a_buy_jupiter_refuses_for_its_price_impact_is_not_handed_to_pumpportal(tmp_path: Path) -> None:
    """PumpPortal cannot quote the impact: a fallback there would trade past the approved limit."""
    async with jupiter_env(tmp_path) as env:
        executors = {"jupiter": env.keyed(env.jupiter()), "pumpportal": env.keyed(env.pumpportal())}
        routes = OrdersConfig(solana=("jupiter", "pumpportal"))
        async with order_path(tmp_path, executors=executors, routes=routes, mode="live", clock=WallClock()) as path:
            intent = order_intent(token=str(env.pool.mint), intent_id="big", amount=20 * 10**9)
            approved = ApprovedOrder(
                order_id="o1",
                idempotency_key="k1",
                intent=intent,
                executors=routes.solana,
                approved_at=datetime.now(UTC),
                max_price_impact_bps=100,  # 20 SOL into this pool moves it about 2%
                max_slippage_bps=1000,
            )
            await path.router.submit(path.sealer.seal(approved))
            await path.settle()
            (row,) = await path.store.orders()
            fills = await path.store.fills()
        for ex in executors.values():
            await ex.stop()
    assert (row.status, row.executor, row.reason) == ("failed", "jupiter", "price_impact")
    assert fills == [] and env.jup.requests.trades == [], "nothing was sent to PumpPortal"


@pytest.mark.parametrize("bad", ["stale quote", "expired"])
async def test_key_never_appears_in_logs_events_or_errors(
    tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    structlog.configure(processors=[structlog.processors.JSONRenderer()], logger_factory=structlog.PrintLoggerFactory())
    try:
        async with jupiter_env(tmp_path) as env:
            if bad == "expired":
                env.jup.faults.expired_blockhash = 10
            else:
                env.jup.faults.stale_quotes = 10
            executors = {"jupiter": env.keyed(env.jupiter(skip_preflight=True, requote_attempts=1))}
            async with order_path(
                tmp_path, executors=executors, routes=OrdersConfig(solana=("jupiter",)), mode="live", clock=WallClock()
            ) as path:
                await _buy(path, str(env.pool.mint))
                rows = await path.store.orders()
            await executors["jupiter"].stop()
    finally:
        structlog.reset_defaults()
    out = capsys.readouterr()
    text = out.out + out.err + repr(path.events) + repr(rows) + "".join(r.intent for r in rows)
    key_json = env.wallet.to_json()
    key_b58 = str(env.wallet)
    secret_bytes = ",".join(str(b) for b in bytes(env.wallet)[:32])
    for secret in (key_json, key_b58, secret_bytes, key_json[1:40]):
        assert secret not in text
    assert str(env.wallet.pubkey()) in out.out  # the public key is logged, so the capture is real
