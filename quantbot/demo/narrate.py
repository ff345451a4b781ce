"""The demo's narrative: one line per notable bus event (plain text, colour on a TTY, or JSON lines)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TextIO

import msgspec

from quantbot.events import (
    Event,
    OrderApproved,
    OrderFailed,
    OrderFilled,
    OrderRejected,
    PositionUpdate,
    TokenAccepted,
    TokenLaunch,
    TokenRejected,
    TokenRugWarning,
    WhaleSignal,
)

TOPICS = ["token.#", "whale.signal", "order.approved", "order.rejected", "order.filled", "order.failed", "position.#"]
COLOURS = {"launch": 36, "accepted": 32, "rejected": 33, "whale": 35, "order": 34, "refused": 31, "fill": 32}
SOL = Decimal(10) ** 9


def sol(lamports: int | Decimal) -> str:
    return f"{Decimal(lamports) / SOL:.4f} SOL"


class Narrator:
    """A bus handler that prints what happens and keeps the counts the closing summary needs."""

    def __init__(self, out: TextIO, *, as_json: bool, colour: bool, names: Callable[[str], str]) -> None:
        self.out = out
        self.as_json = as_json
        self.colour = colour and not as_json
        self.names = names
        self.counts: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.positions: dict[str, PositionUpdate] = {}
        self.orders: dict[str, str] = {}

    async def __call__(self, event: Event) -> None:
        line = self.describe(event)
        if line is None:
            return
        kind, text = line
        self.counts[kind] += 1
        self.emit(kind, text, event)

    def emit(self, kind: str, text: str, event: Event | None = None, **extra: Any) -> None:
        if self.as_json:
            record: dict[str, Any] = {"kind": kind, "text": text, **extra}
            if event is not None:
                record["event"] = msgspec.to_builtins(event)
                record["topic"] = event.topic
            self.out.write(json.dumps(record, default=str) + "\n")
        elif self.colour and kind in COLOURS:
            self.out.write(f"\x1b[{COLOURS[kind]}m{kind:>9}\x1b[0m  {text}\n")
        else:
            self.out.write(f"{kind:>9}  {text}\n")
        self.out.flush()

    def describe(self, e: Event) -> tuple[str, str] | None:
        n = self.names
        if isinstance(e, TokenLaunch):
            return "launch", f"{e.symbol or n(e.mint)} launched by {n(e.creator)} ({e.source}, mint {e.mint})"
        if isinstance(e, TokenAccepted):
            why = "; ".join(v.reason for v in e.verdicts if v.reason)
            return "accepted", f"{n(e.launch.mint)} passed the filters, score {e.score or 0:.2f} ({why})"
        if isinstance(e, TokenRejected):
            failed = [f"{v.filter}: {v.reason}" for v in e.verdicts if not v.passed]
            for v in e.verdicts:
                if not v.passed:
                    self.rejections[f"filter {v.filter}"] += 1
            return "rejected", f"{n(e.launch.mint)} refused by the filters: {'; '.join(failed)}"
        if isinstance(e, TokenRugWarning):
            return "rug", f"{n(e.token)} rug warning ({e.kind}): {e.detail}"
        if isinstance(e, WhaleSignal):
            who = ", ".join(n(w) for w in e.wallets)
            usd = f" (~{e.size_usd:.0f} USD)" if e.size_usd is not None else ""
            return (
                "whale",
                f"{e.kind} signal on {n(e.token)} by {who}: {sol(e.size)}{usd}, confidence {e.confidence:.2f}",
            )
        if isinstance(e, OrderApproved):
            i = e.intent
            self.orders[e.order_id] = f"{i.side} {n(i.token)}"
            amount = sol(i.amount) if i.side == "buy" else str(i.amount)
            why = f" ({i.reason})" if i.reason else ""
            return "order", f"approved {i.strategy}: {i.side} {n(i.token)} for {amount}{why}"
        if isinstance(e, OrderRejected):
            i = e.intent
            self.rejections[f"risk {e.reason}"] += 1
            return "refused", f"risk engine refused {i.strategy}: {i.side} {n(i.token)}: {e.reason} ({e.detail})"
        if isinstance(e, OrderFilled):
            what = self.orders.get(e.order_id, e.order_id)
            return "fill", f"filled {what} via {e.executor}: {e.amount_in} in -> {e.amount_out} out"
        if isinstance(e, OrderFailed):
            self.rejections[f"executor {e.reason}"] += 1
            return "failed", f"order {e.order_id} failed in {e.executor}: {e.reason} ({e.detail})"
        if isinstance(e, PositionUpdate):
            self.positions[e.token] = e
            unreal = f"{sol(e.unrealised_pnl_native)}" if e.unrealised_pnl_native is not None else "n/a"
            return "position", (
                f"{n(e.token)}: holding {e.quantity}, realised {sol(e.realised_pnl_native)}, unrealised {unreal}"
            )
        return None
