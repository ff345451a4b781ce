"""CreatorHistory: the launches each creator made that this daemon saw, persisted across restarts.

Kept in the store's `records` table (kind "scanner.creator", key "chain:creator", a JSON list of
[mint, iso time] newest first, capped); read once per creator, then served from memory. Writes go
through the write-behind queue so the scanner's hot path never waits for the database.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
import structlog

from quantbot.clock import Clock
from quantbot.store.base import Store
from quantbot.store.writer import WriteBehind

log = structlog.get_logger(component="scanner.creators")

RECORD_KIND = "scanner.creator"


class _Entry(msgspec.Struct, array_like=True, frozen=True):
    mint: str
    at: datetime


class CreatorHistory:
    def __init__(
        self, *, store: Store | None, writer: WriteBehind | None, clock: Clock, keep: int = 50, max_cached: int = 50_000
    ) -> None:
        self.store = store
        self.writer = writer
        self.clock = clock
        self.keep = keep
        self.max_cached = max_cached
        self._cache: dict[str, list[_Entry]] = {}
        self.read_errors = 0

    async def record(self, chain: str, creator: str, mint: str, at: datetime) -> tuple[datetime, ...]:
        """Remember a launch (idempotent per mint) and queue it for the store.

        Returns when the creator's launches recorded before this one were seen, newest first. In a burst
        judged concurrently each launch counts only those before it, so a limit of N accepts N of them."""
        key = f"{chain}:{creator}"
        entries = await self._load(key)
        index = next((i for i, e in enumerate(entries) if e.mint == mint), None)
        if index is not None:
            return tuple(e.at for e in entries[index + 1 :])
        earlier = tuple(e.at for e in entries)
        entries.insert(0, _Entry(mint, at))
        del entries[self.keep :]
        payload = msgspec.json.encode(entries).decode()
        if self.writer is not None:
            self.writer.enqueue(lambda s: s.put_record(RECORD_KIND, key, payload, now=at))
        elif self.store is not None:
            await self.store.put_record(RECORD_KIND, key, payload, now=at)
        return earlier

    async def _load(self, key: str) -> list[_Entry]:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        entries: list[_Entry] = []
        if self.store is not None:
            try:
                raw = await self.store.get_record(RECORD_KIND, key)
                if raw:
                    entries = list(msgspec.json.decode(raw, type=list[_Entry]))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.read_errors += 1
                log.warning("scanner.creator_record_unreadable", key=key, error=str(exc))
        if len(self._cache) >= self.max_cached:
            self._cache.pop(next(iter(self._cache)))
        self._cache.setdefault(key, entries)
        return self._cache[key]
