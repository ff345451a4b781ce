"""Subtle pieces of the Solana watch path, checked with generated inputs."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair

from quantbot.chains.solana.rpc import RpcUnavailable, SignatureInfo
from quantbot.chains.solana.wallets import Cursor, RecentSet, WalletActivity
from quantbot.clock import WallClock
from quantbot.events import Event, Transfer
from quantbot.localnet.solana_ledger import SolanaLedger
from quantbot.retry import Backoff
from quantbot.store.sqlite import SqliteStore

ADDRESS = str(Keypair().pubkey())
SIGS = [str(Keypair().sign_message(bytes([i]))) for i in range(40)]


@given(maxlen=st.integers(min_value=1, max_value=8), keys=st.lists(st.integers(min_value=0, max_value=12)))
def test_recent_set_is_bounded_and_reports_exactly_the_repeats_it_still_remembers(maxlen: int, keys: list[int]) -> None:
    recent = RecentSet(maxlen)
    model: list[int] = []  # least recently seen first
    for key in keys:
        expected_new = key not in model
        assert recent.add(key) is expected_new
        if key in model:
            model.remove(key)
        model.append(key)
        del model[:-maxlen]
        assert len(recent) == len(model) <= maxlen
        assert all(k in recent for k in model)


@given(slot=st.integers(min_value=0, max_value=2**63), sig=st.sampled_from(["", *SIGS[:3]]))
def test_cursor_round_trips_through_its_stored_text(slot: int, sig: str) -> None:
    assert Cursor.decode(Cursor(sig, slot).encode()) == Cursor(sig, slot)


def recorded(sig: str, slot: int) -> dict[str, Any]:
    return {
        "slot": slot,
        "blockTime": 1_700_000_000 + slot,
        "transaction": {"signatures": [sig], "message": {"accountKeys": [ADDRESS], "instructions": []}},
        "meta": {"err": None, "logMessages": []},
        "version": "legacy",
    }


@given(
    slots=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=40),
    limit=st.integers(min_value=1, max_value=7),
    until_index=st.none() | st.integers(min_value=0, max_value=39),
)
def test_local_signatures_for_address_pages_newest_first_without_gaps_or_repeats(
    slots: list[int], limit: int, until_index: int | None
) -> None:
    ledger = SolanaLedger(start_slot=0)
    for i, slot in enumerate(sorted(slots)):
        ledger.add_transaction(recorded(SIGS[i], slot))
    newest_first = [SIGS[i] for i in reversed(range(len(slots)))]
    until = SIGS[until_index] if until_index is not None and until_index < len(slots) else None
    expected = newest_first[: newest_first.index(until)] if until else newest_first
    paged: list[str] = []
    before = None
    while True:
        page = ledger.signatures_for(ADDRESS, before=before, until=until, limit=limit)
        paged += [p["signature"] for p in page]
        if len(page) < limit:
            break
        before = page[-1]["signature"]
    assert paged == expected


class FlakyNode:
    """The two RPC calls WalletActivity makes, scripted: `missing` signatures cannot be fetched (and listing history
    fails) until `recover()`. A double for ordering logic only; the watcher tests run the real node."""

    def __init__(self, history: list[tuple[str, int]]) -> None:
        self.history = history  # oldest first
        self.missing: set[str] = set()

    def recover(self) -> None:
        self.missing.clear()

    async def get_transaction(self, signature: str) -> dict[str, Any] | None:
        if signature in self.missing:
            raise RpcUnavailable("every endpoint failed")
        slot = dict(self.history)[signature]
        return recorded(signature, slot)

    async def get_signatures_for_address(
        self, address: str, *, before: str | None = None, until: str | None = None, limit: int | None = None
    ) -> list[SignatureInfo]:
        if self.missing:
            raise RpcUnavailable("every endpoint failed")
        newest_first = [SignatureInfo(signature=s, slot=slot, err=None, block_time=None) for s, slot in self.history]
        newest_first.reverse()
        if until is not None:
            newest_first = newest_first[: [s.signature for s in newest_first].index(until)]
        return newest_first[:limit]


class SignatureParser:
    rejected: Counter[str] = Counter()

    def parse_transaction(self, raw: Any) -> list[Event]:
        sig = raw["transaction"]["signatures"][0]
        return [
            Transfer(chain="solana", source=ADDRESS, destination="d", mint="SOL", amount=1, tx=sig, slot=raw["slot"])
        ]

    def parse_logs(self, **_: Any) -> list[Event]:
        return []


async def test_a_wallet_whose_older_fetch_failed_resumes_from_its_newest_transaction(tmp_path: Path) -> None:
    """The fetch of s1 fails; s2, newer, is published meanwhile; the retry then publishes s1. The cursor must end at
    s2: ending at s1 would publish s2 a second time after a restart."""
    s0, s1, s2 = SIGS[:3]
    node = FlakyNode([(s0, 10), (s1, 11), (s2, 12)])
    node.missing.add(s1)
    published: list[str] = []
    retried = asyncio.Event()

    async def publish(events: Sequence[Event]) -> None:
        published.extend(e.tx for e in events if isinstance(e, Transfer))
        if s1 in published:
            retried.set()

    async with SqliteStore(tmp_path / "q.db") as store:
        name = WalletActivity.cursor_name(ADDRESS)
        await store.set_cursor(name, Cursor(s0, 10).encode(), now=datetime.now(UTC))
        activity = WalletActivity(
            wallets=[ADDRESS],
            rpc=node,  # type: ignore[arg-type]
            parser=SignatureParser(),
            publish=publish,
            store=store,
            clock=WallClock(),
            counters=Counter(),
            retry=Backoff(base=0.001, cap=0.002),
        )
        await activity.start()
        try:
            activity.notify(ADDRESS, s1, 11, None)
            activity.notify(ADDRESS, s2, 12, None)
            async with asyncio.timeout(10):
                await activity.drained()
                assert published == [s2]
                node.recover()
                await retried.wait()
                await activity.drained()  # the hold's release was queued with the retried fetch
        finally:
            await activity.stop()
        assert published == [s2, s1]
        assert await store.get_cursor(name) == Cursor(s2, 12).encode()
