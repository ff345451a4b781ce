"""The PriceBook's incremental bookkeeping (running VWAP sums, remembered verdicts) answers exactly as
recomputing everything from scratch would: checked against the plain algorithms kept here as oracles."""

from __future__ import annotations

import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from quantbot.assets import USDC_SOLANA, WSOL
from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.config import PricesConfig
from quantbot.price_quorum import MAX_TRADES, SOURCE_ORDER, Candidate, Observation, Observations, Verdict, pick
from quantbot.price_sources import NATIVE_ID, SourceQuote
from quantbot.prices import PriceBook
from quantbot.testing import swap

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
TOKENS = ("Tok1111111111111111111111111111111111111111", "Tok2222222222222222222222222222222222222222")


trade_st = st.tuples(
    st.integers(min_value=0, max_value=100),  # block time, seconds after T0: in any order, often equal
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=1, max_value=10**15),
    st.integers(min_value=0, max_value=2),  # how far the clock (the horizon) moved since the last trade
)


@given(st.lists(trade_st, min_size=1, max_size=300))
def test_running_vwap_equals_the_window_recomputed_at_every_trade(raw: list[tuple[int, int, int, int]]) -> None:
    obs = Observations()
    window: list[tuple[datetime, int, int]] = []
    horizon = T0.timestamp() - 30
    for offset, quote, base, moved in raw:
        at = T0 + timedelta(seconds=offset)
        horizon += moved
        window.append((at, int(Decimal(quote).scaleb(18)), int(Decimal(base).scaleb(18))))
        while len(window) > 1 and (window[0][0].timestamp() < horizon or len(window) > MAX_TRADES):
            window.pop(0)
        want = max(t[0] for t in window), Decimal(sum(t[1] for t in window)) / Decimal(sum(t[2] for t in window))
        got = obs.add_trade(at, Decimal(quote), Decimal(base), horizon=horizon)
        assert got == want
        assert got[0] is want[0]  # among equal times, the first one in the window (as max() gives)


def test_when_the_latest_trade_leaves_the_window_the_next_latest_answers() -> None:
    obs = Observations()
    for i in range(MAX_TRADES + 2):  # newest block time first: the cap pushes out the latest ones
        latest, _ = obs.add_trade(T0 - timedelta(seconds=i), Decimal(1), Decimal(1), horizon=0.0)
    assert latest == T0 - timedelta(seconds=2)


def plain_verdict(
    obs: Observations, *, now: datetime, max_age_s: float, max_dev: Decimal, value: Callable[[Observation], Any]
) -> Verdict:
    candidates: list[Candidate] = []
    stale = False
    for source, ob in obs.obs.items():
        if (now - ob.at).total_seconds() > max_age_s:
            stale = True
            continue
        v = value(ob)
        if v is not None and v > 0:
            candidates.append((source, v, ob.at))
    if not candidates:
        return Verdict(best=None, stale=stale)
    kept, dropped = pick(candidates, max_dev)
    if not kept:
        return Verdict(best=None, dropped=dropped)
    rank = {s: i for i, s in enumerate(SOURCE_ORDER)}
    best = min((c for c in candidates if c[0] in kept), key=lambda c: (rank.get(c[0], len(rank)), -c[2].timestamp()))
    return Verdict(best=best, dropped=dropped)


def plain_best(
    self: PriceBook, chain: str, entry: Observations | None, *, field: str, count: bool = False
) -> Candidate | None:
    """PriceBook._best as first written: every question answered from scratch."""
    if entry is None or not entry.obs:
        return None
    usd_native = self.usd_per_native(chain) if field == "native" else None
    unit = usd_native.scaleb(-9) if usd_native else None

    def value(ob: Observation) -> Decimal | None:
        if field == "usd":
            return ob.usd
        if ob.native is None and ob.usd is not None and unit:
            return ob.usd / unit
        return ob.native

    v = plain_verdict(
        entry, now=self.clock.now(), max_age_s=self.config.max_age_s, max_dev=self.config.max_deviation_pct, value=value
    )
    if count:
        if v.stale:
            self.stale_refused += 1
        for source in v.dropped if v.best is not None else ():
            self.outliers[source] = self.outliers.get(source, 0) + 1
        if v.best is None and v.dropped:
            self.disagreements += 1
    return v.best


step_st = st.one_of(
    st.tuples(st.just("swap"), st.sampled_from(TOKENS), st.integers(10**7, 10**11), st.integers(1, 10**12)),
    st.tuples(st.just("sol_usd"), st.integers(10**8, 10**11), st.integers(10**6, 10**10)),
    st.tuples(
        st.just("quote"),
        st.sampled_from(("jupiter", "dexscreener", "coingecko")),
        st.sampled_from(TOKENS),
        st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10), places=4),
        st.booleans(),
    ),
    st.tuples(
        st.just("native_usd"),
        st.sampled_from(("recorded", "coingecko")),
        st.decimals(min_value=Decimal(100), max_value=Decimal(200), places=2),
    ),
    st.tuples(st.just("advance"), st.sampled_from((0.0, 0.5, 1.0, 7.0, 30.0, 59.0, 61.0))),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step_st, max_size=40))
async def test_remembered_verdicts_answer_as_a_book_that_recomputes_everything(steps: list[tuple[Any, ...]]) -> None:
    config = msgspec.convert(
        {"max_age_s": 60, "vwap_window_s": 10, "max_deviation_pct": 20, "publish_min_interval_s": 0},
        PricesConfig,
    )
    clock = SimClock(T0)
    async with EventBus(clock=clock) as bus:
        fast = PriceBook(bus=bus, clock=clock, config=config)
        plain = PriceBook(bus=bus, clock=clock, config=config)
        plain._best = types.MethodType(plain_best, plain)  # type: ignore[method-assign]
        for step in steps:
            for book in (fast, plain):
                await _apply(book, step, clock)
            if step[0] == "advance":
                clock.advance(step[1])
            assert fast.usd_per_native("solana") == plain.usd_per_native("solana")
            for token in TOKENS:
                assert fast.quote("solana", token) == plain.quote("solana", token)
        assert fast.stats() == plain.stats()


async def _apply(book: PriceBook, step: tuple[Any, ...], clock: SimClock) -> None:
    now = clock.now()
    if step[0] == "swap":
        _, token, sol, tokens = step
        await book.observe_swap(
            swap(mint_in=WSOL, amount_in=sol, mint_out=token, amount_out=tokens, decimals_out=6, block_time=now)
        )
    elif step[0] == "sol_usd":
        _, sol, usdc = step
        await book.observe_swap(
            swap(mint_in=WSOL, amount_in=sol, mint_out=USDC_SOLANA, amount_out=usdc, decimals_out=6, block_time=now)
        )
    elif step[0] == "quote":
        _, source, token, price, in_usd = step
        q = SourceQuote(chain="solana", token=token, decimals=6, **({"usd": price} if in_usd else {"native": price}))
        await book.observe_quotes(source, [q])
    elif step[0] == "native_usd":
        _, source, usd = step
        await book.observe_quotes(source, [SourceQuote(chain="solana", token=NATIVE_ID, usd=usd)])
