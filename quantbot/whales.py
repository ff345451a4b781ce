"""WhaleTracker: profiles of big wallets from swaps and transfers, and `whale.signal` when they move.

A whale is a wallet on `[whales] wallets`, or (with `discover = true`) any wallet whose trade is worth
at least `discover_usd` (USD from the PriceBook) or, with no fresh USD price, `discover_sol/apt`.
Signals and their confidence: quantbot.whale_signals. Trade value counts in USD where the
PriceBook has a fresh SOL/APT price, else in native units.

Memory bound: watched wallets plus at most `max_auto_wallets` discovered ones (least recently
active forgotten first, after being saved), at most `max_tokens_per_wallet` holdings each;
accumulation and cluster windows only hold whales' buys and are pruned by event time.
Windows and signal freshness use the event's block time (else the Clock's now); a trade older
than `max_signal_age_s` (a backfill) updates profiles but never signals.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Protocol

import msgspec
import structlog

from quantbot.assets import NATIVE_DECIMALS, is_native, is_quote, normalise, stable
from quantbot.bus import EventBus
from quantbot.clock import Clock
from quantbot.config import WhalesConfig
from quantbot.events import Event, Swap, Transfer, WhaleSignal, encode
from quantbot.store import SignalRow, Store
from quantbot.store.wallet_trades import WalletTrade, put_wallet_trade
from quantbot.store.writer import WriteBehind
from quantbot.wallet_profiles import Profile
from quantbot.whale_signals import SignalRules, Trade, ratio

log = structlog.get_logger(component="whales")

WalletKey = tuple[str, str]


class PriceView(Protocol):
    """The part of the PriceBook the tracker reads."""

    def price_native(self, chain: str, token: str) -> Decimal | None: ...

    def usd_per_native(self, chain: str) -> Decimal | None: ...


class WhaleTracker:
    name = "whales"

    def __init__(
        self,
        *,
        bus: EventBus,
        clock: Clock,
        config: WhalesConfig,
        prices: PriceView | None = None,
        store: Store | None = None,
        writer: WriteBehind | None = None,
    ) -> None:
        self.bus = bus
        self.writer = writer
        """Signals are kept in the store's signals table through this write-behind queue (off the hot path)."""
        self.clock = clock
        self.config = config
        self.prices = prices
        self.store = store
        self._watched: dict[WalletKey, Profile] = {}
        for w in config.wallets:
            address = normalise(w.chain, w.address)
            self._watched[(w.chain, address)] = Profile(w.chain, address, label=w.label, watched=True)
        self._auto: OrderedDict[WalletKey, Profile] = OrderedDict()
        self._dirty: dict[WalletKey, Profile] = {}
        self.rules = SignalRules(config=config, usd_per_native=self._usd_native, quality_of=self._quality)
        self._task: asyncio.Task[None] | None = None
        self.counts: dict[str, int] = {
            "swaps": 0,
            "transfers": 0,
            "signals": 0,
            "bad_input": 0,
            "evicted": 0,
            "repeated_swaps": 0,
        }

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._load()
        self.bus.subscribe(["chain.*.swap", "chain.*.transfer"], self._on_event, name="whales.chain")
        self._task = asyncio.get_running_loop().create_task(self._housekeeping(), name="quantbot[whales].flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    # --- reading ---------------------------------------------------------------------------------

    def profile(self, chain: str, wallet: str) -> Profile | None:
        key = (chain, normalise(chain, wallet))
        return self._watched.get(key) or self._auto.get(key)

    def is_whale(self, chain: str, wallet: str) -> bool:
        return self.profile(chain, wallet) is not None

    def stats(self) -> dict[str, object]:
        return {
            **self.counts,
            "watched_wallets": len(self._watched),
            "discovered_wallets": len(self._auto),
            "unsaved_profiles": len(self._dirty),
            "accumulation_windows": len(self.rules.accumulation),
            "cluster_windows": len(self.rules.clusters),
        }

    # --- events ----------------------------------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        try:
            if isinstance(event, Swap):
                signals = self.observe_swap(event)
            elif isinstance(event, Transfer):
                self.observe_transfer(event)
                signals = []
            else:
                return
        except (ArithmeticError, ValueError, KeyError, TypeError) as exc:
            self.counts["bad_input"] += 1
            log.warning("whales.bad_input", topic=event.topic, error=f"{type(exc).__name__}: {exc}")
            return
        for s in signals:
            published = await self.bus.publish(s)
            if self.writer is not None and isinstance(published, WhaleSignal):
                self.writer.enqueue(partial(_keep_signal, row=_signal_row(published)))

    def observe_swap(self, swap: Swap) -> list[WhaleSignal]:
        """Update profiles from one swap; return the signals it fires (the handler publishes them)."""
        self.counts["swaps"] += 1
        if swap.amount_in < 0 or swap.amount_out < 0:
            raise ValueError(f"swap {swap.tx} has a negative amount")
        chain = swap.chain
        wallet = normalise(chain, swap.wallet)
        if not self.config.discover and (chain, wallet) not in self._watched and (chain, wallet) not in self._auto:
            return []  # not a whale and none is discovered: valuing the trade would change nothing
        trades = self._legs(
            chain, normalise(chain, swap.mint_in), swap.amount_in, normalise(chain, swap.mint_out), swap.amount_out
        )
        if not trades:
            return []
        at = swap.block_time or self.clock.now()
        valued = [t for t in trades if t.native is not None or t.usd is not None]
        profile = self._whale(chain, wallet, valued[0] if valued else None)
        if profile is None:
            return []
        if swap.tx and not profile.first_sight(swap.tx):
            self.counts["repeated_swaps"] += 1
            return []
        head = trades[0]
        native = head.native if head.native is not None else sum(t.native or 0 for t in trades[1:]) or None
        usd_micro = int(head.usd * 1_000_000) if head.usd is not None else None
        profile.record_trade(native=native, usd_micro=usd_micro, at=at)
        self._mark(profile)
        if self.writer is not None:
            self._keep_trades(swap, wallet, trades, at)
        fresh = (self.clock.now() - at).total_seconds() <= self.config.max_signal_age_s
        signals: list[WhaleSignal] = []
        for t in trades:
            if t.side == "buy":
                profile.add(t.token, t.quantity, t.native or 0, max_tokens=self.config.max_tokens_per_wallet)
                signals += self.rules.on_buy(chain, profile, t, at.timestamp(), fresh)
            else:
                held = profile.remove(t.token, t.quantity, t.native)
                signals += self.rules.on_sell(chain, profile, t, held, fresh)
        self.counts["signals"] += len(signals)
        return [msgspec.structs.replace(s, tx=swap.tx) for s in signals]

    def observe_transfer(self, transfer: Transfer) -> None:
        """Holdings follow tokens moved between wallets; a transfer in is valued at the current price."""
        self.counts["transfers"] += 1
        chain = transfer.chain
        mint = normalise(chain, transfer.mint)
        if transfer.amount <= 0 or is_quote(chain, mint):
            return
        src = self.profile(chain, transfer.source)
        if src is not None:
            src.remove(mint, transfer.amount, None)
            self._mark(src)
        dst = self.profile(chain, transfer.destination)
        if dst is not None:
            price = self.prices.price_native(chain, mint) if self.prices is not None else None
            cost = int(price * transfer.amount) if price is not None else 0
            dst.add(mint, transfer.amount, cost, max_tokens=self.config.max_tokens_per_wallet)
            self._mark(dst)

    def _keep_trades(self, swap: Swap, wallet: str, trades: list[Trade], at: datetime) -> None:
        """Queue the swap's legs for the wallet_trades table (trader analytics), off the hot path."""
        assert self.writer is not None  # noqa: S101  (the caller checked)
        for t in trades:
            row = WalletTrade(
                chain=swap.chain,
                wallet=wallet,
                tx=swap.tx,
                token=t.token,
                side="buy" if t.side == "buy" else "sell",
                quantity=t.quantity,
                decimals=swap.decimals_out if t.side == "buy" else swap.decimals_in,
                native=t.native,
                usd=t.usd,
                at=at,
            )
            self.writer.enqueue(partial(put_wallet_trade, trade=row))

    # --- valuation -------------------------------------------------------------------------------

    def _legs(self, chain: str, mint_in: str, amount_in: int, mint_out: str, amount_out: int) -> list[Trade]:
        """A buy (quote in, token out), a sell (token in, quote out), or both for a token-to-token rotation."""
        if is_quote(chain, mint_in) and not is_quote(chain, mint_out):
            native, usd = self._value(chain, mint_in, amount_in)
            return [Trade("buy", mint_out, amount_out, native, usd)]
        if is_quote(chain, mint_out) and not is_quote(chain, mint_in):
            native, usd = self._value(chain, mint_out, amount_out)
            return [Trade("sell", mint_in, amount_in, native, usd)]
        if is_quote(chain, mint_in):
            return []  # quote for quote (SOL <-> USDC): not a token trade
        sold = self._token_value(chain, mint_in, amount_in)
        bought = self._token_value(chain, mint_out, amount_out)
        return [Trade("sell", mint_in, amount_in, *sold), Trade("buy", mint_out, amount_out, *bought)]

    def _quality(self, chain: str, wallet: str) -> float | None:
        p = self._watched.get((chain, wallet)) or self._auto.get((chain, wallet))
        return p.quality() if p is not None else None

    def _usd_native(self, chain: str) -> Decimal | None:
        return self.prices.usd_per_native(chain) if self.prices is not None else None

    def _value(self, chain: str, quote: str, amount: int) -> tuple[int | None, Decimal | None]:
        """(native base units, USD) of an amount of a quote asset; None where no fresh price says."""
        usd_native = self._usd_native(chain)
        scale = Decimal(10) ** NATIVE_DECIMALS[chain]
        if is_native(chain, quote):
            return amount, (amount * usd_native / scale if usd_native is not None else None)
        coin = stable(chain, quote)
        assert coin is not None  # noqa: S101  (is_quote said so)
        usd = Decimal(amount).scaleb(-coin.decimals)
        return (int(usd / usd_native * scale) if usd_native else None), usd

    def _token_value(self, chain: str, token: str, amount: int) -> tuple[int | None, Decimal | None]:
        price = self.prices.price_native(chain, token) if self.prices is not None else None
        if price is None:
            return None, None
        return self._value(chain, "SOL" if chain == "solana" else "APT", int(price * amount))

    def _whale(self, chain: str, wallet: str, trade: Trade | None) -> Profile | None:
        key = (chain, wallet)
        p = self._watched.get(key)
        if p is not None:
            return p
        p = self._auto.get(key)
        if p is not None:
            self._auto.move_to_end(key)
            return p
        if not self.config.discover or trade is None:
            return None
        c = self.config
        r = ratio(chain, trade, c.discover_usd, c.discover_sol, c.discover_apt)
        if r is None or r < 1:
            return None
        p = self._dirty.get(key)  # forgotten but not yet saved: the same profile comes back
        if p is None:
            p = Profile(chain, wallet)
            p.unmerged = self.store is not None  # it may have been saved before it was forgotten
        self._auto[key] = p
        log.info("whales.discovered", chain=chain, wallet=wallet)
        while len(self._auto) > c.max_auto_wallets:
            # Forget the least recently active; an unsaved one stays in _dirty until the next flush.
            self._auto.popitem(last=False)
            self.counts["evicted"] += 1
        return p

    # --- housekeeping: persistence and pruning ---------------------------------------------------

    def _mark(self, p: Profile) -> None:
        self._dirty[(p.chain, p.wallet)] = p

    async def flush(self) -> int:
        """Save every changed profile, `flush_batch` per transaction. Returns how many were saved."""
        if self.store is None:
            self._dirty.clear()
            return 0
        saved = 0
        now = self.clock.now()
        while self._dirty:
            batch = [self._dirty.popitem() for _ in range(min(self.config.flush_batch, len(self._dirty)))]
            for _, p in batch:
                if p.unmerged:
                    stored = await self.store.get_wallet_profile(p.chain, p.wallet)
                    if stored is not None:
                        p.merge(Profile.decode(stored))
                    p.unmerged = False
            payloads = [(p.chain, p.wallet, p.encode().decode()) for _, p in batch]
            try:
                async with self.store.transaction():
                    for chain, wallet, payload in payloads:
                        await self.store.put_wallet_profile(chain=chain, wallet=wallet, payload=payload, at=now)
            except Exception:
                for k, p in batch:
                    self._dirty.setdefault(k, p)
                raise
            saved += len(batch)
        return saved

    async def _housekeeping(self) -> None:
        while True:
            await self.clock.sleep(self.config.flush_interval_s)
            self.rules.prune(self.clock.now())
            try:
                saved = await self.flush()
            except Exception as exc:  # a store hiccup must not end the loop; retried next round
                log.error("whales.flush_failed", unsaved=len(self._dirty), exc_info=exc)
            else:
                if saved:
                    log.debug("whales.flushed", profiles=saved)

    async def _load(self) -> None:
        if self.store is None:
            return
        found: list[Profile] = []
        for chain, wallet, payload in await self.store.wallet_profiles():
            key = f"{chain}:{wallet}"
            watched = self._watched.get((chain, wallet))
            try:
                p = Profile.decode(payload, watched=watched is not None, label=watched.label if watched else None)
            except ValueError as exc:
                self.counts["bad_input"] += 1
                log.warning("whales.bad_profile", key=key, error=str(exc))
                continue
            if watched is not None:
                self._watched[(chain, wallet)] = p
            elif self.config.discover:
                found.append(p)
        found.sort(key=lambda p: p.last_seen)
        for p in found[-self.config.max_auto_wallets :]:
            self._auto[(p.chain, p.wallet)] = p
        log.info("whales.loaded", watched=len(self._watched), discovered=len(self._auto))


def _signal_row(signal: WhaleSignal) -> SignalRow:
    return SignalRow(
        id=f"{signal.origin}:{signal.id}",
        chain=signal.chain,
        kind=signal.kind,
        token=signal.token,
        payload=encode(signal).decode(),
        at=signal.ts,
    )


async def _keep_signal(store: Store, *, row: SignalRow) -> None:
    await store.put_signal(row)
