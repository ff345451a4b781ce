"""The `aptos` executor against the local fullnode: real aptos-sdk BCS, signatures and the real order path."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog
from aptos_sdk.account import Account
from aptos_sdk.async_client import RestClient
from hypothesis import given
from hypothesis import strategies as st

from quantbot.api import (
    NATIVE_TOKEN,
    ApprovedOrder,
    Outcome,
    PluginEnv,
    RejectReason,
    SigningKey,
    aptos_asset_name,
    aptos_wallet_deltas,
)
from quantbot.clock import WallClock
from quantbot.config import OrdersConfig, RiskConfig
from quantbot.events import Event, OrderExpired, OrderFailed, OrderFilled
from quantbot.localnet.aptos import AptosLocalNode
from quantbot.localnet.aptos_ledger import RouterSwap
from quantbot.testing import make_plugin, order_intent
from quantbot_executors.aptos import AptosExecutor
from tests.orderpath import order_path

APT = NATIVE_TOKEN["aptos"]
ROUTER = "0x00c7efb4076dbe143cbcd98cfaaa929ecfc8f299203dfff63b95ccb6bfe19850"
POOL = "0x5001"
MEME = "0xcafe::meme::MEME"
MEME_CANONICAL = "0x" + "cafe".rjust(64, "0") + "::meme::MEME"
"""MEME as the parsers name it (AIP-40: the address in long form); `MEME` is spelled as the REST API prints it."""
BUY_RATE = Decimal(5)  # MEME base units per octa
SELL_RATE = Decimal("0.19")
ROUTES = OrdersConfig(aptos=("aptos",))


@pytest.fixture
async def node() -> AsyncIterator[AptosLocalNode]:
    router = RouterSwap(address=ROUTER, pool=POOL, rates={(APT, MEME): BUY_RATE, (MEME, APT): SELL_RATE})
    async with AptosLocalNode(router=router) as n:
        n.add_coin(MEME, name="Meme", symbol="MEME", decimals=6)
        n.set_balance(POOL, MEME, 10**15)
        n.set_balance(POOL, APT, 10**15)
        yield n


@pytest.fixture
def wallet(node: AptosLocalNode, tmp_path: Path) -> tuple[Account, SigningKey]:
    account = Account.generate()
    node.fund(str(account.address()), 10 * 10**8)
    hex_key = account.private_key.hex()
    path = tmp_path / "aptos.key"
    path.write_text(hex_key)
    path.chmod(0o600)
    return account, SigningKey(path.read_text(), f"file {path}")


def executor(node: AptosLocalNode, key: SigningKey | None, tmp_path: Path, **params: Any) -> AptosExecutor:
    base: dict[str, Any] = {
        "nodes": [node.url],
        "router": {"function": f"{ROUTER}::router::swap_exact_input"},
        "tokens": [MEME],
        "poll_interval": 0.01,
        "retry_base": 0.01,
        "retry_cap": 0.05,
    }
    ex = make_plugin(AptosExecutor, id="aptos", **(base | params))
    ex.use_wallet_key(key)
    ex.attach(PluginEnv(clock=WallClock(), data_dir=tmp_path / "executors" / "aptos"))
    return ex


def buy(amount: int = 10**8, n: int = 1, **fields: Any) -> Any:
    base = {
        "chain": "aptos",
        "token": MEME,
        "intent_id": f"buy{n}",
        "amount": amount,
        "notional_usd": Decimal(5),
        "price_native": 1 / BUY_RATE,
    }
    return order_intent(**(base | fields))


def sell(amount: int, n: int = 1, **fields: Any) -> Any:
    base = {"side": "sell", "intent_id": f"sell{n}", "amount": amount, "price_native": SELL_RATE}
    return buy(**(base | fields))


def approved(intent: Any, order_id: str = "o1", **limits: Any) -> ApprovedOrder:
    from datetime import UTC, datetime

    return ApprovedOrder(
        order_id=order_id,
        idempotency_key=order_id,
        intent=intent,
        executors=("aptos",),
        approved_at=datetime(2026, 1, 1, tzinfo=UTC),
        **limits,
    )


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until `condition()` holds (a step count bounds it, not a time)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the condition never held")


def of(events: list[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def test_buy_and_sell_go_through_the_router_and_the_fill_is_what_the_committed_transaction_says(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    account, key = wallet
    me = str(account.address())
    ex = executor(node, key, tmp_path)
    limits = RiskConfig(token_cooldown_s=0)
    async with order_path(tmp_path, executors={"aptos": ex}, routes=ROUTES, limits=limits, mode="live") as path:
        await path.bus.publish(buy(10**8))
        await path.settle()
        (bought,) = of(path.events, OrderFilled)
        await path.bus.publish(sell(bought.amount_out // 2))
        await path.settle()
        (_, sold) = of(path.events, OrderFilled)
        fills = {f.order_id: f for f in await path.store.fills()}
        (position,) = await path.store.positions()
        orders = await path.store.orders()
    await ex.stop()

    rest = RestClient(node.url)
    try:
        for filled, side in ((bought, "buy"), (sold, "sell")):
            tx = await rest.transaction_by_hash(filled.tx)
            assert tx["success"] and tx["payload"]["function"].endswith("::router::swap_exact_input")
            deltas = aptos_wallet_deltas(tx, me)
            spent, got = (APT, aptos_asset_name(MEME)) if side == "buy" else (aptos_asset_name(MEME), APT)
            assert (filled.amount_in, filled.amount_out) == (-deltas[spent], deltas[got])
            assert filled.fee == int(tx["gas_used"]) * int(tx["gas_unit_price"])
            assert fills[filled.order_id].tx == filled.tx
    finally:
        await rest.close()  # type: ignore[no-untyped-call]
    assert bought.amount_in == 10**8 and bought.amount_out == 5 * 10**8
    assert sold.amount_out == int(Decimal(bought.amount_out // 2) * SELL_RATE)
    assert position.quantity == bought.amount_out - bought.amount_out // 2 == node.balance(me, MEME)
    assert {o.status for o in orders} == {"filled"}
    assert node.balance(me) == 10 * 10**8 - bought.amount_in + sold.amount_out - bought.fee - sold.fee


async def test_balances_report_apt_and_the_configured_tokens_under_their_canonical_names(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    """The portfolio compares the answer with positions named as the parsers name assets: one key per asset, however
    the config or the caller spelled it (`tokens` lists MEME as the REST API prints it)."""
    account, key = wallet
    node.set_balance(str(account.address()), MEME, 1234)
    ex = executor(node, key, tmp_path)
    await ex.start()
    try:
        assert await ex.balances() == {APT: 10 * 10**8, MEME_CANONICAL: 1234}
        assert await ex.balances([MEME_CANONICAL, "0XCAFE::meme::MEME"]) == {
            APT: 10 * 10**8,
            MEME_CANONICAL: 1234,
        }
    finally:
        await ex.stop()


async def test_a_route_configured_under_one_spelling_of_a_token_serves_orders_for_another(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    """`routes` keyed as the REST API prints the coin type; the order names it as the parsers do."""
    _, key = wallet
    route = {"function": f"{ROUTER}::router::swap_exact_input"}
    ex = executor(node, key, tmp_path, router=None, routes={MEME: route})
    limits = RiskConfig(token_cooldown_s=0)
    async with order_path(tmp_path, executors={"aptos": ex}, routes=ROUTES, limits=limits, mode="live") as path:
        await path.bus.publish(buy(10**8, token=MEME_CANONICAL))
        await path.settle()
        assert [e.reason for e in of(path.events, OrderFailed)] == []
        (bought,) = of(path.events, OrderFilled)
        assert path.portfolio.position("aptos", MEME_CANONICAL).quantity == bought.amount_out == 5 * 10**8
    await ex.stop()


async def test_a_token_bought_but_not_configured_is_read_and_its_position_kept(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    """`tokens` lists nothing: the balance read still covers what the portfolio holds, so the position stands."""
    account, key = wallet
    ex = executor(node, key, tmp_path, tokens=[])
    limits = RiskConfig(token_cooldown_s=0)
    async with order_path(tmp_path, executors={"aptos": ex}, routes=ROUTES, limits=limits, mode="live") as path:
        await path.bus.publish(buy(10**8))
        await path.settle()
        (bought,) = of(path.events, OrderFilled)
        assert await path.portfolio.sync_balances() == 0
        assert path.portfolio.position("aptos", MEME).quantity == bought.amount_out
    await ex.stop()
    assert node.balance(str(account.address()), MEME) == bought.amount_out


async def test_a_failing_simulation_is_failed_and_nothing_is_submitted(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    _, key = wallet
    ex = executor(node, key, tmp_path)
    await ex.start()
    try:
        report = await ex.execute(approved(buy(50 * 10**8)))  # 50 APT from a wallet holding 10
    finally:
        await ex.stop()
    assert report.outcome is Outcome.FAILED and report.reason is RejectReason.INSUFFICIENT_BALANCE
    assert "simulation failed" in report.detail and "EINSUFFICIENT_BALANCE" in report.detail
    assert node.hits["POST /transactions/simulate"] == 1 and node.hits["POST /transactions"] == 0


async def test_a_simulated_output_worse_than_the_limits_is_refused_before_submit(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    _, key = wallet
    ex = executor(node, key, tmp_path)
    await ex.start()
    try:
        # the strategy saw 6 MEME per octa; the router gives 5: 1666 bps worse
        intent = buy(10**8, price_native=Decimal(1) / 6)
        impact = await ex.execute(approved(intent, max_price_impact_bps=1000))
        slippage = await ex.execute(approved(intent, order_id="o2", max_slippage_bps=500))
        within = await ex.execute(approved(intent, order_id="o3", max_price_impact_bps=2000, max_slippage_bps=2000))
    finally:
        await ex.stop()
    assert (impact.outcome, impact.reason) == (Outcome.FAILED, RejectReason.PRICE_IMPACT)
    assert (slippage.outcome, slippage.reason) == (Outcome.FAILED, RejectReason.SLIPPAGE)
    assert "1666 bps" in impact.detail
    assert within.outcome is Outcome.FILLED
    assert node.hits["POST /transactions"] == 1


async def test_a_transaction_committed_with_success_false_failed_with_its_vm_status(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    account, key = wallet
    me = str(account.address())
    ex = executor(node, key, tmp_path)
    await ex.start()
    node.hold_commits()
    try:
        order = approved(buy(10**8))
        task = asyncio.create_task(ex.execute(order))
        await until(lambda: bool(node.ledger.pending))
        node.set_balance(POOL, MEME, 0)  # the pool is drained between simulation and commit
        await node.release()
        report = await task
    finally:
        await ex.stop()
    assert (report.outcome, report.reason) == (Outcome.FAILED, RejectReason.EXECUTOR_ERROR)
    assert "success=false" in report.detail
    tx = node.ledger.txs[node.ledger.by_hash[report.tx or ""]]
    assert tx["success"] is False and tx["vm_status"] in report.detail
    assert report.fee == int(tx["gas_used"]) * int(tx["gas_unit_price"]) > 0, "the gas it burnt is reported"
    assert node.balance(me, MEME) == 0


async def test_429_and_5xx_on_submit_retry_the_same_transaction_and_it_lands_once(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    account, key = wallet
    ex = executor(node, key, tmp_path)
    await ex.start()
    node.fail("status", status=429, retry_after="0", path="/v1/transactions", method="POST", times=1, exact=True)
    node.fail("status", status=503, path="/v1/transactions", method="POST", times=1, exact=True)
    try:
        report = await ex.execute(approved(buy(10**8)))
    finally:
        await ex.stop()
    assert report.outcome is Outcome.FILLED
    mine = node.ledger.account_transactions(str(account.address()))
    assert [t["hash"] for t in mine] == [report.tx]
    assert node.hits["POST /transactions"] == 3


async def test_a_submit_that_times_out_is_retried_as_the_same_transaction_and_lands_once(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    account, key = wallet
    ex = executor(node, key, tmp_path, request_timeout=0.2, confirm_timeout=10)
    await ex.start()
    # the first submit's answer never arrives in time; the pool sends the same signed bytes again
    node.fail("delay", delay=1.0, path="/v1/transactions", method="POST", times=1, exact=True)
    try:
        report = await ex.execute(approved(buy(10**8)))
    finally:
        await ex.stop()
    mine = node.ledger.account_transactions(str(account.address()))
    assert report.outcome is Outcome.FILLED and [t["hash"] for t in mine] == [report.tx]
    assert node.hits["POST /transactions"] == 2


async def test_a_crash_after_submit_is_reconciled_by_hash_at_restart(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    account, key = wallet
    me = str(account.address())
    node.hold_commits()
    first = executor(node, key, tmp_path)
    async with order_path(tmp_path, executors={"aptos": first}, routes=ROUTES, mode="live") as path:
        await path.bus.publish(buy(10**8))
        await until(lambda: bool(node.ledger.pending))
        path.router.crash()  # the process dies with the transaction in the mempool
        await path.bus.drain(5)
        (row,) = await path.store.orders()
    await first.stop()
    assert row.status == "pending" and row.tx is None
    await node.release()

    second = executor(node, key, tmp_path)
    async with order_path(tmp_path, executors={"aptos": second}, routes=ROUTES, mode="live") as path:
        await path.settle()
        (row,) = await path.store.orders()
        (fill,) = await path.store.fills()
        (position,) = await path.store.positions()
    await second.stop()
    assert row.status == "filled"
    assert [t["hash"] for t in node.ledger.account_transactions(me)] == [fill.tx]
    assert position.quantity == fill.amount_out == node.balance(me, MEME)


async def test_an_order_never_submitted_before_a_crash_reconciles_as_not_sent(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    _, key = wallet
    ex = executor(node, key, tmp_path)
    await ex.start()
    try:
        report = await ex.reconcile(approved(buy()), None)
    finally:
        await ex.stop()
    assert report.outcome is Outcome.NOT_SENT


async def test_a_transaction_past_its_expiration_and_not_committed_is_expired(
    wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    from quantbot.clock import SimClock

    chain_clock = SimClock()
    router = RouterSwap(address=ROUTER, pool=POOL, rates={(APT, MEME): BUY_RATE})
    async with AptosLocalNode(router=router, clock=chain_clock) as n:
        n.add_coin(MEME, name="Meme", symbol="MEME", decimals=6)
        n.set_balance(POOL, MEME, 10**15)
        account = Account.generate()
        n.fund(str(account.address()), 10**9)
        key = SigningKey(account.private_key.hex(), "test")
        ex = executor(n, key, tmp_path, expiration_s=30)
        await ex.start()
        n.hold_commits()
        try:
            task = asyncio.create_task(ex.execute(approved(buy(10**8))))
            await until(lambda: bool(n.ledger.pending))
            chain_clock.advance(31)
            n.ledger.hold = False
            n.fund(str(Account.generate().address()), 1)  # the chain moves on; ours is discarded
            report = await task
            reconciled = await ex.reconcile(approved(buy(10**8)), report.tx)
        finally:
            await ex.stop()
    assert report.outcome is Outcome.EXPIRED and "expiration" in report.detail
    assert reconciled.outcome is Outcome.EXPIRED
    assert n.ledger.account_transactions(str(account.address())) == []


async def test_concurrent_orders_get_consecutive_sequence_numbers_and_all_land(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    account, key = wallet
    ex = executor(node, key, tmp_path)
    await ex.start()
    node.hold_commits()  # the first ones are still pending while the next are built (simulated TOO_NEW)
    try:

        async def release_when_all_are_pending() -> None:
            await until(lambda: len(node.ledger.pending) == 4)
            await node.release()

        orders = (ex.execute(approved(buy(10**7, n=i), order_id=f"o{i}")) for i in range(4))
        *reports, _ = await asyncio.gather(*orders, release_when_all_are_pending())
    finally:
        await ex.stop()
    assert [r.outcome for r in reports] == [Outcome.FILLED] * 4
    sent = node.ledger.account_transactions(str(account.address()))
    assert sorted(int(t["sequence_number"]) for t in sent) == [0, 1, 2, 3]
    assert node.hits["POST /transactions/simulate"] == 1 + 3 * 2  # the later three: TOO_NEW, then as the next


async def test_a_wallet_used_elsewhere_resyncs_its_sequence_number_and_the_order_still_lands(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    account, key = wallet
    ex = executor(node, key, tmp_path)
    await ex.start()
    rest = RestClient(node.url)
    try:
        first = await ex.execute(approved(buy(10**7)))
        await rest.bcs_transfer(account, Account.generate().address(), 1)  # the operator's other tool: seq 1
        second = await ex.execute(approved(buy(10**7, n=2), order_id="o2"))
    finally:
        await rest.close()  # type: ignore[no-untyped-call]
        await ex.stop()
    assert (first.outcome, second.outcome) == (Outcome.FILLED, Outcome.FILLED)
    sent = node.ledger.account_transactions(str(account.address()))
    assert [int(t["sequence_number"]) for t in sent] == [0, 1, 2] and sent[2]["hash"] == second.tx


async def test_the_key_never_appears_in_logs_reports_or_errors(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    _, key = wallet
    secret = key.reveal()
    raw_hex = secret.removeprefix("0x")
    aip80 = SigningKey(f"ed25519-priv-0x{raw_hex}", "test")
    bad = SigningKey(raw_hex[:-2] + "zz", "file /etc/k")
    reports = []
    with structlog.testing.capture_logs() as logs:
        for k in (key, aip80):
            ex = executor(node, k, tmp_path)
            await ex.start()
            try:
                reports.append(await ex.execute(approved(buy(10**7), order_id=f"o{len(reports)}")))
                reports.append(await ex.execute(approved(buy(50 * 10**8), order_id=f"x{len(reports)}")))
            finally:
                await ex.stop()
        broken = executor(node, bad, tmp_path)
        with pytest.raises(ValueError) as err:
            await broken.start()
    assert [r.outcome for r in reports] == [Outcome.FILLED, Outcome.FAILED] * 2
    text = repr(logs) + repr([msgspec.json.encode(r) for r in reports]) + str(err.value) + repr(err.value.__context__)
    text += "".join(p.read_text() for p in (tmp_path / "executors").rglob("*") if p.is_file())
    assert raw_hex not in text and raw_hex[:16] not in text and raw_hex[:-2] not in text
    assert "file /etc/k" in str(err.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"router": {"function": "router::swap"}}, "expected 0xADDRESS::module::function"),
        ({"router": {"function": "0x1::r::s", "arguments": ["{amount}"]}}, "unknown placeholder {amount}"),
        ({"router": {"function": "0x1::r::s", "arguments": ["u9:{amount_in}"]}}, "unknown type 'u9'"),
        ({"router": {"function": "0x1::r::s", "arguments": ["u8:300"]}}, "300 does not fit u8"),
        ({"nodes": ["https://api.mainnet.aptoslabs.com"]}, "not an http(s) URL ending in /v1"),
        ({"nodes": []}, "at least one fullnode URL"),
        ({"expiration_s": 1}, ">= 5"),
        ({"speed": 3}, "unknown field"),
        (
            {"routes": {MEME: {"function": "0x1::r::s"}, MEME_CANONICAL: {"function": "0x1::r::t"}}},
            "are one token; keep one of them",
        ),
    ],
)
def test_bad_config_is_refused_with_the_reason(params: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError) as err:
        make_plugin(AptosExecutor, id="aptos", **params)
    assert message in str(err.value)


def test_a_router_template_builds_typed_arguments() -> None:
    from aptos_sdk.bcs import Serializer

    from quantbot_executors.aptos_call import RouterCall

    call = RouterCall(
        function="0x4bf51972879e3b95c4781a5cdcb9e1ee24ef483e7d22f2d903626f126df62bd1::router::swap_route_entry",
        type_arguments=(),
        arguments=("{amount_in}", "{min_amount_out}", "object:{token_in}", "bool:false", "{wallet}"),
    )
    values = {"amount_in": "7", "min_amount_out": "5", "token_in": APT, "wallet": "0xbeef"}
    ef = call.build(values | {"token_out": MEME, "expiration": "0"})
    ser = Serializer()
    ser.u64(7)
    assert ef.args[0] == ser.output()
    assert ef.args[2] == bytes(31) + b"\x0a"  # APT's coin type is passed as its FA metadata 0xa
    assert ef.args[3] == b"\x00" and ef.args[4] == bytes(30) + b"\xbe\xef"


def test_the_aptos_key_file_must_not_be_readable_by_others(tmp_path: Path) -> None:
    from quantbot.config import ConfigError, load_config
    from quantbot.plugins import PluginCatalog

    key = tmp_path / "aptos.key"
    key.write_text("ed25519-priv-0x" + "11" * 32)
    key.chmod(0o644)
    cfg = tmp_path / "q.toml"
    cfg.write_text(f'[wallet]\naptos_private_key = {{ file = "{key}" }}\n')
    with pytest.raises(ConfigError) as err:
        load_config([cfg], environ={}, plugins=PluginCatalog.discover())
    assert "readable by others" in str(err.value.problems) and "11" * 8 not in str(err.value.problems)
    assert os.stat(key).st_mode & 0o077


def test_the_shipped_commented_example_is_a_valid_aptos_executor(tmp_path: Path) -> None:
    from quantbot.config import load_config
    from quantbot.plugins import PluginCatalog
    from tests.conftest import REPO

    text = (REPO / "config" / "quantbot.toml").read_text()
    start = text.index("# --- aptos executor example (uncomment to use) ---")
    end = text.index("# --- end aptos executor example ---")
    lines = [line.removeprefix("# ") for line in text[start:end].splitlines()[1:]]
    cfg = tmp_path / "q.toml"
    cfg.write_text('[orders]\nsolana = []\naptos = ["aptos"]\n' + "\n".join(lines) + "\n")
    loaded = load_config([cfg], environ={}, plugins=PluginCatalog.discover())
    (spec,) = loaded.config.executors
    assert spec.use == "aptos" and loaded.config.orders.aptos == ("aptos",)


def test_a_bad_aptos_executor_table_is_refused_by_the_config_loader(tmp_path: Path) -> None:
    from quantbot.config import ConfigError, load_config
    from quantbot.plugins import PluginCatalog

    cfg = tmp_path / "q.toml"
    cfg.write_text('[[executors]]\nuse = "aptos"\nrouter = { function = "0x1::r::s", arguments = ["{amount}"] }\n')
    with pytest.raises(ConfigError) as err:
        load_config([cfg], environ={}, plugins=PluginCatalog.discover())
    assert "unknown placeholder {amount}" in " ".join(err.value.problems)


@given(
    amount=st.integers(1, 10**15),
    rate=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4),
    out_pct=st.integers(1, 200),
    limit=st.integers(0, 10_000),
)
def test_limits_refuse_exactly_when_the_simulated_output_falls_short_by_more_than_allowed(
    amount: int, rate: Decimal, out_pct: int, limit: int
) -> None:
    ex = make_plugin(AptosExecutor, id="aptos")
    intent = buy(amount, price_native=1 / rate)
    expected = Decimal(amount) / intent.price_native
    out = int(expected * out_pct / 100)
    shortfall_bps = (expected - out) * 10_000 / expected
    impact = ex._limits(approved(intent, max_price_impact_bps=limit), out)
    slippage = ex._limits(approved(intent, max_slippage_bps=limit), out)
    assert ex._limits(approved(intent), out) is None
    if shortfall_bps >= limit + 1:
        assert impact is not None and impact.reason is RejectReason.PRICE_IMPACT
        assert slippage is not None and slippage.reason is RejectReason.SLIPPAGE
    elif shortfall_bps <= limit:
        assert impact is None and slippage is None


@given(kind=st.sampled_from(["u8", "u16", "u32", "u64", "u128", "u256"]), value=st.integers(0, 2**256))
def test_an_unsigned_argument_encodes_as_bcs_or_is_refused_when_it_does_not_fit(kind: str, value: int) -> None:
    from aptos_sdk.bcs import Deserializer

    from quantbot_executors.aptos_call import encode_argument

    bits = int(kind[1:])
    if value >= 2**bits:
        with pytest.raises(ValueError, match=f"does not fit {kind}"):
            encode_argument(kind, str(value))
        return
    encoded = encode_argument(kind, str(value)).encode()
    assert len(encoded) == bits // 8 and getattr(Deserializer(encoded), kind)() == value


async def test_a_live_daemon_hands_the_aptos_key_to_the_executor_and_fills_through_the_router(
    node: AptosLocalNode, wallet: tuple[Account, SigningKey], tmp_path: Path
) -> None:
    from quantbot.config import load_config
    from quantbot.daemon import Daemon
    from quantbot.plugins import PluginCatalog
    from quantbot.secrets import Redactor
    from tests.conftest import write

    account, key = wallet
    key_file = key.source.removeprefix("file ")
    cfg = write(
        tmp_path / "q.toml",
        f"""
