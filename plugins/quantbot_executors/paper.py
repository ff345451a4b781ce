"""`paper` executor: simulated fills at the reference price, with slippage, fee and latency.

It records exactly what a live fill records, and keeps its own append-only ledger (one fsynced JSON
line per fill) so `reconcile` after a crash answers from what it really filled.
"""

from __future__ import annotations

import asyncio
import os
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Annotated

import msgspec

from quantbot.api import (
    ApprovedOrder,
    ExecutionReport,
    Executor,
    Fill,
    Outcome,
    PluginConfig,
    RejectReason,
)

BPS = Decimal(10_000)


class PaperConfig(PluginConfig, frozen=True, kw_only=True):
    slippage_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000, description="price moved against us, in bps")] = 50
    fee_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000, description="venue fee taken from the output, in bps")] = 25
    latency_ms: Annotated[int, msgspec.Meta(ge=0, description="simulated time from send to fill")] = 0


class _Entry(msgspec.Struct, frozen=True):
    order_id: str
    fill: Fill


class PaperExecutor(Executor):
    Config = PaperConfig
    config: PaperConfig
    live = False

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self._ledger: dict[str, Fill] = {}
        self._path: Path | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._path = self.env.data_dir / "paper-ledger.jsonl"
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._path.exists():
            decoder = msgspec.json.Decoder(_Entry)
            for n, line in enumerate(self._path.read_bytes().splitlines(), 1):
                try:
                    entry = decoder.decode(line)
                except msgspec.DecodeError:
                    self.log.warning("paper.ledger_line_skipped", line=n, path=str(self._path))  # a torn last write
                    continue
                self._ledger[entry.order_id] = entry.fill

    def quote(self, order: ApprovedOrder) -> tuple[int, int] | None:
        """(amount_out, fee) at the reference price, or None without one."""
        intent = order.intent
        price = intent.price_native
        if price is None or price <= 0:
            return None
        keep = (BPS - self.config.slippage_bps) / BPS
        gross = Decimal(intent.amount) / price if intent.side == "buy" else Decimal(intent.amount) * price
        gross = gross * keep
        fee = (gross * self.config.fee_bps / BPS).to_integral_value(ROUND_FLOOR)
        out = (gross - fee).to_integral_value(ROUND_FLOOR)
        return int(out), int(fee)

    async def execute(self, order: ApprovedOrder) -> ExecutionReport:
        quoted = self.quote(order)
        if quoted is None:
            return ExecutionReport(
                outcome=Outcome.FAILED, reason=RejectReason.NO_PRICE, detail="paper fills need a reference price"
            )
        if self.config.latency_ms:
            await self.env.clock.sleep(self.config.latency_ms / 1000)
        out, fee = quoted
        fill = Fill(
            tx=f"paper-{order.order_id}",
            amount_in=order.intent.amount,
            amount_out=out,
            fee=fee,
            price_native=order.intent.price_native,
            filled_at=self.env.clock.now(),
        )
        await self._record(order.order_id, fill)
        return ExecutionReport(outcome=Outcome.FILLED, tx=fill.tx, fill=fill)

    async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
        fill = self._ledger.get(order.order_id)
        if fill is None:
            return ExecutionReport(outcome=Outcome.NOT_SENT, detail="not in the paper ledger")
        return ExecutionReport(outcome=Outcome.FILLED, tx=fill.tx, fill=fill)

    async def _record(self, order_id: str, fill: Fill) -> None:
        assert self._path is not None  # noqa: S101  (start() ran)
        line = msgspec.json.encode(_Entry(order_id=order_id, fill=fill)) + b"\n"
        async with self._lock:
            await asyncio.to_thread(_append_durably, self._path, line)
            self._ledger[order_id] = fill


def _append_durably(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
