"""PostgreSQL store (asyncpg): the same schema and statements as SQLite, `?` placeholders rewritten."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import asyncpg

from quantbot.store.base import Store, StoreError

_conn: ContextVar[asyncpg.Connection | None] = ContextVar("quantbot_pg_conn", default=None)


@lru_cache(maxsize=512)
def _dollar(sql: str) -> str:
    """`?` -> `$1, $2, ...` (our statements never hold a literal question mark)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


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
