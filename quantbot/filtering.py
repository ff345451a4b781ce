"""FilterStage: runs the configured filter plugins, in config order, on one `TokenCandidate`.

The MemeScanner owns the flow (launch -> enrich -> judge -> publish) and asks this stage for the
verdicts. Fail closed: a filter that raises, times out or has been disabled for repeated failures
rejects the token (with that reason), because a safety filter that silently stops would let rugs through.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog

from quantbot.api import Filter
from quantbot.bus import EventBus, PluginRef
from quantbot.candidates import TokenCandidate
from quantbot.events import FilterVerdict

log = structlog.get_logger(component="filters")


class FilterStage:
    name = "filters"

    def __init__(self, *, bus: EventBus, filters: list[Filter], timeout: float, evaluate_all: bool = True) -> None:
        self.bus = bus
        self.filters = filters
        self.timeout = timeout
        self.evaluate_all = evaluate_all
        """True: every filter judges every token (concurrently). False: stop at the first failure."""

    async def start(self) -> None:
        for f in self.filters:
            await self._start_one(f)
        self._log_chain()

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
        self._log_chain()

    def _log_chain(self) -> None:
        """The effective filter chain, in order: an overlay replaces [[filters]] whole, so say what runs."""
        ids = [f.id for f in self.filters]
        if ids:
            log.info("filters.chain", filters=ids, evaluate_all=self.evaluate_all)
        else:
            log.warning("filters.chain_empty", note="no filter runs: every judged launch is accepted")

    async def _start_one(self, f: Filter) -> None:
        ref = PluginRef("filters", f.id)
        try:
            await f.start()
        except Exception as exc:  # noqa: BLE001  (disabled, and the stage fails closed without it)
            await self.bus.report_failure(ref, exc, event=None, subscriber="filters")
            await self.bus.disable_plugin(ref, failures=1, error=f"start failed: {type(exc).__name__}: {exc}")

    async def judge(self, candidate: TokenCandidate) -> tuple[FilterVerdict, ...]:
        """Every filter's verdict in config order (up to the first failure unless `evaluate_all`)."""
        filters = list(self.filters)
        if self.evaluate_all:
            return tuple(await asyncio.gather(*(self._run(f, candidate) for f in filters)))
        verdicts: list[FilterVerdict] = []
        for f in filters:
            verdict = await self._run(f, candidate)
            verdicts.append(verdict)
            if not verdict.passed:
                break
        return tuple(verdicts)

    async def _run(self, f: Filter, candidate: TokenCandidate) -> FilterVerdict:
        ref = PluginRef("filters", f.id)
        if ref in self.bus.health.disabled:
            return FilterVerdict(filter=f.id, passed=False, reason="filter disabled after repeated failures")
        try:
            async with asyncio.timeout(self.timeout):
                verdict = await f.check(candidate)
            if not isinstance(verdict, FilterVerdict):
                raise TypeError(f"check() returned {type(verdict).__name__}, not FilterVerdict")
        except asyncio.CancelledError as exc:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            # The filter leaked a cancellation of something it awaited: its failure, not ours to stop on.
            return await self._failed(f, candidate, exc)
        except Exception as exc:  # noqa: BLE001  (a plugin's failure is contained and counted)
            if isinstance(exc, TimeoutError):
                exc = TimeoutError(f"filter did not answer within {self.timeout}s")
            return await self._failed(f, candidate, exc)
        self.bus.report_success(ref)
        return verdict

    async def _failed(self, f: Filter, candidate: TokenCandidate, exc: BaseException) -> FilterVerdict:
        """Count a filter's failure (disabling it past the limit) and reject the token with it."""
        await self.bus.report_failure(PluginRef("filters", f.id), exc, event=candidate.launch, subscriber="filters")
        return FilterVerdict(filter=f.id, passed=False, reason=f"filter error: {type(exc).__name__}")

    def describe(self) -> dict[str, object]:
        return {f.id: msgspec.to_builtins(f.config) for f in self.filters}
