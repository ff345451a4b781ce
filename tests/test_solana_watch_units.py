"""Subtle pieces of the Solana watch path, checked with generated inputs."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair

from quantbot.chains.solana.wallets import Cursor, RecentSet
from quantbot.localnet.solana_ledger import SolanaLedger

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
