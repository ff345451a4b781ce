"""MemeScanner: every `token.launch` (de-duplicated by mint) is enriched into a TokenCandidate, judged by
the filter chain and published as `token.accepted` or `token.rejected` with every reason and value.

The scanner is the one owner of that flow: it subscribes to launches, asks the SolanaEnricher and the
CreatorHistory concurrently, waits out the momentum window (pump.fun trades seen since the launch),
has the FilterStage judge, scores the candidate from configured weights, counts rejection reasons
(`stats()`, read by /metrics and /status) and persists each verdict off the hot path.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from quantbot.bus import EventBus, Overflow
from quantbot.candidates import CreatorInfo, MomentumInfo, TokenCandidate
from quantbot.clock import Clock
from quantbot.config import ScannerConfig
from quantbot.creators import CreatorHistory
from quantbot.events import Event, FilterVerdict, PumpTrade, TokenAccepted, TokenLaunch, TokenRejected
from quantbot.features import Features
from quantbot.filtering import FilterStage
from quantbot.store.writer import WriteBehind

if TYPE_CHECKING:  # the Solana client stack is imported only when Solana is enabled
    from quantbot.enrich import SolanaEnricher

log = structlog.get_logger(component="scanner")

MAX_TRACKED_MINTS = 20_000


@dataclass
class _Flow:
    """pump.fun trades of one mint since it was first seen."""

    buys: int = 0
    sells: int = 0
    buyers: set[str] = field(default_factory=set)
    net_in: int = 0


class MemeScanner:
    name = "scanner"

    def __init__(
        self,
        *,
        bus: EventBus,
        filters: FilterStage,
        config: ScannerConfig,
        clock: Clock,
        history: CreatorHistory,
        enricher: SolanaEnricher | None = None,
        writer: WriteBehind | None = None,
    ) -> None:
        self.bus = bus
        self.filters = filters
        self.config = config
        self.clock = clock
        self.history = history
        self.enricher = enricher
        self.writer = writer
        self.counts: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        """Failing filter id -> tokens it rejected."""
        self.latency_last_s: float | None = None
        self.latency_max_s = 0.0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._flows: OrderedDict[str, _Flow] = OrderedDict()
        self._creators: OrderedDict[str, tuple[str, int | None]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.bus.subscribe("token.launch", self._on_launch, name="scanner")
        self.bus.subscribe(
            "chain.solana.pump_trade", self._on_trade, name="scanner.momentum", overflow=Overflow.DROP_OLDEST
        )

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def drained(self) -> None:
        """Wait until every launch taken so far has been judged and published."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def creator_of(self, mint: str) -> tuple[str, int | None] | None:
        """(creator, creator's holding when judged) of a launch this scanner judged, for the rug watch."""
        return self._creators.get(mint)

    def stats(self) -> dict[str, Any]:
        return {
            **{k: self.counts[k] for k in ("launches", "duplicates", "overloaded", "accepted", "rejected", "errors")},
            "rejections": dict(self.rejections),
            "lookup_failures": dict(self.enricher.failures) if self.enricher else {},
            "cache_hits": self.enricher.cache.hits if self.enricher else 0,
            "pending": len(self._tasks),
            "enrich_latency_last_s": self.latency_last_s,
            "enrich_latency_max_s": self.latency_max_s,
        }

    # --- input -----------------------------------------------------------------------------------

    async def _on_launch(self, event: Event) -> None:
        if not isinstance(event, TokenLaunch):
            return
        key = f"{event.chain}:{event.mint}"
        if key in self._seen:
            self.counts["duplicates"] += 1
            return
        if len(self._tasks) >= self.config.max_pending:
            self.counts["overloaded"] += 1
            log.warning("scanner.overloaded", mint=event.mint, pending=len(self._tasks))
            return
        self._seen[key] = None
        while len(self._seen) > self.config.dedup_window:
            self._seen.popitem(last=False)
        self.counts["launches"] += 1
        self._flows.setdefault(event.mint, _Flow())
        self._trim(self._flows)
        task = asyncio.get_running_loop().create_task(self._judge(event), name=f"quantbot[scanner].judge.{event.mint}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_trade(self, event: Event) -> None:
        if not isinstance(event, PumpTrade):
            return
        flow = self._flows.get(event.mint)
        if flow is None:
            # The dev buy can be published before its launch: keep a little flow for unknown mints.
            flow = self._flows[event.mint] = _Flow()
            self._trim(self._flows)
        if event.is_buy:
            flow.buys += 1
            flow.buyers.add(event.user)
            flow.net_in += event.sol_amount
        else:
            flow.sells += 1
            flow.net_in -= event.sol_amount

    @staticmethod
    def _trim(d: OrderedDict[str, Any]) -> None:
        while len(d) > MAX_TRACKED_MINTS:
            d.popitem(last=False)

    # --- judging ---------------------------------------------------------------------------------

    async def _judge(self, launch: TokenLaunch) -> None:
        try:
            candidate = await self._candidate(launch)
            verdicts = await self.filters.judge(candidate)
            score = self.score(candidate)
            if self.config.min_score > 0 and score < self.config.min_score:
                verdicts += (
                    FilterVerdict(
                        filter="score",
                        passed=False,
                        reason=f"score {score:.3f} below {self.config.min_score}",
                        value=f"{score:.4f}",
                    ),
                )
            await self._publish(candidate, verdicts, score)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one bad launch must not stop the scanner
            self.counts["errors"] += 1
            log.exception("scanner.judge_failed", mint=launch.mint, error=f"{type(exc).__name__}: {exc}")

    async def _candidate(self, launch: TokenLaunch) -> TokenCandidate:
        seen = self.clock.monotonic()
        creator = launch.creator
        # Recorded at arrival, not after enrichment: launches of one creator judged concurrently must see each other.
        record = self.history.record(launch.chain, creator, launch.mint, self.clock.now()) if creator else _nothing()
        previous, features = await asyncio.gather(record, self._features(launch))
        elapsed = self.clock.monotonic() - seen
        self.latency_last_s = elapsed
        self.latency_max_s = max(self.latency_max_s, elapsed)
        wait = self.config.momentum_window_s - (self.clock.monotonic() - seen)
        if wait > 0:
            await self.clock.sleep(wait)
        missing = dict(features.missing)
        creator_info = None
        if creator:
            creator_info = CreatorInfo(address=creator, previous_launches=previous, holding=features.creator_holding)
            missing.pop("creator", None)
            self._creators[launch.mint] = (creator, features.creator_holding)
            self._trim(self._creators)
        else:
            missing.setdefault("creator", "the launch names no creator")
        momentum = None
        flow = self._flows.get(launch.mint)
        if launch.chain == "solana" and flow is not None:
            momentum = MomentumInfo(
                window_s=self.config.momentum_window_s,
                buys=flow.buys,
                sells=flow.sells,
                buyers=len(flow.buyers),
                net_native_in=flow.net_in,
            )
        else:
            missing["momentum"] = "no pump.fun trade flow for this chain"
        return TokenCandidate(
            launch=launch,
            mint=features.mint,
            metadata=features.metadata,
            liquidity=features.liquidity,
            lp=features.lp,
            holders=features.holders,
            creator=creator_info,
            momentum=momentum,
            missing=missing,
            observed_at=self.clock.now(),
        )

    async def _features(self, launch: TokenLaunch) -> Features:
        if launch.chain == "solana" and self.enricher is not None:
            return await self.enricher.enrich(launch)
        why = "solana is not enabled" if launch.chain == "solana" else f"no enrichment for {launch.chain} launches"
        return Features(missing=dict.fromkeys(("mint", "metadata", "liquidity", "lp", "holders"), why))

    def score(self, c: TokenCandidate) -> float:
        """Weighted mean of the feature sub-scores, each in [0, 1]; an unmeasured feature scores 0."""
        w, cfg = self.config.weights, self.config
        parts: list[tuple[float, float]] = [
            (w.liquidity, min(1.0, float(c.liquidity.native) / cfg.liquidity_target_sol))
            if c.liquidity and c.liquidity.native is not None
            else (w.liquidity, 0.0),
            (w.momentum, min(1.0, c.momentum.buyers / cfg.momentum_target_buyers) if c.momentum else 0.0),
            (w.holders, 1.0 - float(min(Decimal(1), c.holders.share(10))) if c.holders else 0.0),
            (w.lp_burned, float(c.lp.burned_share) if c.lp else 0.0),
            (w.immutable, 1.0 if c.metadata and not c.metadata.is_mutable else 0.0),
            (w.renounced, 1.0 if c.mint and c.mint.mint_authority is None and c.mint.freeze_authority is None else 0.0),
            (w.creator_fresh, 1.0 / (1 + len(c.creator.previous_launches)) if c.creator else 0.0),
        ]
        total = sum(weight for weight, _ in parts)
        return round(sum(weight * s for weight, s in parts) / total, 6) if total > 0 else 0.0

    async def _publish(self, c: TokenCandidate, verdicts: tuple[FilterVerdict, ...], score: float) -> None:
        passed = all(v.passed for v in verdicts)
        failed = [v for v in verdicts if not v.passed]
        for v in failed:
            self.rejections[v.filter] += 1
        self.counts["accepted" if passed else "rejected"] += 1
        log.info(
            "scanner.accepted" if passed else "scanner.rejected",
            mint=c.token,
            source=c.launch.source,
            score=score,
            reasons=[f"{v.filter}: {v.reason}" for v in failed],
            missing=sorted(c.missing),
        )
        event: Event = (
            TokenAccepted(launch=c.launch, verdicts=verdicts, score=score)
            if passed
            else TokenRejected(launch=c.launch, verdicts=verdicts, score=score)
        )
        await self.bus.publish(event)
        if self.writer is not None:
            payload = msgspec.json.encode({"candidate": c, "verdicts": verdicts, "score": score}).decode()
            at = c.observed_at or self.clock.now()
            self.writer.enqueue(
                lambda s: s.put_verdict(chain=c.chain, token=c.token, passed=passed, payload=payload, at=at)
            )


async def _nothing() -> tuple[datetime, ...]:
    return ()
