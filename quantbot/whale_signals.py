"""The rules that turn whales' trades into `whale.signal`, and the time windows they need.

large_buy / large_sell: one trade worth at least `large_usd` (USD where fresh, else `large_sol` /
`large_apt`). accumulation: one whale buys the same token `accumulation_buys` times within
`accumulation_window_s`. cluster: `cluster_whales` distinct whales buy one token within
`cluster_window_s`. dump: one sale of at least `dump_pct`% of what the whale held.
A window resets when its signal fires, so the next one needs a fresh set of buys.

Confidence, always in [0, 1]: (1 - 1 / (1 + measured / threshold)) * quality. When a signal fires
measured / threshold >= 1, so the first factor is in [0.5, 1). quality = 0.5 + 0.5 * (wins + 1) /
(round_trips + 2) is the wallet's Laplace-smoothed win rate in [0.5, 1] (a cluster uses its wallets'
mean). Windows hold only whales' buys and are pruned by event time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from quantbot.assets import NATIVE_DECIMALS
from quantbot.config import WhalesConfig
from quantbot.events import WhaleSignal
from quantbot.wallet_profiles import Profile

CENT = Decimal("0.01")


def confidence(measured: Decimal | float, threshold: Decimal | float, quality: float) -> float:
    """(1 - 1/(1 + measured/threshold)) * quality, clamped to [0, 1]; 0 for a non-positive threshold."""
    if threshold <= 0 or measured <= 0:
        return 0.0
    ratio = float(measured) / float(threshold)
    value = (1.0 - 1.0 / (1.0 + ratio)) * quality
    if value != value:  # NaN
        return 0.0
    return min(1.0, max(0.0, value))


class Trade:
    """One side of a swap, valued: native base units and USD where a fresh price says."""

    __slots__ = ("native", "quantity", "side", "token", "usd")

    def __init__(self, side: str, token: str, quantity: int, native: int | None, usd: Decimal | None) -> None:
        self.side, self.token, self.quantity, self.native, self.usd = side, token, quantity, native, usd


def ratio(chain: str, t: Trade, usd_threshold: Decimal, sol: Decimal, apt: Decimal) -> Decimal | None:
    """How many times the threshold this trade is (>= 1 passes): in USD when known, else native."""
    if t.usd is not None:
        return t.usd / usd_threshold
    if t.native is not None:
        whole = Decimal(t.native).scaleb(-NATIVE_DECIMALS[chain])
        return whole / (sol if chain == "solana" else apt)
    return None


class SignalRules:
    def __init__(
        self,
        *,
        config: WhalesConfig,
        usd_per_native: Callable[[str], Decimal | None],
        quality_of: Callable[[str, str], float | None],
    ) -> None:
        self.config = config
        self.usd_per_native = usd_per_native
        self.quality_of = quality_of
        self.accumulation: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
        """Recent buys per (chain, wallet, token); small lists (a deque costs ~600 bytes even when empty)."""
        self.clusters: dict[tuple[str, str], dict[str, tuple[float, int]]] = {}
        """Whales' latest buy per (chain, token): wallet -> (time, native)."""

    def on_buy(self, chain: str, p: Profile, t: Trade, ts: float, fresh: bool) -> list[WhaleSignal]:
        c = self.config
        native = t.native or 0
        acc = self.accumulation.setdefault((chain, p.wallet, t.token), [])
        acc.append((ts, native))
        horizon = ts - c.accumulation_window_s
        if acc[0][0] < horizon:
            acc[:] = [x for x in acc if x[0] >= horizon]
        members = self.clusters.setdefault((chain, t.token), {})
        members[p.wallet] = (ts, native)
        for w in [w for w, (when, _) in members.items() if when < ts - c.cluster_window_s]:
            del members[w]
        if not fresh:
            return []
        out = self._large(chain, p, t, "large_buy")
        if len(acc) >= c.accumulation_buys:
            size = sum(n for _, n in acc)
            conf = confidence(len(acc), c.accumulation_buys, p.quality())
            out.append(self._signal(chain, "accumulation", (p.wallet,), t.token, size, self._usd(chain, size), conf))
            acc.clear()
        if len(members) >= c.cluster_whales:
            wallets = tuple(sorted(members))
            size = sum(n for _, n in members.values())
            qualities = [q for w in wallets if (q := self.quality_of(chain, w)) is not None]
            quality = sum(qualities) / len(qualities) if qualities else 0.75
            conf = confidence(len(members), c.cluster_whales, quality)
            out.append(self._signal(chain, "cluster", wallets, t.token, size, self._usd(chain, size), conf))
            members.clear()
        return out

    def on_sell(self, chain: str, p: Profile, t: Trade, held: int, fresh: bool) -> list[WhaleSignal]:
        if not fresh:
            return []
        out = self._large(chain, p, t, "large_sell")
        sold = min(t.quantity, held)
        if held > 0 and Decimal(sold) * 100 >= self.config.dump_pct * held:
            conf = confidence(Decimal(sold) * 100 / held, self.config.dump_pct, p.quality())
            out.append(self._signal(chain, "dump", (p.wallet,), t.token, t.native or 0, t.usd, conf))
        return out

    def prune(self, now: datetime) -> None:
        """Forget windows with nothing left inside them (per wallet-token and per token)."""
        ts = now.timestamp()
        acc_horizon = ts - self.config.accumulation_window_s
        for k in [k for k, d in self.accumulation.items() if not d or d[-1][0] < acc_horizon]:
            del self.accumulation[k]
        cluster_horizon = ts - self.config.cluster_window_s
        for tk in list(self.clusters):
            members = self.clusters[tk]
            for w in [w for w, (when, _) in members.items() if when < cluster_horizon]:
                del members[w]
            if not members:
                del self.clusters[tk]

    # --- helpers ---------------------------------------------------------------------------------

    def _large(self, chain: str, p: Profile, t: Trade, kind: str) -> list[WhaleSignal]:
        c = self.config
        r = ratio(chain, t, c.large_usd, c.large_sol, c.large_apt)
        if r is None or r < 1:
            return []
        conf = confidence(r, 1, p.quality())
        return [self._signal(chain, kind, (p.wallet,), t.token, t.native or 0, t.usd, conf)]

    def _usd(self, chain: str, native: int) -> Decimal | None:
        usd_native = self.usd_per_native(chain)
        if usd_native is None or not native:
            return None
        return native * usd_native / Decimal(10) ** NATIVE_DECIMALS[chain]

    @staticmethod
    def _signal(
        chain: str, kind: str, wallets: tuple[str, ...], token: str, size: int, usd: Decimal | None, conf: float
    ) -> WhaleSignal:
        return WhaleSignal(
            chain=chain,  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            wallets=wallets,
            token=token,
            size=size,
            size_usd=usd.quantize(CENT) if usd is not None else None,
            confidence=conf,
        )
