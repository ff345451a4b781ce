"""ExitManager: take-profit, stop-loss, trailing stop, max hold, follow-the-leader, rug warnings and
operator flatten.

Price and time rules are the global [exits] ones, or, for a position opened by a strategy with an
[exits.strategies.<id>] table, those with its keys laid over them.

Follow-the-leader: a `whale.signal` of kind large_sell or dump from the wallet whose trade opened a
position (the opening intent's `leader`) sells that position. A `token.rug_warning` for a held
token sells it.

Exits are reduce-only sell intents through the same RiskEngine (they pass while halted). One exit
per position is in flight at a time; at start, sells already open in the journal count as in
flight, so a restart never doubles an exit. `quantbot flatten` leaves a request in the store,
picked up on the next tick (or at start, if the daemon was down).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal

import msgspec
import structlog

from quantbot.assets import normalise
from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock
from quantbot.config import ExitsConfig
from quantbot.events import (
    Event,
    OrderExpired,
    OrderFailed,
    OrderFilled,
    OrderIntent,
    PositionUpdate,
    PriceUpdate,
    Tick,
    TokenRugWarning,
    WhaleSignal,
)
from quantbot.portfolio import Portfolio, Position
from quantbot.store import Store, StoreError

log = structlog.get_logger(component="exits")

FLATTEN_KIND = "command.flatten"
PEAK_KIND = "exits.peak"
"""The trailing-stop peak of an open position, `chain:token` -> {"peak", "opened_at"}: a restart keeps it."""
STRATEGY = "exits"
EXIT_ANSWER_S = 60.0
"""An exit intent neither approved nor rejected this long after it was published (the risk engine's handler cut
off, say) is released, unless the journal holds an unfinished sell of the token, so the next trigger can retry."""
UNPRICED_S = 300.0
"""A held token without a price this long is reported (`exits.unpriced`, and in `stats()`)."""
FLATTEN_GIVE_UP_S = 600.0
"""How long a flatten request keeps selling what it names before it is dropped (logged with what is left)."""
HUNDRED = Decimal(100)


async def request_flatten(store: Store, *, token: str | None, now: datetime) -> str:
    """Ask the daemon to sell every position (or one token's). Returns the request id."""
    request_id = uuid.uuid4().hex
    await store.put_record(FLATTEN_KIND, request_id, json.dumps({"token": token}), now=now)
    return request_id


class ExitManager:
    name = "exits"

    def __init__(self, *, bus: EventBus, store: Store, portfolio: Portfolio, rules: ExitsConfig, clock: Clock) -> None:
        self.bus = bus
        self.store = store
        self.portfolio = portfolio
        self.rules = rules
        self.clock = clock
        self.prices: dict[tuple[str, str], Decimal] = {}
        self.peaks: dict[tuple[str, str], Decimal] = {}
        """The highest price seen since the position opened; forgotten when it closes (a re-buy starts afresh)."""
        self._priced_at: dict[tuple[str, str], datetime] = {}
        """When each token's last price arrived: a held token without one has no price rule watching it."""
        self._unpriced: set[tuple[str, str]] = set()
        self._asked_at: dict[tuple[str, str], datetime] = {}
        """When each exit in flight was published (one never answered is released after EXIT_ANSWER_S)."""
        self._flattening: dict[str, datetime] = {}
        """Flatten requests under way, by record id: when they were first seen."""
        self.exiting: dict[tuple[str, str], str] = {}
        """Position -> intent id of the exit in flight."""
        self._by_intent: dict[str, tuple[str, str]] = {}
        self._order_to_key: dict[str, tuple[str, str]] = {}
        self._merged: dict[str, ExitsConfig] = {}

    async def start(self) -> None:
        await self._load_peaks()
        for row in await self.store.unfinished_orders():
            if row.side == "sell":
                key = (row.chain, normalise(row.chain, row.token))  # positions' spelling, whatever the row's
                self.exiting[key] = f"journal:{row.order_id}"
                self._order_to_key[row.order_id] = key
        self.bus.subscribe("price.update", self._on_price, name="exits.prices", overflow=Overflow.BLOCK)
        self.bus.subscribe("clock.tick", self._on_tick, name="exits.tick", overflow=Overflow.DROP_OLDEST)
        self.bus.subscribe("whale.signal", self._on_whale, name="exits.leaders", overflow=Overflow.BLOCK)
        self.bus.subscribe("token.rug_warning", self._on_rug, name="exits.rug", overflow=Overflow.BLOCK)
        self.bus.subscribe("position.update", self._on_position, name="exits.positions", overflow=Overflow.BLOCK)
        self.bus.subscribe(
            ["order.approved", "order.rejected", "order.filled", "order.failed", "order.expired"],
            self._on_order,
            name="exits.orders",
            overflow=Overflow.BLOCK,
        )
        await self._flatten_requests()

    async def stop(self) -> None:
        pass

    def set_rules(self, rules: ExitsConfig) -> None:
        self.rules = rules
        self._merged.clear()

    def rules_for(self, strategy: str) -> ExitsConfig:
        """The global rules with the opening strategy's own ([exits.strategies.<id>]) laid over them."""
        own = self.rules.strategies.get(strategy)
        if own is None:
            return self.rules
        merged = self._merged.get(strategy)
        if merged is None:
            changes = {k: v for k, v in msgspec.structs.asdict(own).items() if v is not None}
            merged = self._merged[strategy] = msgspec.structs.replace(self.rules, **changes)
        return merged

    # --- triggers --------------------------------------------------------------------------------

    async def _on_price(self, event: Event) -> None:
        assert isinstance(event, PriceUpdate)  # noqa: S101
        key = (event.chain, event.token)
        self.prices[key] = event.price_native
        self._priced_at[key] = self.clock.now()
        if key in self._unpriced:
            self._unpriced.discard(key)
            log.info("exits.priced_again", chain=key[0], token=key[1])
        pos = self.portfolio.positions.get(key)
        if pos is None or not pos.open:
            if self.peaks.pop(key, None) is not None:
                await self._forget_peak(key)
            return
        before = self.peaks.get(key)
        peak = event.price_native if before is None else max(before, event.price_native)
        self.peaks[key] = peak
        reason = self.trigger(pos, event.price_native, peak)
        if reason:
            await self.exit(pos, reason)
        if peak != before and self.rules_for(pos.strategy).trailing_stop_pct:
            await self._save_peak(pos, peak)

    async def _on_position(self, event: Event) -> None:
        assert isinstance(event, PositionUpdate)  # noqa: S101
        key = (event.chain, event.token)
        if event.quantity == 0 and self.peaks.pop(key, None) is not None:
            # closed: a position opened later must not inherit this one's peak
            await self._forget_peak(key)

    # --- trailing-stop peaks, kept across restarts -------------------------------------------------

    async def _load_peaks(self) -> None:
        """The peaks of the positions still open, as the last run left them; any other is deleted."""
        stale: list[str] = []
        respelled: list[Position] = []  # their peak was saved by an older version under another spelling
        async for record_key, payload in self.store.records(PEAK_KIND):
            chain, _, token = record_key.partition(":")
            key = (chain, normalise(chain, token))  # an older version saved it under the strategy's spelling
            pos = self.portfolio.positions.get(key)
            try:
                saved = json.loads(payload)
                peak = Decimal(saved["peak"])
                opened_at = datetime.fromisoformat(saved["opened_at"]) if saved.get("opened_at") else None
            except (ValueError, TypeError, KeyError, ArithmeticError):
                log.warning("exits.bad_peak_record", key=record_key)
                stale.append(record_key)
                continue
            if pos is None or not pos.open or opened_at != pos.opened_at:
                stale.append(record_key)  # that position closed (and maybe another opened) while we were away
                continue
            before = self.peaks.get(key)
            self.peaks[key] = peak if before is None else max(before, peak)
            if token != key[1]:  # kept under the positions' spelling from now on, where _save/_forget_peak look
                stale.append(record_key)
                respelled.append(pos)
        for pos in respelled:
            await self._save_peak(pos, self.peaks[(pos.chain, pos.token)])
        for record_key in stale:
            await self.store.delete_record(PEAK_KIND, record_key)

    async def _save_peak(self, pos: Position, peak: Decimal) -> None:
        opened_at = pos.opened_at.isoformat() if pos.opened_at is not None else None
        payload = json.dumps({"peak": str(peak), "opened_at": opened_at})
        try:
            await self.store.put_record(
                PEAK_KIND, f"{pos.chain}:{pos.token}", payload, now=self.clock.now(), synced=False
            )
        except StoreError as exc:  # the peak in memory still guards this run
            log.warning("exits.peak_not_saved", chain=pos.chain, token=pos.token, error=str(exc))

    async def _forget_peak(self, key: tuple[str, str]) -> None:
        try:
            await self.store.delete_record(PEAK_KIND, f"{key[0]}:{key[1]}")
        except StoreError as exc:  # deleted at the next start instead (its position is no longer open)
            log.warning("exits.peak_not_forgotten", chain=key[0], token=key[1], error=str(exc))

    def trigger(self, pos: Position, price: Decimal, peak: Decimal) -> str:
        """Which price rule, if any, says to sell now."""
        cost = pos.avg_cost()
        if cost <= 0:
            return ""
        change_pct = (price / cost - 1) * HUNDRED
        r = self.rules_for(pos.strategy)
        if r.stop_loss_pct and change_pct <= -r.stop_loss_pct:
            return "stop_loss"
        if r.take_profit_pct and change_pct >= r.take_profit_pct:
            return "take_profit"
        if r.trailing_stop_pct and peak > cost and price <= peak * (1 - r.trailing_stop_pct / HUNDRED):
            return "trailing_stop"
        return ""

    async def _on_whale(self, event: Event) -> None:
        assert isinstance(event, WhaleSignal)  # noqa: S101
        if not self.rules.follow_leader or event.kind not in ("large_sell", "dump"):
            return
        pos = self.portfolio.positions.get((event.chain, event.token))
        if pos is not None and pos.open and pos.leader and pos.leader in event.wallets:
            await self.exit(pos, "follow_leader")

    async def _on_rug(self, event: Event) -> None:
        assert isinstance(event, TokenRugWarning)  # noqa: S101
        pos = self.portfolio.positions.get((event.chain, event.token))
        if self.rules.rug_warning and pos is not None and pos.open:
            log.warning("exits.rug_warning", chain=event.chain, token=event.token, kind=event.kind)
            await self.exit(pos, "rug_warning")

    async def _on_tick(self, event: Event) -> None:
        assert isinstance(event, Tick)  # noqa: S101
        if self.rules.max_hold_s or self.rules.strategies:
            now = self.clock.now()
            for pos in list(self.portfolio.positions.values()):
                hold = self.rules_for(pos.strategy).max_hold_s
                if hold and pos.open and pos.opened_at and (now - pos.opened_at).total_seconds() >= hold:
                    await self.exit(pos, "max_hold")
        self._watch_unpriced()
        await self._release_unanswered()
        await self._flatten_requests()

    def _watch_unpriced(self) -> None:
        """Warn (once per silence) about a held token no price has reached for UNPRICED_S: its stop-loss, take-profit
        and trailing stop are not watching it (its sources disagree or went quiet); only max_hold and flatten are."""
        now = self.clock.now()
        for key, pos in self.portfolio.positions.items():
            if not pos.open or key in self._unpriced:
                continue
            since = self._priced_at.get(key) or pos.opened_at
            if since is not None and (now - since).total_seconds() >= UNPRICED_S:
                self._unpriced.add(key)
                log.warning(
                    "exits.unpriced", chain=key[0], token=key[1], since=since.isoformat(), quantity=pos.quantity
                )

    async def _release_unanswered(self) -> None:
        now = self.clock.now()
        approved = set(self._order_to_key.values())
        stale = [
            key
            for key, intent_id in self.exiting.items()
            if intent_id in self._by_intent
            and key not in approved
            and (now - self._asked_at.get(key, now)).total_seconds() >= EXIT_ANSWER_S
        ]
        if not stale:
            return
        journaled = {
            (r.chain, normalise(r.chain, r.token)) for r in await self.store.unfinished_orders() if r.side == "sell"
        }
        for key in stale:
            if key not in journaled:  # never journaled: nothing is selling it
                log.warning("exits.unanswered", chain=key[0], token=key[1], intent=self.exiting[key])
                self._release(key, self.exiting[key])

    async def _flatten_requests(self) -> None:
        """Sell what a `quantbot flatten` names, tick after tick, until it is all sold (a sell can fail: slippage, a
        node down) or FLATTEN_GIVE_UP_S has passed; then the request is consumed."""
        requests = [(key, payload) async for key, payload in self.store.records(FLATTEN_KIND)]
        now = self.clock.now()
        for request_id, payload in requests:
            token = json.loads(payload).get("token")
            targets = [
                p
                for p in self.portfolio.positions.values()
                if p.open and (token is None or normalise(p.chain, token) == p.token)
            ]
            if request_id not in self._flattening:
                self._flattening[request_id] = now
                log.warning("exits.flatten", request=request_id, token=token or "*", positions=len(targets))
            first = self._flattening[request_id]
            given_up = (now - first).total_seconds() >= FLATTEN_GIVE_UP_S
            if not targets or given_up:
                if targets:
                    log.error("exits.flatten_incomplete", request=request_id, left=[p.token for p in targets])
                await self.store.delete_record(FLATTEN_KIND, request_id)
                self._flattening.pop(request_id, None)
                continue
            for pos in targets:
                await self.exit(pos, "flatten")  # one in flight is left to finish

    # --- acting ----------------------------------------------------------------------------------

    async def exit(self, pos: Position, reason: str) -> None:
        """Submit one reduce-only sell of the whole position, unless one is already in flight."""
        key = (pos.chain, pos.token)
        if key in self.exiting or not pos.open:
            return
        intent_id = f"exit-{uuid.uuid4().hex}"
        self.exiting[key] = intent_id
        self._by_intent[intent_id] = key
        self._asked_at[key] = self.clock.now()
        log.info("exits.triggered", chain=pos.chain, token=pos.token, reason=reason, quantity=pos.quantity)
        await self.bus.publish(
            OrderIntent(
                chain=pos.chain,  # type: ignore[arg-type]
                intent_id=intent_id,
                strategy=STRATEGY,
                side="sell",
                token=pos.token,
                amount=pos.quantity,
                price_native=self.prices.get(key),
                reduce_only=True,
                reason=reason,
            )
        )

    async def _on_order(self, event: Event) -> None:
        """Track our exits: clear the in-flight mark when one ends, so a failed exit can be retried."""
        intent = getattr(event, "intent", None)
        if intent is not None and intent.intent_id in self._by_intent:
            key = self._by_intent[intent.intent_id]
            if event.topic == "order.rejected":
                self._release(key, intent.intent_id)
            else:
                self._order_to_key[event.order_id] = key  # type: ignore[attr-defined]
            return
        if isinstance(event, OrderFilled | OrderFailed | OrderExpired):
            key2 = self._order_to_key.pop(event.order_id, None)
            if key2 is not None:
                self._release(key2, self.exiting.get(key2, ""))

    def stats(self) -> dict[str, object]:
        return {"in_flight": len(self.exiting), "unpriced": sorted(f"{c}:{t}" for c, t in self._unpriced)}

    def _release(self, key: tuple[str, str], intent_id: str) -> None:
        self.exiting.pop(key, None)
        self._by_intent.pop(intent_id, None)
        self._asked_at.pop(key, None)
