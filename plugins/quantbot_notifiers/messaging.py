"""What the message notifiers (telegram, webhook) share: templates, a token bucket, a bounded sender.

`notify()` only renders, rate-limits and queues, so it returns at once and never holds up the bus;
a background task delivers with retries (timeouts, 5xx and 429 with Retry-After, jittered backoff)
and gives up after `max_attempts`, counting what it sent, dropped, suppressed and failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import aiohttp
import msgspec

from quantbot.api import (
    EVENT_TYPES,
    Backoff,
    Event,
    Notifier,
    PluginConfig,
    check_topic_pattern,
    topic_matches,
)

DEFAULT_TOPICS = (
    "order.filled",
    "risk.#",
    "plugin.disabled",
    "watcher.lag",
    "token.rug_warning",
    "report.daily",
)
"""Fills, trading halts and circuit-breaker trips (risk.state), disabled plugins, watcher lag over its
bound, rug warnings and the daily PnL summary."""

EXTRA_FIELDS = ("topic", "type")
"""Names every template may use besides the event's own fields."""

_ENVELOPE = ("id", "ts", "origin")


def _event_fields(cls: type[Event]) -> set[str]:
    return {f.name for f in msgspec.structs.fields(cls)}


def _concrete_topics(cls: type[Event]) -> list[str]:
    return [cls.TOPIC.replace("{chain}", c) for c in ("solana", "aptos")] if "{chain}" in cls.TOPIC else [cls.TOPIC]


def known_fields(pattern: str) -> set[str] | None:
    """Fields every known event under `pattern` has; None when no known event matches it."""
    matching = [cls for cls in EVENT_TYPES if any(topic_matches(pattern, t) for t in _concrete_topics(cls))]
    if not matching:
        return None
    common = set.intersection(*(_event_fields(cls) for cls in matching))
    return common | set(EXTRA_FIELDS)


def check_template(pattern: str, template: str) -> None:
    """Raise ValueError naming the problem unless `template` can render every event under `pattern`."""
    check_topic_pattern(pattern)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"templates.{pattern!r}: not a format string: {exc}") from None
    allowed = known_fields(pattern)
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise ValueError(f"templates.{pattern!r}: use named fields like {{order_id}}, not {{{field}}}")
        parts = field.replace("[", ".").replace("]", "").split(".")
        if any(p.startswith("_") for p in parts):
            raise ValueError(f"templates.{pattern!r}: field {field!r}: private attributes are not allowed")
        if allowed is not None and parts[0] not in allowed:
            raise ValueError(
                f"templates.{pattern!r}: unknown field {parts[0]!r}; events under {pattern!r} have: "
                + ", ".join(sorted(allowed))
            )


class MessagingConfig(PluginConfig, frozen=True, kw_only=True):
    """Parameters shared by message notifiers."""

    topics: Annotated[
        tuple[str, ...], msgspec.Meta(description="topic patterns to send (* one segment, # the rest)")
    ] = DEFAULT_TOPICS
    templates: Annotated[
        dict[str, str],
        msgspec.Meta(description="topic pattern -> str.format template over the event's fields; first match wins"),
    ] = {}
    rate_per_minute: Annotated[float, msgspec.Meta(gt=0, description="messages per minute (token bucket)")] = 20.0
    burst: Annotated[int, msgspec.Meta(ge=1, description="messages that may go at once before the rate applies")] = 5
    queue_size: Annotated[int, msgspec.Meta(ge=1, description="messages waiting for delivery; oldest dropped")] = 100
    timeout_s: Annotated[float, msgspec.Meta(gt=0, description="seconds per delivery attempt")] = 10.0
    max_attempts: Annotated[int, msgspec.Meta(ge=1, description="attempts per message (timeouts, 5xx, 429)")] = 5
    max_retry_wait_s: Annotated[float, msgspec.Meta(gt=0, description="longest wait between attempts")] = 60.0

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("topics: give at least one topic pattern")
        for pattern in self.topics:
            check_topic_pattern(pattern)
        for pattern, template in self.templates.items():
            check_template(pattern, template)


