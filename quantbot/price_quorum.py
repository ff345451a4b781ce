"""Observations of one price from several sources, and the rule that turns them into one answer.

Only fresh observations (at most `max_age_s` old) count. With three or more, those further than
`max_dev` percent from their median are outliers; two further apart than that disagree and give
no answer (fail closed). Among the rest, the first in SOURCE_ORDER answers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from statistics import median

SOURCE_ORDER = ("curve", "pool", "swap", "swap_usd", "jupiter", "dexscreener", "coingecko")
"""Preference among agreeing fresh sources: on-chain state first, then trades, then HTTP."""
MAX_TRADES = 256
"""Trades kept per VWAP window, whatever the window."""

Candidate = tuple[str, Decimal, datetime]


@dataclass(slots=True)
class Observation:
    at: datetime
    native: Decimal | None = None
    """Native base units per token base unit."""
    usd: Decimal | None = None
    """USD per token base unit (for the native coin's own book: USD per whole coin)."""


@dataclass(slots=True)
class Verdict:
    best: Candidate | None
    dropped: list[str] = field(default_factory=list)
    """Outliers dropped (or, with no answer, the sources that disagreed)."""
    stale: bool = False
    """Nothing fresh, but something too old was there."""


@dataclass(frozen=True, slots=True)
class Asked:
    """A verdict and what it was computed from (see PriceBook._best)."""

    now: datetime
    oldest_fresh: datetime | None
    version: int
    field: str
    usd_native: Decimal | None
    config: object
    verdict: Verdict


@dataclass(slots=True)
class Observations:
    """Every source's latest observation of one price, and the recent trades behind the swap VWAP."""

    obs: dict[str, Observation] = field(default_factory=dict)
    """Written through `put` and `drop` only (they invalidate the remembered verdict)."""
    trades: deque[tuple[float, int, int, int]] = field(default_factory=deque)
    """(timestamp, sequence number, quote, base) per trade, amounts scaled by 10**18; oldest first."""
    decimals: int | None = None
    published: Decimal | None = None
    published_at: float | None = None
    sum_quote: int = 0
    sum_base: int = 0
    latest: deque[tuple[int, datetime]] = field(default_factory=deque)
    """The trades that may yet be the window's latest: times falling, the first of equal times kept
    (a sliding-window maximum). With the running sums, a trade costs O(1) whatever the window holds."""
    added: int = 0
    version: int = 0
    """Bumped on every change to `obs`."""
    remembered: Asked | None = None
    """The last verdict and the question it answered."""

    def put(self, source: str, ob: Observation) -> None:
        self.obs[source] = ob
        self.version += 1

    def drop(self, source: str) -> None:
        if self.obs.pop(source, None) is not None:
            self.version += 1

    def oldest_fresh(self, now: datetime, max_age_s: float) -> datetime | None:
        """The oldest observation time still fresh at `now`. A verdict reads the time only through which
        observations are fresh; later on, those stay as they are while this one is still fresh."""
        times = [ob.at for ob in self.obs.values() if (now - ob.at).total_seconds() <= max_age_s]
        return min(times) if times else None

    def add_trade(self, at: datetime, quote: Decimal, base: Decimal, *, horizon: float) -> tuple[datetime, Decimal]:
        """Add a trade of `base` for `quote`; return (latest trade time, VWAP quote per base) since `horizon`."""
        trades, latest = self.trades, self.latest
        q, b = int(quote.scaleb(18)), int(base.scaleb(18))
        seq = self.added
        self.added += 1
        trades.append((at.timestamp(), seq, q, b))
        self.sum_quote += q
        self.sum_base += b
        while latest and latest[-1][1] < at:
            latest.pop()
        latest.append((seq, at))
        while len(trades) > 1 and (trades[0][0] < horizon or len(trades) > MAX_TRADES):
            _, gone, q, b = trades.popleft()
            self.sum_quote -= q
            self.sum_base -= b
            if latest[0][0] == gone:
                latest.popleft()
        return latest[0][1], Decimal(self.sum_quote) / Decimal(self.sum_base)

    def verdict(
        self, *, now: datetime, max_age_s: float, max_dev: Decimal, value: Callable[[Observation], Decimal | None]
    ) -> Verdict:
        """The answer from the fresh observations, with `value` reading (or converting) each one."""
        candidates: list[Candidate] = []
        stale = False
        for source, ob in self.obs.items():
            if (now - ob.at).total_seconds() > max_age_s:
                stale = True
                continue
            v = value(ob)
            if v is not None and v > 0:
                candidates.append((source, v, ob.at))
        if not candidates:
            return Verdict(best=None, stale=stale)
        if len(candidates) == 1:  # the usual case: one fresh source, kept as it is
            return Verdict(best=candidates[0])
        kept, dropped = pick(candidates, max_dev)
        if not kept:
            return Verdict(best=None, dropped=dropped)
        best = min((c for c in candidates if c[0] in kept), key=_preference)
        return Verdict(best=best, dropped=dropped)


_RANK = {s: i for i, s in enumerate(SOURCE_ORDER)}


def _preference(c: Candidate) -> tuple[int, float]:
    return _RANK.get(c[0], len(_RANK)), -c[2].timestamp()


def pick(candidates: Sequence[Candidate], max_dev: Decimal) -> tuple[list[str], list[str]]:
    """Median-based agreement: (sources kept, sources dropped). Two that disagree: none kept."""
    if len(candidates) <= 1:
        return [c[0] for c in candidates], []
    values = [c[1] for c in candidates]
    mid = median(values)
    bound = mid * max_dev / 100
    if len(candidates) == 2:
        if abs(values[0] - values[1]) > bound * 2:
            return [], [c[0] for c in candidates]
        return [c[0] for c in candidates], []
    kept = [c[0] for c in candidates if abs(c[1] - mid) <= bound]
    return kept, [c[0] for c in candidates if c[0] not in kept]
