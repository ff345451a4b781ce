"""Store tables outside the order journal: round trips, signals, token verdicts, wallet profiles,
equity history, and retention over them.

Written mostly through the write-behind queue (`quantbot.store.writer`), off the hot path. Rows are
plain values; payloads are JSON text the caller encodes.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

RETENTION_TABLES: dict[str, tuple[str, str, str]] = {
    # config key -> (table, time column, extra condition)
    "signals_h": ("signals", "at", ""),
    "token_verdicts_h": ("token_verdicts", "at", ""),
    "wallet_profiles_h": ("wallet_profiles", "updated_at", ""),
    "equity_interval_h": ("equity_history", "at", " AND kind = 'interval'"),
    "equity_daily_h": ("equity_history", "at", " AND kind = 'daily'"),
    "wallet_trades_h": ("wallet_trades", "at", ""),
}
"""What retention may delete. Orders, fills, positions and round trips are never expired."""


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("the store takes timezone-aware times only")
    return dt.astimezone(UTC).isoformat()


class RoundTrip(msgspec.Struct, frozen=True, kw_only=True):
    """A position opened and closed again: what it cost, what it returned (native base units)."""

    id: str
    strategy: str
    chain: str
    token: str
    opened_at: datetime | None
    closed_at: datetime
    cost_native: int
    proceeds_native: int

    @property
    def pnl_native(self) -> int:
        return self.proceeds_native - self.cost_native


class TripStats(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy's realised round trips: how many, how many won, total won and total lost (native)."""

    trips: int
    wins: int
    won_native: int
    lost_native: int


class SignalRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    chain: str
    kind: str
    token: str
    payload: str
    at: datetime


class EquityRow(msgspec.Struct, frozen=True, kw_only=True):
    chain: str
    kind: str
    """`interval` (every portfolio.equity_interval_s) or `daily` (the first figure of a UTC day)."""
    at: datetime
    equity_native: int
    equity_usd: Decimal | None = None


