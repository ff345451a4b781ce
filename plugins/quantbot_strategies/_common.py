"""Small helpers the first-party strategies share (they import only quantbot.api)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Literal, TypeVar

from quantbot.api import NATIVE_TOKEN

K = TypeVar("K")
V = TypeVar("V")

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
