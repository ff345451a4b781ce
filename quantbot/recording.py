"""Recordings: chain-level events (and the raw transactions they came from) as gzip JSON lines.

File format, one JSON object per line, in a gzip stream made of one gzip *member* per flush (members
concatenate into one valid gzip file), so a reader sees only whole lines even while the file grows:

    {"recording": "quantbot", "version": 1, "started": "<iso>", "instance": "..."}     first line
    {"t": "<iso>", "event": {<quantbot.events JSON, tagged by "type">}}                  an event
    {"t": "<iso>", "raw": {"chain": "solana", "kind": "transaction"|"logs", "data": ...}} raw input

`t` is the recorder's clock when the event was published (the event's bus timestamp). Replay reads
the events in file order; raw lines are kept for inspection and re-parsing, not replayed.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec
import structlog

from quantbot.bus import EventBus, Overflow
from quantbot.clock import Clock
from quantbot.events import AnyEvent, Event, encode

log = structlog.get_logger(component="recorder")

FORMAT = "quantbot"
VERSION = 1
RECORDED_TOPICS = (
    "chain.*.swap",
    "chain.*.transfer",
    "chain.*.pump_trade",
    "chain.*.account",
    "token.launch",
    "price.update",
)
"""What a recording holds: the chain-level inputs of the pipeline, and the prices seen live."""


class RecordingError(ValueError):
    """A recording that cannot be read: names the file, the line and what is wrong."""


class Line(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One decoded line: a header (`recording` set), an event, or a raw input."""

    t: datetime | None = None
    event: AnyEvent | None = None
    raw: msgspec.Raw = msgspec.Raw()
    """Undecoded: empty unless the line is a raw input."""
    recording: str | None = None
    version: int | None = None


_line_decoder = msgspec.json.Decoder(Line)
_json = msgspec.json.Encoder(decimal_format="string")


class RecordingWriter:
    """Appends lines to a gzip JSON-lines file; `flush()` writes the buffer as one complete gzip member."""

    def __init__(self, path: Path, *, compresslevel: int = 6) -> None:
        self.path = path
        self.compresslevel = compresslevel
        self._buffer: list[bytes] = []
        self._fh: IO[bytes] | None = None
        self.lines = 0
        self.bytes_written = 0

    def open(self, *, started: datetime, instance: str = "") -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")
        header = {"recording": FORMAT, "version": VERSION, "started": started.isoformat(), "instance": instance}
        self.write([_json.encode(header) + b"\n"])  # at once: a reader can tell the file is a recording

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def add_event(self, event: Event) -> None:
        self._buffer.append(b'{"t":"' + event.ts.isoformat().encode() + b'","event":' + encode(event) + b"}\n")

    def add_raw(self, *, at: datetime, chain: str, kind: str, data: object) -> None:
        body = _json.encode({"chain": chain, "kind": kind, "data": data})
        self._buffer.append(b'{"t":"' + at.isoformat().encode() + b'","raw":' + body + b"}\n")

    def take(self) -> list[bytes]:
        """Hand over the buffered lines (for a flush off the event loop)."""
        out, self._buffer = self._buffer, []
        return out

    def write(self, lines: Sequence[bytes]) -> None:
        """Compress `lines` into one gzip member and append it (blocking; run in a thread)."""
        if not lines or self._fh is None:
            return
        member = gzip.compress(b"".join(lines), compresslevel=self.compresslevel, mtime=0)
        self._fh.write(member)
        self._fh.flush()
        self.lines += len(lines)
        self.bytes_written += len(member)

    def flush(self) -> None:
        self.write(self.take())

    def close(self) -> None:
        self.flush()
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Recorder:
    """Component "recorder": writes RECORDED_TOPICS and raw inputs to `path`, flushed every `flush_interval_s`."""

    name = "recorder"

    def __init__(
        self,
        *,
        bus: EventBus,
        clock: Clock,
        path: Path,
        flush_interval_s: float = 5.0,
        max_buffer_lines: int = 10_000,
        queue_size: int = 100_000,
        raw: bool = True,
        instance: str = "",
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.writer = RecordingWriter(path)
        self.flush_interval_s = flush_interval_s
        self.max_buffer_lines = max_buffer_lines
        self.queue_size = queue_size
        self.record_raw = raw
        self.instance = instance
        self.events = 0
        self.raws = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.writer.open(started=self.clock.now(), instance=self.instance)
        # Dropping (counted on the bus) rather than blocking: a slow disk must never stall the watchers.
        self.bus.subscribe(
            list(RECORDED_TOPICS),
            self._on_event,
            name="recorder",
            overflow=Overflow.DROP_OLDEST,
            maxsize=self.queue_size,
        )
        self._task = asyncio.get_running_loop().create_task(self._flush_loop(), name="quantbot[recorder].flush")
        log.info("recorder.started", path=str(self.writer.path))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        async with self._lock:
            await asyncio.to_thread(self.writer.close)
        log.info("recorder.stopped", path=str(self.writer.path), events=self.events, raw=self.raws)
        if self.dropped:
            log.warning("recorder.dropped", path=str(self.writer.path), events=self.dropped, fix="a faster disk")

    @property
    def dropped(self) -> int:
        """Events the bus discarded because the recorder's queue was full (the recording misses them)."""
        return sum(n for (sub, _topic), n in self.bus.dropped.items() if sub == self.name)

    def stats(self) -> dict[str, Any]:
        return {"events": self.events, "raw": self.raws, "lines_written": self.writer.lines, "dropped": self.dropped}

    def raw(self, chain: str, kind: str, data: object) -> None:
        """The watchers' hook: keep one raw input (a transaction, a logs notification) as received."""
        if not self.record_raw:
            return
        self.writer.add_raw(at=self.clock.now(), chain=chain, kind=kind, data=data)
        self.raws += 1

    async def _on_event(self, event: Event) -> None:
        self.writer.add_event(event)
        self.events += 1
        if self.writer.buffered >= self.max_buffer_lines:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            lines = self.writer.take()
            if lines:
                await asyncio.to_thread(self.writer.write, lines)

    async def _flush_loop(self) -> None:
        while True:
            await self.clock.sleep(self.flush_interval_s)
            try:
                await self.flush()
            except OSError as exc:
                log.error("recorder.write_failed", path=str(self.writer.path), error=str(exc))


class RawTap:
    """Wraps a chain parser so every raw input it is handed also reaches the recorder (only built when recording)."""

    def __init__(self, parser: Any, *, chain: str, recorder: Recorder) -> None:
        self._parser = parser
        self._chain = chain
        self._recorder = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def parse_transaction(self, raw: Any) -> Any:
        data = msgspec.json.decode(raw) if isinstance(raw, bytes | str) else raw
        self._recorder.raw(self._chain, "transaction", data)
        return self._parser.parse_transaction(raw)

    def parse_logs(self, **kw: Any) -> Any:
        data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in kw.items()}
        self._recorder.raw(self._chain, "logs", data)
        return self._parser.parse_logs(**kw)


