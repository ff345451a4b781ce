"""PriceBook: token prices in native base units (and USD) from swaps, reserves and HTTP sources.

Prices are native base units (lamports, octas) per token base unit, like OrderIntent.price_native;
USD prices are USD per token base unit. Sources: observed swaps (VWAP over `vwap_window_s`, else the
last trade), pump.fun bonding curves and pool vaults (AccountUpdate), and configured HTTP sources.
Every price carries its source and age; prices older than `max_age_s` are never used; sources
are reconciled by quantbot.price_quorum (median outliers dropped and counted; two that disagree
give no price). With no fresh USD price for SOL/APT, USD answers are None (fail closed).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import OrderedDict
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

import aiohttp
import structlog

from quantbot.assets import NATIVE_DECIMALS, is_native, is_quote, normalise, stable
from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock
from quantbot.config import PricesConfig
from quantbot.events import AccountUpdate, Event, PositionUpdate, PriceUpdate, Swap, Tick, TokenLaunch
from quantbot.price_quorum import Asked, Candidate, Observation, Observations
from quantbot.price_sources import NATIVE_ID, HttpSource, SourceError, SourceQuote
from quantbot.reserves import ReserveWatches, bonding_curve_address
from quantbot.store import Store

log = structlog.get_logger(component="prices")

POOL_RECORD = "prices.pool_vaults"
"""Store record kind: "chain:mint" -> [base vault, quote vault] of a held token (a restart keeps pricing it)."""
MAX_TOKENS = 20_000
"""Tokens the book remembers (least recently observed forgotten first, held tokens never)."""


class AccountWatcher(Protocol):
    """What the PriceBook needs from a chain watcher: AccountUpdate events for chosen accounts."""

    def watch_account(self, pubkey: str) -> Awaitable[None] | None: ...

    def unwatch_account(self, pubkey: str) -> Awaitable[None] | None: ...


@dataclass(frozen=True, slots=True)
class Price:
    """A fresh price: `native` per token base unit, `usd` per token base unit (None without USD)."""

    chain: str
    token: str
    native: Decimal
    usd: Decimal | None
    source: str
    observed_at: datetime
    age: float
    """Seconds between observation and the question."""


class PriceBook:
    name = "prices"

    def __init__(
        self,
        *,
        bus: EventBus,
        clock: Clock,
        config: PricesConfig,
        watcher: AccountWatcher | None = None,
        session: aiohttp.ClientSession | None = None,
        store: Store | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.config = config
        self.watcher = watcher
        self._session = session
        self.store = store
        """Where open positions are read at start (a restart learns held tokens before any fill)."""
        self._own_session = session is None
        self.sources: list[HttpSource] = []
        self._tokens: OrderedDict[tuple[str, str], Observations] = OrderedDict()
        self._native: dict[str, Observations] = {c: Observations() for c in NATIVE_DECIMALS}
        self._reserves = ReserveWatches()
        self._held: set[tuple[str, str]] = set()
        self._tracked: set[tuple[str, str]] = set()
        self._pending: set[tuple[str, str]] = set()
        self._pools: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        """(chain, mint) -> its pool's (base vault, quote vault), from `token.launch`; the last `pool_memory`."""
        self._tasks: list[asyncio.Task[None]] = []
        self.outliers: dict[str, int] = {}
        self.disagreements = 0
        self.stale_refused = 0
        self.bad_input = 0
        self.source_errors: dict[str, int] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.store is not None:
            async for key, payload in self.store.records(POOL_RECORD):
                try:
                    chain, _, mint = key.partition(":")
                    base, quote = json.loads(payload)
                    self._pools[(chain, mint)] = (str(base), str(quote))
                except (ValueError, TypeError) as exc:
                    self.bad_input += 1
                    log.warning("prices.bad_pool_record", key=key, error=f"{type(exc).__name__}: {exc}")
            for row in await self.store.positions():
                if row.quantity > 0:
                    await self._hold(row.chain, row.token)
        if self.config.sources:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            self.sources = [HttpSource(config=c, session=self._session, clock=self.clock) for c in self.config.sources]
            for c in self.config.sources:
                if c.kind == "jupiter" and c.api_key is None:
                    log.warning("prices.source_without_key", source=c.kind, fix="set api_key (portal.jup.ag)")
        self.bus.subscribe("chain.*.swap", self._on_event, name="prices.swaps", overflow=Overflow.DROP_OLDEST)
        self.bus.subscribe("chain.*.account", self._on_event, name="prices.accounts", overflow=Overflow.DROP_OLDEST)
        self.bus.subscribe(["position.update", "clock.tick"], self._on_event, name="prices.control")
        self.bus.subscribe("token.launch", self._on_event, name="prices.launches", overflow=Overflow.DROP_OLDEST)
        loop = asyncio.get_running_loop()
        for src in self.sources:
            self._tasks.append(loop.create_task(self._poll(src), name=f"quantbot[prices].poll_{src.name}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # --- the interface other parts call ----------------------------------------------------------

    def price_native(self, chain: str, token: str) -> Decimal | None:
        """Native base units per token base unit, fresh only, else None."""
        q = self.quote(chain, token)
        return q.native if q is not None else None

    def usd_per_native(self, chain: str) -> Decimal | None:
        """Fresh USD per one whole SOL / APT, else None."""
        best = self._best(chain, self._native.get(chain), field="usd")
        return best[1] if best is not None else None

    def quote(self, chain: str, token: str) -> Price | None:
        """The fresh price of `token` with its source, observation time and age; None if none is fresh."""
        token = normalise(chain, token)
        if is_native(chain, token):
            return None
        entry = self._tokens.get((chain, token))
        best = self._best(chain, entry, field="native")
        if best is None:
            return None
        source, native, at = best
        usd_native = self.usd_per_native(chain)
        usd = native * usd_native / (Decimal(10) ** NATIVE_DECIMALS[chain]) if usd_native is not None else None
        age = (self.clock.now() - at).total_seconds()
        return Price(chain=chain, token=token, native=native, usd=usd, source=source, observed_at=at, age=age)

    async def track(
        self,
        chain: str,
        token: str,
        *,
        curve: str | None = None,
        vaults: Sequence[str] = (),
        decimals: int | None = None,
    ) -> None:
        """Price `token` from its pump.fun curve and/or pool vaults (watched through the AccountWatcher)."""
        key = (chain, normalise(chain, token))
        self._tracked.add(key)
        entry = self._entry(key)
        if decimals is not None:
            entry.decimals = decimals
        if curve:
            await self._watch(curve, chain=chain, token=key[1], kind="curve")
        for vault in vaults:
            await self._watch(vault, chain=chain, token=key[1], kind="vault")

    async def untrack(self, chain: str, token: str) -> None:
        key = (chain, normalise(chain, token))
        self._tracked.discard(key)
        for account in self._reserves.accounts_of(*key):
            await self._unwatch(account)

    def stats(self) -> dict[str, object]:
        return {
            "tokens": len(self._tokens),
            "watched_accounts": len(self._reserves),
            "outliers_dropped": dict(self.outliers),
            "disagreements": self.disagreements,
            "stale_refused": self.stale_refused,
            "bad_input": self.bad_input,
            "source_errors": dict(self.source_errors),
        }

    # --- events ----------------------------------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        try:
            if isinstance(event, Swap):
                await self.observe_swap(event)
            elif isinstance(event, AccountUpdate):
                await self.observe_account(event)
            elif isinstance(event, PositionUpdate):
                await self._on_position(event)
            elif isinstance(event, Tick):
                await self._publish_pending()
            elif isinstance(event, TokenLaunch):
                await self._on_launch(event)
        except (ArithmeticError, ValueError, KeyError) as exc:
            self.bad_input += 1
            log.warning("prices.bad_input", topic=event.topic, error=f"{type(exc).__name__}: {exc}")

    async def observe_swap(self, swap: Swap) -> None:
        chain = swap.chain
        mint_in, mint_out = normalise(chain, swap.mint_in), normalise(chain, swap.mint_out)
        at = swap.block_time or self.clock.now()
        if swap.amount_in <= 0 or swap.amount_out <= 0:
            return
        if is_native(chain, mint_in) != is_native(chain, mint_out):
            native_amt, token, token_amt, dec = (
                (swap.amount_in, mint_out, swap.amount_out, swap.decimals_out)
                if is_native(chain, mint_in)
                else (swap.amount_out, mint_in, swap.amount_in, swap.decimals_in)
            )
            if native_amt < self.config.min_trade_native:
                return
            usd_coin = stable(chain, token)
            if usd_coin is not None:  # native <-> stable: the USD price of SOL / APT
                whole_usd = Decimal(token_amt).scaleb(-usd_coin.decimals)
                whole_native = Decimal(native_amt).scaleb(-NATIVE_DECIMALS[chain])
                await self._add_trade(self._native[chain], at, whole_native, whole_usd, native_book=True)
                self._best(chain, self._native[chain], field="usd", count=True)
                return
            key = (chain, token)
            entry = self._entry(key)
            if dec is not None:
                entry.decimals = dec
            await self._add_trade(entry, at, Decimal(native_amt), Decimal(token_amt), key=key)
            return
        for usd_mint, usd_amt, token, token_amt, dec in (
            (mint_in, swap.amount_in, mint_out, swap.amount_out, swap.decimals_out),
            (mint_out, swap.amount_out, mint_in, swap.amount_in, swap.decimals_in),
        ):
            coin = stable(chain, usd_mint)
            if coin is None or is_quote(chain, token):
                continue
            # A stablecoin-quoted trade (USDC pump.fun coins): last trade only, in USD per base unit.
            key = (chain, token)
            entry = self._entry(key)
            if dec is not None:
                entry.decimals = dec
            entry.put("swap_usd", Observation(at=at, usd=Decimal(usd_amt).scaleb(-coin.decimals) / token_amt))
            await self._changed(key)

    async def _add_trade(
        self,
        entry: Observations,
        at: datetime,
        native_amt: Decimal,
        other_amt: Decimal,
        *,
        key: tuple[str, str] | None = None,
        native_book: bool = False,
    ) -> None:
        horizon = self.clock.now().timestamp() - self.config.vwap_window_s
        if native_book:  # USD per whole native coin
            latest, vwap = entry.add_trade(at, other_amt, native_amt, horizon=horizon)
            entry.put("swap", Observation(at=latest, usd=vwap))
        else:
            latest, vwap = entry.add_trade(at, native_amt, other_amt, horizon=horizon)
            entry.put("swap", Observation(at=latest, native=vwap))
        if key is not None:
            await self._changed(key)

    async def observe_account(self, update: AccountUpdate) -> None:
        seen = self._reserves.observe(update.account, update.owner, update.data, at=self.clock.now())
        if seen is None:
            return
        watch, ob = seen
        key = (watch.chain, watch.token)
        entry = self._entry(key)
        source = "curve" if watch.kind == "curve" else "pool"
        if ob is not None:
            entry.put(source, ob)
        elif watch.kind == "curve":  # complete: the coin left its curve (migrating to an AMM)
            entry.drop(source)
            log.info("prices.curve_complete", token=watch.token, account=update.account)
            await self._unwatch(update.account)
            if key in self._held:
                await self._watch_pool(key)  # the pool takes over, if its launch was seen
            return
        await self._changed(key)

    async def _on_position(self, event: PositionUpdate) -> None:
        key = (event.chain, normalise(event.chain, event.token))
        if event.quantity > 0:
            await self._hold(*key)
        elif key in self._held:
            self._held.discard(key)
            if key not in self._tracked:
                for account in self._reserves.accounts_of(*key):
                    await self._unwatch(account)
            if key in self._pools and self.store is not None:
                await self.store.delete_record(POOL_RECORD, f"{key[0]}:{key[1]}")

    async def _hold(self, chain: str, token: str) -> None:
        """A held token: priced by every source, by its pump.fun curve on Solana and by its pool's vaults
        when its pool launch was seen."""
        key = (chain, normalise(chain, token))
        if key in self._held:
            return
        self._held.add(key)
        self._entry(key)
        if chain == "solana" and key not in self._tracked and self.watcher is not None:
            await self._watch(bonding_curve_address(key[1]), chain="solana", token=key[1], kind="curve")
        await self._watch_pool(key)

    async def _on_launch(self, launch: TokenLaunch) -> None:
        """Remember a new pool's vaults (bounded: the last `pool_memory` launches); watch them if held."""
        if launch.chain != "solana" or not launch.base_vault or not launch.quote_vault:
            return
        key = (launch.chain, normalise(launch.chain, launch.mint))
        self._pools[key] = (launch.base_vault, launch.quote_vault)
        self._pools.move_to_end(key)
        while len(self._pools) > self.config.pool_memory:
            self._pools.popitem(last=False)
        if key in self._held:
            await self._watch_pool(key)

    async def _watch_pool(self, key: tuple[str, str]) -> None:
        """Watch both vaults of the held token's pool, when known (alongside its curve: the curve prices
        nothing once complete, and a pool does not exist before then for a pump.fun coin)."""
        vaults = self._pools.get(key)
        if vaults is None or self.watcher is None:
            return
        log.info("prices.pool_watched", chain=key[0], token=key[1], vaults=list(vaults))
        for vault in vaults:
            await self._watch(vault, chain=key[0], token=key[1], kind="vault")
        if self.store is not None:  # held: a restart must still know where this token's reserves are
            await self.store.put_record(POOL_RECORD, f"{key[0]}:{key[1]}", json.dumps(vaults), now=self.clock.now())

    def pool_vaults(self, chain: str, token: str) -> tuple[str, str] | None:
        """The (base, quote) vaults remembered for `token` from its pool launch, if any."""
        return self._pools.get((chain, normalise(chain, token)))

    # --- HTTP sources ----------------------------------------------------------------------------

    async def _poll(self, src: HttpSource) -> None:
        while True:
            for chain in src.chains():
                tokens = sorted({t for c, t in self._held | self._tracked if c == chain})
                try:
                    quotes = await src.fetch(chain, tokens)
                except SourceError as exc:
                    self.source_errors[src.name] = self.source_errors.get(src.name, 0) + 1
                    log.warning("prices.source_failed", source=src.name, chain=chain, error=str(exc))
                    continue
                await self.observe_quotes(src.name, quotes)
            await self.clock.sleep(src.config.poll_interval_s)

    async def observe_quotes(self, source: str, quotes: Iterable[SourceQuote]) -> None:
        now = self.clock.now()
        for q in quotes:
            if q.token == NATIVE_ID:
                if q.usd is not None:
                    self._native[q.chain].put(source, Observation(at=now, usd=q.usd))
                    self._best(q.chain, self._native[q.chain], field="usd", count=True)
                continue
            key = (q.chain, normalise(q.chain, q.token))
            entry = self._entry(key)
            if q.decimals is not None:
                entry.decimals = q.decimals
            nd = NATIVE_DECIMALS[q.chain]
            if entry.decimals is None:
                continue  # per-whole-token quotes cannot be compared without the token's decimals
            scale = Decimal(10) ** (nd - entry.decimals)
            native = q.native * scale if q.native is not None else None
            usd = q.usd.scaleb(-entry.decimals) if q.usd is not None else None
            entry.put(source, Observation(at=now, native=native, usd=usd))
            await self._changed(key)

    # --- consolidation and publishing ------------------------------------------------------------

    def _best(self, chain: str, entry: Observations | None, *, field: str, count: bool = False) -> Candidate | None:
        if entry is None or not entry.obs:
            return None
        usd_native = self.usd_per_native(chain) if field == "native" else None
        now = self.clock.now()
        config = self.config
        # A verdict depends on these alone (time only through which observations are fresh); it is asked
        # for several times per event, and again on later events until a source reports or goes stale.
        seen = entry.remembered
        if (
            seen is not None
            and seen.version == entry.version
            and seen.usd_native is usd_native  # the same object: an equal Decimal may have another exponent
            and seen.field == field
            and seen.config is config
            and (
                seen.now == now
                or (
                    now > seen.now  # (stale ones stay stale, fresh ones stay fresh while the oldest does)
                    and (seen.oldest_fresh is None or (now - seen.oldest_fresh).total_seconds() <= config.max_age_s)
                )
            )
        ):
            v = seen.verdict
        else:
            unit = usd_native.scaleb(-NATIVE_DECIMALS[chain]) if usd_native else None

            def value(ob: Observation) -> Decimal | None:
                if field == "usd":
                    return ob.usd
                if ob.native is None and ob.usd is not None and unit:
                    return ob.usd / unit
                return ob.native

            v = entry.verdict(now=now, max_age_s=config.max_age_s, max_dev=config.max_deviation_pct, value=value)
            oldest = entry.oldest_fresh(now, config.max_age_s)
            entry.remembered = Asked(now, oldest, entry.version, field, usd_native, config, v)
        if count:
            if v.stale:
                self.stale_refused += 1
            for source in v.dropped if v.best is not None else ():
                self.outliers[source] = self.outliers.get(source, 0) + 1
                log.info("prices.outlier_dropped", chain=chain, source=source)
            if v.best is None and v.dropped:
                self.disagreements += 1
                log.warning("prices.sources_disagree", chain=chain, sources=v.dropped)
        return v.best

    async def _changed(self, key: tuple[str, str]) -> None:
        entry = self._tokens.get(key)
        if entry is None:
            return
        self._tokens.move_to_end(key)
        best = self._best(key[0], entry, field="native", count=True)
        if best is None:
            return
        last = entry.published
        if last is not None and abs(best[1] - last) * 100 < last * self.config.publish_min_change_pct:
            return
        mono = self.clock.monotonic()
        if entry.published_at is not None and mono - entry.published_at < self.config.publish_min_interval_s:
            self._pending.add(key)
            return
        await self._publish(key, entry)

    async def _publish_pending(self) -> None:
        mono = self.clock.monotonic()
        for key in list(self._pending):
            entry = self._tokens.get(key)
            if entry is None:
                self._pending.discard(key)
            elif entry.published_at is None or mono - entry.published_at >= self.config.publish_min_interval_s:
                await self._publish(key, entry)

    async def _publish(self, key: tuple[str, str], entry: Observations) -> None:
        self._pending.discard(key)
        q = self.quote(*key)
        if q is None:
            return
        entry.published, entry.published_at = q.native, self.clock.monotonic()
        await self.bus.publish(
            PriceUpdate(
                chain=q.chain,  # type: ignore[arg-type]
                token=q.token,
                price_native=q.native,
                price_usd=q.usd,
                source=q.source,
                observed_at=q.observed_at,
            )
        )

    # --- bookkeeping -----------------------------------------------------------------------------

    def _entry(self, key: tuple[str, str]) -> Observations:
        entry = self._tokens.get(key)
        if entry is None:
            entry = self._tokens[key] = Observations()
            while len(self._tokens) > MAX_TOKENS:
                old = next(k for k in self._tokens if k not in self._held and k not in self._tracked and k != key)
                del self._tokens[old]
        return entry

    async def _watch(self, account: str, *, chain: str, token: str, kind: Literal["curve", "vault"]) -> None:
        if self._reserves.add(account, chain=chain, token=token, kind=kind) and self.watcher is not None:
            await _maybe_await(self.watcher.watch_account(account))

    async def _unwatch(self, account: str) -> None:
        if self._reserves.remove(account) and self.watcher is not None:
            await _maybe_await(self.watcher.unwatch_account(account))


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result
