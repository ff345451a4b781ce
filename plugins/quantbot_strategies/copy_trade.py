"""copy_trade: copy listed leader wallets' swaps on Solana and Aptos, and mirror their sells.

A leader's buy (native in, token out, seen as `chain.<chain>.swap`) becomes a buy of `copy_pct`% of
what the leader spent, capped per trade (`max_buy`) and by what this leader's open copies may hold
(`max_open`); a buy older than `max_age_s` or older than the leader's later sell is not copied. A
leader's sell of a fraction of the holding we watched it build sells the same fraction of what this
strategy bought for it (reduce-only; counted from its own `order.filled` events); the share it sells
while our copy of its buy is in flight is sold when the copy fills. `pause_after` copies in a row that
failed, or were refused for what the leader trades (`LEADER_VERDICTS`), pause the leader's buys for
`pause_s` (its sells are still mirrored). The books (with the ids of the leaders' recent swaps) are
saved in the plugin's data directory after every change and loaded at start, so sells after a restart
are still mirrored and a swap published again is ignored; intent ids derive from the leader and its
transaction, so the risk engine refuses a copy made twice. Holdings never exceed the portfolio's
position (`position.update`): an exit rule selling them shrinks what is mirrored.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import cast

from quantbot.api import (
    Event,
    OrderApproved,
    OrderExpired,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    PluginConfig,
    PositionUpdate,
    RejectReason,
    Strategy,
    StrategyContext,
    Swap,
)
from quantbot_strategies._common import NATIVE_ASSETS, Bounded, ChainName, StateError
from quantbot_strategies._copy_config import CopyTradeConfig, Leader, normal_address
from quantbot_strategies._copy_state import STATE_FILE, Holding, Key, load, save

__all__ = ["CopyTrade", "CopyTradeConfig", "Leader"]

HUNDRED = Decimal(100)
SAVED_SWAPS = 1_000
"""How many of the leaders' most recent swaps are saved as applied: far more than the watchers publish again
after a restart (what came after their last stored cursor), at about 20 bytes each."""
LEADER_VERDICTS = frozenset(
    {
        RejectReason.MAX_ORDER_USD,
        RejectReason.MAX_ORDER_NATIVE,
        RejectReason.NO_USD_PRICE,
        RejectReason.NO_PRICE,
        RejectReason.MIN_LIQUIDITY,
        RejectReason.PRICE_IMPACT,
    }
)
"""Refusals that count as failed copies: about what the leader trades (sizes over our caps, tokens nothing can
price, pools too thin), so its next copies would likely be refused alike. The others are about our own book or
pace (cooldown, recent duplicate, rate limit, exposure, drawdown, halt, a block list, our slippage setting) and
would pause a good leader for what another trade or the clock caused."""


@dataclass(frozen=True)
class Copy:
    """One of our intents, remembered until its order ends."""

    leader: tuple[str, str]
    token: str
    side: str
    amount: int
    tx: str
    """The leader's transaction it copies or mirrors."""
    kept: Fraction = Fraction(1)
    """A buy's share the leader still holds: its sells while the buy is in flight are sold once it fills."""


