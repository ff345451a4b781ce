"""Store: rows, not rules. One interface, two backends (SQLite embedded default, PostgreSQL).

Every method is one durable step: when it returns, the change is committed. The order journal is
written before an order reaches an executor, and a final status (filled, failed, expired) is never
left again, whatever arrives later.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Self

import msgspec

from quantbot.datadir import AlreadyRunning
from quantbot.store.history import HistoryTables
from quantbot.store.schema import LATEST, MIGRATIONS

FINAL = ("filled", "failed", "expired")
STATUSES = ("pending", "submitted", *FINAL)


class StoreError(Exception):
    """The database refused or is unusable (with what to do about it)."""


class DuplicateOrder(StoreError):
    """An order with this idempotency key is already journaled."""


class LeaseHeld(StoreError, AlreadyRunning):
    """Another process holds the lease (the message names it where the backend can tell)."""


class Lease(abc.ABC):
    """An exclusive claim on a store, from `Store.lease()` until `release()` or until it is lost."""

    @abc.abstractmethod
    async def held(self) -> bool:
        """Whether it is still ours. False once lost (or unverifiable): whatever it guards must stop."""

    @abc.abstractmethod
    async def release(self) -> None: ...


class OrderRow(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    idempotency_key: str
    strategy: str
    chain: str
    side: str
    token: str
    amount: int
    notional_usd: Decimal | None
    executor: str
    status: str
    tx: str | None = None
    reason: str = ""
    detail: str = ""
    intent: str
    """The approved intent as JSON: enough to reconcile or replay the order."""
    created_at: datetime
    updated_at: datetime

    @property
    def final(self) -> bool:
        return self.status in FINAL


class FillRow(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    tx: str
    amount_in: int
    amount_out: int
    fee: int
    price_native: Decimal | None
    filled_at: datetime


class PositionRow(msgspec.Struct, frozen=True, kw_only=True):
    chain: str
    token: str
    quantity: int
    cost_native: int
    realised_pnl_native: int
    opened_at: datetime | None
    updated_at: datetime
    strategy: str = ""
    """The strategy whose buy opened the position (its round trip counts for that strategy's Kelly sizing)."""
    leader: str | None = None
    """The leader wallet the opening buy followed, if any."""
    trip_cost: int | None = None
    """Native spent on buys since the position opened (None: a row from before it was kept)."""
    trip_proceeds: int = 0
    """Native received from sells since the position opened."""
    free_quantity: int = 0
    """The part of `quantity` that came in for nothing (received outside quantbot): held at no cost."""


def _ts(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("the store takes timezone-aware times only")
    return dt.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _dec(text: str | None) -> Decimal | None:
    return Decimal(text) if text is not None else None


class Store(HistoryTables, abc.ABC):
    """Backend-neutral SQL. Subclasses supply the connection and the placeholder style."""

    name = "store"
    backend: str = "?"
    row_lock: str = ""
    """Suffix that locks selected rows for the transaction (SQLite's BEGIN IMMEDIATE already does)."""

    # --- what a backend provides -----------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A context in which `execute`/`fetch` calls form one atomic, durable unit.

        Nested, it joins the enclosing transaction; a nested block that raises makes the whole unit roll
        back even if the enclosing block catches the error. The transaction belongs to the task that
        opened it: a store call from a task it spawns (`gather`, `shield`, `wait_for` wrap one) is not
        part of it, and on SQLite waits until it ends, so do not await such a call inside one.
        """

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement (placeholders `?`); return the affected row count."""

    @abc.abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]: ...

    async def execute_unsynced(self, sql: str, *args: Any) -> int:
        """`execute`, committed without waiting for the disk where the backend can: it survives a crash
        of the process at once, and a power cut from the next synced commit on. Default: `execute`."""
        return await self.execute(sql, *args)

    @abc.abstractmethod
    def _is_unique_violation(self, exc: BaseException) -> bool: ...

    @abc.abstractmethod
    async def lease(self, name: str, *, holder: str, expire_s: float | None = None) -> Lease:
        """Take the exclusive lease `name` on this database (every process that opens it sees the same
        one), or raise LeaseHeld. `holder` says who we are, for the message another process gets. Where the
        backend can, a holder that has not checked its lease (`Lease.held`) for `expire_s` loses it: one cut
        off from the database then frees it for the next instead of holding it until the network notices."""

    async def start(self) -> None:
        """Open and migrate (the daemon's component lifecycle)."""
        await self.open()
        await self.migrate()

    async def stop(self) -> None:
        await self.close()

    async def __aenter__(self) -> Self:
        await self.open()
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def fetchone(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    # --- migrations ------------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Apply every migration not yet applied; return the schema version now in force."""
        async with self.transaction():
            await self.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, note TEXT NOT NULL)"
            )
        row = await self.fetchone("SELECT MAX(version) FROM schema_version")
        current = int(row[0]) if row and row[0] is not None else 0
        if current > LATEST:
            raise StoreError(
                f"database schema version {current} is newer than this quantbot knows ({LATEST}); "
                "upgrade quantbot or point it at another database"
            )
        for version, note, statements in MIGRATIONS:
            if version <= current:
                continue
            async with self.transaction():
                for sql in statements:
                    await self.execute(sql)
                await self.execute("INSERT INTO schema_version (version, note) VALUES (?, ?)", version, note)
            current = version
        return current

    # --- order journal ---------------------------------------------------------------------------

    async def journal_order(self, row: OrderRow) -> None:
        """Record a new order durably. Raises DuplicateOrder if its idempotency key exists."""
        try:
            await self.execute(
                "INSERT INTO orders (order_id, idempotency_key, strategy, chain, side, token, amount, notional_usd, "
                "executor, status, tx, reason, detail, intent, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row.order_id,
                row.idempotency_key,
                row.strategy,
                row.chain,
                row.side,
                row.token,
                str(row.amount),
                None if row.notional_usd is None else str(row.notional_usd),
                row.executor,
                row.status,
                row.tx,
                row.reason,
                row.detail,
                row.intent,
                _ts(row.created_at),
                _ts(row.updated_at),
            )
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise DuplicateOrder(f"order with idempotency key {row.idempotency_key!r} already exists") from exc
            raise

    async def set_order_status(
        self,
        order_id: str,
        status: str,
        *,
        now: datetime,
        tx: str | None = None,
        reason: str = "",
        detail: str = "",
    ) -> bool:
        """Move an order forward. False (and no change) if it is unknown or already final."""
        if status not in STATUSES:
            raise ValueError(f"unknown order status {status!r}")
        changed = await self.execute(
            "UPDATE orders SET status = ?, tx = COALESCE(?, tx), reason = ?, detail = ?, updated_at = ? "
            "WHERE order_id = ? AND status NOT IN ('filled', 'failed', 'expired')",
            status,
            tx,
            reason,
            detail,
            _ts(now),
            order_id,
        )
        return changed == 1

    async def set_order_tx(self, order_id: str, tx: str, *, now: datetime) -> bool:
        """Name the transaction of an unfinished order that has none yet (its status and detail unchanged)."""
        changed = await self.execute(
            "UPDATE orders SET tx = ?, updated_at = ? "
            "WHERE order_id = ? AND tx IS NULL AND status NOT IN ('filled', 'failed', 'expired')",
            tx,
            _ts(now),
            order_id,
        )
        return changed == 1

    async def set_order_executor(self, order_id: str, executor: str, *, now: datetime) -> None:
        """Record which executor is about to get the order (reconciliation asks that one)."""
        await self.execute(
            "UPDATE orders SET executor = ?, updated_at = ? WHERE order_id = ? "
            "AND status NOT IN ('filled', 'failed', 'expired')",
            executor,
            _ts(now),
            order_id,
        )

    _ORDER_COLS = (
        "order_id, idempotency_key, strategy, chain, side, token, amount, notional_usd, executor, status, tx, "
        "reason, detail, intent, created_at, updated_at"
    )

    @staticmethod
    def _order(r: Sequence[Any]) -> OrderRow:
        return OrderRow(
            order_id=r[0],
            idempotency_key=r[1],
            strategy=r[2],
            chain=r[3],
            side=r[4],
            token=r[5],
            amount=int(r[6]),
            notional_usd=_dec(r[7]),
            executor=r[8],
            status=r[9],
            tx=r[10],
            reason=r[11],
            detail=r[12],
            intent=r[13],
            created_at=datetime.fromisoformat(r[14]),
            updated_at=datetime.fromisoformat(r[15]),
        )

    async def get_order(self, order_id: str) -> OrderRow | None:
        row = await self.fetchone(f"SELECT {self._ORDER_COLS} FROM orders WHERE order_id = ?", order_id)
        return self._order(row) if row else None

    async def find_order(self, idempotency_key: str) -> OrderRow | None:
        row = await self.fetchone(f"SELECT {self._ORDER_COLS} FROM orders WHERE idempotency_key = ?", idempotency_key)
        return self._order(row) if row else None

    async def unfinished_orders(self) -> list[OrderRow]:
        rows = await self.fetch(
            f"SELECT {self._ORDER_COLS} FROM orders WHERE status NOT IN ('filled', 'failed', 'expired') "
            "ORDER BY created_at, order_id"
        )
        return [self._order(r) for r in rows]

    async def orders(self, *, status: str | None = None) -> list[OrderRow]:
        if status is None:
            rows = await self.fetch(f"SELECT {self._ORDER_COLS} FROM orders ORDER BY created_at, order_id")
        else:
            rows = await self.fetch(
                f"SELECT {self._ORDER_COLS} FROM orders WHERE status = ? ORDER BY created_at, order_id", status
            )
        return [self._order(r) for r in rows]

    # --- fills -----------------------------------------------------------------------------------

    async def record_fill(self, fill: FillRow) -> bool:
        """Record a fill and mark its order filled, atomically. False if the order already has one."""
        async with self.transaction():
            inserted = await self.execute(
                "INSERT INTO fills (order_id, tx, amount_in, amount_out, fee, price_native, filled_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
                fill.order_id,
                fill.tx,
                str(fill.amount_in),
                str(fill.amount_out),
                str(fill.fee),
                None if fill.price_native is None else str(fill.price_native),
                _ts(fill.filled_at),
            )
            if inserted != 1:
                return False
            await self.execute(
                "UPDATE orders SET status = 'filled', tx = ?, updated_at = ? WHERE order_id = ?",
                fill.tx,
                _ts(fill.filled_at),
                fill.order_id,
            )
        return True

    async def fills(self) -> list[FillRow]:
        rows = await self.fetch(
            "SELECT order_id, tx, amount_in, amount_out, fee, price_native, filled_at FROM fills ORDER BY filled_at"
        )
        return [
            FillRow(
                order_id=r[0],
                tx=r[1],
                amount_in=int(r[2]),
                amount_out=int(r[3]),
                fee=int(r[4]),
                price_native=_dec(r[5]),
                filled_at=datetime.fromisoformat(r[6]),
            )
            for r in rows
        ]

    # --- positions -------------------------------------------------------------------------------

    async def put_position(self, p: PositionRow) -> None:
        await self.execute(
            "INSERT INTO positions (chain, token, quantity, cost_native, realised_pnl_native, opened_at, updated_at, "
            "strategy, leader, trip_cost, trip_proceeds, free_quantity) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chain, token) DO UPDATE SET "
            "quantity = excluded.quantity, cost_native = excluded.cost_native, "
            "realised_pnl_native = excluded.realised_pnl_native, opened_at = excluded.opened_at, "
            "updated_at = excluded.updated_at, strategy = excluded.strategy, leader = excluded.leader, "
            "trip_cost = excluded.trip_cost, trip_proceeds = excluded.trip_proceeds, "
            "free_quantity = excluded.free_quantity",
            p.chain,
            p.token,
            str(p.quantity),
            str(p.cost_native),
            str(p.realised_pnl_native),
            _ts(p.opened_at) if p.opened_at else None,
            _ts(p.updated_at),
            p.strategy,
            p.leader,
            None if p.trip_cost is None else str(p.trip_cost),
            str(p.trip_proceeds),
            str(p.free_quantity),
        )

    async def delete_position(self, chain: str, token: str) -> None:
        await self.execute("DELETE FROM positions WHERE chain = ? AND token = ?", chain, token)

    async def positions(self) -> list[PositionRow]:
        rows = await self.fetch(
            "SELECT chain, token, quantity, cost_native, realised_pnl_native, opened_at, updated_at, strategy, leader, "
            "trip_cost, trip_proceeds, free_quantity FROM positions ORDER BY chain, token"
        )
        return [
            PositionRow(
                chain=r[0],
                token=r[1],
                quantity=int(r[2]),
                cost_native=int(r[3]),
                realised_pnl_native=int(r[4]),
                opened_at=_dt(r[5]),
                updated_at=datetime.fromisoformat(r[6]),
                strategy=r[7],
                leader=r[8],
                trip_cost=None if r[9] is None else int(r[9]),
                trip_proceeds=int(r[10] or 0),
                free_quantity=int(r[11] or 0),
            )
            for r in rows
        ]

    # --- small state: trading state, cursors, daily counters -------------------------------------

    async def get_state(self, key: str) -> str | None:
        row = await self.fetchone("SELECT value FROM state WHERE key = ?", key)
        return row[0] if row else None

    async def set_state(self, key: str, value: str, *, now: datetime) -> None:
        await self._upsert("state", "key", key, value, now)

    async def get_cursor(self, name: str) -> str | None:
        row = await self.fetchone("SELECT value FROM cursors WHERE name = ?", name)
        return row[0] if row else None

    async def set_cursor(self, name: str, value: str, *, now: datetime) -> None:
        """A watcher's resumption point. Resuming from an older one re-reads (and dedups or repeats), never
        loses, so it is committed without an fsync of its own where the backend can (`execute_unsynced`)."""
        await self._upsert("cursors", "name", name, value, now, synced=False)

    async def _upsert(
        self, table: str, key_col: str, key: str, value: str, now: datetime, *, synced: bool = True
    ) -> None:
        await (self.execute if synced else self.execute_unsynced)(
            f"INSERT INTO {table} ({key_col}, value, updated_at) VALUES (?, ?, ?) "
            f"ON CONFLICT ({key_col}) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            key,
            value,
            _ts(now),
        )

    async def get_counter(self, day: str, key: str) -> Decimal:
        row = await self.fetchone("SELECT value FROM daily_counters WHERE day = ? AND key = ?", day, key)
        return Decimal(row[0]) if row else Decimal(0)

    _COUNTER_CREATE = (
        "INSERT INTO daily_counters (day, key, value) VALUES (?, ?, '0') ON CONFLICT (day, key) DO NOTHING"
    )
    _COUNTER_READ = "SELECT value FROM daily_counters WHERE day = ? AND key = ?"
    _COUNTER_WRITE = "UPDATE daily_counters SET value = ? WHERE day = ? AND key = ?"

    async def add_counter(self, day: str, key: str, delta: Decimal) -> Decimal:
        """Add to a per-day counter atomically (concurrent adds are never lost); return the new value."""
        async with self.transaction():
            await self.execute(self._COUNTER_CREATE, day, key)
            row = await self.fetchone(self._COUNTER_READ + self.row_lock, day, key)
            assert row is not None  # noqa: S101  (inserted just above, in this transaction)
            value = Decimal(row[0]) + delta
            await self.execute(self._COUNTER_WRITE, str(value), day, key)
        return value

    # --- records: profiles, verdicts, signals (JSON payloads with retention) ---------------------

    async def put_record(self, kind: str, key: str, payload: str, *, now: datetime, synced: bool = True) -> None:
        """Insert or replace one record. `synced=False`: committed without an fsync of its own where the backend can
        (`execute_unsynced`), for state that is rewritten often and whose loss at a power cut costs little."""
        await (self.execute if synced else self.execute_unsynced)(
            "INSERT INTO records (kind, key, payload, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) "
            "DO UPDATE SET payload = excluded.payload, updated_at = excluded.updated_at",
            kind,
            key,
            payload,
            _ts(now),
        )

    async def delete_record(self, kind: str, key: str) -> None:
        await self.execute("DELETE FROM records WHERE kind = ? AND key = ?", kind, key)

    async def get_record(self, kind: str, key: str) -> str | None:
        row = await self.fetchone("SELECT payload FROM records WHERE kind = ? AND key = ?", kind, key)
        return row[0] if row else None

    async def records(self, kind: str) -> AsyncIterator[tuple[str, str]]:
        for key, payload in await self.fetch("SELECT key, payload FROM records WHERE kind = ? ORDER BY key", kind):
            yield key, payload

    async def expire_records(self, kind: str, *, older_than: datetime) -> int:
        """Retention: delete records of `kind` last updated before `older_than`; return how many."""
        return await self.execute("DELETE FROM records WHERE kind = ? AND updated_at < ?", kind, _ts(older_than))
