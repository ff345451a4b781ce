"""EventBus: pattern routing, isolation of slow and failing subscribers, overflow, disabling, drain."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.bus import EventBus, Overflow, PluginRef, topic_matches
from quantbot.clock import SimClock
from quantbot.events import Event, OrderFailed, OrderRejected, PluginDisabled, RejectReason
from quantbot.secrets import REDACTED, Redactor
from quantbot.testing import order_intent, swap, token_launch


def make_bus(**kw: object) -> EventBus:
    return EventBus(clock=SimClock(), origin="test", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("chain.*.swap", "chain.solana.swap", True),
        ("chain.*.swap", "chain.aptos.swap", True),
        ("chain.*.swap", "chain.solana.transfer", False),
        ("chain.*.swap", "chain.solana.swap.extra", False),
        ("order.#", "order.filled", True),
        ("order.#", "order", True),
        ("order.#", "orders.filled", False),
        ("#", "anything.at.all", True),
        ("token.launch", "token.launch", True),
        ("token.launch", "token.launched", False),
    ],
)
def test_topic_patterns(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected


@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=5))
def test_pattern_equal_to_topic_matches_and_hash_matches_everything(segments: list[str]) -> None:
    topic = ".".join(segments)
    assert topic_matches(topic, topic)
    assert topic_matches("#", topic)
    assert topic_matches(".".join(["*"] * len(segments)), topic)
    assert not topic_matches(".".join(["*"] * (len(segments) + 1)), topic)


@pytest.mark.parametrize("bad", ["", "a..b", "a.#.b"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="bad topic pattern"):
        topic_matches(bad, "a.b")


async def test_publish_stamps_monotonic_ids_time_and_origin() -> None:
    async with make_bus() as bus:
        a = await bus.publish(token_launch())
        b = await bus.publish(token_launch())
    assert 0 < a.id < b.id
    assert a.origin == "test"
    assert a.ts == bus.clock.now()
    again = bus.stamp(a)
    assert again is a, "an already stamped event (e.g. from another host) keeps its id"


async def test_events_reach_matching_subscribers_in_order() -> None:
    got: list[Event] = []

    async def handler(e: Event) -> None:
        got.append(e)

    async with make_bus() as bus:
        bus.subscribe("chain.*.swap", handler, name="swaps")
        sent = [await bus.publish(swap(slot=i)) for i in range(5)]
        await bus.publish(token_launch())
        await bus.drain(5)
    assert got == sent


async def test_slow_subscriber_does_not_delay_another() -> None:
    release = asyncio.Event()
    fast: list[Event] = []

    async def slow(e: Event) -> None:
        await release.wait()

    async def quick(e: Event) -> None:
        fast.append(e)

    async with make_bus(handler_timeout=60) as bus:
        bus.subscribe("token.launch", slow, name="slow", overflow=Overflow.DROP_OLDEST, maxsize=2)
        bus.subscribe("token.launch", quick, name="quick")
        for _ in range(10):
            await bus.publish(token_launch())
        for _ in range(100):
            if len(fast) == 10:
                break
            await asyncio.sleep(0)
        assert len(fast) == 10, "the quick subscriber got everything while the slow one was stuck"
        release.set()
        await bus.drain(5)


async def test_drop_oldest_keeps_newest_and_counts_drops() -> None:
    seen: list[int] = []
    gate = asyncio.Event()

    async def handler(e: Event) -> None:
        await gate.wait()
        assert isinstance(e, Event)
        seen.append(e.id)

    async with make_bus(handler_timeout=60) as bus:
        bus.subscribe("token.launch", handler, name="lossy", overflow="drop_oldest", maxsize=3)
        await asyncio.sleep(0)
        sent = [await bus.publish(token_launch()) for _ in range(10)]
        await asyncio.sleep(0)
        gate.set()
        await bus.drain(5)
    # One event was taken by the handler before the flood; the queue kept the newest three.
    assert seen[-3:] == [e.id for e in sent[-3:]]
    assert bus.dropped[("lossy", "token.launch")] == 10 - len(seen)


async def test_block_overflow_applies_backpressure_without_loss() -> None:
    gate = asyncio.Event()
    seen: list[Event] = []

    async def handler(e: Event) -> None:
        await gate.wait()
        seen.append(e)

    async with make_bus(handler_timeout=60) as bus:
        bus.subscribe("order.#", handler, name="orders", overflow=Overflow.BLOCK, maxsize=2)
        publisher = asyncio.create_task(_publish_n(bus, 6))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not publisher.done(), "the publisher waits while the queue is full"
        gate.set()
        await publisher
        await bus.drain(5)
    assert len(seen) == 6
    assert not bus.dropped


async def test_unsubscribing_a_full_block_subscriber_releases_a_waiting_publisher() -> None:
    async def stuck(e: Event) -> None:
        await asyncio.Event().wait()

    seen: list[Event] = []

    async def other(e: Event) -> None:
        seen.append(e)

    async with make_bus(handler_timeout=60) as bus:
        sub = bus.subscribe("order.#", stuck, name="stuck", overflow=Overflow.BLOCK, maxsize=1)
        bus.subscribe("order.#", other, name="other", overflow=Overflow.BLOCK)
        publisher = asyncio.create_task(_publish_n(bus, 4))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not publisher.done(), "one in the handler, one queued: the third waits"
        draining = asyncio.create_task(bus.drain(5))
        await asyncio.sleep(0)
        bus.unsubscribe(sub)
        await asyncio.wait_for(publisher, 1)
        assert await asyncio.wait_for(draining, 1), "a drain under way does not wait for the gone subscriber"
    assert len(seen) == 4, "the other subscriber still gets every event"


async def test_a_handler_publishing_to_its_own_full_queue_does_not_wait_on_itself() -> None:
    from quantbot.testing import order_intent

    seen: list[str] = []

    async def echo(e: Event) -> None:
        seen.append(e.intent_id)  # type: ignore[attr-defined]
        if e.intent_id == "0":  # type: ignore[attr-defined]
            for i in range(1, 4):  # its queue holds 1: the second publish would wait for this very handler
                await bus.publish(order_intent(intent_id=str(i)))

    async with make_bus(handler_timeout=60) as bus:
        bus.subscribe("order.#", echo, name="echo", overflow=Overflow.BLOCK, maxsize=1)
        await bus.publish(order_intent(intent_id="0"))
        assert await bus.drain(5), "no deadlock"
    assert seen == ["0", "1", "2", "3"]
    assert bus.stats()["overfilled"] == {"echo|order.intent": 2}


async def _publish_n(bus: EventBus, n: int) -> None:
    from quantbot.testing import order_intent

    for i in range(n):
        await bus.publish(order_intent(intent_id=str(i)))


async def test_failing_plugin_is_disabled_after_n_consecutive_failures() -> None:
    disabled: list[Event] = []
    calls = 0

    async def boom(e: Event) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("plugin bug")

    async def watch(e: Event) -> None:
        disabled.append(e)

    ref = PluginRef("strategies", "buggy")
    async with make_bus(max_failures=3) as bus:
        heard: list[PluginRef] = []
        bus.on_plugin_disabled(heard.append)
        bus.subscribe("token.launch", boom, name="strategies.buggy", plugin=ref)
        bus.subscribe("plugin.disabled", watch, name="watcher")
        for _ in range(5):
            await bus.publish(token_launch())
        await bus.drain(5)
    assert calls == 3, "no event reaches a disabled plugin"
    assert heard == [ref]
    (event,) = disabled
    assert isinstance(event, PluginDisabled)
    assert (event.group, event.plugin, event.failures) == ("strategies", "buggy", 3)
    assert event.last_error == "RuntimeError: plugin bug"
    assert bus.failed[("strategies.buggy", "token.launch")] == 3


async def test_text_that_may_quote_an_exception_leaves_the_bus_with_secrets_scrubbed() -> None:
    """Notifiers (Telegram, webhooks), the MQTT bridge and recordings take events from the bus: an exception text
    quoting an RPC URL with its API key in it must not reach them."""
    key = "k3y-0f-the-rpc-provider"
    url = f"https://rpc.example/?api-key={key}"
    seen: list[Event] = []

    async def boom(e: Event) -> None:
        raise RuntimeError(f"GET {url}: 503")

    async def watch(e: Event) -> None:
        seen.append(e)

    async with make_bus(max_failures=1, redact=Redactor([key]).scrub) as bus:
        bus.subscribe("token.launch", boom, name="strategies.buggy", plugin=PluginRef("strategies", "buggy"))
        bus.subscribe(["plugin.disabled", "order.#"], watch, name="notifier")
        await bus.publish(token_launch())
        failed = await bus.publish(OrderFailed(order_id="o", executor="jupiter", reason="x", detail=f"{url} down"))
        await bus.publish(OrderRejected(intent=order_intent(), reason=RejectReason.RISK_ERROR, detail=f"{key}!"))
        await bus.drain(5)
    (disabled,) = [e for e in seen if isinstance(e, PluginDisabled)]
    (failed_seen,) = [e for e in seen if isinstance(e, OrderFailed)]
    (rejected,) = [e for e in seen if isinstance(e, OrderRejected)]
    assert disabled.last_error == f"RuntimeError: GET https://rpc.example/?api-key={REDACTED}: 503"
    assert failed_seen.detail == f"https://rpc.example/?api-key={REDACTED} down"
    assert failed == failed_seen, "publish returns what the subscribers got"
    assert rejected.detail == f"{REDACTED}!"


async def test_a_success_resets_the_failure_streak() -> None:
    outcomes = iter([True, True, False, True, True, False, True, True])

    async def flaky(e: Event) -> None:
        if next(outcomes):
            raise RuntimeError("flaky")

    ref = PluginRef("notifiers", "flaky")
    async with make_bus(max_failures=3) as bus:
        bus.subscribe("token.launch", flaky, name="flaky", plugin=ref)
        for _ in range(8):
            await bus.publish(token_launch())
        await bus.drain(5)
    assert ref not in bus.health.disabled


async def test_hanging_handler_times_out_and_counts_as_failure(capsys: pytest.CaptureFixture[str]) -> None:
    after: list[Event] = []

    async def hang(e: Event) -> None:
        if not after:
            after.append(e)
            await asyncio.sleep(3600)
        after.append(e)

    ref = PluginRef("strategies", "sleepy")
    async with make_bus(handler_timeout=0.05, max_failures=2) as bus:
        bus.subscribe("token.launch", hang, name="sleepy", plugin=ref)
        await bus.publish(token_launch())
        await bus.publish(token_launch())
        await bus.drain(5)
    assert bus.failed[("sleepy", "token.launch")] == 1
    assert len(after) == 2, "the next event is handled after the hung one is abandoned"
    assert ref not in bus.health.disabled


async def test_failure_log_names_plugin_and_event() -> None:
    from structlog.testing import capture_logs

    async def boom(e: Event) -> None:
        raise ValueError("bad input")

    with capture_logs() as logs:
        async with make_bus() as bus:
            bus.subscribe("token.launch", boom, name="filters.x", plugin=PluginRef("filters", "x"))
            sent = await bus.publish(token_launch(mint="MintXYZ"))
            await bus.drain(5)
    (entry,) = [entry for entry in logs if entry["event"] == "bus.handler_failed"]
    assert entry["plugin"] == "filters:x"
    assert entry["topic"] == "token.launch"
    assert entry["failed_event"]["mint"] == "MintXYZ"
    assert entry["failed_event"]["id"] == sent.id
    assert isinstance(entry["exc_info"], ValueError)


async def test_drain_waits_for_cascaded_events() -> None:
    from quantbot.testing import order_intent

    got: list[Event] = []

    async def relay(e: Event) -> None:
        await asyncio.sleep(0.01)
        await bus.publish(order_intent())

    async def sink(e: Event) -> None:
        await asyncio.sleep(0.01)
        got.append(e)

    async with make_bus() as bus:
        bus.subscribe("token.launch", relay, name="relay")
        bus.subscribe("order.intent", sink, name="sink")
        for _ in range(3):
            await bus.publish(token_launch())
        assert await bus.drain(5)
        assert len(got) == 3


async def test_drain_reports_timeout_when_a_subscriber_is_stuck() -> None:
    async def stuck(e: Event) -> None:
        await asyncio.sleep(3600)

    async with make_bus(handler_timeout=3600) as bus:
        bus.subscribe("token.launch", stuck, name="stuck")
        await bus.publish(token_launch())
        assert await bus.drain(0.05) is False


async def test_stats_report_counters_depth_and_latency() -> None:
    async def ok(e: Event) -> None:
        pass

    async with make_bus() as bus:
        bus.subscribe("chain.#", ok, name="all_chain")
        await bus.publish(swap())
        await bus.publish(swap(chain="aptos"))
        await bus.drain(5)
        stats = bus.stats()
    assert stats["published"] == {"chain.solana.swap": 1, "chain.aptos.swap": 1}
    assert stats["delivered"] == {"all_chain|chain.solana.swap": 1, "all_chain|chain.aptos.swap": 1}
    assert stats["queue_depth"] == {"all_chain": 0}
    assert stats["latency"]["all_chain"]["count"] == 2


async def test_a_handler_that_suspends_gets_its_awaited_results_and_errors_and_finishes() -> None:
    loop = asyncio.get_running_loop()
    seen: list[object] = []

    async def waits(e: Event) -> None:
        ok: asyncio.Future[int] = loop.create_future()
        loop.call_soon(ok.set_result, 42)
        seen.append(await ok)
        bad: asyncio.Future[int] = loop.create_future()
        loop.call_soon(bad.set_exception, KeyError("gone"))
        try:
            await bad
        except KeyError as exc:
            seen.append(str(exc))
        await asyncio.sleep(0)
        seen.append(e.topic)

    async with make_bus(handler_timeout=60) as bus:
        bus.subscribe("token.launch", waits, name="waiter")
        await bus.publish(token_launch())
        await bus.drain(5)
    assert seen == [42, "'gone'", "token.launch"]
    assert bus.delivered[("waiter", "token.launch")] == 1 and not bus.failed


async def test_counters_survive_resubscribing_and_unsubscribing() -> None:
    async def ok(e: Event) -> None:
        pass

    async with make_bus() as bus:
        first = bus.subscribe("token.launch", ok, name="notifier")
        await bus.publish(token_launch())
        await bus.drain(5)
        bus.subscribe("chain.*.swap", ok, name="other")  # rebuilds the routes
        await bus.publish(token_launch())
        await bus.drain(5)
        bus.unsubscribe(first)
        await bus.publish(token_launch())
        await bus.drain(5)
    assert bus.delivered == {("notifier", "token.launch"): 2}
    assert bus.stats()["delivered"] == {"notifier|token.launch": 2}
    assert bus.stats()["published"] == {"token.launch": 3}


async def test_each_delivery_gets_its_own_deadline() -> None:
    """Handlers that each take most of the timeout all finish: the deadline counts from each start."""
    done: list[Event] = []

    async def steady(e: Event) -> None:
        await asyncio.sleep(0.03)
        done.append(e)

    async with make_bus(handler_timeout=0.05) as bus:
        bus.subscribe("token.launch", steady, name="steady")
        for _ in range(5):
            await bus.publish(token_launch())
        assert await bus.drain(5)
    assert len(done) == 5 and not bus.failed


async def test_after_a_timeout_the_next_handler_is_timed_afresh_and_a_swallowed_timeout_is_not_a_failure() -> None:
    outcomes: list[str] = []

    async def handler(e: Event) -> None:
        n = len(outcomes)
        outcomes.append("started")
        if n == 0:
            await asyncio.sleep(3600)  # times out
        elif n == 1:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                outcomes.append("swallowed")  # a handler that eats the cancellation finishes normally
        else:
            await asyncio.sleep(0.01)
            outcomes.append("finished")

    async with make_bus(handler_timeout=0.05) as bus:
        bus.subscribe("token.launch", handler, name="mixed")
        for _ in range(3):
            await bus.publish(token_launch())
        assert await bus.drain(5)
        task = bus.subscriptions()[0].task
        assert task is not None and not task.cancelling(), "the watchdog's cancellations were taken back"
    assert outcomes == ["started", "started", "swallowed", "started", "finished"]
    assert bus.failed == {("mixed", "token.launch"): 1}
    assert bus.delivered == {("mixed", "token.launch"): 2}


async def test_closing_the_bus_cancels_a_suspended_handler() -> None:
    cancelled = asyncio.Event()

    async def stuck(e: Event) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    bus = make_bus(handler_timeout=3600)
    async with bus:
        sub = bus.subscribe("token.launch", stuck, name="stuck")
        await bus.publish(token_launch())
        await asyncio.sleep(0)
    assert cancelled.is_set() and sub.task is None and not bus.failed


async def test_a_cancelled_error_from_inside_a_handler_is_its_failure_and_the_subscriber_goes_on() -> None:
    """A handler awaiting a future someone else cancelled (a pool, a library) lets CancelledError out: that
    is the handler's failure, counted, not the end of its subscriber (whose block publishers would hang)."""
    loop = asyncio.get_running_loop()
    seen: list[int] = []

    async def handler(event: Event) -> None:
        seen.append(event.id)
        if len(seen) == 1:
            future = loop.create_future()
            loop.call_soon(future.cancel)
            await future

    async with make_bus(handler_timeout=1.0, queue_size=2) as bus:
        sub = bus.subscribe("token.launch", handler, name="p", plugin=PluginRef("strategies", "p"))
        for _ in range(4):
            await bus.publish(token_launch())
        assert await bus.drain(2)
        assert len(seen) == 4 and sub.task is not None and not sub.task.done()
        assert bus.failed[("p", "token.launch")] == 1


async def test_a_native_panic_in_a_handler_is_contained() -> None:
    class PanicException(BaseException):  # what pyo3 raises for a Rust panic: not an Exception
        pass

    seen: list[int] = []

    async def handler(event: Event) -> None:
        seen.append(event.id)
        if len(seen) == 1:
            raise PanicException("index out of bounds")

    async with make_bus(handler_timeout=1.0) as bus:
        bus.subscribe("token.launch", handler, name="p", plugin=PluginRef("strategies", "p"))
        await bus.publish(token_launch())
        await bus.publish(token_launch())
        assert await bus.drain(2)
        assert len(seen) == 2 and bus.failed[("p", "token.launch")] == 1


async def test_closing_the_bus_stops_a_handler_that_swallows_its_cancellation() -> None:
    async def stubborn(event: Event) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # a plugin that ignores cancellation

    bus = make_bus(handler_timeout=3600)
    await bus.__aenter__()
    bus.subscribe("token.launch", stubborn, name="p")
    await bus.publish(token_launch())
    await asyncio.sleep(0.01)
    async with asyncio.timeout(5):
        await bus.__aexit__(None, None, None)
