"""copy_trade's books and the file they survive a restart in (`<data_dir>/copy_trade.json`).

Saved: each leader's holding of a token as watched from its swaps, the quantity and spend of our
filled copies, and the ids of the leaders' swaps applied most recently (a swap the watchers publish again
after a restart must not count twice). Not saved: orders in flight (their results after a restart are
not ours to count). Files written before `applied` existed load with none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from quantbot_strategies._common import load_state, save_state

STATE_FILE = "copy_trade.json"
Key = tuple[str, str, str]
"""(chain, leader address in its compared form, token)"""


@dataclass
class Holding:
    """This strategy's copies of one leader's token."""

    quantity: int = 0
    """Token base units filled and not sold."""
    spent: int = 0
    """Native base units in copies held or in flight (what max_open caps)."""
    selling: int = 0
    """Token base units in mirrored sells in flight."""
    leader_held: int = 0
    """The leader's holding of the token as watched from its swaps (kept here, not in the bounded map
    of tokens we hold none of, so it is never forgotten while we hold copies)."""


class _State(msgspec.Struct, frozen=True):
    leaders: list[tuple[str, str, str, int]] = []
    """(chain, leader, token, the leader's holding)"""
    own: list[tuple[str, str, str, int, int, int]] = []
    """(chain, leader, token, our quantity, native spent on it, the leader's holding)"""
    applied: list[str] = []
    """Ids of the leaders' swaps applied most recently, oldest first."""


@dataclass
class Books:
    """What `load` found."""

    leaders: dict[Key, int] = field(default_factory=dict)
    own: dict[Key, Holding] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)


async def load(path: Path) -> Books:
    """The saved books (empty when nothing was saved yet). Raises StateError."""
    state = await load_state(path, _State)
    if state is None:
        return Books()
    return Books(
        leaders={(c, w, t): held for c, w, t, held in state.leaders},
        own={(c, w, t): Holding(quantity=q, spent=s, leader_held=h) for c, w, t, q, s, h in state.own},
        applied=state.applied,
    )


async def save(path: Path, leaders: Mapping[Key, int], own: Mapping[Key, Holding], applied: Iterable[str]) -> None:
    """Write the books atomically (a temporary file renamed over the old one). Raises OSError."""
    state = _State(
        leaders=[(*k, v) for k, v in leaders.items() if v > 0],
        own=[(*k, h.quantity, h.spent, h.leader_held) for k, h in own.items() if h.quantity > 0],
        applied=list(applied),
    )
    await save_state(path, state)