class CopyTrade(Strategy):
    """Leaders' swaps in, proportional copies out; its own order results keep the books."""

    Config = CopyTradeConfig
    config: CopyTradeConfig

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        limit = self.config.max_tokens
        self._leaders: dict[tuple[str, str], Leader] = {}
        self._leader_holds: Bounded[Key, int] = Bounded(limit)
        self._own: Bounded[Key, Holding] = Bounded(limit)
        self._copies: Bounded[str, Copy] = Bounded(limit)
        self._order_ids: Bounded[str, str] = Bounded(limit)
        self._seen: Bounded[str, None] = Bounded(limit)
        self._last_sell_slot: Bounded[Key, int] = Bounded(limit)
        self._failures: dict[tuple[str, str], int] = {}
        self._paused_until: dict[tuple[str, str], datetime] = {}
        self.skipped = 0
        self._index()

    def _index(self) -> None:
        self._leaders = {(x.chain, normal_address(x.chain, x.address)): x for x in self.config.leaders}
        for b in (self._leader_holds, self._own, self._copies, self._order_ids, self._seen, self._last_sell_slot):
            b.limit = self.config.max_tokens

    def reconfigure(self, config: PluginConfig) -> None:
        super().reconfigure(config)
        self._index()

    async def start(self) -> None:
        """Load the holdings saved by the previous run, so sells after a restart are still mirrored."""
        if self._env is None:
            return
        try:
            books = await load(self._env.data_dir / STATE_FILE)
        except StateError as exc:
            self.log.error("copy_trade.state_unreadable", error=str(exc))
            return
        for key, held in books.leaders.items():
            self._leader_holds[key] = held
        for key, holding in books.own.items():
            self._own[key] = holding
        for swap_id in books.applied:
            self._seen[swap_id] = None
        self.log.info("copy_trade.state_loaded", leaders=len(books.leaders), holdings=len(books.own))

    async def _save(self) -> None:
        if self._env is None:
            return
        try:
            recent = itertools.islice(reversed(self._seen), SAVED_SWAPS)
            await save(self._env.data_dir / STATE_FILE, self._leader_holds, self._own, reversed(list(recent)))
        except OSError as exc:
            self.log.error("copy_trade.state_not_saved", error=str(exc))

    def topics(self) -> tuple[str, ...]:
        return (
            "chain.*.swap",
            "order.approved",
            "order.rejected",
            "order.filled",
            "order.failed",
            "order.expired",
            "position.update",
        )

    def paused(self, chain: str, address: str, now: datetime) -> bool:
        """Whether the leader's buys are paused at `now` (a pause that has run out is lifted here)."""
        key = (chain, normal_address(chain, address))
        until = self._paused_until.get(key)
        if until is None:
            return False
        if now < until:
            return True
        del self._paused_until[key]
        self.log.info("copy_trade.leader_resumed", chain=chain, leader=address)
        return False

    def holding(self, chain: str, address: str, token: str) -> Holding:
        """What this strategy holds of `token` from copying that leader (empty when nothing)."""
        return self._own.get((chain, normal_address(chain, address), token)) or Holding()

    async def on_event(self, event: Event, ctx: StrategyContext) -> None:
        if isinstance(event, Swap):
            if await self._on_swap(event, ctx):
                await self._save()
        elif isinstance(event, OrderApproved):
            if event.intent.intent_id in self._copies:
                self._order_ids[event.order_id] = event.intent.intent_id
        elif isinstance(event, OrderRejected):
            copy = self._copies.pop(event.intent.intent_id, None)
            if copy is not None:
                self._release(copy)
                if event.reason in LEADER_VERDICTS:
                    self._failed(copy, ctx.clock.now(), f"rejected: {event.reason.value}")
        elif isinstance(event, OrderFilled):
            copy = self._end(event.order_id)
            if copy is not None:
                self._filled(copy, event)
                if copy.side == "buy" and copy.kept < 1:
                    await self._sell_what_the_leader_sold(copy, event, ctx)
                await self._save()
        elif isinstance(event, PositionUpdate):
            if self._clamp(event):
                await self._save()
        elif isinstance(event, OrderFailed | OrderExpired):
            copy = self._end(event.order_id)
            if copy is not None:
                self._release(copy)
                if isinstance(event, OrderFailed):
                    self._failed(copy, ctx.clock.now(), f"failed: {event.reason}")

    # --- the leader's trades ---------------------------------------------------------------------

    async def _on_swap(self, swap: Swap, ctx: StrategyContext) -> bool:
        """Act on a leader's swap; True when it changed what is saved."""
        lkey = (swap.chain, normal_address(swap.chain, swap.wallet))
        leader = self._leaders.get(lkey)
        if leader is None:
            return False
        seen = _swap_id(swap, lkey[1])
        if seen in self._seen:
            return False  # the same swap delivered twice (or again after a restart) must not count twice
        self._seen[seen] = None
        native = NATIVE_ASSETS[swap.chain]
        if swap.mint_in in native and swap.mint_out not in native:
            return await self._on_buy(leader, lkey, swap, ctx)
        if swap.mint_out in native and swap.mint_in not in native:
            hkey = (*lkey, swap.mint_in)
            self._last_sell_slot[hkey] = max(swap.slot, self._last_sell_slot.get(hkey, swap.slot))
            await self._mirror_sell(leader, lkey, swap, ctx)
            return True
        self.skipped += 1
        self.log.debug("copy_trade.not_a_native_trade", leader=swap.wallet, tx=swap.tx)
        return False

    async def _on_buy(self, leader: Leader, lkey: tuple[str, str], swap: Swap, ctx: StrategyContext) -> bool:
        """Count a leader's buy in its holding and copy it unless it is stale; True when the books changed.

        A buy at or before a slot where the leader sold that token came out of order: its sell was applied
        already, so the buy is neither counted nor copied. A buy older than `max_age_s` (a backfill after
        downtime) is counted (later sells scale by the leader's real holding) but not copied at today's price.
        A swap without a block time is taken as fresh. Sells are mirrored whatever their age or order: they
        only reduce what we hold.
        """
        hkey = (*lkey, swap.mint_out)
        last_sell = self._last_sell_slot.get(hkey)
        if last_sell is not None and swap.slot <= last_sell:
            self._skip(swap, "after the leader's later sell", slot=swap.slot, sell_slot=last_sell)
            return False
        self._set_leader_held(hkey, self._leader_held(hkey) + swap.amount_out)
        now = ctx.clock.now()
        age = (now - swap.block_time).total_seconds() if swap.block_time is not None else 0.0
        if age > self.config.max_age_s:
            self._skip(swap, "older than max_age_s", age_s=round(age))
        else:
            await self._copy_buy(leader, lkey, swap, ctx)
        return True

    def _skip(self, swap: Swap, why: str, **details: object) -> None:
        self.skipped += 1
        self.log.info("copy_trade.skipped", leader=swap.wallet, token=swap.mint_out, tx=swap.tx, why=why, **details)

    async def _copy_buy(self, leader: Leader, lkey: tuple[str, str], swap: Swap, ctx: StrategyContext) -> None:
        if self.paused(swap.chain, swap.wallet, ctx.clock.now()):
            self.skipped += 1
            self.log.info("copy_trade.skipped", leader=swap.wallet, token=swap.mint_out, why="leader paused")
            return
        pct = leader.copy_pct if leader.copy_pct is not None else self.config.copy_pct
        amount = int((swap.amount_in * pct / HUNDRED).to_integral_value(ROUND_FLOOR))
        if leader.max_buy is not None:
            amount = min(amount, leader.max_buy)
        token = swap.mint_out
        if leader.max_open is not None:
            open_spent = sum(h.spent for k, h in self._own.items() if k[:2] == lkey)
            amount = min(amount, leader.max_open - open_spent)
        if amount <= 0 or amount < self.config.min_buy:
            self.skipped += 1
            self.log.info("copy_trade.skipped", leader=swap.wallet, token=token, why="below min_buy or at max_open")
            return
        intent_id = _intent_id(ctx.strategy_id, lkey, swap.tx, "buy")
        self._holding((*lkey, token)).spent += amount
        self._copies[intent_id] = Copy(leader=lkey, token=token, side="buy", amount=amount, tx=swap.tx)
        await ctx.submit(
            OrderIntent(
                chain=swap.chain,
                intent_id=intent_id,
                strategy=ctx.strategy_id,
                side="buy",
                token=token,
                amount=amount,
                price_native=Decimal(swap.amount_in) / swap.amount_out if swap.amount_out else None,
                leader=swap.wallet if self.config.leader_exit else None,
                leader_amount=swap.amount_in,
                max_slippage_bps=self.config.max_slippage_bps,
                reason=f"copy {pct}% of {leader.label or swap.wallet} buy {swap.tx}",
            )
        )
        self.log.info("copy_trade.buy", leader=swap.wallet, token=token, amount=amount, leader_spent=swap.amount_in)

    async def _mirror_sell(self, leader: Leader, lkey: tuple[str, str], swap: Swap, ctx: StrategyContext) -> None:
        token = swap.mint_in
        hkey = (*lkey, token)
        before = self._leader_held(hkey)
        after = max(0, before - swap.amount_in)
        self._set_leader_held(hkey, after)
        if before > 0:
            self._scale_buys_in_flight(hkey, Fraction(after, before))
        held = self._own.get(hkey)
        if held is None or held.quantity - held.selling <= 0:
            return
        if before <= 0:
            self.skipped += 1
            self.log.warning("copy_trade.sell_unmatched", leader=swap.wallet, token=token, tx=swap.tx)
            return
        available = held.quantity - held.selling
        # Of what is not already being sold: an earlier mirrored sell in flight took its share.
        quantity = available if after == 0 else available * swap.amount_in // before
        fraction = min(Decimal(1), Decimal(swap.amount_in) / before)
        await self._sell(
            ctx,
            hkey,
            quantity,
            tx=swap.tx,
            intent_id=_intent_id(ctx.strategy_id, lkey, swap.tx, "sell"),
            price_native=Decimal(swap.amount_out) / swap.amount_in if swap.amount_in else None,
            reason=f"mirror {fraction:.2%} sell by {leader.label or swap.wallet} {swap.tx}",
        )

    def _scale_buys_in_flight(self, key: Key, kept: Fraction) -> None:
        """The leader kept `kept` of its holding: so much of our buys of it still in flight is kept once filled."""
        buys = [i for i, c in self._copies.items() if c.side == "buy" and (*c.leader, c.token) == key]
        for intent_id in buys:
            copy = self._copies[intent_id]
            self._copies[intent_id] = replace(copy, kept=copy.kept * kept)

    async def _sell_what_the_leader_sold(self, buy: Copy, fill: OrderFilled, ctx: StrategyContext) -> None:
        """The leader sold while our copy was in flight: sell the share it sold of what the copy bought (all we
        hold when the leader holds none now)."""
        key = (*buy.leader, buy.token)
        held = self._own.get(key)
        if held is None:
            return
        available = held.quantity - held.selling
        gone = self._leader_held(key) <= 0
        quantity = available if gone else min(available, int(fill.amount_out * (1 - buy.kept)))
        await self._sell(
            ctx,
            key,
            quantity,
            tx=buy.tx,
            intent_id=_intent_id(ctx.strategy_id, buy.leader, buy.tx, "sell-after-fill"),
            price_native=Decimal(fill.amount_in) / fill.amount_out if fill.amount_out else None,
            reason=f"mirror {float(1 - buy.kept):.2%} sold by {buy.leader[1]} while our copy {buy.tx} was in flight",
        )

    async def _sell(
        self,
        ctx: StrategyContext,
        key: Key,
        quantity: int,
        *,
        tx: str,
        intent_id: str,
        price_native: Decimal | None,
        reason: str,
    ) -> None:
        """Submit a reduce-only sell of `quantity` of our holding `key` (nothing when it is not positive)."""
        if quantity <= 0:
            return
        chain, leader, token = key
        self._own[key].selling += quantity
        self._copies[intent_id] = Copy(leader=(chain, leader), token=token, side="sell", amount=quantity, tx=tx)
        await ctx.submit(
            OrderIntent(
                chain=cast(ChainName, chain),  # the keys are built from the leaders' swaps' chains
                intent_id=intent_id,
                strategy=ctx.strategy_id,
                side="sell",
                token=token,
                amount=quantity,
                price_native=price_native,
                reduce_only=True,
                max_slippage_bps=self.config.max_slippage_bps,
                reason=reason,
            )
        )
        self.log.info("copy_trade.sell", leader=leader, token=token, quantity=quantity, intent_id=intent_id)

    # --- our own orders --------------------------------------------------------------------------

    def _leader_held(self, key: Key) -> int:
        held = self._own.get(key)
        return held.leader_held if held is not None else self._leader_holds.get(key, 0)

    def _set_leader_held(self, key: Key, value: int) -> None:
        held = self._own.get(key)
        if held is not None:
            held.leader_held = value
        elif value > 0:
            self._leader_holds[key] = value
        else:
            self._leader_holds.pop(key, None)

    def _holding(self, key: Key) -> Holding:
        """Our holding of the leader's token, opened (adopting the leader's watched holding) if new."""
        held = self._own.get(key)
        if held is None:
            held = self._own[key] = Holding(leader_held=self._leader_holds.pop(key, 0))
        return held

    def _drop(self, key: Key) -> None:
        held = self._own.pop(key, None)
        if held is not None and held.leader_held > 0:
            self._leader_holds[key] = held.leader_held

    def _end(self, order_id: str) -> Copy | None:
        intent_id = self._order_ids.pop(order_id, None)
        return self._copies.pop(intent_id, None) if intent_id is not None else None

    def _filled(self, copy: Copy, fill: OrderFilled) -> None:
        key = (*copy.leader, copy.token)
        held = self._holding(key)
        self._failures.pop(copy.leader, None)
        if copy.side == "buy":
            held.quantity += fill.amount_out
            held.spent += fill.amount_in - copy.amount  # the real spend replaces the reservation
        else:
            sold = min(fill.amount_in, held.quantity)
            held.spent -= held.spent * sold // held.quantity if held.quantity else held.spent
            held.quantity -= sold
            held.selling = max(0, held.selling - copy.amount)
        if held.quantity <= 0 and held.selling <= 0 and held.spent <= 0:
            self._drop(key)
        else:
            self._own[key] = held  # most recently used: the last to be forgotten

    def _clamp(self, pos: PositionUpdate) -> bool:
        """Never count more of a token than the portfolio holds: another strategy's sell, an exit rule
        or a chain correction may have sold what our copies bought (scaled down alike per leader)."""
        keys = [k for k in self._own if k[0] == pos.chain and k[2] == pos.token]
        total = sum(self._own[k].quantity for k in keys)
        if total <= pos.quantity:
            return False
        for k in keys:
            held = self._own[k]
            kept = held.quantity * max(0, pos.quantity) // total
            self.log.info("copy_trade.holding_reduced", leader=k[1], token=pos.token, was=held.quantity, now=kept)
            held.spent = held.spent * kept // held.quantity if held.quantity else held.spent
            held.quantity = kept
            held.selling = min(held.selling, kept)
        return True

    def _release(self, copy: Copy) -> None:
        """Give back what an order that ended unfilled held (a buy's spend, a sell's quantity)."""
        key = (*copy.leader, copy.token)
        held = self._own.get(key)
        if held is None:
            return
        if copy.side == "buy":
            held.spent = max(0, held.spent - copy.amount)
        else:
            held.selling = max(0, held.selling - copy.amount)
        if held.quantity <= 0 and held.selling <= 0 and held.spent <= 0:
            self._drop(key)

    def _failed(self, copy: Copy, now: datetime, why: str) -> None:
        n = self._failures.get(copy.leader, 0) + 1
        self._failures[copy.leader] = n
        self.log.info("copy_trade.copy_failed", leader=copy.leader[1], token=copy.token, why=why, in_a_row=n)
        if n >= self.config.pause_after:
            until = now + timedelta(seconds=self.config.pause_s)
            self._paused_until[copy.leader] = until
            self._failures[copy.leader] = 0
            self.log.warning(
                "copy_trade.leader_paused",
                chain=copy.leader[0],
                leader=copy.leader[1],
                failures=n,
                until=until.isoformat(),
            )


def _intent_id(strategy: str, leader: tuple[str, str], tx: str, side: str) -> str:
    """Derived from the leader's transaction (a replay is refused as a duplicate) and the leader's address:
    two leaders trading in one transaction are two copies."""
    chain, address = leader
    return f"{strategy}-{chain}-{tx}-{address}-{side}"


def _swap_id(swap: Swap, leader: str) -> str:
    """A short, fixed-size id of the leader's swap (saved by the thousand, so not the 200-character key)."""
    key = "|".join((swap.chain, leader, swap.tx, swap.mint_in, swap.mint_out))
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