class TokenBucket:
    """`rate` tokens per second up to `burst`; time from the given monotonic clock."""

    def __init__(self, *, rate: float, burst: int, now: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._now = now
        self._tokens = float(burst)
        self._at = now()

    def take(self) -> bool:
        t = self._now()
        self._tokens = min(float(self.burst), self._tokens + (t - self._at) * self.rate)
        self._at = t
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one delivery attempt went: delivered, or whether (and after how long) to try again."""

    ok: bool
    retry: bool = False
    wait: float | None = None
    detail: str = ""


class _Renderer(string.Formatter):
    def __init__(self, escape: Callable[[str], str]) -> None:
        self.escape = escape

    def format_field(self, value: Any, format_spec: str) -> str:
        return self.escape(super().format_field(value, format_spec))


def _plain(value: Any) -> str:
    if isinstance(value, msgspec.Struct):
        return msgspec.json.encode(value).decode()
    return str(value)


class MessageNotifier(Notifier):
    """Base of notifiers that deliver text somewhere; subclasses implement `deliver(text, event)`."""

    Config: ClassVar[type[MessagingConfig]] = MessagingConfig
    config: MessagingConfig

    def escape(self, text: str) -> str:
        """Make a field value safe inside the message markup (plain text: unchanged)."""
        return text

    async def deliver(self, text: str, event: Event) -> Attempt:
        raise NotImplementedError

    async def open(self) -> None:
        """Open the client session (called by start)."""

    async def close(self) -> None:
        """Close it (called by stop)."""

    def topics(self) -> tuple[str, ...]:
        return self.config.topics

    def __init__(self, *, id: str, config: PluginConfig) -> None:
        super().__init__(id=id, config=config)
        self.counts = {"sent": 0, "suppressed": 0, "dropped": 0, "failed": 0, "render_errors": 0}
        self._pending_suppressed = 0
        self._queue: asyncio.Queue[tuple[str, Event]] = asyncio.Queue(maxsize=self.config.queue_size)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._bucket = self._new_bucket()
        await self.open()
        self._task = asyncio.get_running_loop().create_task(self._send_loop(), name=f"quantbot[notify.{self.id}].send")

    def _new_bucket(self) -> TokenBucket:
        return TokenBucket(rate=self.config.rate_per_minute / 60, burst=self.config.burst, now=self.env.clock.monotonic)

    def reconfigure(self, config: PluginConfig) -> None:
        super().reconfigure(config)
        self._bucket = self._new_bucket()

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(2.0, self.config.timeout_s)):
                await self._queue.join()  # a short grace for what is already queued
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.close()

    def stats(self) -> dict[str, int]:
        return dict(self.counts) | {"queued": self._queue.qsize()}

    # --- notify: render, limit, queue (never waits) ----------------------------------------------

    async def notify(self, event: Event) -> None:
        if not self._bucket.take():
            self.counts["suppressed"] += 1
            self._pending_suppressed += 1
            return
        text = self.render(event)
        if self._pending_suppressed:
            text += f"\n(+{self._pending_suppressed} more suppressed by the rate limit)"
            self._pending_suppressed = 0
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            self.counts["dropped"] += 1
        self._queue.put_nowait((text, event))

    def render(self, event: Event) -> str:
        fields = self._fields(event)
        for pattern, template in self.config.templates.items():
            if topic_matches(pattern, event.topic):
                try:
                    return _Renderer(self.escape).vformat(template, (), fields)
                except (KeyError, AttributeError, IndexError, ValueError, TypeError) as exc:
                    self.counts["render_errors"] += 1
                    self.log.warning("notify.template_failed", topic=event.topic, pattern=pattern, error=repr(exc))
                break
        body = ", ".join(f"{k}={_plain(v)}" for k, v in fields.items() if k not in (*_ENVELOPE, *EXTRA_FIELDS))
        return f"{self.escape(event.topic)}: {self.escape(body)}"

    @staticmethod
    def _fields(event: Event) -> Mapping[str, Any]:
        values = {f: getattr(event, f) for f in msgspec.structs.asdict(event)}
        return values | {"topic": event.topic, "type": type(event).__name__}

    # --- delivery: retries in the background -----------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            text, event = await self._queue.get()
            try:
                await self._send(text, event)
            except Exception as exc:
                self.counts["failed"] += 1
                self.log.error("notify.failed", topic=event.topic, event_id=event.id, exc_info=exc)
            finally:
                self._queue.task_done()

    async def _send(self, text: str, event: Event) -> None:
        backoff = Backoff(base=0.5, cap=self.config.max_retry_wait_s)
        result = Attempt(ok=False)
        for attempt in range(self.config.max_attempts):
            try:
                async with asyncio.timeout(self.config.timeout_s):
                    result = await self.deliver(text, event)
            except TimeoutError:
                result = Attempt(ok=False, retry=True, detail=f"timed out after {self.config.timeout_s}s")
            except (aiohttp.ClientError, OSError) as exc:  # never the exception text: it may hold the URL
                result = Attempt(ok=False, retry=True, detail=type(exc).__name__)
            if result.ok:
                self.counts["sent"] += 1
                return
            if not result.retry or attempt + 1 == self.config.max_attempts:
                break
            wait = result.wait if result.wait is not None else backoff.delay(attempt)
            self.log.warning(
                "notify.retrying", topic=event.topic, attempt=attempt + 1, wait_s=wait, detail=result.detail
            )
            await self.env.clock.sleep(min(wait, self.config.max_retry_wait_s))
        self.counts["failed"] += 1
        self.log.error("notify.failed", topic=event.topic, event_id=event.id, detail=result.detail)
