"""`pumpportal` executor: PumpPortal-style local trades (POST /api/trade-local -> a transaction to sign).

The API answers with the raw serialized transaction (no lastValidBlockHeight): it is bounded by the
blockhash lifetime from the block height read after it arrived (`solana_swap.BLOCKHASH_WINDOW`).
Buys are denominated in SOL, sells in tokens; PumpPortal has no quote, so no price impact check is
possible before sending: the slippage tolerance (capped by the order's max_slippage_bps) is the guard.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from quantbot.api import ApprovedOrder, ExecutionReport, Outcome, RejectReason

from .solana_swap import Built, SolanaSwapConfig, SolanaSwapExecutor


class PumpPortalConfig(SolanaSwapConfig, frozen=True, kw_only=True):
    url: str = "https://pumpportal.fun/api/trade-local"
    slippage_pct: Annotated[int, msgspec.Meta(ge=0, le=100)] = 10
    """Slippage tolerance in percent; capped by the order's approved max_slippage_bps."""
    priority_fee_sol: Decimal = Decimal("0.00005")
    """Priority fee PumpPortal adds, in SOL (0 to 0.1)."""
    pool: str = "auto"
    """Which venue PumpPortal trades on: pump, raydium, pump-amm, launchlab, raydium-cpmm, bonk, auto."""
    token_decimals: Annotated[int, msgspec.Meta(ge=0, le=18)] = 6
    """Decimals of the tokens sold (pump.fun mints have 6); sells are sent in whole tokens."""

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.priority_fee_sol <= Decimal("0.1"):
            raise ValueError(f"priority_fee_sol must be between 0 and 0.1 SOL, not {self.priority_fee_sol}")


class PumpPortalExecutor(SolanaSwapExecutor):
    Config = PumpPortalConfig
    config: PumpPortalConfig

    async def build(self, order: ApprovedOrder) -> Built | ExecutionReport:
        assert self.http is not None  # noqa: S101  (started)
        c = self.config
        intent = order.intent
        slippage = c.slippage_pct
        if order.max_slippage_bps is not None:
            slippage = min(slippage, order.max_slippage_bps // 100)
        buy = intent.side == "buy"
        amount = Decimal(intent.amount).scaleb(-9 if buy else -c.token_decimals)
        body = {
            "publicKey": str(self.wallet),
            "action": intent.side,
            "mint": intent.token,
            "amount": str(amount),
            "denominatedInSol": "true" if buy else "false",
            "slippage": slippage,
            "priorityFee": str(c.priority_fee_sol),
            "pool": c.pool,
        }
        raw, content_type = await self.http.request("POST", c.url, json=body)
        if content_type.startswith(("application/json", "text/")):
            detail = raw[:200].decode(errors="replace")
            return ExecutionReport(outcome=Outcome.FAILED, reason=RejectReason.EXECUTOR_ERROR, detail=detail)
        return Built(raw=raw, last_valid_block_height=None)
