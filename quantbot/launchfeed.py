"""PumpPortalFeed: new pump.fun tokens from a PumpPortal-style WebSocket, published as `token.launch`.

Speaks PumpPortal's plain-JSON protocol (no JSON-RPC): send `{"method": "subscribeNewToken"}`, then
read create frames (`txType: "create"`, `mint`, `traderPublicKey`, `name`, `symbol`, `uri`, ...;
also accepted wrapped as `{"method": "newToken", "params": [{...}]}`). The bonding curve is derived
from the mint rather than trusted from `bondingCurveKey` (it was once wrong upstream). The scanner
de-duplicates by mint, so the same token from the Solana watcher and this feed is judged once.
Reconnects with jittered backoff; a refused upgrade with 429 waits for its Retry-After.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import structlog
import websockets
from solders.pubkey import Pubkey
from websockets.exceptions import InvalidStatus, WebSocketException

from quantbot.bus import EventBus
from quantbot.chains.solana.programs import NATIVE_MINT, PUMP_FUN_PROGRAM
from quantbot.clock import Clock
from quantbot.events import TokenLaunch
from quantbot.retry import Backoff, retry_after

log = structlog.get_logger(component="pumpportal")

SUBSCRIBE = json.dumps({"method": "subscribeNewToken"})
PUMP_DECIMALS = 6


def bonding_curve_of(mint: str) -> str:
    program = Pubkey.from_string(PUMP_FUN_PROGRAM)
    return str(Pubkey.find_program_address([b"bonding-curve", bytes(Pubkey.from_string(mint))], program)[0])


def launch_from_frame(frame: Any) -> TokenLaunch | None:
    """The TokenLaunch of a create frame; None for acks and other frames; ValueError for a broken create."""
    if isinstance(frame, dict) and frame.get("method") == "newToken" and isinstance(frame.get("params"), list):
        frame = frame["params"][0] if frame["params"] else None
    if not isinstance(frame, dict) or frame.get("txType") != "create":
        return None
    mint, creator, signature = frame.get("mint"), frame.get("traderPublicKey"), frame.get("signature")
    if not isinstance(mint, str) or not isinstance(creator, str) or not isinstance(signature, str):
        raise ValueError("create frame without mint, traderPublicKey or signature")
    Pubkey.from_string(creator)  # raises ValueError for a malformed address
    return TokenLaunch(
        chain="solana",
        mint=mint,
        name=str(frame.get("name") or ""),
        symbol=str(frame.get("symbol") or ""),
        uri=str(frame.get("uri") or ""),
        creator=creator,
        source="pump.fun",
        tx=signature,
        bonding_curve=bonding_curve_of(mint),
        base_mint=mint,
        quote_mint=NATIVE_MINT,
        decimals=PUMP_DECIMALS,
    )


class PumpPortalFeed:
    name = "pumpportal"

    def __init__(
        self, *, bus: EventBus, url: str, clock: Clock, reconnect: Backoff | None = None, open_timeout: float = 10.0
    ) -> None:
        self.bus = bus
        self.url = url
        self.clock = clock
        self.reconnect = reconnect or Backoff(base=0.5, cap=30.0)
        self.open_timeout = open_timeout
        self.counters: Counter[str] = Counter()
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="quantbot[pumpportal].ws_loop")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        self._task = None

    def stats(self) -> dict[str, Any]:
        return {"reconnects": self.counters["reconnects"], "rpc_errors": self.counters["errors"], **self.counters}

    async def _loop(self) -> None:
        attempt = 0
        while True:
            wait: float | None = None
            try:
                async with websockets.connect(self.url, open_timeout=self.open_timeout, max_size=2**22) as ws:
                    await ws.send(SUBSCRIBE)
                    self.connected.set()
                    log.info("pumpportal.connected", url=self.url)
                    attempt = 0
                    async for message in ws:
                        await self._handle(message)
            except InvalidStatus as exc:
                self.counters["errors"] += 1
                if exc.response.status_code == 429:
                    wait = retry_after(exc.response.headers, now=self.clock.now())
                log.warning("pumpportal.refused", status=exc.response.status_code, retry_after_s=wait)
            except (OSError, TimeoutError, WebSocketException) as exc:
                self.counters["errors"] += 1
                log.warning("pumpportal.disconnected", error=f"{type(exc).__name__}: {exc}")
            self.connected.clear()
            self.counters["reconnects"] += 1
            await self.clock.sleep(wait if wait is not None else self.reconnect.delay(attempt))
            attempt += 1

    async def _handle(self, message: str | bytes) -> None:
        try:
            launch = launch_from_frame(json.loads(message))
        except ValueError as exc:  # JSONDecodeError is a ValueError
            self.counters["malformed"] += 1
            log.warning("pumpportal.malformed_frame", error=str(exc)[:200])
            return
        if launch is None:
            self.counters["other_frames"] += 1
            return
        self.counters["launches"] += 1
        await self.bus.publish(launch)
