"""Inbox: the bus's per-subscriber queue keeps asyncio.Queue's bounded FIFO, backpressure and join semantics."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantbot.inbox import Inbox

OPS = st.lists(st.sampled_from(["put", "get", "done"]), max_size=60)


@given(maxsize=st.integers(min_value=0, max_value=4), ops=OPS)
def test_non_blocking_operations_match_asyncio_queue(maxsize: int, ops: list[str]) -> None:
    async def run() -> None:
        model: asyncio.Queue[int] = asyncio.Queue(maxsize)
        inbox: Inbox[int] = Inbox(maxsize)
        for n, op in enumerate(ops):
            if op == "put":
                try:
                    model.put_nowait(n)
                except asyncio.QueueFull:
                    assert not inbox.offer(n)
                    with pytest.raises(asyncio.QueueFull):
                        inbox.put_nowait(n)
                else:
                    assert inbox.offer(n)
            elif op == "get":
                try:
                    expected = model.get_nowait()
                except asyncio.QueueEmpty:
                    with pytest.raises(asyncio.QueueEmpty):
                        inbox.get_nowait()
                else:
                    assert inbox.get_nowait() == expected
            else:
                try:
                    model.task_done()
                except ValueError:
                    with pytest.raises(ValueError, match="too many"):
                        inbox.task_done()
                else:
                    inbox.task_done()
            assert (inbox.qsize(), inbox.full(), inbox.empty()) == (model.qsize(), model.full(), model.empty())

    asyncio.run(run())


@given(maxsize=st.integers(min_value=1, max_value=3), n=st.integers(min_value=0, max_value=12))
def test_put_waits_while_full_and_the_consumer_sees_every_item_in_order(maxsize: int, n: int) -> None:
    async def run() -> list[int]:
        inbox: Inbox[int] = Inbox(maxsize)
        got: list[int] = []

        async def consume() -> None:
            while True:
                item = await inbox.get()
                assert inbox.qsize() < maxsize
                got.append(item)
                await asyncio.sleep(0)
                inbox.task_done()

        consumer = asyncio.create_task(consume())
        for i in range(n):
            await inbox.put(i)
            assert inbox.qsize() <= maxsize
        await inbox.join()
        consumer.cancel()
        return got

    assert asyncio.run(run()) == list(range(n))


async def test_a_cancelled_waiting_put_leaves_no_trace_and_the_next_putter_gets_the_slot() -> None:
    inbox: Inbox[str] = Inbox(1)
    inbox.put_nowait("first")
    cancelled = asyncio.create_task(inbox.put("cancelled"))
    waiting = asyncio.create_task(inbox.put("waiting"))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert inbox.get_nowait() == "first"
    await asyncio.wait_for(waiting, 1)
    assert cancelled.cancelled()
    assert inbox.get_nowait() == "waiting" and inbox.empty()


async def test_a_putter_woken_then_cancelled_passes_its_slot_on() -> None:
    inbox: Inbox[str] = Inbox(1)
    inbox.put_nowait("first")
    woken = asyncio.create_task(inbox.put("woken"))
    other = asyncio.create_task(inbox.put("other"))
    await asyncio.sleep(0)
    inbox.get_nowait()  # wakes `woken`, which is cancelled before it runs
    woken.cancel()
    await asyncio.wait_for(other, 1)
    assert inbox.get_nowait() == "other" and inbox.empty()


async def test_join_waits_for_task_done_of_every_item() -> None:
    inbox: Inbox[int] = Inbox(0)
    for i in range(3):
        inbox.put_nowait(i)
    joined = asyncio.create_task(inbox.join())
    for _ in range(3):
        inbox.get_nowait()
        await asyncio.sleep(0)
        assert not joined.done()
        inbox.task_done()
    await asyncio.wait_for(joined, 1)
    await asyncio.wait_for(inbox.join(), 1)  # nothing unfinished: returns at once


async def test_closing_releases_joiners_and_the_gone_consumer_may_still_mark_its_items_done() -> None:
    inbox: Inbox[int] = Inbox(1)
    inbox.put_nowait(1)
    taken = inbox.get_nowait()  # the consumer is handling it
    inbox.put_nowait(2)
    joiner = asyncio.ensure_future(inbox.join())
    await asyncio.sleep(0)
    inbox.close()
    await asyncio.wait_for(joiner, 1)
    inbox.task_done()  # the cancelled consumer's cleanup for `taken`: no error
    assert taken == 1 and inbox.empty()
