"""PumpPortalFeed against a local WebSocket server speaking PumpPortal's plain-JSON frames (recorded shapes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.server import Server, ServerConnection, serve

from quantbot.bus import EventBus
from quantbot.clock import WallClock
from quantbot.events import Event, TokenLaunch
from quantbot.launchfeed import PumpPortalFeed, bonding_curve_of, launch_from_frame
from quantbot.retry import Backoff

GUARD_S = 10.0  # a hang guard, not a speed assertion


def frames(fixtures: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fixtures / "pumpportal_ws_messages_examples.json").read_text())
    return data


class Portal:
    """Answers `subscribeNewToken` with an ack, then sends the queued frames."""

    def __init__(self, to_send: list[str]) -> None:
        self.to_send = to_send
        self.requests: list[Any] = []
        self.connections = 0
        self.server: Server | None = None

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.requests.append(json.loads(await ws.recv()))
        await ws.send(json.dumps({"message": "Successfully subscribed to token creation events."}))
        for text in self.to_send:
            await ws.send(text)
        if self.connections == 1:
            await ws.close()  # the first connection drops: the feed must reconnect
            return
        await ws.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/api/data"


async def feeding(
    portal: Portal, until: Callable[[list[Event], PumpPortalFeed], bool]
) -> tuple[list[Event], PumpPortalFeed]:
    events: list[Event] = []
    changed = asyncio.Event()

    async def record(e: Event) -> None:
        events.append(e)
        changed.set()

    async with serve(portal.handler, "127.0.0.1", 0) as server, EventBus(clock=WallClock()) as bus:
        portal.server = server
        bus.subscribe("token.launch", record, name="rec")
        feed = PumpPortalFeed(bus=bus, url=portal.url, clock=WallClock(), reconnect=Backoff(base=0.01, cap=0.05))
        await feed.start()
        try:
            async with asyncio.timeout(GUARD_S):
                while not until(events, feed):
                    changed.clear()
                    try:
                        async with asyncio.timeout(0.05):
                            await changed.wait()
                    except TimeoutError:
                        pass
        finally:
            await feed.stop()
    return events, feed


async def test_a_recorded_create_frame_becomes_a_launch_with_the_derived_bonding_curve(solana_fixtures: Path) -> None:
    create = frames(solana_fixtures)["create_frame_2026_08_17_hades_test"]
    create = {k: v for k, v in create.items() if not k.startswith("_")}
    portal = Portal([json.dumps(create)])
    events, feed = await feeding(portal, lambda ev, f: len(ev) >= 2)
    assert portal.requests[0] == {"method": "subscribeNewToken"}
    launch = events[0]
    assert isinstance(launch, TokenLaunch)
    assert (launch.mint, launch.creator, launch.name, launch.symbol) == (
        create["mint"],
        create["traderPublicKey"],
        "The Unicorn",
        "UNICORN",
    )
    assert launch.tx == create["signature"] and launch.source == "pump.fun"
    assert launch.bonding_curve == bonding_curve_of(create["mint"])
    assert feed.stats()["reconnects"] >= 1, "the dropped first connection was re-established"


async def test_malformed_and_non_create_frames_are_counted_and_the_feed_keeps_going(solana_fixtures: Path) -> None:
    recorded = frames(solana_fixtures)["frames_codingsandmore_pumpfun_readme_log_go_struct_keys_sorted"]
    buy = next(f for f in recorded if f["txType"] == "buy")
    create = next(f for f in recorded if f["txType"] == "create")
    wrapped = {"method": "newToken", "params": [create]}
    portal = Portal(["{not json", json.dumps(buy), json.dumps({"txType": "create", "mint": 1}), json.dumps(wrapped)])
    events, feed = await feeding(portal, lambda ev, f: len(ev) >= 1)
    [launch] = events[:1]
    assert isinstance(launch, TokenLaunch) and launch.mint == create["mint"]
    stats = feed.stats()
    assert stats["malformed"] >= 2 and stats["other_frames"] >= 2  # the broken create and the JSON garbage; ack + buy


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_any_json_frame_is_a_launch_none_or_a_clear_value_error(frame: Any) -> None:
    try:
        launch = launch_from_frame(frame)
    except ValueError:
        return
    assert launch is None or isinstance(launch, TokenLaunch)


@pytest.mark.parametrize("field", ["mint", "traderPublicKey", "signature"])
def test_a_create_frame_missing_a_required_field_is_refused(field: str) -> None:
    frame = {
        "txType": "create",
        "mint": "nHxKqPLgixPc5BFF1PJsZt6YQJYKgYKGfPgiXCBpump",
        "traderPublicKey": "8i6qTrvQZ2c66GdPb8CgQh599CAMUGJPWqVWMwbtjGYf",
        "signature": "s",
    }
    del frame[field]
    with pytest.raises(ValueError, match="create frame without"):
        launch_from_frame(frame)
