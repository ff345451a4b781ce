"""Sizing: turn a buy intent's sizing hint into an amount of native base units (and value an intent
without a USD figure from the PriceView).

Methods: `fixed` (a set SOL/APT amount), `equity_pct` (a share of the chain's equity), `kelly` (a
capped fraction of the Kelly bet, from the strategy's own realised round trips once it has
`kelly_min_trades` of them, from the configured win rate and payoff before), and `copy` (a share of
what the leader spent). The rule is the strategy's own ([sizing.strategies.<id>]) or the global one.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_FLOOR, Decimal

import msgspec
import structlog

from quantbot.api import PriceView
from quantbot.config import SizingConfig, SizingRule
from quantbot.events import OrderIntent, RejectReason
from quantbot.store import Store

log = structlog.get_logger(component="risk")

NATIVE_DECIMALS = {"solana": 9, "aptos": 8}
HUNDRED = Decimal(100)


class SizingError(Exception):
    """The hint cannot be turned into an amount; the detail says why."""


class Incomplete(Exception):
    """An intent that cannot be sized or valued: refused with `reason`."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def kelly_fraction(win_rate: Decimal, payoff: Decimal, *, fraction: Decimal, cap_pct: Decimal) -> Decimal:
    """Share of equity to bet: `fraction` x Kelly (W - (1 - W) / R), never above `cap_pct` %, never below 0."""
    if payoff <= 0:
        return Decimal(0)
    full = win_rate - (1 - win_rate) / payoff
    return max(Decimal(0), min(full * fraction, cap_pct / HUNDRED))


class Sizer:
    name = "sizing"

    def __init__(self, *, config: SizingConfig, store: Store, equity: Callable[[str], int | None]) -> None:
        self.config = config
        self.store = store
        self.equity = equity

    def rule(self, strategy: str) -> SizingRule:
        return self.config.strategies.get(strategy, self.config)

    async def stats(self, strategy: str, rule: SizingRule) -> tuple[Decimal, Decimal, str]:
        """(win rate, payoff, where they came from): realised trips once there are enough, else config."""
        s = await self.store.trip_stats(strategy)
        if s.trips < rule.kelly_min_trades:
            return rule.kelly_win_rate, rule.kelly_payoff, f"config ({s.trips} of {rule.kelly_min_trades} trips)"
        win_rate = Decimal(s.wins) / s.trips
        losses = s.trips - s.wins
        if s.wins == 0:
            return win_rate, Decimal(0), f"{s.trips} trips, none won"
        if losses == 0 or s.lost_native == 0:
            return win_rate, Decimal(10**6), f"{s.trips} trips, none lost"
        payoff = (Decimal(s.won_native) / s.wins) / (Decimal(s.lost_native) / losses)
        return win_rate, payoff, f"{s.trips} realised trips"

    async def size(self, intent: OrderIntent) -> tuple[int, str]:
        """Native base units to spend, and how they were arrived at. Raises SizingError."""
        if intent.side != "buy":
            raise SizingError("only buys are sized; a sell names its amount")
        rule = self.rule(intent.strategy)
        method = intent.sizing or rule.method
        decimals = NATIVE_DECIMALS[intent.chain]
        if method == "fixed":
            whole = rule.fixed_sol if intent.chain == "solana" else rule.fixed_apt
            return _units(whole.scaleb(decimals)), f"fixed {whole}"
        if method == "copy":
            if not intent.leader_amount:
                raise SizingError("copy sizing needs the leader's amount (leader_amount)")
            return _units(intent.leader_amount * rule.copy_pct / HUNDRED), f"copy {rule.copy_pct}% of leader"
        equity = self.equity(intent.chain)
        if equity is None or equity <= 0:
            raise SizingError(f"{method} sizing needs the {intent.chain} equity, which is not known yet")
        if method == "equity_pct":
            pct = rule.equity_pct if intent.equity_pct is None else intent.equity_pct
            if not 0 < pct <= HUNDRED:
                raise SizingError(f"equity_pct must be in (0, 100], got {pct}")
            return _units(equity * pct / HUNDRED), f"{pct}% of equity {equity}"
        win_rate, payoff, source = await self.stats(intent.strategy, rule)
        share = kelly_fraction(win_rate, payoff, fraction=rule.kelly_fraction, cap_pct=rule.kelly_cap_pct)
        if share <= 0:
            raise SizingError(f"kelly: no edge (win rate {win_rate:.3f}, payoff {payoff:.3f}; {source})")
        return _units(equity * share), f"kelly {share:.4f} of equity ({source})"

    def set_config(self, config: SizingConfig) -> None:
        self.config = config

    def describe(self) -> dict[str, object]:
        return msgspec.to_builtins(self.config)  # type: ignore[no-any-return]


def _units(value: Decimal | int) -> int:
    return int(Decimal(value).to_integral_value(ROUND_FLOOR))


async def complete_intent(intent: OrderIntent, *, sizer: Sizer | None, prices: PriceView | None) -> OrderIntent:
    """Size a buy that carries a hint (or amount 0); value an intent without USD (or just sized) from the PriceView.

    Raises Incomplete (SIZING, NO_USD_PRICE): USD limits fail closed without a fresh price.
    """
    if intent.sizing is not None or (intent.side == "buy" and intent.amount == 0):
        if sizer is None:
            raise Incomplete(RejectReason.SIZING, "the intent carries a sizing hint but no sizer is configured")
        try:
            amount, how = await sizer.size(intent)
        except SizingError as exc:
            raise Incomplete(RejectReason.SIZING, str(exc)) from exc
        if amount <= 0:
            raise Incomplete(RejectReason.SIZING, f"sized to nothing ({how})")
        log.info("risk.sized", strategy=intent.strategy, token=intent.token, amount=amount, how=how)
        # A USD figure the strategy declared was for the amount it asked, not this one: value the sized order anew.
        intent = msgspec.structs.replace(intent, amount=amount, notional_usd=None)
    if intent.notional_usd is None and prices is not None:
        native = intent.amount
        if intent.side == "sell":
            price = prices.price_native(intent.chain, intent.token)
            if price is None:
                raise Incomplete(RejectReason.NO_USD_PRICE, f"no fresh price for {intent.token}; fail closed")
            native = int(intent.amount * price)
        usd = prices.usd_per_native(intent.chain)
        if usd is None:
            raise Incomplete(RejectReason.NO_USD_PRICE, f"no fresh USD price for {intent.chain}; fail closed")
        value = (Decimal(native).scaleb(-NATIVE_DECIMALS[intent.chain]) * usd).quantize(Decimal("0.000001"))
        intent = msgspec.structs.replace(intent, notional_usd=value)
    return intent
