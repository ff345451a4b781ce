"""SIGKILL at random points while orders flow: no duplicate order, no lost fill, positions match the venue.

The venue here is the paper executor's own fsynced ledger (what "the chain" recorded). Each
iteration starts the real daemon, lets a strategy submit orders on every tick, and kills it with
SIGKILL after a random delay. A final run reconciles; then the journal is checked against the ledger.
QUANTBOT_KILL_ITERATIONS sets how many kills (default 50).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

from quantbot.api import Fill
from quantbot.store.sqlite import SqliteStore
from tests.conftest import DaemonProcess, cli_env, write

ITERATIONS = int(os.environ.get("QUANTBOT_KILL_ITERATIONS", "50"))


class LedgerEntry(msgspec.Struct):
    order_id: str
    fill: Fill


def read_ledger(path: Path) -> dict[str, Fill]:
    out: dict[str, Fill] = {}
    for line in path.read_bytes().splitlines():
        try:
            entry = msgspec.json.decode(line, type=LedgerEntry)
        except msgspec.DecodeError:
            continue  # a line torn by SIGKILL: never acknowledged, so never recorded
        assert entry.order_id not in out, f"order {entry.order_id} filled twice at the venue"
        out[entry.order_id] = entry.fill
    return out


@pytest.mark.subprocess
def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path, plugin_site: Path) -> None:
    data = tmp_path / "data"
    cfg = write(
        tmp_path / "q.toml",
        f"""
        [daemon]
        data_dir = "{data}"
        tick_interval = 0.01
        [risk]
        max_order_usd = 10
        daily_notional_usd = 1000000000
        max_open_positions = 100
        max_exposure_sol = 1000000
        max_orders_per_minute = 100000000
        token_cooldown_s = 0
        duplicate_window_s = 0
        max_exposure_pct = 0
        [[strategies]]
        use = "ticker"
        [[executors]]
        use = "paper"
        balance_sol = 1000
        """,
    )
    env = cli_env(PYTHONPATH=str(plugin_site))
    rng = random.Random(20261122)
    for _ in range(ITERATIONS):
        d = DaemonProcess("-c", str(cfg), env=env)
        try:
            d.wait_for("daemon.ready")
            time.sleep(rng.uniform(0.0, 0.15))
        finally:
            d.proc.send_signal(signal.SIGKILL)
            d.wait()
    # A last, clean run with the strategy off: start-up reconciliation settles every open order.
    final = DaemonProcess("-c", str(cfg), env=env | {"QUANTBOT__STRATEGIES__0__ENABLED": "false"})
    final.wait_for("daemon.ready")
    final.signal(signal.SIGTERM)
    assert final.wait() == 0

    ledger = read_ledger(data / "executors" / "paper" / "paper-ledger.jsonl")
    orders, fills, positions = asyncio.run(_read_store(data / "quantbot.db"))
    by_id = {o.order_id: o for o in orders}

    assert len(ledger) > ITERATIONS, "orders flowed in every run"
    assert len({o.idempotency_key for o in orders}) == len(orders), "no intent became two orders"
    assert [o for o in orders if o.status in ("pending", "submitted")] == [], "every order settled"
    assert set(ledger) <= set(by_id), "nothing reached the venue without a journal row"
    assert {f.order_id for f in fills} == set(ledger), "every venue fill is recorded, and only those"
    for f in fills:
        assert (f.amount_in, f.amount_out, f.tx) == (
            ledger[f.order_id].amount_in,
            ledger[f.order_id].amount_out,
            ledger[f.order_id].tx,
        )
    unfilled = [o for o in orders if o.order_id not in ledger]
    assert all((o.status, o.reason) == ("failed", "not_sent") for o in unfilled)

    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for oid, fill in ledger.items():
        expected[by_id[oid].token][0] += fill.amount_out
        expected[by_id[oid].token][1] += fill.amount_in + fill.fee  # the network fee is part of the cost
    assert {p.token: [p.quantity, p.cost_native] for p in positions} == dict(expected)
    print(
        f"\n{ITERATIONS} kills: {len(orders)} orders journaled, {len(ledger)} filled at the venue, "
        f"{len(unfilled)} journaled but never sent (failed, not re-sent)"
    )


async def _read_store(path: Path):  # type: ignore[no-untyped-def]
    async with SqliteStore(path) as store:
        return await store.orders(), await store.fills(), await store.positions()
