"""FilterStage: runs every enabled filter plugin on each `token.launch`, publishes the verdict.

Fail closed: a filter that raises, times out or has been disabled for repeated failures rejects
the token (with that reason), because a safety filter that silently stops would let rugs through.
The scanner issue puts enrichment in front of this stage.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog

from quantbot.api import Filter
from quantbot.bus import EventBus, Overflow, PluginRef
from quantbot.events import Event, FilterVerdict, TokenAccepted, TokenLaunch, TokenRejected

log = structlog.get_logger(component="filters")


class FilterStage:
    name = "filters"

    def __init__(self, *, bus: EventBus, filters: list[Filter], timeout: float) -> None:
        self.bus = bus
        self.filters = filters
        self.timeout = timeout

    async def start(self) -> None:
        for f in self.filters:
            await self._start_one(f)
        self.bus.subscribe("token.launch", self._on_launch, name="filters", overflow=Overflow.BLOCK)

    async def stop(self) -> None:
        for f in reversed(self.filters):
            await f.stop()

    async def replace(self, filters: list[Filter]) -> None:
        """Swap in a new filter list (SIGHUP): start the new instances, stop the dropped ones."""
        old = {id(f) for f in self.filters}
        keep = {id(f) for f in filters}
        for f in filters:
            if id(f) not in old:
                await self._start_one(f)
        dropped = [f for f in self.filters if id(f) not in keep]
        self.filters = filters
        for f in dropped:
            await f.stop()

    async def _start_one(self, f: Filter) -> None:
        ref = PluginRef("filters", f.id)
        try:
            await f.start()
        except Exception as exc:  # noqa: BLE001  (disabled, and the stage fails closed without it)
            await self.bus.report_failure(ref, exc, event=None, subscriber="filters")
            await self.bus.disable_plugin(ref, failures=1, error=f"start failed: {type(exc).__name__}: {exc}")

    async def _on_launch(self, event: Event) -> None:
        assert isinstance(event, TokenLaunch)  # noqa: S101  (the subscription guarantees it)
        filters = list(self.filters)
        verdicts = await asyncio.gather(*(self._run(f, event) for f in filters))
        if all(v.passed for v in verdicts):
            await self.bus.publish(TokenAccepted(launch=event, verdicts=tuple(verdicts)))
        else:
            await self.bus.publish(TokenRejected(launch=event, verdicts=tuple(verdicts)))

    async def _run(self, f: Filter, launch: TokenLaunch) -> FilterVerdict:
        ref = PluginRef("filters", f.id)
        if ref in self.bus.health.disabled:
            return FilterVerdict(filter=f.id, passed=False, reason="filter disabled after repeated failures")
        try:
            async with asyncio.timeout(self.timeout):
                verdict = await f.check(launch)
            if not isinstance(verdict, FilterVerdict):
                raise TypeError(f"check() returned {type(verdict).__name__}, not FilterVerdict")
        except Exception as exc:  # noqa: BLE001  (a plugin's failure is contained and counted)
            if isinstance(exc, TimeoutError):
                exc = TimeoutError(f"filter did not answer within {self.timeout}s")
            await self.bus.report_failure(ref, exc, event=launch, subscriber="filters")
            return FilterVerdict(filter=f.id, passed=False, reason=f"filter error: {type(exc).__name__}")
        self.bus.report_success(ref)
        return verdict

    def describe(self) -> dict[str, object]:
        return {f.id: msgspec.to_builtins(f.config) for f in self.filters}