class HistoryTables(abc.ABC):
    """Mixed into Store: the statements for the non-journal tables."""

    retention: Mapping[str, float] = {}
    """Hours per RETENTION_TABLES key (0 = forever); the daemon sets it from [store.retention]."""

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int: ...

    @abc.abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]: ...

    # --- round trips ---------------------------------------------------------------------------

    async def record_round_trip(self, trip: RoundTrip) -> None:
        await self.execute(
            "INSERT INTO round_trips (id, strategy, chain, token, opened_at, closed_at, cost_native, proceeds_native, "
            "pnl_native) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            trip.id,
            trip.strategy,
            trip.chain,
            trip.token,
            _iso(trip.opened_at) if trip.opened_at else None,
            _iso(trip.closed_at),
            str(trip.cost_native),
            str(trip.proceeds_native),
            str(trip.pnl_native),
        )

    async def round_trips(self, strategy: str | None = None) -> list[RoundTrip]:
        cols = "id, strategy, chain, token, opened_at, closed_at, cost_native, proceeds_native"
        if strategy is None:
            rows = await self.fetch(f"SELECT {cols} FROM round_trips ORDER BY closed_at, id")
        else:
            rows = await self.fetch(
                f"SELECT {cols} FROM round_trips WHERE strategy = ? ORDER BY closed_at, id", strategy
            )
        return [
            RoundTrip(
                id=r[0],
                strategy=r[1],
                chain=r[2],
                token=r[3],
                opened_at=datetime.fromisoformat(r[4]) if r[4] else None,
                closed_at=datetime.fromisoformat(r[5]),
                cost_native=int(r[6]),
                proceeds_native=int(r[7]),
            )
            for r in rows
        ]

    async def trip_stats(self, strategy: str, *, last: int = 500) -> TripStats:
        """Win count and totals over the strategy's most recent `last` round trips."""
        rows = await self.fetch(
            "SELECT pnl_native FROM round_trips WHERE strategy = ? ORDER BY closed_at DESC, id DESC LIMIT ?",
            strategy,
            last,
        )
        pnls = [int(r[0]) for r in rows]
        wins = [p for p in pnls if p > 0]
        return TripStats(
            trips=len(pnls), wins=len(wins), won_native=sum(wins), lost_native=-sum(p for p in pnls if p <= 0)
        )

    # --- signals, verdicts, wallet profiles ----------------------------------------------------

    async def put_signal(self, row: SignalRow) -> None:
        await self.execute(
            "INSERT INTO signals (id, chain, kind, token, payload, at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            row.id,
            row.chain,
            row.kind,
            row.token,
            row.payload,
            _iso(row.at),
        )

    async def signals(self, *, since: datetime | None = None, token: str | None = None) -> list[SignalRow]:
        sql = "SELECT id, chain, kind, token, payload, at FROM signals WHERE at >= ?"
        args: list[Any] = [_iso(since) if since else ""]
        if token is not None:
            sql += " AND token = ?"
            args.append(token)
        rows = await self.fetch(sql + " ORDER BY at, id", *args)
        return [
            SignalRow(id=r[0], chain=r[1], kind=r[2], token=r[3], payload=r[4], at=datetime.fromisoformat(r[5]))
            for r in rows
        ]

    async def put_verdict(self, *, chain: str, token: str, passed: bool, payload: str, at: datetime) -> None:
        await self.execute(
            "INSERT INTO token_verdicts (chain, token, passed, payload, at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (chain, token) DO UPDATE SET passed = excluded.passed, payload = excluded.payload, "
            "at = excluded.at",
            chain,
            token,
            int(passed),
            payload,
            _iso(at),
        )

    async def get_verdict(self, chain: str, token: str) -> tuple[bool, str, datetime] | None:
        rows = await self.fetch(
            "SELECT passed, payload, at FROM token_verdicts WHERE chain = ? AND token = ?", chain, token
        )
        return (bool(rows[0][0]), rows[0][1], datetime.fromisoformat(rows[0][2])) if rows else None

    async def put_wallet_profile(self, *, chain: str, wallet: str, payload: str, at: datetime) -> None:
        await self.execute(
            "INSERT INTO wallet_profiles (chain, wallet, payload, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (chain, wallet) DO UPDATE SET payload = excluded.payload, updated_at = excluded.updated_at",
            chain,
            wallet,
            payload,
            _iso(at),
        )

    async def get_wallet_profile(self, chain: str, wallet: str) -> str | None:
        rows = await self.fetch("SELECT payload FROM wallet_profiles WHERE chain = ? AND wallet = ?", chain, wallet)
        return rows[0][0] if rows else None

    async def wallet_profiles(self) -> list[tuple[str, str, str]]:
        """Every stored profile as (chain, wallet, payload)."""
        rows = await self.fetch("SELECT chain, wallet, payload FROM wallet_profiles ORDER BY chain, wallet")
        return [(r[0], r[1], r[2]) for r in rows]

    # --- equity history ------------------------------------------------------------------------

    async def put_equity(self, row: EquityRow) -> None:
        await self.execute(
            "INSERT INTO equity_history (chain, kind, at, equity_native, equity_usd) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (chain, kind, at) DO NOTHING",
            row.chain,
            row.kind,
            _iso(row.at),
            str(row.equity_native),
            None if row.equity_usd is None else str(row.equity_usd),
        )

    async def equity_history(self, chain: str, *, kind: str = "interval") -> list[EquityRow]:
        rows = await self.fetch(
            "SELECT chain, kind, at, equity_native, equity_usd FROM equity_history WHERE chain = ? AND kind = ? "
            "ORDER BY at",
            chain,
            kind,
        )
        return [
            EquityRow(
                chain=r[0],
                kind=r[1],
                at=datetime.fromisoformat(r[2]),
                equity_native=int(r[3]),
                equity_usd=Decimal(r[4]) if r[4] is not None else None,
            )
            for r in rows
        ]

    async def day_start_equity(self, chain: str, day_start: datetime) -> int | None:
        """The daily snapshot taken in the UTC day beginning at `day_start`, if one was."""
        rows = await self.fetch(
            "SELECT equity_native FROM equity_history WHERE chain = ? AND kind = 'daily' AND at >= ? AND at < ? "
            "ORDER BY at LIMIT 1",
            chain,
            _iso(day_start),
            _iso(day_start + timedelta(days=1)),
        )
        return int(rows[0][0]) if rows else None

    # --- retention -----------------------------------------------------------------------------

    async def apply_retention(self, now: datetime, hours: Mapping[str, float] | None = None) -> dict[str, int]:
        """Delete rows older than each table's retention; return rows deleted per key. 0 h keeps forever."""
        policy = self.retention if hours is None else hours
        unknown = set(policy) - set(RETENTION_TABLES)
        if unknown:
            raise ValueError(f"no retention for {sorted(unknown)}; known: {sorted(RETENTION_TABLES)}")
        deleted: dict[str, int] = {}
        async with self.transaction():
            for key, h in policy.items():
                if h <= 0:
                    continue
                table, column, extra = RETENTION_TABLES[key]
                cutoff = _iso(now - timedelta(hours=h))
                deleted[key] = await self.execute(f"DELETE FROM {table} WHERE {column} < ?{extra}", cutoff)
        return deleted