mode = "live"
[daemon]
data_dir = "{tmp_path / "data"}"
[http]
enabled = false
[jobs]
enabled = false
[wallet]
aptos_private_key = {{ file = "{key_file}" }}
[orders]
solana = []
aptos = ["aptos"]
[[executors]]
use = "aptos"
nodes = ["{node.url}"]
router = {{ function = "{ROUTER}::router::swap_exact_input" }}
tokens = ["{MEME}"]
poll_interval = 0.01
""",
    )
    catalog = PluginCatalog.discover()
    loaded = load_config([cfg], environ={}, plugins=catalog)
    daemon = Daemon(
        loaded=loaded,
        config_paths=[str(cfg)],
        catalog=catalog,
        redactor=Redactor(loaded.secrets),
        clock=WallClock(),
        environ={},
    )
    run = asyncio.create_task(daemon.run())
    filled: list[Event] = []

    async def record(event: Event) -> None:
        filled.append(event)

    try:
        async with asyncio.timeout(10):
            await daemon.started.wait()
        daemon.bus.subscribe("order.#", record, name="test")
        await daemon.bus.publish(buy(10**8))
        await until(lambda: any(isinstance(e, OrderFilled | OrderFailed | OrderExpired) for e in filled))
        assert daemon.portfolio is not None
        equity = daemon.portfolio.equity_native("aptos")
    finally:
        daemon.request_stop()
        assert await run == 0
    (fill,) = [e for e in filled if isinstance(e, OrderFilled)]
    me = str(account.address())
    assert fill.executor == "aptos" and [t["hash"] for t in node.ledger.account_transactions(me)] == [fill.tx]
    assert fill.amount_out == node.balance(me, MEME) == 5 * 10**8
    assert equity is not None and equity > 0
