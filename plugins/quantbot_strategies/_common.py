"""Small helpers the first-party strategies share (they import only quantbot.api)."""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from pathlib import Path
from typing import Generic, Literal, TypeVar

import msgspec

from quantbot.api import NATIVE_TOKEN

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

ChainName = Literal["solana", "aptos"]
SizingHint = Literal["fixed", "equity_pct", "kelly", "copy"]
NATIVE_DECIMALS: dict[str, int] = {"solana": 9, "aptos": 8}
NATIVE_ASSETS: dict[str, frozenset[str]] = {
    "solana": frozenset({NATIVE_TOKEN["solana"], "11111111111111111111111111111111"}),
    "aptos": frozenset({NATIVE_TOKEN["aptos"], "0x" + "a".zfill(64), "0xa"}),
}
"""The names each chain's native coin goes by on a swap's side (wrapped SOL / the system program; the
AptosCoin coin type and its fungible-asset metadata address `0xa`), as the parsers emit them."""


class Bounded(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its least recently written keys beyond `limit` (bounded strategy state)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        if key in self:
            self.move_to_end(key)
        super().__setitem__(key, value)
        while len(self) > self.limit:
            self.popitem(last=False)


def check_bps(name: str, value: int | None) -> None:
    if value is not None and not 0 < value <= 10_000:
        raise ValueError(f"{name} must be between 1 and 10000 basis points, got {value}")


class StateError(Exception):
    """A saved state file exists but cannot be read or decoded."""


async def load_state(path: Path, schema: type[T]) -> T | None:
    """The JSON state saved at `path`, decoded as `schema` (None when nothing was saved yet). Raises StateError."""
    try:
        return msgspec.json.decode(await asyncio.to_thread(path.read_bytes), type=schema)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(f"{path}: {exc}") from exc


async def save_state(path: Path, state: object) -> None:
    """Write `state` as JSON atomically (a temporary file renamed over the old one). Raises OSError."""
    await asyncio.to_thread(_write_atomically, path, msgspec.json.encode(state))


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
