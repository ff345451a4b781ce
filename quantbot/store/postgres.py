"""PostgreSQL store (asyncpg): the same schema and statements as SQLite, `?` placeholders rewritten."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import asyncpg
import structlog

from quantbot.store.base import Lease, LeaseHeld, Store, StoreError

log = structlog.get_logger(component="store")

_conn: ContextVar[asyncpg.Connection | None] = ContextVar("quantbot_pg_conn", default=None)


@lru_cache(maxsize=512)
def _dollar(sql: str) -> str:
    """`?` -> `$1, $2, ...` (our statements never hold a literal question mark)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
_MINE = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
    " AND classid = $1 AND objid = $2 AND objsubid = 1)"
)
_HOLDER = (
    "SELECT a.application_name, a.pid, host(a.client_addr), a.backend_start FROM pg_locks l"
    " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1"
)


def lease_key(name: str) -> int:
    """The 64-bit advisory-lock key of a lease name (stable across processes and versions)."""
    return int.from_bytes(hashlib.blake2b(f"quantbot:{name}".encode(), digest_size=8).digest(), "big", signed=True)


def _halves(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: (classid, objid) = its high and low 32 bits."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


async def _expire_idle_session(conn: asyncpg.Connection, expire_s: float) -> None:
    try:
        await conn.execute(f"SET idle_session_timeout = {max(1, round(expire_s * 1000))}")
    except asyncpg.UndefinedObjectError:  # before PostgreSQL 14
        log.warning("store.lease_without_expiry", detail="idle_session_timeout needs PostgreSQL 14 or later")


class _AdvisoryLease(Lease):
    """A session-level advisory lock on a connection of its own: PostgreSQL drops it with the session,
    so a crashed holder (or one whose connection is gone) never blocks the next one."""

    def __init__(self, conn: asyncpg.Connection, key: int, timeout: float) -> None:
        self._conn = conn
        self._halves = _halves(key)
        self._timeout = timeout

    async def held(self) -> bool:
        if self._conn.is_closed():
            return False
        try:
            return bool(await self._conn.fetchval(_MINE, *self._halves, timeout=self._timeout))
        except _CONNECTION_ERRORS:
            return False

    async def release(self) -> None:
        if self._conn.is_closed():
            return
        try:
            await asyncio.shield(self._conn.close(timeout=self._timeout))  # ending the session drops the lock
        except _CONNECTION_ERRORS:
            self._conn.terminate()


class PostgresStore(Store):
    backend = "postgres"
    row_lock = " FOR UPDATE"

    def __init__(self, dsn: str, *, password: str | None = None, timeout: float = 10.0, pool_size: int = 4) -> None:
        self.dsn = dsn
        self._password = password
        self.timeout = timeout
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                password=self._password,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.timeout,
                command_timeout=self.timeout,
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL ({type(exc).__name__}: {exc})") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if _conn.get() is not None:
            yield  # nested: part of the enclosing transaction
            return
        async with self.pool.acquire() as conn, conn.transaction():
            token = _conn.set(conn)
            try:
                yield
            finally:
                _conn.reset(token)

    async def execute(self, sql: str, *args: Any) -> int:
        conn = _conn.get()
        if conn is not None:
            status = await conn.execute(_dollar(sql), *args)
        else:
            async with self.pool.acquire() as c:
                status = await c.execute(_dollar(sql), *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        conn = _conn.get()
        if conn is not None:
            rows = await conn.fetch(_dollar(sql), *args)
        else:
            async with self.pool.acquire() as c:
                rows = await c.fetch(_dollar(sql), *args)
        return [tuple(r) for r in rows]

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, asyncpg.UniqueViolationError)

    async def lease(self, name: str, *, holder: str, expire_s: float | None = None) -> Lease:
        """A session-level advisory lock in this database (other databases on the server have their own).
        `expire_s` becomes the session's idle_session_timeout (PostgreSQL 14 and later; older servers hold
        the lock of a holder cut off from them until TCP gives up on its connection)."""
        key = lease_key(name)
        try:
            conn = await asyncpg.connect(
                self.dsn,
                password=self._password,
                timeout=self.timeout,
                command_timeout=self.timeout,
                server_settings={"application_name": holder[:63]},  # what another process's message shows
            )
        except _CONNECTION_ERRORS as exc:
            raise StoreError(
                f"cannot connect to PostgreSQL for the {name} lease ({type(exc).__name__}: {exc})"
            ) from exc
        try:
            if expire_s is not None:
                await _expire_idle_session(conn, expire_s)
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                return _AdvisoryLease(conn, key, self.timeout)
            row = await conn.fetchrow(_HOLDER, *_halves(key))
        except BaseException:
            conn.terminate()
            raise
        await conn.close()
        who = "unknown"
        if row is not None:
            app, pid, addr, since = row
            # another role's session may hide its address and start time (pg_read_all_stats shows them)
            who = f"{app or 'no application_name'}, backend pid {pid}"
            who += f", from {addr}" if addr else ""
            who += f", since {since:%Y-%m-%d %H:%M:%S%z}" if since else ""
        raise LeaseHeld(
            f"another quantbot ({who}) holds the {name} lease on this PostgreSQL database; stop it first, "
            "or give this one its own database ([store] postgres_dsn)"
        )
