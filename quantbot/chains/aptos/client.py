"""Aptos fullnode REST access: aptos-sdk RestClients over several nodes, with the retries 0.11 lacks.

Every call runs under a timeout; 429 waits what Retry-After asks (else the shared Backoff), and
429, retryable 5xx, transport errors, timeouts and malformed JSON fail over to the next node.
Other API errors (404, 400, 410) are answers, not failures, and are raised at once. The
`X-Aptos-*` headers of the last good response give the node's ledger version and timestamp.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import structlog
from aptos_sdk.async_client import ApiError, ClientConfig, RestClient

from quantbot.clock import Clock
from quantbot.retry import RETRYABLE_STATUS, Backoff, retry_after

log = structlog.get_logger(component="aptos")

T = TypeVar("T")

_last_headers: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "aptos_last_headers", default=None
)


class AptosUnavailable(Exception):
    """No configured node answered `op` after every attempt (what was tried and the last error)."""


@dataclass
class LedgerHead:
    """What the node reported in its `X-Aptos-*` headers on the last good response."""

    version: int = -1
    timestamp_us: int = 0
    oldest_version: int = 0
    chain_id: int | None = None


@dataclass
class RestStats:
    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    failovers: int = 0
    by_error: dict[str, int] = field(default_factory=dict)


async def _remember_headers(response: httpx.Response) -> None:
    # An httpx response hook runs in the caller's task, so the caller reads its own response's headers.
    _last_headers.set(response.headers)


class AptosRest:
    """One aptos-sdk RestClient per node URL (ending in /v1); `call` picks, retries and fails over."""

    def __init__(
        self,
        *,
        nodes: Sequence[str],
        clock: Clock,
        timeout: float = 10.0,
        backoff: Backoff | None = None,
        attempts: int = 4,
        api_key: str | None = None,
    ) -> None:
        if not nodes:
            raise ValueError("aptos needs at least one node URL (aptos.nodes)")
        self.nodes = [n.rstrip("/") for n in nodes]
        self.clock = clock
        self.timeout = timeout
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.attempts = attempts
        self.stats = RestStats()
        self.head = LedgerHead()
        self.active = 0
        self._clients = [RestClient(url, ClientConfig(api_key=api_key)) for url in self.nodes]
        for client in self._clients:
            client.client.event_hooks["response"].append(_remember_headers)

    @property
    def node(self) -> str:
        return self.nodes[self.active]

    async def close(self) -> None:
        for client in self._clients:
            await client.close()  # type: ignore[no-untyped-call]

    async def call(self, op: str, fn: Callable[[RestClient], Awaitable[T]]) -> T:
        """Run `fn` against the active node; retry with backoff and failover on retryable failures."""
        last = "no attempt"
        pruned_by = 0  # nodes that answered "pruned" in a row: another node may still hold that history
        for attempt in range(self.attempts):
            index = self.active
            client = self._clients[index]
            _last_headers.set(None)
            wait: float | None = None
            self.stats.requests += 1
            try:
                async with asyncio.timeout(self.timeout):
                    result = await fn(client)
            except ApiError as exc:
                if error_code(exc) == "version_pruned" and pruned_by + 1 < len(self.nodes):
                    # That node no longer keeps it; an archive node (the first, usually) may: ask the next at once.
                    self._note_head()
                    pruned_by += 1
                    self._failed(op, index, "version pruned on this node")
                    continue
                if exc.status_code == 429:
                    self.stats.rate_limited += 1
                    headers = _last_headers.get() or {}
                    wait = retry_after(headers)
                    last = f"HTTP 429 (Retry-After {headers.get('Retry-After', 'absent')})"
                elif exc.status_code in RETRYABLE_STATUS:
                    last = f"HTTP {exc.status_code}"
                else:
                    self._note_head()
                    raise
            except TimeoutError:
                last = f"timeout after {self.timeout}s"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                last = f"malformed response: {exc}"
            else:
                self._note_head()
                return result
            self._failed(op, index, last)
            if attempt + 1 < self.attempts:
                delay = self.backoff.delay(attempt)
                await self.clock.sleep(max(delay, wait or 0.0))
        raise AptosUnavailable(f"aptos {op}: no node answered after {self.attempts} attempts; last error: {last}")

    def _failed(self, op: str, index: int, error: str) -> None:
        self.stats.errors += 1
        kind = error.split(" (")[0].split(":")[0]
        self.stats.by_error[kind] = self.stats.by_error.get(kind, 0) + 1
        log.warning("aptos.request_failed", op=op, node=self.nodes[index], error=error)
        if len(self.nodes) > 1 and index == self.active:
            self.active = (index + 1) % len(self.nodes)
            self.stats.failovers += 1
            log.warning("aptos.failover", op=op, from_node=self.nodes[index], to_node=self.node)

    def _note_head(self) -> None:
        headers = _last_headers.get()
        if not headers:
            return
        try:
            self.head = LedgerHead(
                version=int(headers["X-Aptos-Ledger-Version"]),
                timestamp_us=int(headers["X-Aptos-Ledger-TimestampUsec"]),
                oldest_version=int(headers.get("X-Aptos-Ledger-Oldest-Version", "0")),
                chain_id=int(headers["X-Aptos-Chain-Id"]) if "X-Aptos-Chain-Id" in headers else None,
            )
        except (KeyError, ValueError):
            return  # a proxy or gateway answered without the node's headers


def error_code(exc: ApiError) -> str:
    """The `error_code` of an API error body (`version_pruned`, `account_not_found`, ...), or ''."""
    try:
        body: Any = json.loads(str(exc).split(" - ")[0])
    except ValueError:
        return ""
    return str(body.get("error_code", "")) if isinstance(body, dict) else ""
