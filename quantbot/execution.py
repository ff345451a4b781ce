"""What executors receive and return: an ApprovedOrder in, an ExecutionReport out.

An ApprovedOrder carries a seal (an HMAC under a key only the RiskEngine and the OrderRouter hold,
made fresh each run), so an order built anywhere else is refused before it reaches an executor.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from quantbot.events import OrderIntent, RejectReason


class ApprovedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An intent the RiskEngine approved, with its order id, idempotency key and executor chain."""

    order_id: str
    idempotency_key: str
    intent: OrderIntent
    executors: tuple[str, ...]
    approved_at: datetime
    seal: str = ""
    max_price_impact_bps: int | None = None
    """The executor refuses (FAILED, PRICE_IMPACT) when its real quote moves the price more than this."""
    max_slippage_bps: int | None = None
    """The slippage tolerance to send with (FAILED, SLIPPAGE if the venue needs more). None: no limit."""

    @property
    def chain(self) -> str:
        return self.intent.chain


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """What actually moved, in base units, read from the venue (never from a quote)."""

    tx: str
    amount_in: int
    amount_out: int
    fee: int = 0
    """The network fee the wallet paid for the transaction (lamports, octas: native base units), on top of
    `amount_in` / `amount_out`, which are the swap's own legs. A venue's fee taken inside the swap is
    already out of `amount_out`."""
    price_native: Decimal | None = None
    filled_at: datetime


class Outcome(enum.StrEnum):
    FILLED = "filled"
    SUBMITTED = "submitted"
    """Sent, landing not yet known: reconcile later, never re-send."""
    FAILED = "failed"
    """Provably did not and cannot execute."""
    EXPIRED = "expired"
    """Sent, and provably can no longer land (e.g. blockhash expired)."""
    NOT_SENT = "not_sent"
    """Reconcile only: the venue has no trace of it and it provably was never sent."""


class ExecutionReport(msgspec.Struct, frozen=True, kw_only=True):
    outcome: Outcome
    tx: str | None = None
    fill: Fill | None = None
    reason: RejectReason | Literal[""] = ""
    detail: str = ""
    fee: int = 0
    """FAILED with `tx` only: the network fee a transaction that landed without executing still cost the wallet
    (native base units; a FILLED report carries its fee in `fill`). Booked on the chain's native balance."""