# --- reading ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ReadStats:
    lines: int = 0
    events: int = 0
    raw: int = 0
    offset: int = 0
    """Compressed bytes read so far (for progress)."""
    truncated_tail: bool = False


def read_recording(path: Path, stats: ReadStats | None = None) -> Iterator[tuple[int, datetime, Event]]:
    """Yield (line number, time, event) in file order; raw lines are skipped (counted in `stats`).

    A corrupt line raises RecordingError naming the file and line (a replay must not silently differ from
    what was recorded). A torn tail (the file was being written, or the recorder died mid-flush) ends the
    recording there: `stats.truncated_tail` is set and a warning logged.
    """
    stats = stats if stats is not None else ReadStats()
    n = 0
    try:
        with path.open("rb") as compressed, gzip.GzipFile(fileobj=compressed, mode="rb") as fh:
            for n, text in enumerate(_lines(fh, stats), 1):
                stats.lines = n
                if n % 1000 == 0:
                    stats.offset = compressed.tell()
                try:
                    line = _line_decoder.decode(text)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise RecordingError(f"{path}:{n}: corrupt line: {exc}") from None
                if n == 1:
                    _check_header(path, line)
                    continue
                if line.event is not None:
                    if line.t is None:
                        raise RecordingError(f"{path}:{n}: event line without a time (t)")
                    stats.events += 1
                    yield n, line.t, line.event
                elif len(line.raw):
                    stats.raw += 1
                else:
                    raise RecordingError(f"{path}:{n}: line holds neither an event nor a raw input")
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such recording") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise RecordingError(f"{path}: not a gzip recording, or damaged after line {n}: {exc}") from None
    if n == 0:
        raise RecordingError(f"{path}: empty recording (no header line)")


def _lines(fh: Iterable[bytes], stats: ReadStats) -> Iterator[bytes]:
    try:
        for text in fh:
            if not text.endswith(b"\n"):
                stats.truncated_tail = True
                log.warning("recording.truncated_tail", reason="last line incomplete")
                return
            yield text
    except EOFError:
        stats.truncated_tail = True
        log.warning("recording.truncated_tail", reason="last gzip member incomplete")


def _check_header(path: Path, line: Line) -> None:
    if line.recording != FORMAT:
        raise RecordingError(f'{path}:1: not a quantbot recording (the first line must be {{"recording": "quantbot"}})')
    if line.version != VERSION:
        raise RecordingError(f"{path}:1: recording format version {line.version}; this quantbot reads {VERSION}")


def header_of(path: Path) -> Mapping[str, Any]:
    """The first line of a recording, as a dict."""
    with gzip.open(path, "rb") as fh:
        first = fh.readline()
    out: dict[str, Any] = msgspec.json.decode(first)
    return out


def write_recording(path: Path, events: Iterable[Event], *, instance: str = "", chunk: int = 10_000) -> int:
    """Write already-stamped events (their `ts` is the recording time) as a recording; returns the count.

    For tests, benchmarks and tools that build recordings without a running daemon.
    """
    writer = RecordingWriter(path)
    started: datetime | None = None
    count = 0
    for event in events:
        if started is None:
            started = event.ts
            writer.open(started=started, instance=instance)
        writer.add_event(event)
        count += 1
        if writer.buffered >= chunk:
            writer.flush()
    if started is None:
        writer.open(started=datetime.now(UTC), instance=instance)
    writer.close()
    return count
