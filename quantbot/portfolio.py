"""Portfolio: positions per token from fills (average cost, realised and unrealised PnL), marks from
`price.update`, equity per chain with its history, and the real balances read through the executors.

A fill changes the position in the same store transaction that records the fill, so a crash can
never leave one without the other. Cost and PnL are integers in native base units (lamports,
octas); the average cost per token base unit is derived, never stored rounded. A position that
closes becomes a round trip of the strategy that opened it (what Kelly sizing learns from).
Balances are read at start and every `balance_interval_s`; a position the chain disagrees with (and
that no unfinished order explains) is set to the chain's figure, logged with the reason; units that vanished
are booked as a sale that brought in nothing (their average cost a realised loss; at 0 the round trip closes),
units that arrived are held at no cost (no SOL/APT was spent on them: their sale is all gain), without lowering
what was paid per unit bought, the entry price the exits measure from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import structlog

from quantbot.api import NATIVE_TOKEN, Executor, PriceView
from quantbot.assets import normalise
from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock
from quantbot.config import OrdersConfig, PortfolioConfig
from quantbot.events import EquityUpdate, Event, PositionCorrected, PositionUpdate, PriceUpdate
from quantbot.store import EquityRow, PositionRow, RoundTrip, Store
from quantbot.store.writer import WriteBehind

log = structlog.get_logger(component="portfolio")

NATIVE_DECIMALS = {"solana": 9, "aptos": 8}
DEFERRED_RETRY_S = 30.0
"""After a balance read was not adopted (an order under way), the next read comes this much later."""


@dataclass
class Position:
    chain: str
    token: str
    quantity: int = 0
    cost_native: int = 0
    realised_pnl_native: int = 0
    opened_at: datetime | None = None
    strategy: str = ""
    leader: str | None = None
    trip_cost: int = 0
    """Native spent on buys since the position opened (the round trip's cost)."""
    trip_proceeds: int = 0
    """Native received from sells since it opened."""
    free_quantity: int = 0
    """The part of `quantity` that came in for nothing (received outside quantbot): held at no cost."""

    @property
    def open(self) -> bool:
        return self.quantity > 0

    def avg_cost(self) -> Decimal:
        """Native base units paid per token base unit bought: the entry price the exits measure from. Units that
        came in for nothing are left out (they cost nothing, but make what was bought no cheaper)."""
        bought = self.quantity - self.free_quantity
        return Decimal(self.cost_native) / bought if bought > 0 else Decimal(0)

    def buy(self, *, spent: int, received: int, at: datetime, strategy: str = "", leader: str | None = None) -> None:
        if not self.open:
            self.opened_at = at
            self.strategy = strategy
            self.leader = leader
            self.trip_cost = self.trip_proceeds = self.free_quantity = 0
        self.quantity += received
        self.cost_native += spent
        self.trip_cost += spent

    def sell(self, *, sold: int, received: int) -> int:
        """Apply a sale; return the realised PnL of it (native base units)."""
        sold = min(sold, self.quantity)  # never below zero: a chain correction reconciles the rest
        self.trip_proceeds += received
        if sold <= 0:
            self.realised_pnl_native += received
            return received
        cost_out = self.cost_native * sold // self.quantity
        # the units sold take their share of the free ones too (rounded up: what is left is never all free while
        # some of it was paid for), so what was paid per unit bought stays as it was
        free_out = -(-self.free_quantity * sold // self.quantity)
        pnl = received - cost_out
        self.quantity -= sold
        self.cost_native -= cost_out
        self.free_quantity -= free_out
        self.realised_pnl_native += pnl
        if self.quantity == 0:
            self.cost_native = self.free_quantity = 0
        return pnl

    def receive(self, units: int) -> None:
        """Units that came in for nothing (an airdrop, a transfer in): held at no cost, so that their sale realises
        what it brings in, as the round trip counts it; the position's cost and the trip's stay what was spent."""
        self.quantity += units
        self.free_quantity += units

    def value(self, mark: Decimal | None) -> int:
        """Native base units at the mark (at cost without one)."""
        return int(self.quantity * mark) if mark is not None else self.cost_native


class Portfolio:
    name = "portfolio"

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        bus: EventBus | None = None,
        executors: Mapping[str, Executor] | None = None,
        routes: OrdersConfig | None = None,
        prices: PriceView | None = None,
        config: PortfolioConfig | None = None,
        writer: WriteBehind | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.bus = bus
        self.executors = executors or {}
        self.routes = routes or OrdersConfig()
        self.prices = prices
        self.config = config or PortfolioConfig()
        self.writer = writer
        self.positions: dict[tuple[str, str], Position] = {}
        self.marks: dict[tuple[str, str], Decimal] = {}
        self.native: dict[str, int] = {}
        """Native balance per chain: last read from the venue, moved by fills since."""
        self.day_start: dict[str, tuple[str, int]] = {}
        """Chain -> (UTC day, equity at the first figure of that day)."""
        self._equity: dict[str, int] = {}
        self._open: set[tuple[str, str]] | None = None
        """Caches the risk engine reads per intent; `_dirty()` drops them on every change."""
        self._last_equity: datetime | None = None
        self._last_balances: datetime | None = None
        self._fills_booked = 0
        """Fills applied so far (a balance read that a fill overtook is not adopted)."""
        self._undo: list[tuple[tuple[str, str], Position | None]] | None = None
        self._undo_native: list[tuple[str, int]] | None = None
        """While `booking()` runs: the changes to put back if its transaction does not commit."""
        self.corrections = 0

    async def start(self) -> None:
        await self._load_positions()
        now = self.clock.now()
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
        for chain in NATIVE_DECIMALS:
            start = await self.store.day_start_equity(chain, midnight)
            if start is not None:
                self.day_start[chain] = (midnight.date().isoformat(), start)
        if self.bus is not None:
            self.bus.subscribe("price.update", self._on_price, name="portfolio.prices", overflow=Overflow.DROP_OLDEST)
            self.bus.subscribe("clock.tick", self._on_tick, name="portfolio.tick", overflow=Overflow.DROP_OLDEST)
        if self.executors:
            await self.sync_balances()
            await self.record_equity()

    async def stop(self) -> None:
        pass

    async def _load_positions(self) -> None:
        """Positions from the store, keyed by their token's canonical spelling. Rows an older version stored under
        another spelling (the strategy's) are stored again under it, and two spellings of one asset become one
        position (quantities, costs and PnL added up), in one transaction, so a later start finds them done."""
        groups: dict[tuple[str, str], list[PositionRow]] = {}
        for row in await self.store.positions():
            groups.setdefault((row.chain, normalise(row.chain, row.token)), []).append(row)
        for (chain, token), rows in groups.items():
            pos = self.positions[(chain, token)] = _merged(chain, token, rows)
            respelled = [r.token for r in rows if r.token != token]
            if respelled:
                async with self.store.transaction():
                    await self._persist(pos, self.clock.now())
                    for old in respelled:
                        await self.store.delete_position(chain, old)
                log.warning("portfolio.position_respelled", chain=chain, token=token, stored_as=respelled)

    def position(self, chain: str, token: str) -> Position:
        token = normalise(chain, token)
        return self.positions.get((chain, token)) or Position(chain=chain, token=token)

    def open_positions(self) -> int:
        return len(self.open_keys())

    def open_keys(self) -> set[tuple[str, str]]:
        if self._open is None:
            self._open = {k for k, p in self.positions.items() if p.open}
        return self._open

    def _dirty(self) -> None:
        self._equity.clear()
        self._open = None

    def exposure(self, chain: str, token: str) -> int:
        """Native base units at cost in this token."""
        return self.position(chain, token).cost_native

    # --- fills -------------------------------------------------------------------------------------

    async def apply_fill(
        self,
        *,
        chain: str,
        token: str,
        side: str,
        amount_in: int,
        amount_out: int,
        fee: int = 0,
        strategy: str = "",
        leader: str | None = None,
    ) -> PositionUpdate:
        """Update and persist the position (call inside the transaction that records the fill).

        `fee` is the network fee in native base units: part of a buy's cost, out of a sell's proceeds.
        """
        token = normalise(chain, token)  # approved orders name it so; one an older version journaled may not
        key = (chain, token)
        self._will_change(key)
        pos = self.positions.setdefault(key, Position(chain=chain, token=token))
        now = self.clock.now()
        self._dirty()
        self._fills_booked += 1
        if side == "buy":
            spent = amount_in + fee
            pos.buy(spent=spent, received=amount_out, at=now, strategy=strategy, leader=leader)
            self._add_native(chain, -spent)
        else:
            received = amount_out - fee
            pnl = pos.sell(sold=amount_in, received=received)
            self._add_native(chain, received)
            log.info("position.realised", chain=chain, token=token, pnl_native=pnl)
            if not pos.open:
                await self._close(pos, now)
        await self._persist(pos, now)
        return self._update(pos)

    def _will_change(self, key: tuple[str, str]) -> None:
        """Inside booking(): note the position as it is, to put back if the transaction does not commit."""
        if self._undo is not None:
            before = self.positions.get(key)
            self._undo.append((key, None if before is None else dataclasses.replace(before)))

    def _add_native(self, chain: str, delta: int) -> None:
        if chain in self.native:
            self.native[chain] += delta
            if self._undo_native is not None:
                self._undo_native.append((chain, delta))

    @contextlib.asynccontextmanager
    async def booking(self) -> AsyncIterator[None]:
        """The store transaction that books fills (`apply_fill`) and chain corrections. If it does not commit, the
        positions and native balances it changed in memory are put back: the fill is not in the store, so the order
        stays unsettled and settling it later must not count it a second time."""
        undo: list[tuple[tuple[str, str], Position | None]] = []
        undo_native: list[tuple[str, int]] = []
        try:
            async with self.store.transaction():  # one at a time: the store serialises its transactions
                self._undo, self._undo_native = undo, undo_native
                yield
        except BaseException:
            for key, before in reversed(undo):
                if before is None:
                    self.positions.pop(key, None)
                else:  # in place: whoever holds the Position object sees it put back
                    vars(self.positions.setdefault(key, before)).update(vars(before))
            for chain, delta in undo_native:
                self.native[chain] -= delta
            self._dirty()
            raise
        finally:
            self._undo = self._undo_native = None

    def charge_fee(self, chain: str, fee: int) -> None:
        """A network fee paid by a transaction that landed without executing (no fill carries it): out of the
        chain's native balance now, rather than at the next balance read."""
        if chain in self.native:
            self.native[chain] -= fee
        self._fills_booked += 1  # a balance read under way may predate it
        self._dirty()

    async def _close(self, pos: Position, now: datetime) -> None:
        trip = RoundTrip(
            id=uuid.uuid4().hex,
            strategy=pos.strategy,
            chain=pos.chain,
            token=pos.token,
            opened_at=pos.opened_at,
            closed_at=now,
            cost_native=pos.trip_cost,
            proceeds_native=pos.trip_proceeds,
        )
        await self.store.record_round_trip(trip)
        log.info("position.closed", chain=pos.chain, token=pos.token, strategy=pos.strategy, pnl_native=trip.pnl_native)
        pos.opened_at = None
        pos.trip_cost = pos.trip_proceeds = 0

    async def _persist(self, pos: Position, now: datetime) -> None:
        await self.store.put_position(
            PositionRow(
                chain=pos.chain,
                token=pos.token,
                quantity=pos.quantity,
                cost_native=pos.cost_native,
                realised_pnl_native=pos.realised_pnl_native,
                opened_at=pos.opened_at,
                updated_at=now,
                strategy=pos.strategy,
                leader=pos.leader,
                trip_cost=pos.trip_cost,
                trip_proceeds=pos.trip_proceeds,
                free_quantity=pos.free_quantity,
            )
        )

    def _update(self, pos: Position) -> PositionUpdate:
        mark = self.mark(pos.chain, pos.token)
        unrealised = self.unrealised_pnl(pos.chain, pos.token) if mark is not None else None
        return PositionUpdate(
            chain=pos.chain,  # type: ignore[arg-type]
            token=pos.token,
            quantity=pos.quantity,
            avg_cost_native=pos.avg_cost(),
            realised_pnl_native=Decimal(pos.realised_pnl_native),
            mark_native=mark,
            unrealised_pnl_native=None if unrealised is None else Decimal(unrealised),
            realised_pnl_usd=self.to_usd(pos.chain, pos.realised_pnl_native),
            unrealised_pnl_usd=None if unrealised is None else self.to_usd(pos.chain, unrealised),
        )

    # --- marks and equity --------------------------------------------------------------------------

    async def _on_price(self, event: Event) -> None:
        assert isinstance(event, PriceUpdate)  # noqa: S101  (the subscription guarantees it)
        self.marks[(event.chain, event.token)] = event.price_native
        self._equity.pop(event.chain, None)

    def mark(self, chain: str, token: str) -> Decimal | None:
        return self.marks.get((chain, token))

    def unrealised_pnl(self, chain: str, token: str) -> int:
        """Native base units: the position at its mark less its cost (0 without a mark)."""
        pos = self.position(chain, token)
        mark = self.mark(chain, token)
        return pos.value(mark) - pos.cost_native if pos.open and mark is not None else 0

    def to_usd(self, chain: str, native: int) -> Decimal | None:
        usd = self.prices.usd_per_native(chain) if self.prices is not None else None
        return None if usd is None else Decimal(native).scaleb(-NATIVE_DECIMALS[chain]) * usd

    def equity_native(self, chain: str) -> int | None:
        """Native balance plus every open position of the chain at its mark; None until a balance is read."""
        if chain not in self.native:
            return None
        cached = self._equity.get(chain)
        if cached is None:
            held = sum(
                p.value(self.mark(chain, p.token)) for p in self.positions.values() if p.chain == chain and p.open
            )
            cached = self._equity[chain] = self.native[chain] + held
        return cached

    async def record_equity(self) -> None:
        """One equity row per chain (and the day's first as its daily snapshot); publish `portfolio.equity`."""
        now = self.clock.now()
        self._last_equity = now
        day = now.date().isoformat()
        for chain in sorted(self.native):
            equity = self.equity_native(chain)
            if equity is None:
                continue
            usd = self.to_usd(chain, equity)
            rows = [EquityRow(chain=chain, kind="interval", at=now, equity_native=equity, equity_usd=usd)]
            if self.day_start.get(chain, ("", 0))[0] != day:
                self.day_start[chain] = (day, equity)
                rows.append(EquityRow(chain=chain, kind="daily", at=now, equity_native=equity, equity_usd=usd))
            for row in rows:
                if self.writer is not None:
                    self.writer.enqueue(functools.partial(Store.put_equity, row=row))
                else:
                    await self.store.put_equity(row)
            if self.bus is not None:
                chain_positions = [p for p in self.positions.values() if p.chain == chain]
                await self.bus.publish(
                    EquityUpdate(
                        chain=chain,  # type: ignore[arg-type]
                        equity_native=equity,
                        day_start_native=self.day_start[chain][1],
                        unrealised_pnl_native=sum(self.unrealised_pnl(chain, p.token) for p in chain_positions),
                        realised_pnl_native=sum(p.realised_pnl_native for p in chain_positions),
                        equity_usd=usd,
                    )
                )

    async def _on_tick(self, event: Event) -> None:
        now = self.clock.now()
        if self.executors and self._due(self._last_balances, self.config.balance_interval_s, now):
            await self.sync_balances()
        if self._due(self._last_equity, self.config.equity_interval_s, now):
            await self.record_equity()

    @staticmethod
    def _due(last: datetime | None, interval: float, now: datetime) -> bool:
        return last is None or now - last >= timedelta(seconds=interval)

    # --- balances from the chain -------------------------------------------------------------------

    async def read_balances(self, chain: str) -> Mapping[str, int] | None:
        """The first answer among the chain's configured executors (None if none can tell)."""
        held = sorted(p.token for p in self.positions.values() if p.chain == chain and p.open)
        for name in getattr(self.routes, chain):
            executor = self.executors.get(name)
            if executor is None:
                continue
            try:
                # an executor written before balances() took the held tokens is still asked, without them
                takes_tokens = bool(inspect.signature(executor.balances).parameters)
                answer = await (executor.balances(held) if takes_tokens else executor.balances())
            except Exception as exc:
                log.warning("portfolio.balances_failed", chain=chain, executor=name, exc_info=exc)
                continue
            if answer is not None:
                return _by_canonical_name(chain, answer)
        return None

    async def sync_balances(self) -> int:
        """Read real balances; adopt the native figure unless an order of that chain is under way; correct
        disagreeing positions not being traded. A read that a fill overtook is not used. Returns corrections."""
        self._last_balances = self.clock.now()
        fixed = 0
        for chain in NATIVE_DECIMALS:
            busy, settling = await self._trading(chain)
            booked = self._fills_booked
            balances = await self.read_balances(chain)
            if balances is None:
                continue
            overtaken = booked != self._fills_booked  # the read may predate a fill booked meanwhile
            busy_after, settling_after = await self._trading(chain)  # orders placed during the read
            busy |= busy_after
            if chain in self.native and (settling or settling_after or overtaken):
                # An order under way may be in the read but not yet booked (or booked but not in it): adopting
                # the figure would count its SOL/APT twice, or not at all, until the next read (enough to trip
                # the drawdown breaker). Our own book stands until then; with no book yet, the read is all we have.
                log.debug("portfolio.native_sync_deferred", chain=chain, trading=sorted(busy), overtaken=overtaken)
                interval = self.config.balance_interval_s
                if interval > DEFERRED_RETRY_S:  # try again soon rather than a whole interval later
                    self._last_balances = self.clock.now() - timedelta(seconds=interval - DEFERRED_RETRY_S)
            else:
                self.native[chain] = int(balances.get(NATIVE_TOKEN[chain], 0))
                self._dirty()
            if overtaken:
                continue  # nor can it tell a position that the fill changed is wrong
            for pos in [p for p in self.positions.values() if p.chain == chain and p.open]:
                on_chain = int(balances.get(pos.token, 0))
                if on_chain != pos.quantity and pos.token not in busy:
                    await self._correct(pos, on_chain)
                    fixed += 1
        return fixed

    async def _trading(self, chain: str) -> tuple[set[str], bool]:
        """Tokens of `chain` with an unfinished order, and whether one of those will be settled (its executor
        runs: one that left the config never books a fill, so it must not freeze the native figure)."""
        rows = [r for r in await self.store.unfinished_orders() if r.chain == chain]
        return {normalise(chain, r.token) for r in rows}, any(r.executor in self.executors for r in rows)

    async def _correct(self, pos: Position, on_chain: int) -> None:
        recorded = pos.quantity
        if on_chain < recorded:
            reason = f"chain holds {on_chain} < recorded {recorded}: sold or moved outside quantbot"
        else:
            reason = f"chain holds {on_chain} > recorded {recorded}: received outside quantbot (taken at no cost)"
        log.warning("portfolio.position_corrected", chain=pos.chain, token=pos.token, reason=reason)
        # not in the store: booking() puts the position back, so the next read corrects it again
        async with self.booking():
            self._will_change((pos.chain, pos.token))
            await self._book_correction(pos, on_chain)
        self.corrections += 1
        if self.bus is not None:
            await self.bus.publish(
                PositionCorrected(
                    chain=pos.chain,  # type: ignore[arg-type]
                    token=pos.token,
                    recorded=recorded,
                    on_chain=on_chain,
                    reason=reason,
                )
            )
            await self.bus.publish(self._update(pos))

    async def _book_correction(self, pos: Position, on_chain: int) -> None:
        """Set `pos` to the chain's figure and persist it (call inside booking())."""
        now = self.clock.now()
        if on_chain < pos.quantity:
            # What vanished (rugged, drained, sold or moved elsewhere) is a sale that brought in nothing:
            # its share of the cost is a realised loss, and at 0 the round trip closes, as after a sell.
            pnl = pos.sell(sold=pos.quantity - on_chain, received=0)
            log.info("position.realised", chain=pos.chain, token=pos.token, pnl_native=pnl, reason="corrected")
            if not pos.open:
                await self._close(pos, now)
        else:
            # No SOL/APT went out for them: at average cost they would carry a cost nobody paid, which their sale
            # would count against its proceeds (a realised PnL below the round trip's, and below the truth).
            pos.receive(on_chain - pos.quantity)
        self._dirty()
        await self._persist(pos, now)


_NEVER = datetime.max.replace(tzinfo=UTC)


def _merged(chain: str, token: str, rows: list[PositionRow]) -> Position:
    """One position from the rows of one asset (more than one only when an older version stored it under several
    spellings): what they hold, cost and realised adds up; the earliest opened open one names the opening strategy."""
    open_rows = sorted((r for r in rows if r.quantity > 0), key=lambda r: r.opened_at or _NEVER)
    first = (open_rows or rows)[0]
    return Position(
        chain=chain,
        token=token,
        quantity=sum(r.quantity for r in rows),
        cost_native=sum(r.cost_native for r in rows),
        realised_pnl_native=sum(r.realised_pnl_native for r in rows),
        opened_at=first.opened_at if open_rows else None,
        strategy=first.strategy,
        leader=first.leader,
        trip_cost=sum(r.cost_native if r.trip_cost is None else r.trip_cost for r in rows),
        trip_proceeds=sum(r.trip_proceeds for r in rows),
        free_quantity=sum(r.free_quantity for r in rows),
    )


def _by_canonical_name(chain: str, balances: Mapping[str, int]) -> Mapping[str, int]:
    """A balance read keyed as positions are (an executor may answer in the spelling its config or the chain's API
    uses). Where two keys name one asset, the one already canonical stands: it was read as that asset."""
    out: dict[str, int] = {}
    for asset, amount in balances.items():
        name = normalise(chain, asset)
        if name == asset or name not in out:
            out[name] = amount
    return out
