"""`jupiter` executor: swaps through the Jupiter swap API (hosted https://api.jup.ag/swap/v1 or self-hosted).

GET /quote (mints, amount, slippage, route restrictions), refuse when the quoted price impact is
above the order's approved limit (FAILED, PRICE_IMPACT: nothing sent), POST /swap (wrap/unwrap SOL,
dynamic compute unit limit, priority fee capped), then sign, send and confirm (see solana_swap).
A swap whose simulation failed (a stale quote) is quoted again, never sent.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec

from quantbot.api import ApprovedOrder, ExecutionReport, Outcome, RejectReason, Secret

from .solana_swap import SOL, Built, Requote, SolanaSwapConfig, SolanaSwapExecutor, as_dict, b64

Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class JupiterConfig(SolanaSwapConfig, frozen=True, kw_only=True):
    base_url: str = "https://api.jup.ag/swap/v1"
    """The swap API root; a self-hosted Jupiter API answers the same paths."""
    api_key: Secret | None = None
    """Sent as the x-api-key header (the hosted API needs one)."""
    slippage_bps: Bps = 100
    """Slippage tolerance sent with the quote; capped by the order's approved max_slippage_bps."""
    dexes: tuple[str, ...] = ()
    """Only route through these DEX labels (empty: any)."""
    exclude_dexes: tuple[str, ...] = ()
    only_direct_routes: bool = False
    restrict_intermediate_tokens: bool = True
    max_accounts: Annotated[int, msgspec.Meta(ge=1, le=256)] = 64
    wrap_and_unwrap_sol: bool = True
    dynamic_compute_unit_limit: bool = True
    priority_fee_max_lamports: Annotated[int, msgspec.Meta(ge=0)] = 1_000_000
    """Cap on the priority fee Jupiter may set (lamports per swap)."""
    priority_level: Literal["medium", "high", "veryHigh"] = "veryHigh"


class JupiterExecutor(SolanaSwapExecutor):
    Config = JupiterConfig
    config: JupiterConfig

    def http_headers(self) -> dict[str, str]:
        key = self.config.api_key
        return {"x-api-key": key.reveal()} if key is not None else {}

    async def build(self, order: ApprovedOrder) -> Built | ExecutionReport:
        assert self.http is not None  # noqa: S101  (started)
        c = self.config
        intent = order.intent
        slippage = c.slippage_bps if order.max_slippage_bps is None else min(c.slippage_bps, order.max_slippage_bps)
        params = {
            "inputMint": SOL if intent.side == "buy" else intent.token,
            "outputMint": intent.token if intent.side == "buy" else SOL,
            "amount": str(intent.amount),
            "slippageBps": str(slippage),
            "swapMode": "ExactIn",
            "onlyDirectRoutes": _flag(c.only_direct_routes),
            "restrictIntermediateTokens": _flag(c.restrict_intermediate_tokens),
            "maxAccounts": str(c.max_accounts),
        }
        if c.dexes:
            params["dexes"] = ",".join(c.dexes)
        if c.exclude_dexes:
            params["excludeDexes"] = ",".join(c.exclude_dexes)
        base = c.base_url.rstrip("/")
        quote = as_dict(await self.http.json("GET", f"{base}/quote", params=params))
        impact_bps = _impact_bps(quote.get("priceImpactPct"))
        if impact_bps is None:
            return _failed(RejectReason.EXECUTOR_ERROR, "quote without a readable priceImpactPct")
        if order.max_price_impact_bps is not None and impact_bps > order.max_price_impact_bps:
            detail = f"quoted impact {impact_bps} bps > allowed {order.max_price_impact_bps} bps"
            return _failed(RejectReason.PRICE_IMPACT, detail)
        body = {
            "quoteResponse": quote,
            "userPublicKey": str(self.wallet),
            "wrapAndUnwrapSol": c.wrap_and_unwrap_sol,
            "dynamicComputeUnitLimit": c.dynamic_compute_unit_limit,
            "prioritizationFeeLamports": {
                "priorityLevelWithMaxLamports": {
                    "maxLamports": c.priority_fee_max_lamports,
                    "priorityLevel": c.priority_level,
                }
            },
        }
        swap = as_dict(await self.http.json("POST", f"{base}/swap", json=body))
        sim = swap.get("simulationError")
        if sim:
            self.log.info("jupiter.swap_simulation_failed", order_id=order.order_id, error=str(sim)[:200])
            raise Requote(f"swap simulation failed (stale quote): {str(sim)[:200]}")
        fee = swap.get("prioritizationFeeLamports")
        if isinstance(fee, int) and fee > c.priority_fee_max_lamports:
            return _failed(RejectReason.EXECUTOR_ERROR, f"priority fee {fee} lamports above the cap")
        try:
            raw = b64(str(swap["swapTransaction"]))
            last_valid = int(swap["lastValidBlockHeight"])
        except (KeyError, ValueError, TypeError):
            return _failed(RejectReason.EXECUTOR_ERROR, "swap answer without a transaction")
        return Built(raw=raw, last_valid_block_height=last_valid)


def _failed(reason: RejectReason, detail: str) -> ExecutionReport:
    return ExecutionReport(outcome=Outcome.FAILED, reason=reason, detail=detail)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _impact_bps(value: object) -> int | None:
    """Jupiter's priceImpactPct is a fraction as a string ("0.0123" = 1.23 %): -> bps, rounded up."""
    try:
        fraction = abs(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    if not fraction.is_finite():
        return None
    bps = fraction * 10_000
    return int(bps.to_integral_value(rounding="ROUND_CEILING"))
