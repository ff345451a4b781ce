"""End to end, in a live-mode daemon: a recorded whale swap arrives over the local node's WebSocket, a
strategy follows it, the risk engine approves, the jupiter executor signs and sends, LiteSVM executes,
the fill is read back from the chain, and the position, the journal and the wallet agree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from quantbot.daemon import Daemon
from quantbot.events import Event, OrderFailed, OrderFilled, OrderRejected, PositionUpdate, RejectReason, Swap
from quantbot.execution import ApprovedOrder
from quantbot.store.sqlite import SqliteStore
from quantbot.testing import order_intent
from tests.conftest import start_daemon, write
from tests.jupiter_env import API_KEY, Env, jupiter_env
from tests.orderpath import order_row
from tests.test_jupiter_executor import token_balance

WHALE_TX = "raydium_v4_swap_direct_gettransaction_jsonparsed.json"
WHALE = "8hnZamLJMaHYzTXGxWTEGUnyCXkjdtTV3EQ4JWaUwzGF"
GUARD_S = 30.0  # a hang guard, not a speed assertion

CONFIG = """
mode = "live"
[daemon]
data_dir = "{data}"
[http]
enabled = false
[wallet]
solana_keypair = {{ file = "{key}" }}
[solana]
enabled = true
endpoints = [{{ http = "{http}", ws = "{ws}", rps = 0 }}]
wallets = [{{ address = "{whale}", label = "whale" }}]
launch_programs = []
[risk]
max_order_usd = 50
max_price_impact_bps = {impact}
[orders]
solana = ["jupiter"]
aptos = []
[[executors]]
use = "jupiter"
rpc_url = "{http}"
base_url = "{base}"
api_key = {{ env = "JUPITER_API_KEY" }}
confirm_poll = 0.01
[[strategies]]
use = "follow_swap"
token = "{mint}"
amount = {amount}
"""


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []
        self.cond = asyncio.Condition()

    async def __call__(self, event: Event) -> None:
        async with self.cond:
            self.seen.append(event)
            self.cond.notify_all()

    async def first(self, *types: type[Event]) -> Event:
        async with asyncio.timeout(GUARD_S), self.cond:
            await self.cond.wait_for(lambda: any(isinstance(e, types) for e in self.seen))
        return next(e for e in self.seen if isinstance(e, types))


@asynccontextmanager
async def live_daemon(tmp: Path, env: Env, *, amount: int, impact_bps: int) -> AsyncIterator[tuple[Daemon, Events]]:
    key = write(tmp / "solana.json", env.wallet.to_json(), mode=0o600)
    text = CONFIG.format(
        data=tmp / "data",
        key=key,
        http=env.node.http_url,
        ws=env.node.ws_url,
        whale=WHALE,
        base=env.jup.base_url,
        mint=env.pool.mint,
        amount=amount,
        impact=impact_bps,
    )
    cfg = write(tmp / "q.toml", text)
    daemon, run = await start_daemon(cfg, environ={"JUPITER_API_KEY": API_KEY}, start_within=GUARD_S)
    assert daemon.bus is not None
    for component in daemon.components:  # the watcher knows where the whale's history stands
        if hasattr(component, "wait_synced"):
            async with asyncio.timeout(GUARD_S):
                await component.wait_synced()
    events = Events()
    daemon.bus.subscribe(["chain.#", "order.#", "position.#"], events, name="test")
    try:
        yield daemon, events
    finally:
        daemon.request_stop()
        async with asyncio.timeout(GUARD_S):
            await run


async def test_whale_swap_to_filled_position_through_jupiter_on_the_local_chain(
    tmp_path: Path, plugin_site: Path, solana_fixtures: Path
) -> None:
    async with jupiter_env(tmp_path) as env:
        async with live_daemon(tmp_path, env, amount=10**8, impact_bps=300) as (daemon, events):
            whale_sig = env.node.load_transaction(solana_fixtures / WHALE_TX)  # lands after the watcher started
            await env.node.announce(whale_sig)
            swap = await events.first(Swap)
            filled = await events.first(OrderFilled, OrderFailed, OrderRejected)
            assert isinstance(filled, OrderFilled), filled
            update = await events.first(PositionUpdate)
            assert daemon.store is not None
            [row] = await daemon.store.orders()
            [fill_row] = await daemon.store.fills()
            [pos_row] = await daemon.store.positions()
        on_chain = token_balance(env, env.wallet.pubkey())
    assert isinstance(swap, Swap) and swap.wallet == WHALE and swap.tx == whale_sig
    landed = env.node.ledger.transaction(filled.tx)
    assert landed is not None and landed.err is None  # LiteSVM executed the signed swap
    assert filled.amount_in == 10**8 and filled.amount_out == on_chain > 0
    assert (row.status, row.executor, row.token) == ("filled", "jupiter", str(env.pool.mint))
    assert (fill_row.tx, fill_row.amount_out) == (filled.tx, on_chain)
    assert isinstance(update, PositionUpdate) and update.quantity == on_chain
    assert pos_row.quantity == on_chain


async def test_whale_swap_whose_order_moves_the_price_too_much_is_refused_by_the_executor(
    tmp_path: Path, plugin_site: Path, solana_fixtures: Path
) -> None:
    async with jupiter_env(tmp_path) as env:
        # 0.4 SOL into a 1000 SOL pool quotes 4 bps of impact (rounded up); the limit is 3.
        async with live_daemon(tmp_path, env, amount=4 * 10**8, impact_bps=3) as (daemon, events):
            await env.node.announce(env.node.load_transaction(solana_fixtures / WHALE_TX))
            failed = await events.first(OrderFilled, OrderFailed, OrderRejected)
            assert daemon.store is not None
            [row] = await daemon.store.orders()
            positions = await daemon.store.positions()
    assert isinstance(failed, OrderFailed) and failed.reason == RejectReason.PRICE_IMPACT
    assert "quoted impact 4 bps > allowed 3 bps" in failed.detail
    assert row.status == "failed" and positions == []
    assert env.node.calls["sendTransaction"] == 0 and env.jup.requests.swaps == []
    assert token_balance(env, env.wallet.pubkey()) == 0


async def test_an_executor_that_could_not_start_neither_trades_nor_settles_its_orders(
    tmp_path: Path, plugin_site: Path
) -> None:
    """Its sent log unreadable, the executor cannot tell what it sent: an order journaled before the restart must
    stay open (not be called never sent, its budget released, while its swap may have landed)."""
    async with jupiter_env(tmp_path) as env:
        earlier = ApprovedOrder(
            order_id="o-before",
            idempotency_key="k-before",
            intent=order_intent(token=str(env.pool.mint), amount=10**8),
            executors=("jupiter",),
            approved_at=datetime.now(UTC),
        )
        async with SqliteStore(tmp_path / "data" / "quantbot.db") as store:
            await store.migrate()
            await store.journal_order(order_row(earlier))
        (tmp_path / "data" / "executors" / "jupiter" / "sent.jsonl").mkdir(parents=True)  # unreadable as a log
        async with live_daemon(tmp_path, env, amount=10**8, impact_bps=300) as (daemon, _):
            assert daemon.store is not None and daemon.router is not None
            assert "jupiter" not in daemon.router.executors, "taken out of the order path"
            row = await daemon.store.get_order("o-before")
    assert row is not None and row.status == "pending"
