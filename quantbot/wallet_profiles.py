"""A compact, incrementally updated profile of one wallet, and its persisted form.

Amounts are integers: native base units for volume, cost and PnL, micro-USD for USD volume.
Holdings are net token quantities with their average cost; a round trip closes when a sale leaves
no more than DUST_FRACTION of what was held, and counts as a win when its realised PnL is positive.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

DUST_FRACTION = 50
"""A sale leaving at most 1/50 (2%) of the holding closes the round trip (shared/notes/solana.md 7)."""
RECENT_TXS = 32
"""The wallet's last swaps remembered by transaction, saved with the figures they changed: delivery is at least
once (a watcher restart can publish a swap again), and a repeat must not count twice."""


class ProfileRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the store keeps per wallet (JSON in the store's wallet_profiles table)."""

    chain: str
    wallet: str
    label: str = ""
    volume_native: int = 0
    volume_usd_micro: int = 0
    trades: int = 0
    round_trips: int = 0
    wins: int = 0
    pnl_native: int = 0
    last_seen: int = 0
    holdings: dict[str, tuple[int, int, int]] = {}
    """token -> (quantity, cost in native base units, realised PnL of the open round trip)."""
    recent_txs: list[str] = []
    """The last RECENT_TXS swaps counted (oldest first)."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ProfileRecord)


class Profile:
    """One wallet. `holdings` is None until the wallet holds something (most wallets never keep much)."""

    __slots__ = (
        "chain",
        "holdings",
        "label",
        "last_seen",
        "pnl_native",
        "recent_txs",
        "round_trips",
        "trades",
        "unmerged",
        "volume_native",
        "volume_usd_micro",
        "wallet",
        "watched",
        "wins",
    )

    def __init__(self, chain: str, wallet: str, *, label: str = "", watched: bool = False) -> None:
        self.chain = chain
        self.wallet = wallet
        self.label = label
        self.watched = watched
        self.volume_native = 0
        self.volume_usd_micro = 0
        self.trades = 0
        self.round_trips = 0
        self.wins = 0
        self.pnl_native = 0
        self.last_seen = 0
        self.holdings: dict[str, list[int]] | None = None
        self.recent_txs: list[str] = []
        self.unmerged = False
        """Built afresh for a wallet the store may already know: merge the stored record before saving."""

    @property
    def key(self) -> str:
        return f"{self.chain}:{self.wallet}"

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.round_trips if self.round_trips else None

    def quality(self) -> float:
        """Laplace-smoothed win rate mapped to [0.5, 1]: an unknown wallet is 0.75, a perfect one near 1."""
        return 0.5 + 0.5 * (self.wins + 1) / (self.round_trips + 2)

    def held(self, token: str) -> int:
        h = self.holdings.get(token) if self.holdings else None
        return h[0] if h else 0

    def first_sight(self, tx: str) -> bool:
        """Remember swap `tx`; False if it is one of the last RECENT_TXS already counted."""
        if tx in self.recent_txs:
            return False
        self.recent_txs.append(tx)
        del self.recent_txs[:-RECENT_TXS]
        return True

    def record_trade(self, *, native: int | None, usd_micro: int | None, at: datetime) -> None:
        self.trades += 1
        self.volume_native += native or 0
        self.volume_usd_micro += usd_micro or 0
        self.last_seen = max(self.last_seen, int(at.timestamp()))

    def add(self, token: str, quantity: int, cost_native: int, *, max_tokens: int) -> None:
        """Tokens arrive (a buy, or a transfer in at `cost_native`)."""
        if quantity <= 0:
            return
        if self.holdings is None:
            self.holdings = {}
        h = self.holdings.get(token)
        if h is None:
            while len(self.holdings) >= max_tokens:  # bound: forget the oldest holding
                del self.holdings[next(iter(self.holdings))]
            self.holdings[token] = [quantity, cost_native, 0]
        else:
            h[0] += quantity
            h[1] += cost_native

    def remove(self, token: str, quantity: int, proceeds_native: int | None) -> int:
        """Tokens leave (a sale with its proceeds, or a transfer out with None). Returns what was held before."""
        h = self.holdings.get(token) if self.holdings else None
        if h is None or h[0] <= 0 or quantity <= 0:
            return 0
        held = h[0]
        sold = min(quantity, held)
        cost_out = h[1] * sold // held
        if proceeds_native is not None:
            pnl = proceeds_native * sold // quantity - cost_out
            h[2] += pnl
            self.pnl_native += pnl
        h[0] -= sold
        h[1] -= cost_out
        if h[0] * DUST_FRACTION <= held:
            assert self.holdings is not None  # noqa: S101  (h came from it)
            del self.holdings[token]
            if proceeds_native is not None:
                self.round_trips += 1
                self.wins += h[2] > 0
            if not self.holdings:
                self.holdings = None
        return held

    def merge(self, older: Profile) -> None:
        """Fold in the history of an earlier profile of the same wallet (counters add, holdings combine)."""
        self.volume_native += older.volume_native
        self.volume_usd_micro += older.volume_usd_micro
        self.trades += older.trades
        self.round_trips += older.round_trips
        self.wins += older.wins
        self.pnl_native += older.pnl_native
        self.last_seen = max(self.last_seen, older.last_seen)
        self.label = self.label or older.label
        self.recent_txs = [*older.recent_txs, *(t for t in self.recent_txs if t not in older.recent_txs)][-RECENT_TXS:]
        for token, (qty, cost, pnl) in (older.holdings or {}).items():
            if self.holdings is None:
                self.holdings = {}
            h = self.holdings.setdefault(token, [0, 0, 0])
            h[0], h[1], h[2] = h[0] + qty, h[1] + cost, h[2] + pnl

    # --- persistence -----------------------------------------------------------------------------

    def encode(self) -> bytes:
        return _encoder.encode(
            ProfileRecord(
                chain=self.chain,
                wallet=self.wallet,
                label=self.label,
                volume_native=self.volume_native,
                volume_usd_micro=self.volume_usd_micro,
                trades=self.trades,
                round_trips=self.round_trips,
                wins=self.wins,
                pnl_native=self.pnl_native,
                last_seen=self.last_seen,
                holdings={t: (h[0], h[1], h[2]) for t, h in (self.holdings or {}).items()},
                recent_txs=self.recent_txs,
            )
        )

    @classmethod
    def decode(cls, payload: str | bytes, *, watched: bool = False, label: str | None = None) -> Profile:
        rec = _decoder.decode(payload)
        p = cls(rec.chain, rec.wallet, label=rec.label if label is None else label, watched=watched)
        p.volume_native, p.volume_usd_micro, p.trades = rec.volume_native, rec.volume_usd_micro, rec.trades
        p.round_trips, p.wins, p.pnl_native, p.last_seen = rec.round_trips, rec.wins, rec.pnl_native, rec.last_seen
        p.holdings = {t: list(h) for t, h in rec.holdings.items()} or None
        p.recent_txs = rec.recent_txs[-RECENT_TXS:]
        return p

    def summary(self) -> dict[str, object]:
        return {
            "chain": self.chain,
            "wallet": self.wallet,
            "label": self.label,
            "watched": self.watched,
            "volume_native": self.volume_native,
            "volume_usd": self.volume_usd_micro / 1_000_000,
            "trades": self.trades,
            "round_trips": self.round_trips,
            "win_rate": self.win_rate,
            "realised_pnl_native": self.pnl_native,
            "holdings": {t: h[0] for t, h in (self.holdings or {}).items()},
            "last_seen": datetime.fromtimestamp(self.last_seen, UTC).isoformat() if self.last_seen else None,
        }
