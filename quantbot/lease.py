"""One trading daemon per store: the trading lease, held for as long as orders can be placed.

The data-directory lock keeps a second daemon off one machine's store. A PostgreSQL store is shared by
every machine that reaches it, so two trading daemons on different hosts (a cluster given two `trading`
instances, or an `all` instance left running on the old VPS) would each place orders from one journal,
settle each other's orders in flight as orphans and rebuild today's budget without the other's. The
trading components therefore run only under the store's `trading` lease. A daemon that loses it (its
lease connection dropped, so the other may now hold it) fences its order router and stops with
EX_TEMPFAIL; systemd restarts it within the unit's start limit, and each start needs the lease back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any

import structlog

from quantbot.store.base import Lease, Store

log = structlog.get_logger(component="lease")

LEASE_NAME = "trading"
CHECK_INTERVAL_S = 10.0
"""How often the lease is checked by default (`[store] lease_check_s`; real seconds, whatever clock a
replay runs on)."""


EXPIRE_MIN_S = 30.0


def holder_name(instance: str) -> str:
    """Who we are, as another process's refusal shows it."""
    return f"quantbot {instance} pid {os.getpid()} on {socket.gethostname()}"


class TradingLease:
    """Takes the store's trading lease at start (LeaseHeld if another process has it), checks it every
    `check_interval_s` and calls `on_lost` once if it is gone; releases it at stop."""

    name = "lease"

    def __init__(
        self,
        *,
        store: Store,
        holder: str,
        on_lost: Callable[[], None],
        check_interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self.store = store
        self.holder = holder
        self.on_lost = on_lost
        self.check_interval_s = check_interval_s
        self.expire_s = max(EXPIRE_MIN_S, 3 * check_interval_s)
        """A holder that missed three checks (cut off from PostgreSQL) has lost the lease, server side."""
        self.checks = 0
        self.lost = False
        self._lease: Lease | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._lease = await self.store.lease(LEASE_NAME, holder=self.holder, expire_s=self.expire_s)
        log.info("lease.taken", lease=LEASE_NAME, backend=self.store.backend, holder=self.holder)
        self._task = asyncio.create_task(self._watch(self._lease), name="quantbot[lease].watch")

    async def _watch(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(self.check_interval_s)
            self.checks += 1
            try:
                held = await lease.held()
            except Exception as exc:  # noqa: BLE001  (a check that cannot say yes is a lost lease)
                log.error("lease.check_failed", lease=LEASE_NAME, error=f"{type(exc).__name__}: {exc}")
                held = False
            if not held:
                self.lost = True
                log.critical(
                    "lease.lost",
                    lease=LEASE_NAME,
                    detail="the store's trading lease is gone (connection lost?); orders are fenced and the "
                    "daemon stops, so that no two daemons trade from one store",
                )
                self.on_lost()
                return

    async def stop(self) -> None:
        try:
            if self._task is not None:
                task, self._task = self._task, None
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            if self._lease is not None:
                lease, self._lease = self._lease, None
                await lease.release()
                log.info("lease.released", lease=LEASE_NAME)

    def stats(self) -> dict[str, Any]:
        return {"held": self._lease is not None and not self.lost, "lost": self.lost, "checks": self.checks}
