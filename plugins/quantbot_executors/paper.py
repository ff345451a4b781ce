"""`paper` executor: simulated fills at the current price (the daemon's PriceView when it has a fresh
one, else the intent's reference price), with slippage, a venue fee, a network fee and latency.

It records exactly what a live fill records, and keeps its own append-only ledger (one fsynced JSON
line per fill) so `reconcile` after a crash answers from what it really filled, and `balances`
answers from the starting balances plus every fill. Like a live executor it refuses (FAILED, nothing
sent) an order whose price impact (estimated from the pool reserves the intent carries) or
configured slippage exceeds the order's approved limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated

import msgspec

from quantbot.api import (
    NATIVE_TOKEN,
    ApprovedOrder,
    ExecutionReport,
    Executor,
    Fill,
    Outcome,
    PluginConfig,
    RejectReason,
    normalise_asset,
)

from .durable import DurableLog

BPS = Decimal(10_000)


class PaperConfig(PluginConfig, frozen=True, kw_only=True):
    slippage_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000, description="price moved against us, in bps")] = 50
    fee_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000, description="venue fee taken from the output, in bps")] = 25
    latency_ms: Annotated[int, msgspec.Meta(ge=0, description="simulated time from send to fill")] = 0
    network_fee: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            description="network fee per fill in native base units (lamports, octas), paid on top as on chain",
        ),
    ] = 5000
    balance_sol: Annotated[Decimal, msgspec.Meta(description="paper SOL the ledger starts with")] = Decimal(10)
    balance_apt: Annotated[Decimal, msgspec.Meta(description="paper APT the ledger starts with")] = Decimal(100)


class _Entry(msgspec.Struct, frozen=True):
    order_id: str
    fill: Fill
    chain: str = ""
    token: str = ""
    side: str = ""
    fee_native: bool = False
    """`fill.fee` is the network fee in native units (older lines held the venue fee, already out of the output)."""


class PaperExecutor(Executor):
    Config = PaperConfig
    config: PaperConfig
    live = False

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self._ledger: dict[str, Fill] = {}
        self._entries: list[_Entry] = []
        self._file: DurableLog[_Entry] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._file = DurableLog(
            self.env.data_dir / "paper-ledger.jsonl", _Entry, log=self.log, skipped="paper.ledger_line_skipped"
        )
        for entry in self._file.read():
            fill = entry.fill if entry.fee_native else msgspec.structs.replace(entry.fill, fee=0)
            self._ledger[entry.order_id] = fill  # an older line's fee was the venue's, already out of the output
            self._entries.append(entry)

    def price(self, order: ApprovedOrder) -> Decimal | None:
        """The current fresh price when the daemon has one, else the intent's reference price."""
        intent = order.intent
        prices = self.env.prices
        current = prices.price_native(intent.chain, intent.token) if prices is not None else None
        return current if current is not None else intent.price_native

    def refusal(self, order: ApprovedOrder) -> ExecutionReport | None:
        """Enforce the approved impact and slippage limits, as a live venue's quote would be checked."""
        intent = order.intent
        if order.max_slippage_bps is not None and self.config.slippage_bps > order.max_slippage_bps:
            detail = f"paper slippage {self.config.slippage_bps} bps > allowed {order.max_slippage_bps} bps"
            return ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.SLIPPAGE, detail=detail)
        reserve = intent.pool_liquidity_native if intent.side == "buy" else intent.pool_reserve_token
        if order.max_price_impact_bps is not None and reserve is not None and intent.amount > 0:
            impact = -(-intent.amount * 10_000 // (reserve + intent.amount))
            if impact > order.max_price_impact_bps:
                detail = f"quoted impact {impact} bps > allowed {order.max_price_impact_bps} bps"
                return ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.PRICE_IMPACT, detail=detail)
        return None

    def quote(self, order: ApprovedOrder) -> tuple[int, int] | None:
        """(amount_out, venue fee already taken out of it) at the current price, or None without one."""
        intent = order.intent
        price = self.price(order)
        if price is None or price <= 0:
            return None
        keep = (BPS - self.config.slippage_bps) / BPS
        gross = Decimal(intent.amount) / price if intent.side == "buy" else Decimal(intent.amount) * price
        gross = gross * keep
        fee = (gross * self.config.fee_bps / BPS).to_integral_value(ROUND_FLOOR)
        out = (gross - fee).to_integral_value(ROUND_FLOOR)
        return int(out), int(fee)

    async def execute(self, order: ApprovedOrder) -> ExecutionReport:
        refused = self.refusal(order)
        if refused is not None:
            return refused
        quoted = self.quote(order)
        if quoted is None:
            return ExecutionReport(
                outcome=Outcome.FAILED, reason=RejectReason.NO_PRICE, detail="paper fills need a reference price"
            )
        if self.config.latency_ms:
            await self.env.clock.sleep(self.config.latency_ms / 1000)
        out, _ = quoted
        fill = Fill(
            tx=f"paper-{order.order_id}",
            amount_in=order.intent.amount,
            amount_out=out,
            fee=self.config.network_fee,
            price_native=self.price(order),
            filled_at=self.env.clock.now(),
        )
        short = await self._record(order, fill)
        if short is not None:
            return ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.INSUFFICIENT_BALANCE, detail=short)
        return ExecutionReport(outcome=Outcome.FILLED, tx=fill.tx, fill=fill)

    def sent(self, order: ApprovedOrder) -> str | None:
        fill = self._ledger.get(order.order_id)
        return fill.tx if fill is not None else None

    async def reconcile(self, order: ApprovedOrder, tx: str | None) -> ExecutionReport:
        fill = self._ledger.get(order.order_id)
        if fill is None:
            return ExecutionReport(outcome=Outcome.NOT_SENT, detail="not in the paper ledger")
        return ExecutionReport(outcome=Outcome.FILLED, tx=fill.tx, fill=fill)

    async def balances(self, tokens: Collection[str] = ()) -> Mapping[str, int]:
        """Starting balances plus every fill in the ledger: native under NATIVE_TOKEN, tokens by mint."""
        return self._holdings()

    def _holdings(self) -> dict[str, int]:
        out: dict[str, int] = {
            NATIVE_TOKEN["solana"]: int(self.config.balance_sol.scaleb(9)),
            NATIVE_TOKEN["aptos"]: int(self.config.balance_apt.scaleb(8)),
        }
        for e in self._entries:
            if not e.chain:
                continue  # a ledger line from before balances were kept
            native = NATIVE_TOKEN[e.chain]
            token = normalise_asset(e.chain, e.token)  # a line an older version wrote may spell it otherwise
            spent, got = (native, token) if e.side == "buy" else (token, native)
            out[spent] = out.get(spent, 0) - e.fill.amount_in
            out[got] = out.get(got, 0) + e.fill.amount_out
            if e.fee_native:
                out[native] -= e.fill.fee
        return out

    async def _record(self, order: ApprovedOrder, fill: Fill) -> str | None:
        """Book the fill, or say why the paper wallet cannot pay for it (as the chain would refuse the swap)."""
        assert self._file is not None  # noqa: S101  (start() ran)
        i = order.intent
        entry = _Entry(order_id=order.order_id, fill=fill, chain=i.chain, token=i.token, side=i.side, fee_native=True)
        file = self._file

        async def write() -> str | None:
            async with self._lock:  # checked and booked together: two sells cannot both spend the same tokens
                held = self._holdings()
                native = NATIVE_TOKEN[i.chain]
                buy = i.side == "buy"
                token = normalise_asset(i.chain, i.token)  # as `_holdings` keys it
                need = {native: fill.amount_in + fill.fee} if buy else {token: fill.amount_in, native: fill.fee}
                for asset, amount in need.items():
                    if held.get(asset, 0) < amount:
                        return f"the paper wallet holds {held.get(asset, 0)} of {asset}, the swap needs {amount}"
                await file.append(entry)
                self._ledger[order.order_id] = fill
                self._entries.append(entry)
                return None

        # Shielded: a router timeout cancelling us mid-write must not leave the line on disk but not in memory
        # (the reconcile job would then call a filled order never sent).
        return await asyncio.shield(write())
