"""The `wallet_trades` table: every tracked wallet's swaps, one row per traded token leg.

Written by the WhaleTracker through the write-behind queue (off the hot path); read by trader
analytics (`quantbot leaderboard`, `quantbot candles`) with the daemon running or stopped. A row is
idempotent on (chain, wallet, tx, token, side), so a replayed or re-fetched transaction is kept once.
Retention: `[store.retention] wallet_trades_h`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from quantbot.store.base import Store

Side = Literal["buy", "sell"]


class WalletTrade(msgspec.Struct, frozen=True, kw_only=True):
    """One leg of a tracked wallet's swap: a token bought or sold, valued where a price said."""

    chain: str
    wallet: str
    tx: str
    token: str
    side: Side
    quantity: int
    """Token base units."""
    decimals: int | None = None
    """The token's decimals when the swap carried them."""
    native: int | None = None
    """Value in native base units (lamports, octas); None when nothing priced the leg."""
    usd: Decimal | None = None
    at: datetime


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("the store takes timezone-aware times only")
    return dt.astimezone(UTC).isoformat()


async def put_wallet_trade(store: Store, trade: WalletTrade) -> None:
    """Keep one trade leg (a repeat of the same leg is ignored)."""
    await store.execute(
        "INSERT INTO wallet_trades (chain, wallet, tx, token, side, quantity, decimals, native, usd, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chain, wallet, tx, token, side) DO NOTHING",
        trade.chain,
        trade.wallet,
        trade.tx,
        trade.token,
        trade.side,
        str(trade.quantity),
        trade.decimals,
        None if trade.native is None else str(trade.native),
        None if trade.usd is None else str(trade.usd),
        _iso(trade.at),
    )


def _row(r: tuple[Any, ...]) -> WalletTrade:
    return WalletTrade(
        chain=r[0],
        wallet=r[1],
        tx=r[2],
        token=r[3],
        side=r[4],
        quantity=int(r[5]),
        decimals=None if r[6] is None else int(r[6]),
        native=None if r[7] is None else int(r[7]),
        usd=None if r[8] is None else Decimal(r[8]),
        at=datetime.fromisoformat(r[9]),
    )


_COLS = "chain, wallet, tx, token, side, quantity, decimals, native, usd, at"


async def wallet_trades(
    store: Store,
    *,
    chain: str | None = None,
    wallet: str | None = None,
    token: str | None = None,
    since: datetime | None = None,
) -> list[WalletTrade]:
    """Stored trade legs, oldest first (ties in tx, token order), narrowed by any of the filters."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("chain", chain), ("wallet", wallet), ("token", token)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("at >= ?")
        args.append(_iso(since))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = await store.fetch(
        f"SELECT {_COLS} FROM wallet_trades{clause} ORDER BY at, tx, token, side",
        *args,
    )
    return [_row(r) for r in rows]
