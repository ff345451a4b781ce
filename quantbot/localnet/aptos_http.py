"""HTTP pieces of the local Aptos node: the API's error body and injected faults."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from aiohttp import web


def api_error(status: int, message: str, code: str, vm_error_code: int | None = None) -> web.Response:
    """An error in the fullnode's shape: `{"message", "error_code", "vm_error_code"}`."""
    body = {"message": message, "error_code": code, "vm_error_code": vm_error_code}
    return web.json_response(body, status=status)


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next `times` matching requests (None: until removed).

    kind "status": answer `status` (429 as the gateway does: plain text, optional Retry-After; other
    statuses as the node does: a JSON error); "malformed": 200 with truncated JSON; "delay": wait
    `delay` seconds, then answer normally.
    """

    kind: Literal["status", "malformed", "delay"]
    times: int | None = 1
    path: str = ""
    """Only requests whose path contains this."""
    method: str = ""
    """Only requests with this method (GET, POST); any when empty."""
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    exact: bool = False
    """Match `path` exactly (`/v1/transactions` is then the submit, not also `/v1/transactions/simulate`)."""

    async def respond(self, closing: asyncio.Event) -> web.Response | None:
        """The injected response, or None to go on to the real handler (after a delay)."""
        if self.kind == "delay":
            try:
                await asyncio.wait_for(closing.wait(), self.delay)
            except TimeoutError:
                pass
            return None
        if self.kind == "malformed":
            return web.Response(body=b'{"version": "1", "hash": "0x', content_type="application/json")
        if self.status == 429:
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return web.Response(status=429, text="Per anonymous IP rate limit exceeded", headers=headers)
        return api_error(self.status, "injected fault", "internal_error")


def take_fault(faults: list[Fault], method: str, path: str) -> Fault | None:
    """The first fault matching the request, counted down (and removed when used up)."""
    for fault in faults:
        if fault.method not in ("", method) or (fault.path != path if fault.exact else fault.path not in path):
            continue
        if fault.times is None or fault.times > 0:
            if fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    faults.remove(fault)
            return fault
    return None
