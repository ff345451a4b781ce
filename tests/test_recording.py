"""Recordings: what the recorder writes, what the reader gives back, and how damage is reported."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantbot.bus import EventBus
from quantbot.clock import SimClock
from quantbot.events import OrderIntent, PriceUpdate, Swap, TokenLaunch, Transfer
from quantbot.recording import (
    RawTap,
    ReadStats,
    Recorder,
    RecordingError,
    RecordingWriter,
    read_recording,
    write_recording,
)

GUARD_S = 10.0  # a hang guard, not a speed assertion
T0 = datetime(2026, 3, 1, tzinfo=UTC)
WSOL = "So11111111111111111111111111111111111111112"
TOKEN = "Tok1111111111111111111111111111111111111111"


def swap(i: int, *, amount_out: int = 1_000_000) -> Swap:
    at = T0 + timedelta(seconds=i)
    return Swap(
        chain="solana",
        wallet="W",
        mint_in=WSOL,
        amount_in=10**9,
        mint_out=TOKEN,
        amount_out=amount_out,
        decimals_out=6,
        tx=f"sig{i}",
        slot=100 + i,
        block_time=at,
        id=i + 1,
        ts=at,
    )


def test_written_events_read_back_identical_in_order(tmp_path: Path) -> None:
    events = [swap(i, amount_out=1000 + i) for i in range(25)]
    path = tmp_path / "r.jsonl.gz"
    assert write_recording(path, events, chunk=10) == 25
    got = list(read_recording(path))
    assert [e for _, _, e in got] == events
    assert [t for _, t, _ in got] == [e.ts for e in events]
    assert [n for n, _, _ in got] == list(range(2, 27))  # line 1 is the header


def test_file_is_readable_while_being_written_and_a_torn_tail_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl.gz"
    writer = RecordingWriter(path)
    writer.open(started=T0)
    for i in range(3):
        writer.add_event(swap(i))
    writer.flush()
    writer.add_event(swap(3))  # buffered, not yet on disk
    assert [e.tx for _, _, e in read_recording(path)] == ["sig0", "sig1", "sig2"]
    # A member cut off mid-write (the recorder died in the middle of a flush).
    member = gzip.compress(b'{"t":"2026-03-01T00:00:09+00:00","event":' * 50)
    with path.open("ab") as fh:
        fh.write(member[: len(member) // 2])
    stats = ReadStats()
    assert [e.tx for _, _, e in read_recording(path, stats)] == ["sig0", "sig1", "sig2"]
    assert stats.truncated_tail
    writer.close()


def test_corrupt_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    write_recording(path, [swap(0), swap(1)])
    good = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join([*good, b'{"t":"2026-03-01T00:00:05Z","event":{"type":"Swap"}}\n'])))
    with pytest.raises(RecordingError, match=r"bad\.jsonl\.gz:4: corrupt line: .*missing required field"):
        list(read_recording(path))
    path.write_bytes(gzip.compress(b"".join([good[0], b"not json\n", good[1]])))
    with pytest.raises(RecordingError, match=r":2: corrupt line"):
        list(read_recording(path))


def test_files_that_are_not_recordings_are_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"t": 1}\n')
    with pytest.raises(RecordingError, match="not a gzip recording"):
        list(read_recording(plain))
    other = tmp_path / "other.jsonl.gz"
    other.write_bytes(gzip.compress(b'{"something": "else"}\n'))
    with pytest.raises(RecordingError, match="not a quantbot recording"):
        list(read_recording(other))
    with pytest.raises(RecordingError, match="no such recording"):
        list(read_recording(tmp_path / "missing.gz"))


async def test_recorder_keeps_chain_events_and_raw_input_flushing_on_its_clock(tmp_path: Path) -> None:
    clock = SimClock(T0)
    path = tmp_path / "session.jsonl.gz"
    async with EventBus(clock=clock) as bus:
        rec = Recorder(bus=bus, clock=clock, path=path, flush_interval_s=5.0)
        await rec.start()
        launch = TokenLaunch(chain="solana", mint=TOKEN, source="pumpfun", tx="L")
        transfer = Transfer(chain="aptos", source="0xa", destination="0xb", mint="APT", amount=5, tx="T", slot=1)
        price = PriceUpdate(chain="solana", token=TOKEN, price_native=1, source="swap", observed_at=T0)  # recorded too
        intent = OrderIntent(chain="solana", intent_id="i", strategy="s", side="buy", token=TOKEN, amount=1)
        for event in (swap(0), launch, transfer, price, intent):
            await bus.publish(event)
        rec.raw("solana", "logs", {"signature": "L", "logs": ["Program log: Instruction: Create"]})
        assert await bus.drain(5)
        assert list(read_recording(path)) == []  # nothing flushed yet
        try:
            clock.advance(5.0)  # the flush loop wakes and writes header + 4 events + 1 raw line
            async with asyncio.timeout(GUARD_S):
                while rec.writer.lines < 6:  # noqa: ASYNC110  (the write happens in a thread; no event to await)
                    await asyncio.sleep(0.01)
            stats = ReadStats()
            topics = [e.topic for _, _, e in read_recording(path, stats)]
            assert topics == ["chain.solana.swap", "token.launch", "chain.aptos.transfer", "price.update"]
            assert stats.raw == 1
        finally:
            await rec.stop()


def test_raw_tap_hands_parser_input_to_the_recorder_unchanged(tmp_path: Path) -> None:
    class Parser:
        rejected: dict[str, int] = {}

        def parse_transaction(self, raw: object) -> list[object]:
            return ["parsed", raw]

        def parse_logs(self, **kw: object) -> list[object]:
            return [kw["signature"]]

    class Sink:
        def __init__(self) -> None:
            self.got: list[tuple[str, str, object]] = []

        def raw(self, chain: str, kind: str, data: object) -> None:
            self.got.append((chain, kind, data))

    sink = Sink()
    tap = RawTap(Parser(), chain="solana", recorder=sink)  # type: ignore[arg-type]
    assert tap.parse_transaction(b'{"slot": 5}') == ["parsed", b'{"slot": 5}']
    assert tap.parse_logs(signature="S", slot=1, logs=["x"], err=None, block_time=T0) == ["S"]
    assert tap.rejected == {}
    assert sink.got == [
        ("solana", "transaction", {"slot": 5}),
        ("solana", "logs", {"signature": "S", "slot": 1, "logs": ["x"], "err": None, "block_time": T0.isoformat()}),
    ]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=2**63), st.integers(min_value=0, max_value=2**63), st.text()),
        min_size=1,
        max_size=20,
    )
)
def test_any_swap_survives_the_round_trip(tmp_path: Path, rows: list[tuple[int, int, str]]) -> None:
    events = [
        Swap(
            chain="solana",
            wallet=wallet,
            mint_in=WSOL,
            amount_in=a,
            mint_out=TOKEN,
            amount_out=b,
            tx=f"s{i}",
            slot=i,
            ts=T0 + timedelta(microseconds=i),
            id=i + 1,
        )
        for i, (a, b, wallet) in enumerate(rows)
    ]
    path = tmp_path / "prop.jsonl.gz"
    path.unlink(missing_ok=True)
    write_recording(path, events)
    assert [e for _, _, e in read_recording(path)] == events
