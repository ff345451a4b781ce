"""EventBus: typed events by dotted topic, one bounded queue and task per subscriber.

A slow or failing subscriber never delays another: each has its own queue, drained by its own
task. Patterns: `*` matches one segment, `#` matches zero or more (`chain.*.swap`, `order.#`).
Overflow is chosen per subscription: `block` gives backpressure to the publisher (the order path),
`drop_oldest` discards and counts. A handler that raises or outlives its timeout is a failure;
after `max_failures` consecutive failures its plugin is disabled and `plugin.disabled` published.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import msgspec
import structlog

from quantbot.clock import Clock
from quantbot.events import Event, PluginDisabled
from quantbot.inbox import Inbox

Handler = Callable[[Event], Awaitable[None]]
DisableListener = Callable[["PluginRef"], None]

log = structlog.get_logger(component="bus")
_replace = msgspec.structs.replace


class Overflow(enum.StrEnum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"


@dataclass(frozen=True, slots=True)
class PluginRef:
    """Names a plugin instance: its entry-point group and its configured id."""

    group: str
    name: str

    def __str__(self) -> str:
        return f"{self.group}:{self.name}"


def compile_pattern(pattern: str) -> tuple[str, ...]:
    """Split and check a topic pattern; `#` may only be the last segment."""
    parts = tuple(pattern.split("."))
    if not pattern or any(not p for p in parts):
        raise ValueError(f"bad topic pattern {pattern!r}: empty segment")
    if "#" in parts[:-1]:
        raise ValueError(f"bad topic pattern {pattern!r}: '#' must be the last segment")
    return parts


def topic_matches(pattern: str | tuple[str, ...], topic: str) -> bool:
    """Whether `topic` falls under `pattern` (`*` one segment, trailing `#` any number)."""
    pat = compile_pattern(pattern) if isinstance(pattern, str) else pattern
    segs = topic.split(".")
    for i, p in enumerate(pat):
        if p == "#":
            return True
        if i >= len(segs) or (p != "*" and p != segs[i]):
            return False
    return len(segs) == len(pat)


@dataclass(slots=True)
class LatencyStats:
    count: int = 0
    total: float = 0.0
    max: float = 0.0


class Lane:
    """What one subscriber handled of one topic: a counter bumped without a dict lookup per event."""

    __slots__ = ("delivered", "key")

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key
        self.delivered = 0


class Route:
    """Where one topic's events go, and how many were published; kept (and retargeted) as subscribers come and go."""

    __slots__ = ("published", "targets")

    def __init__(self, targets: tuple[tuple[Subscription, Lane], ...]) -> None:
        self.targets = targets
        self.published = 0


@dataclass(eq=False, slots=True)
class Subscription:
    name: str
    patterns: tuple[tuple[str, ...], ...]
    handler: Handler
    plugin: PluginRef | None
    overflow: Overflow
    timeout: float
    queue: Inbox[tuple[Event, Lane]]
    active: bool = True
    busy: bool = False
    latency: LatencyStats = field(default_factory=LatencyStats)
    task: asyncio.Task[None] | None = None
    # The handler timeout: one timer per subscriber, re-armed only when it fires (see EventBus._watch).
    started: float = 0.0
    in_handler: bool = False
    expired: bool = False
    watchdog: asyncio.TimerHandle | None = None
    blocking: bool = field(init=False)  # overflow is BLOCK, read per publish

    def __post_init__(self) -> None:
        self.blocking = self.overflow is Overflow.BLOCK


class PluginHealth:
    """Counts consecutive failures per plugin; reports when one crosses the limit."""

    def __init__(self, *, max_failures: int) -> None:
        self.max_failures = max_failures
        self._streak: Counter[PluginRef] = Counter()
        self.disabled: set[PluginRef] = set()

    def success(self, plugin: PluginRef) -> None:
        if self._streak:  # most calls: no plugin is failing, so skip hashing the ref
            self._streak.pop(plugin, None)

    def failure(self, plugin: PluginRef) -> int:
        """Record a failure; return the current streak."""
        self._streak[plugin] += 1
        return self._streak[plugin]


class EventBus:
    """Publish/subscribe by topic pattern. Use as `async with EventBus(...) as bus:`."""

    def __init__(
        self,
        *,
        clock: Clock,
        origin: str = "",
        queue_size: int = 1024,
        handler_timeout: float = 5.0,
        max_failures: int = 5,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        """`redact` scrubs secrets from the free text of the events that carry some (`Event.TEXT`)."""
        self.clock = clock
        self.redact = redact
        self.origin = origin
        self.queue_size = queue_size
        self.handler_timeout = handler_timeout
        self.health = PluginHealth(max_failures=max_failures)
        self._ids = itertools.count(int(clock.now().timestamp() * 1_000_000))
        self._subs: list[Subscription] = []
        self._routes: dict[str, Route] = {}
        self._lanes: dict[tuple[str, str], Lane] = {}  # by (subscriber, topic); outlives its subscription
        self._disable_listeners: list[DisableListener] = []
        self._running = False
        self.dropped: Counter[tuple[str, str]] = Counter()
        self.failed: Counter[tuple[str, str]] = Counter()
        self.overfilled: Counter[tuple[str, str]] = Counter()
        """Events a `block` subscriber's own handler published to it past its full queue (it cannot wait on itself)."""

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> EventBus:
        self._running = True
        for sub in self._subs:
            self._start(sub)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self, drain_timeout: float | None = None) -> bool:
        """Stop every subscriber task; drain first if a timeout is given. True if fully drained."""
        drained = True
        if drain_timeout is not None:
            drained = await self.drain(drain_timeout)
        self._running = False
        tasks = [s.task for s in self._subs if s.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in self._subs:
            s.task = None
        return drained

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109  (a bound, not a cancel scope)
        """Wait until every queue is empty and idle (events published meanwhile included)."""
        try:
            async with asyncio.timeout(timeout):
                while not self.idle:
                    await asyncio.gather(*(s.queue.join() for s in self._subs))
        except TimeoutError:
            log.warning("bus.drain_timeout", pending=self.queue_depths())
            return False
        return True

    # --- subscribing -----------------------------------------------------------------------------

    def subscribe(
        self,
        pattern: str | Sequence[str],
        handler: Handler,
        *,
        name: str,
        plugin: PluginRef | None = None,
        overflow: Overflow | str = Overflow.BLOCK,
        maxsize: int | None = None,
        timeout: float | None = None,
    ) -> Subscription:
        """Deliver events whose topic matches `pattern` (or any of several) to `handler`, in order."""
        patterns = (pattern,) if isinstance(pattern, str) else tuple(pattern)
        if not patterns:
            raise ValueError(f"subscription {name!r} names no topic pattern")
        sub = Subscription(
            name=name,
            patterns=tuple(compile_pattern(p) for p in patterns),
            handler=handler,
            plugin=plugin,
            overflow=Overflow(overflow),
            timeout=self.handler_timeout if timeout is None else timeout,
            queue=Inbox(self.queue_size if maxsize is None else maxsize),
        )
        if plugin is not None and plugin in self.health.disabled:
            sub.active = False
        self._subs.append(sub)
        self._retarget()
        if self._running:
            self._start(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.active = False
        if sub in self._subs:
            self._subs.remove(sub)
            self._retarget()
        if sub.task is not None:
            sub.task.cancel()
        sub.queue.close()  # a publisher waiting for room in its full queue would wait forever

    def on_plugin_disabled(self, listener: DisableListener) -> None:
        """Call `listener(plugin)` when a plugin is disabled for repeated failures."""
        self._disable_listeners.append(listener)

    def _start(self, sub: Subscription) -> None:
        sub.task = asyncio.get_running_loop().create_task(self._consume(sub), name=f"quantbot[bus].{sub.name}")

    # --- publishing ------------------------------------------------------------------------------

    def stamp(self, event: Event) -> Event:
        """Give an event its id, publish time and origin, unless it already has them."""
        if event.id:
            return event
        event = _replace(event, id=next(self._ids), ts=self.clock.now(), origin=event.origin or self.origin)
        return self._scrubbed(event) if event.TEXT else event

    def _scrubbed(self, event: Event) -> Event:
        redact = self.redact
        if redact is None:
            return event
        return _replace(event, **{name: redact(getattr(event, name)) for name in event.TEXT})

    async def publish(self, event: Event) -> Event:
        """Stamp and route an event; waits only on full `block` queues. Returns the stamped event."""
        if not event.id:  # self.stamp(event), inlined: publish is the bus's hottest call
            event = _replace(event, id=next(self._ids), ts=self.clock.now(), origin=event.origin or self.origin)
            if event.TEXT:
                event = self._scrubbed(event)
        topic = event.topic
        route = self._routes.get(topic)
        if route is None:
            route = self._routes[topic] = Route(self._targets(topic))
        route.published += 1
        for sub, lane in route.targets:
            if sub.active:
                item = (event, lane)
                if sub.blocking:
                    if not sub.queue.offer(item):
                        if sub.task is asyncio.current_task():
                            # its own handler publishing to it: waiting for room it alone can make never ends
                            sub.queue.force(item)
                            self.overfilled[lane.key] += 1
                        else:
                            await sub.queue.put(item)
                else:
                    self._put_dropping(sub, item)
        return event

    def _put_dropping(self, sub: Subscription, item: tuple[Event, Lane]) -> None:
        while not sub.queue.offer(item):
            _, old = sub.queue.get_nowait()
            sub.queue.task_done()
            self.dropped[old.key] += 1

    def _targets(self, topic: str) -> tuple[tuple[Subscription, Lane], ...]:
        return tuple(
            (s, self._lane(s.name, topic)) for s in self._subs if any(topic_matches(p, topic) for p in s.patterns)
        )

    def _retarget(self) -> None:
        for topic, route in self._routes.items():
            route.targets = self._targets(topic)

    def _lane(self, subscriber: str, topic: str) -> Lane:
        key = (subscriber, topic)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(key)
        return lane

    # --- delivery and failure --------------------------------------------------------------------

    async def _consume(self, sub: Subscription) -> None:
        inbox, latency = sub.queue, sub.latency
        items, putters = inbox.items, inbox.putters
        done = 0  # items handled but not yet marked done: a joiner can only notice before the next wait
        try:
            while True:
                if not items:
                    if done:
                        inbox.task_done(done)
                        done = 0
                    sub.busy = False
                    await inbox.wait()
                event, lane = items.popleft()  # inbox.get_nowait(), inlined
                sub.busy = True  # (here, not after the wait: also for items queued before the consumer started)
                if putters:
                    inbox.wake_putter()
                try:
                    if not sub.active:
                        continue
                    sub.started = started = perf_counter()
                    if sub.watchdog is None:
                        sub.watchdog = asyncio.get_running_loop().call_later(sub.timeout, self._watch, sub)
                    sub.in_handler = True
                    failure: BaseException | None = None
                    try:
                        await sub.handler(event)
                    except asyncio.CancelledError as exc:
                        sub.in_handler = False
                        if sub.expired:
                            if not self._uncancel(sub):
                                raise
                            failure = TimeoutError(f"handler did not finish within {sub.timeout}s")
                        elif sub.task is not None and sub.task.cancelling():
                            raise  # the subscription itself is being stopped
                        else:
                            failure = exc  # one the handler let out of something it awaited: its failure
                    except Exception as exc:  # noqa: BLE001  (isolation: a handler's error must not escape)
                        failure = exc
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except BaseException as exc:  # noqa: BLE001  (e.g. a Rust panic from a native library)
                        failure = exc
                    sub.in_handler = False
                    if sub.expired:
                        self._uncancel(sub)
                    try:
                        if failure is None:
                            lane.delivered += 1
                            if sub.plugin is not None:
                                self.health.success(sub.plugin)
                        else:
                            self.failed[lane.key] += 1
                            await self.report_failure(sub.plugin, failure, event=event, subscriber=sub.name)
                    finally:
                        took = perf_counter() - started
                        latency.count += 1
                        latency.total += took
                        if took > latency.max:
                            latency.max = took
                finally:
                    done += 1
                if sub.task is not None and sub.task.cancelling():
                    raise asyncio.CancelledError  # a handler swallowed the stop's cancellation: stop anyway
        finally:
            if done:
                inbox.task_done(done)
            sub.busy = sub.in_handler = sub.expired = False
            if sub.watchdog is not None:
                sub.watchdog.cancel()
                sub.watchdog = None

    def _watch(self, sub: Subscription) -> None:
        """The subscriber's timer: cancel a handler past its deadline, else re-arm for the running one.

        Arming asyncio.timeout for each event was most of the bus's cost; instead a subscriber keeps
        one timer, armed at a delivery when none is pending and moved on only when it fires. It runs
        while the consumer task is suspended, so `in_handler` means suspended inside the handler.
        """
        sub.watchdog = None
        if not sub.in_handler or sub.task is None:
            return
        left = sub.started + sub.timeout - perf_counter()
        if left > 0:
            sub.watchdog = asyncio.get_running_loop().call_later(left, self._watch, sub)
        else:
            sub.expired = True
            sub.task.cancel()

    def _uncancel(self, sub: Subscription) -> bool:
        """Take back the watchdog's cancellation; True if no other cancellation is pending (as asyncio.timeout)."""
        sub.expired = False
        assert sub.task is not None  # noqa: S101  (the watchdog only cancels a running consumer)
        return sub.task.uncancel() <= 0

    def report_success(self, plugin: PluginRef) -> None:
        self.health.success(plugin)

    async def report_failure(
        self, plugin: PluginRef | None, exc: BaseException, *, event: Event | None, subscriber: str = ""
    ) -> None:
        """Log a plugin's (or a component's) error with context; disable the plugin past the limit."""
        log.error(
            "bus.handler_failed",
            subscriber=subscriber,
            plugin=str(plugin) if plugin else None,
            topic=event.topic if event is not None else None,
            failed_event=msgspec.to_builtins(event) if event is not None else None,
            exc_info=exc,
        )
        if plugin is None or plugin in self.health.disabled:
            return
        streak = self.health.failure(plugin)
        if streak >= self.health.max_failures:
            await self.disable_plugin(plugin, failures=streak, error=f"{type(exc).__name__}: {exc}")

    async def disable_plugin(self, plugin: PluginRef, *, failures: int, error: str) -> None:
        self.health.disabled.add(plugin)
        for sub in self._subs:
            if sub.plugin == plugin:
                sub.active = False
        log.error("plugin.disabled", plugin=str(plugin), failures=failures, last_error=error)
        for listener in self._disable_listeners:
            listener(plugin)
        await self.publish(PluginDisabled(group=plugin.group, plugin=plugin.name, failures=failures, last_error=error))

    # --- introspection ---------------------------------------------------------------------------

    @property
    def published(self) -> Counter[str]:
        """Events published, by topic."""
        return Counter({topic: route.published for topic, route in self._routes.items() if route.published})

    @property
    def delivered(self) -> Counter[tuple[str, str]]:
        """Events each subscriber handled, by (subscriber, topic)."""
        return Counter({key: lane.delivered for key, lane in self._lanes.items() if lane.delivered})

    @property
    def idle(self) -> bool:
        """No event queued and no handler running."""
        return not any(s.queue.qsize() or s.busy for s in self._subs)

    def subscriptions(self) -> tuple[Subscription, ...]:
        """Every current subscription (replay inspects which are still working)."""
        return tuple(self._subs)

    def queue_depths(self) -> dict[str, int]:
        return {s.name: s.queue.qsize() for s in self._subs}

    def stats(self) -> dict[str, Any]:
        """Counters for metrics and status: per topic and per subscriber."""
        return {
            "published": dict(self.published),
            "delivered": {f"{s}|{t}": n for (s, t), n in self.delivered.items()},
            "dropped": {f"{s}|{t}": n for (s, t), n in self.dropped.items()},
            "failed": {f"{s}|{t}": n for (s, t), n in self.failed.items()},
            "overfilled": {f"{s}|{t}": n for (s, t), n in self.overfilled.items()},
            "queue_depth": self.queue_depths(),
            "latency": {
                s.name: {"count": s.latency.count, "total_s": s.latency.total, "max_s": s.latency.max}
                for s in self._subs
            },
            "disabled_plugins": sorted(str(p) for p in self.health.disabled),
        }
